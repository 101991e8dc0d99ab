//! The arithmetic of recalls, pure and unit-tested as tables: a due date from a service date and
//! an interval (month ends and 29 February clamp to the month's last day), the due-date colour
//! (F200–F201, from the due date and the organisation's local "today" only), and the instants of
//! a schedule's sending days at the organisation's local sending time (DST-aware).
//!
//! A leaf: it names no other module of the crate.

use chrono::{DateTime, Days, Duration, LocalResult, Months, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Largest interval, in any unit, counted in days (50 years).
pub const MAX_INTERVAL_DAYS: i64 = 50 * 366;
/// Days before or after the due date a schedule may send on.
pub const MAX_OFFSET_DAYS: i32 = 366;
/// Most sending days in one schedule.
pub const MAX_SCHEDULE_STEPS: usize = 10;
/// Within this many days (today included) a due date is yellow; later it is black (F200).
pub const YELLOW_DAYS: i64 = 30;
/// A step closer than this to now is too late to plan: its send job may already have run.
pub const MIN_LEAD_SECONDS: i64 = 60;

/// The unit of a rule's interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalUnit {
    /// Days.
    Days,
    /// Weeks (7 days).
    Weeks,
    /// Calendar months (the day of month is kept, clamped to the month's last day).
    Months,
    /// Calendar years (29 February → 28 February in a common year).
    Years,
}

impl IntervalUnit {
    /// Stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntervalUnit::Days => "days",
            IntervalUnit::Weeks => "weeks",
            IntervalUnit::Months => "months",
            IntervalUnit::Years => "years",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "days" => Some(IntervalUnit::Days),
            "weeks" => Some(IntervalUnit::Weeks),
            "months" => Some(IntervalUnit::Months),
            "years" => Some(IntervalUnit::Years),
            _ => None,
        }
    }
}

/// How long after a service the next one falls due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// How many units (at least 1).
    pub count: i64,
    /// Which unit.
    pub unit: IntervalUnit,
}

impl Interval {
    /// The fewest days this interval can last (a month is at least 28 days, a year 365).
    pub fn min_days(self) -> i64 {
        match self.unit {
            IntervalUnit::Days => self.count,
            IntervalUnit::Weeks => self.count.saturating_mul(7),
            IntervalUnit::Months => self.count.saturating_mul(28),
            IntervalUnit::Years => self.count.saturating_mul(365),
        }
    }

    /// The most days this interval can last.
    pub fn max_days(self) -> i64 {
        match self.unit {
            IntervalUnit::Days => self.count,
            IntervalUnit::Weeks => self.count.saturating_mul(7),
            IntervalUnit::Months => self.count.saturating_mul(31),
            IntervalUnit::Years => self.count.saturating_mul(366),
        }
    }

    /// Why the interval is unusable, if it is: zero or negative, or longer than 50 years.
    pub fn problem(self) -> Option<&'static str> {
        if self.count <= 0 {
            Some("the interval must be at least 1 (zero or negative intervals never fall due)")
        } else if self.max_days() > MAX_INTERVAL_DAYS {
            Some("the interval must be at most 50 years")
        } else {
            None
        }
    }

    /// `from` plus this interval; `None` past the calendar's end. Months and years keep the
    /// day of month, clamped to the month's last day (31 January + 1 month = 28/29 February;
    /// 29 February + 1 year = 28 February).
    pub fn after(self, from: NaiveDate) -> Option<NaiveDate> {
        let n = u64::try_from(self.count).ok()?;
        match self.unit {
            IntervalUnit::Days => from.checked_add_days(Days::new(n)),
            IntervalUnit::Weeks => from.checked_add_days(Days::new(n.checked_mul(7)?)),
            IntervalUnit::Months => from.checked_add_months(Months::new(u32::try_from(n).ok()?)),
            IntervalUnit::Years => {
                from.checked_add_months(Months::new(u32::try_from(n.checked_mul(12)?).ok()?))
            }
        }
    }
}

/// Why a schedule (offsets in days relative to the due date) is unusable for `interval`, if it
/// is: empty, too long, out of range, repeated, or sending on or before the day the service
/// was done (an offset of −interval or earlier: a reminder planned from a record would always
/// lie in the past).
pub fn schedule_problem(offsets: &[i32], interval: Interval) -> Option<String> {
    if offsets.is_empty() {
        return Some("the schedule needs at least one sending day".to_owned());
    }
    if offsets.len() > MAX_SCHEDULE_STEPS {
        return Some(format!(
            "the schedule has at most {MAX_SCHEDULE_STEPS} sending days"
        ));
    }
    for (i, &o) in offsets.iter().enumerate() {
        if o.abs() > MAX_OFFSET_DAYS {
            return Some(format!(
                "offset {o} is out of range (−{MAX_OFFSET_DAYS} to {MAX_OFFSET_DAYS} days)"
            ));
        }
        if offsets[..i].contains(&o) {
            return Some(format!("offset {o} appears twice"));
        }
        if -i64::from(o) >= interval.min_days() {
            return Some(format!(
                "offset {o} would send on or before the day the service was done \
                 (the interval is {} {}), so always in the past",
                interval.count,
                interval.unit.as_str()
            ));
        }
    }
    None
}

