//! When an appointment starts: an instant (`starts_at`, RFC 3339) or a wall-clock time in the
//! organisation's time zone (`local_start`, `YYYY-MM-DDTHH:MM[:SS]`), checked against the clock.
//!
//! Rules: a local time that does not exist (the hour the clocks skip when summer time starts,
//! e.g. 02:30 on the last Sunday of March in Europe/Amsterdam) is refused, naming the first valid
//! time after the gap; an ambiguous local time (the hour repeated when summer time ends) is the
//! **earlier** of its two instants (still summer time), and the answer shows the offset chosen.
//! A start more than [`PAST_GRACE_MINUTES`] before now is refused as in the past.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::{ApiError, ApiResult};

/// How far before now a start may lie (a booking for "now" typed a little late).
pub(crate) const PAST_GRACE_MINUTES: i64 = 5;

/// Reads `local_start` as a wall-clock time (seconds optional, as `<input type=datetime-local>`
/// sends it).
pub(crate) fn parse_local(raw: &str) -> ApiResult<NaiveDateTime> {
    let raw = raw.trim();
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M"))
        .map_err(|_| ApiError::InvalidField {
            field: "local_start",
            message: "local_start must be a local date and time, YYYY-MM-DDTHH:MM".to_owned(),
        })
}

/// The instant of wall-clock time `local` in `tz` (see the module rules).
pub(crate) fn resolve_local(tz: Tz, local: NaiveDateTime) -> ApiResult<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _later) => Ok(earlier.with_timezone(&Utc)),
        LocalResult::None => {
            let mut probe = local;
            for _ in 0..(24 * 60) {
                probe += Duration::minutes(1);
                if !matches!(tz.from_local_datetime(&probe), LocalResult::None) {
                    break;
                }
            }
            Err(ApiError::InvalidField {
                field: "local_start",
                message: format!(
                    "{} does not exist in {}: the clocks go forward then; the first time after \
                     the gap is {}",
                    local.format("%Y-%m-%d %H:%M"),
                    tz.name(),
                    probe.format("%H:%M"),
                ),
            })
        }
    }
}

/// The first instant of local `day` in `tz` (midnight, or the end of a gap that swallows it).
pub(crate) fn day_start(tz: Tz, day: chrono::NaiveDate) -> DateTime<Utc> {
    let mut probe = day.and_time(chrono::NaiveTime::MIN);
    for _ in 0..(24 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
            LocalResult::None => probe += Duration::minutes(1),
        }
    }
    probe.and_utc()
}

/// `at` in `tz`, RFC 3339 with the zone's offset (`2030-03-04T10:00:00+01:00`).
pub(crate) fn local_string(tz: Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Exactly one of `starts_at` and `local_start`, resolved, whole seconds, and not in the past.
pub(crate) fn start(
    tz: Tz,
    starts_at: Option<DateTime<Utc>>,
    local_start: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<DateTime<Utc>> {
    let (field, at) = match (starts_at, local_start) {
        (Some(at), None) => ("starts_at", at),
        (None, Some(raw)) => ("local_start", resolve_local(tz, parse_local(raw)?)?),
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of starts_at (an instant) and local_start (a local time in \
                 the organisation's time zone)",
            ));
        }
    };
    // Sub-second precision means nothing for a booking and differs between backends.
    let at = at - Duration::nanoseconds(i64::from(at.timestamp_subsec_nanos()));
    if at < now - Duration::minutes(PAST_GRACE_MINUTES) {
        return Err(ApiError::InvalidField {
            field,
            message: format!(
                "the appointment would start in the past ({}, it is now {} in {}); choose a \
                 later time",
                local_string(tz, at),
                local_string(tz, now),
                tz.name()
            ),
        });
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ams() -> Tz {
        chrono_tz::Europe::Amsterdam
    }

    fn local(s: &str) -> NaiveDateTime {
        parse_local(s).unwrap()
    }

    #[test]
    fn spring_forward_gap_is_refused_with_the_next_valid_time() {
        // 2030-03-31: Amsterdam goes from 02:00 CET to 03:00 CEST.
        let err = resolve_local(ams(), local("2030-03-31T02:30")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("does not exist in Europe/Amsterdam"), "{msg}");
        assert!(msg.contains("03:00"), "{msg}");
        assert_eq!(
            resolve_local(ams(), local("2030-03-31T03:00")).unwrap(),
            "2030-03-31T01:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn fall_back_takes_the_earlier_instant() {
        // 2030-10-27: 02:00–03:00 happens twice (CEST, then CET).
        let at = resolve_local(ams(), local("2030-10-27T02:30:00")).unwrap();
        assert_eq!(at, "2030-10-27T00:30:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(local_string(ams(), at), "2030-10-27T02:30:00+02:00");
    }

    #[test]
    fn past_and_shape() {
        let now: DateTime<Utc> = "2030-03-04T09:00:00Z".parse().unwrap();
        assert!(start(ams(), Some(now - Duration::minutes(5)), None, now).is_ok());
        assert!(start(ams(), Some(now - Duration::minutes(6)), None, now).is_err());
        assert!(start(ams(), None, Some("2030-03-04"), now).is_err());
        assert!(start(ams(), Some(now), Some("2030-03-04T10:00"), now).is_err());
        assert!(start(ams(), None, None, now).is_err());
        assert_eq!(
            start(ams(), None, Some("2030-03-04T10:30"), now).unwrap(),
            "2030-03-04T09:30:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }
}
