//! Pure availability arithmetic: weekly ranges in a practitioner's IANA time zone, one-off ranges
//! as UTC instants, and the "available now" rule. No IO; time is an argument.
//!
//! Invariants: a weekly range is wall-clock time in its zone, so 09:00–10:00 in
//! `Europe/Amsterdam` is 08:00–09:00 UTC in winter and 07:00–08:00 UTC in summer. A local time in a
//! DST gap is moved forward to the first instant after the gap; an ambiguous local time (the
//! repeated hour in autumn) starts a range at its earlier instant and ends it at its later one, so a
//! range is never shortened by a transition. Ranges never cross midnight (end ≤ 24:00).

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;

/// Minutes in a day; a weekly range may end at 24:00.
pub const DAY_MINUTES: u16 = 24 * 60;

/// A recurring weekly range in local wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weekly {
    /// Day of the week.
    pub weekday: Weekday,
    /// Start, minutes since local midnight (0..1440).
    pub start_minute: u16,
    /// End, minutes since local midnight (start < end ≤ 1440).
    pub end_minute: u16,
}

/// A one-off range of instants, `[starts_at, ends_at)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Once {
    /// Start (inclusive).
    pub starts_at: DateTime<Utc>,
    /// End (exclusive).
    pub ends_at: DateTime<Utc>,
}

impl Once {
    /// Whether `now` lies in the range.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}

/// Which end of a range a local time is for (decides ambiguous times).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// Start of a range: the earlier instant of an ambiguous time.
    Start,
    /// End of a range: the later instant of an ambiguous time.
    End,
}

/// The instant of a local wall-clock time in `tz`, resolving gaps and folds as described above.
pub fn resolve_local(tz: Tz, local: NaiveDateTime, edge: Edge) -> DateTime<Utc> {
    let mut probe = local;
    // A DST gap is at most a few hours; step forward a minute at a time until we leave it.
    for _ in 0..(4 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(early, late) => {
                return match edge {
                    Edge::Start => early.with_timezone(&Utc),
                    Edge::End => late.with_timezone(&Utc),
                };
            }
            LocalResult::None => probe += Duration::minutes(1),
        }
    }
    // Unreachable for real zones; fall back to reading the wall clock as UTC.
    local.and_utc()
}

/// `date` at `minute` minutes after midnight (1440 = the next midnight).
pub fn local_at(date: NaiveDate, minute: u16) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(minute))
}

/// The instants of `range` on local `date` (which must fall on its weekday).
pub fn occurrence(tz: Tz, date: NaiveDate, range: &Weekly) -> Once {
    Once {
        starts_at: resolve_local(tz, local_at(date, range.start_minute), Edge::Start),
        ends_at: resolve_local(tz, local_at(date, range.end_minute), Edge::End),
    }
}

/// Whether `now` falls inside any weekly range, read in `tz`.
pub fn in_weekly(tz: Tz, now: DateTime<Utc>, ranges: &[Weekly]) -> bool {
    let today = now.with_timezone(&tz).date_naive();
    // Yesterday's ranges only matter when a transition stretched one past midnight; check both.
    [today - Duration::days(1), today].into_iter().any(|date| {
        ranges
            .iter()
            .filter(|r| r.weekday == date.weekday())
            .any(|r| occurrence(tz, date, r).contains(now))
    })
}

/// The practitioner's walk-in availability right now: switched on by hand, or inside a scheduled
/// one-off or weekly range.
pub fn available_now(
    now: DateTime<Utc>,
    tz: Tz,
    switch_on: bool,
    once: &[Once],
    weekly: &[Weekly],
) -> bool {
    switch_on || scheduled_now(now, tz, once, weekly)
}

/// Whether a scheduled range covers `now` (the switch aside).
pub fn scheduled_now(now: DateTime<Utc>, tz: Tz, once: &[Once], weekly: &[Weekly]) -> bool {
    once.iter().any(|r| r.contains(now)) || in_weekly(tz, now, weekly)
}

/// Parses `HH:MM` (00:00–24:00) into minutes since midnight.
pub fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    let total = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && total <= DAY_MINUTES).then_some(total)
}

/// Formats minutes since midnight as `HH:MM`.
pub fn format_hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// ISO weekday number (1 = Monday … 7 = Sunday).
pub fn weekday_number(day: Weekday) -> u8 {
    // number_from_monday is 1..=7, so the conversion cannot fail.
    u8::try_from(day.number_from_monday()).unwrap_or(1)
}