/// The colour of a due date (F200–F201).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    /// Due in 31 days or more.
    Black,
    /// Due today or within the next 30 days.
    Yellow,
    /// Overdue: the due date has passed.
    Red,
}

impl Colour {
    /// Stored name (the list filter).
    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Black => "black",
            Colour::Yellow => "yellow",
            Colour::Red => "red",
        }
    }

    /// The due dates of this colour on local day `today`, as an inclusive range.
    pub fn due_range(self, today: NaiveDate) -> (Option<NaiveDate>, Option<NaiveDate>) {
        match self {
            Colour::Red => (None, today.pred_opt()),
            Colour::Yellow => (Some(today), today.checked_add_days(Days::new(30))),
            Colour::Black => (today.checked_add_days(Days::new(31)), None),
        }
    }
}

/// The colour of `due_on` on local day `today`: red before today, yellow up to 30 days ahead,
/// black from 31 days on. Depends on nothing else (not on sending).
pub fn colour(due_on: NaiveDate, today: NaiveDate) -> Colour {
    let days = (due_on - today).num_days();
    if days < 0 {
        Colour::Red
    } else if days <= YELLOW_DAYS {
        Colour::Yellow
    } else {
        Colour::Black
    }
}

/// Local day of `now` in `tz`.
pub fn local_day(tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// The instant `day` at `time` in `tz`: a time the clocks skip moves to the end of the gap, a
/// repeated one is its earlier instant.
pub fn local_instant(tz: Tz, day: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let mut local = day.and_time(time);
    for _ in 0..(24 * 60) {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                return Some(t.with_timezone(&Utc));
            }
            LocalResult::None => local += Duration::minutes(1),
        }
    }
    None
}

/// The start of `day` in `tz` (local midnight, or the end of a gap at midnight).
pub fn day_start(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    local_instant(tz, day, NaiveTime::MIN).unwrap_or_else(|| day.and_time(NaiveTime::MIN).and_utc())
}

/// One planned sending of a rule's recall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedStep {
    /// Days relative to the due date.
    pub offset_days: i32,
    /// When it goes.
    pub send_at: DateTime<Utc>,
}

/// The sending instants of `offsets` around `due_on`, at `time` local in `tz`, that are still
/// ahead of `now` by at least [`MIN_LEAD_SECONDS`] (a step already past is not sent late: the
/// next one, or the colour in the views, carries the news).
pub fn plan_steps(
    due_on: NaiveDate,
    offsets: &[i32],
    tz: Tz,
    time: NaiveTime,
    now: DateTime<Utc>,
) -> Vec<PlannedStep> {
    let earliest = now + Duration::seconds(MIN_LEAD_SECONDS);
    let mut steps: Vec<PlannedStep> = offsets
        .iter()
        .filter_map(|&o| {
            let day = if o >= 0 {
                due_on.checked_add_days(Days::new(u64::from(o.unsigned_abs())))
            } else {
                due_on.checked_sub_days(Days::new(u64::from(o.unsigned_abs())))
            }?;
            let send_at = local_instant(tz, day, time)?;
            (send_at >= earliest).then_some(PlannedStep {
                offset_days: o,
                send_at,
            })
        })
        .collect();
    steps.sort_by_key(|s| s.send_at);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn iv(count: i64, unit: IntervalUnit) -> Interval {
        Interval { count, unit }
    }

    #[test]
    fn due_dates_clamp_month_ends_and_leap_days() {
        use IntervalUnit::*;
        let table = [
            ("2030-01-15", iv(365, Days), "2031-01-15"),
            ("2032-01-15", iv(365, Days), "2033-01-14"), // 2032 is a leap year
            ("2030-03-01", iv(3, Weeks), "2030-03-22"),
            ("2030-01-31", iv(1, Months), "2030-02-28"),
            ("2032-01-31", iv(1, Months), "2032-02-29"),
            ("2030-03-31", iv(1, Months), "2030-04-30"),
            ("2030-08-31", iv(6, Months), "2031-02-28"),
            ("2032-02-29", iv(1, Years), "2033-02-28"),
            ("2032-02-29", iv(4, Years), "2036-02-29"),
            ("2031-02-28", iv(1, Years), "2032-02-28"),
            ("2030-12-31", iv(12, Months), "2031-12-31"),
        ];
        for (from, interval, due) in table {
            assert_eq!(
                interval.after(d(from)),
                Some(d(due)),
                "{from} + {interval:?}"
            );
        }
    }

    #[test]
    fn bad_intervals_and_schedules_are_named() {
        use IntervalUnit::*;
        assert!(iv(0, Days).problem().is_some());
        assert!(iv(-3, Weeks).problem().is_some());
        assert!(iv(51, Years).problem().is_some());
        assert!(iv(50, Years).problem().is_none());
        assert!(iv(1, Days).problem().is_none());
        let year = iv(1, Years);
        assert_eq!(schedule_problem(&[-14, 0, 7], year), None);
        assert!(schedule_problem(&[], year).is_some());
        assert!(schedule_problem(&[0, 0], year).unwrap().contains("twice"));
        assert!(schedule_problem(&[400], year).unwrap().contains("range"));
        // A 3-week booster reminded 21 days before its due date would go on the day of the
        // first shot: always in the past.
        assert!(
            schedule_problem(&[-21], iv(3, Weeks))
                .unwrap()
                .contains("past")
        );
        assert_eq!(schedule_problem(&[-20], iv(3, Weeks)), None);
        // A month is at least 28 days.
        assert!(schedule_problem(&[-28], iv(1, Months)).is_some());
        assert_eq!(schedule_problem(&[-27], iv(1, Months)), None);
    }

    #[test]
    fn colours_change_at_thirty_and_thirty_one_days() {
        let today = d("2030-03-04");
        let table = [
            ("2030-03-03", Colour::Red),
            ("2029-01-01", Colour::Red),
            ("2030-03-04", Colour::Yellow),
            ("2030-04-03", Colour::Yellow), // 30 days ahead
            ("2030-04-04", Colour::Black),  // 31 days ahead
            ("2031-01-01", Colour::Black),
        ];
        for (due, c) in table {
            assert_eq!(colour(d(due), today), c, "{due}");
            let (from, to) = c.due_range(today);
            assert!(from.is_none_or(|f| f <= d(due)) && to.is_none_or(|t| d(due) <= t));
        }
    }

    #[test]
    fn the_colour_follows_the_local_day_not_utc() {
        let tz: Tz = "Europe/Amsterdam".parse().unwrap();
        let due = d("2030-04-04");
        // 22:59:59 UTC on 4 March is 23:59:59 in Amsterdam: still 4 March, due in 31 days.
        let before = utc("2030-03-04T22:59:59Z");
        assert_eq!(colour(due, local_day(tz, before)), Colour::Black);
        // One second later it is local midnight, 5 March: 30 days, yellow (UTC is still 4 March).
        let after = utc("2030-03-04T23:00:00Z");
        assert_eq!(colour(due, local_day(tz, after)), Colour::Yellow);
        assert_eq!(colour(due, local_day(chrono_tz::UTC, after)), Colour::Black);
    }

    #[test]
    fn steps_go_at_the_local_time_across_dst() {
        let tz: Tz = "Europe/Amsterdam".parse().unwrap();
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let now = utc("2030-03-01T00:00:00Z");
        // Due Monday 1 April 2030; the clocks go forward on Sunday 31 March.
        let steps = plan_steps(d("2030-04-01"), &[7, -2, 0, -1], tz, nine, now);
        let at: Vec<_> = steps.iter().map(|s| (s.offset_days, s.send_at)).collect();
        assert_eq!(
            at,
            [
                (-2, utc("2030-03-30T08:00:00Z")), // winter time, UTC+1
                (-1, utc("2030-03-31T07:00:00Z")), // summer time, UTC+2
                (0, utc("2030-04-01T07:00:00Z")),
                (7, utc("2030-04-08T07:00:00Z")),
            ]
        );
        // A sending time inside the gap (02:30 on 31 March) moves to its end.
        let half_past_two = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        assert_eq!(
            plan_steps(d("2030-03-31"), &[0], tz, half_past_two, now)[0].send_at,
            utc("2030-03-31T01:00:00Z")
        );
        // Fall back (27 October): 02:30 happens twice; the earlier one is taken.
        assert_eq!(
            plan_steps(d("2030-10-27"), &[0], tz, half_past_two, now)[0].send_at,
            utc("2030-10-27T00:30:00Z")
        );
    }

    #[test]
    fn past_steps_are_not_planned() {
        let tz = chrono_tz::UTC;
        let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap();
        let now = utc("2030-03-04T09:00:00Z");
        let steps = plan_steps(d("2030-03-05"), &[-2, -1, 0], tz, nine, now);
        let offsets: Vec<i32> = steps.iter().map(|s| s.offset_days).collect();
        // −1 is today at 09:00 = now: too late; −2 is yesterday.
        assert_eq!(offsets, [0]);
        assert_eq!(
            day_start("Europe/Amsterdam".parse().unwrap(), d("2030-03-05")),
            utc("2030-03-04T23:00:00Z")
        );
    }
}