/// The weekday of an ISO number (1 = Monday … 7 = Sunday).
pub fn weekday_from_number(n: i32) -> Option<Weekday> {
    Some(match n {
        1 => Weekday::Mon,
        2 => Weekday::Tue,
        3 => Weekday::Wed,
        4 => Weekday::Thu,
        5 => Weekday::Fri,
        6 => Weekday::Sat,
        7 => Weekday::Sun,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("instant")
    }

    const AMS: Tz = chrono_tz::Europe::Amsterdam;

    #[test]
    fn weekly_range_follows_the_wall_clock_across_dst() {
        // 2030: DST starts Sunday 31 March, ends Sunday 27 October in Europe/Amsterdam.
        let sunday = Weekly {
            weekday: Weekday::Sun,
            start_minute: 9 * 60,
            end_minute: 10 * 60,
        };
        let winter = occurrence(AMS, "2030-03-24".parse().unwrap(), &sunday);
        assert_eq!(winter.starts_at, utc("2030-03-24T08:00:00Z"));
        let summer = occurrence(AMS, "2030-03-31".parse().unwrap(), &sunday);
        assert_eq!(summer.starts_at, utc("2030-03-31T07:00:00Z"));
        assert_eq!(summer.ends_at, utc("2030-03-31T08:00:00Z"));
        let back = occurrence(AMS, "2030-10-27".parse().unwrap(), &sunday);
        assert_eq!(back.starts_at, utc("2030-10-27T08:00:00Z"));
    }

    #[test]
    fn gap_moves_forward_and_fold_widens() {
        // 02:00–03:00 does not exist on 31 March 2030; 02:30 becomes 03:00 CEST = 01:00 UTC.
        let t = resolve_local(AMS, "2030-03-31T02:30:00".parse().unwrap(), Edge::Start);
        assert_eq!(t, utc("2030-03-31T01:00:00Z"));
        // 02:30 happens twice on 27 October 2030: 00:30 UTC (CEST) and 01:30 UTC (CET).
        let local = "2030-10-27T02:30:00".parse().unwrap();
        assert_eq!(
            resolve_local(AMS, local, Edge::Start),
            utc("2030-10-27T00:30:00Z")
        );
        assert_eq!(
            resolve_local(AMS, local, Edge::End),
            utc("2030-10-27T01:30:00Z")
        );
    }

    #[test]
    fn available_now_combines_switch_once_and_weekly() {
        let monday = Weekly {
            weekday: Weekday::Mon,
            start_minute: 9 * 60,
            end_minute: 10 * 60,
        };
        let in_range = utc("2030-03-04T08:30:00Z"); // Monday 09:30 CET
        let after = utc("2030-03-04T09:00:00Z"); // 10:00 CET, end exclusive
        assert!(available_now(in_range, AMS, false, &[], &[monday]));
        assert!(!available_now(after, AMS, false, &[], &[monday]));
        assert!(available_now(after, AMS, true, &[], &[monday]));
        let once = Once {
            starts_at: utc("2030-03-04T09:00:00Z"),
            ends_at: utc("2030-03-04T10:00:00Z"),
        };
        assert!(available_now(after, AMS, false, &[once], &[]));
        assert!(!available_now(once.ends_at, AMS, false, &[once], &[]));
    }

    #[test]
    fn range_until_midnight() {
        let late = Weekly {
            weekday: Weekday::Mon,
            start_minute: 23 * 60,
            end_minute: DAY_MINUTES,
        };
        assert!(in_weekly(AMS, utc("2030-03-04T22:59:00Z"), &[late]));
        assert!(!in_weekly(AMS, utc("2030-03-04T23:00:00Z"), &[late]));
    }

    #[test]
    fn hhmm_parsing() {
        assert_eq!(parse_hhmm("09:00"), Some(540));
        assert_eq!(parse_hhmm("24:00"), Some(1440));
        assert_eq!(parse_hhmm("24:01"), None);
        assert_eq!(parse_hhmm("9:00"), None);
        assert_eq!(parse_hhmm("09:60"), None);
        assert_eq!(parse_hhmm("xx:yy"), None);
        assert_eq!(format_hhmm(545), "09:05");
    }
}
