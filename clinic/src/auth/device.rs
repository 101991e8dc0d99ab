//! Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): after a
//! successful login the browser gets a long-lived cookie, encrypted and authenticated with the
//! cookie key (the `PrivateCookieJar`), that names the account and a random nonce. A later login
//! for that account presenting it is a *trusted* client: it is throttled by that cookie's own
//! failures only, so guessing from elsewhere does not lock the user out of a browser they used
//! before (see `throttle.rs`).
//!
//! One cookie holds up to [`MAX_ENTRIES`] accounts (a shared clinic workstation); each login
//! replaces its account's entry with a fresh nonce. Entries older than [`MAX_AGE_DAYS`] are
//! ignored. The cookie is `cr_device`, or `__Host-cr_device` (with `Secure`) on https;
//! `HttpOnly`, `SameSite=Strict`, `Path=/`.
//!
//! Invariant: the cookie carries no e-mail or name, only the staff id and the nonce; nonces are
//! limiter keys only, never logged.

use axum_extra::extract::PrivateCookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::Clinic;
use crate::ids::StaffId;

/// The device cookie's name on http.
pub const DEVICE_COOKIE: &str = "cr_device";
/// The device cookie's name on https.
pub const DEVICE_COOKIE_HTTPS: &str = "__Host-cr_device";
/// Accounts remembered per browser.
pub const MAX_ENTRIES: usize = 5;
/// Lifetime of a device entry.
pub const MAX_AGE_DAYS: i64 = 180;

/// One account this browser has logged in to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeviceEntry {
    pub(crate) staff_id: StaffId,
    pub(crate) nonce: [u8; 16],
    pub(crate) issued: DateTime<Utc>,
}

fn cookie_name(clinic: &Clinic) -> &'static str {
    if clinic.config().is_https() {
        DEVICE_COOKIE_HTTPS
    } else {
        DEVICE_COOKIE
    }
}

/// The live entries of the request's device cookie (none if absent, forged or expired).
pub(crate) fn read(
    jar: &PrivateCookieJar,
    clinic: &Clinic,
    now: DateTime<Utc>,
) -> Vec<DeviceEntry> {
    match jar.get(cookie_name(clinic)) {
        Some(cookie) => parse(cookie.value(), now),
        None => Vec::new(),
    }
}

/// The cookie to set after `staff_id` logged in: its fresh entry first, then the other live ones.
pub(crate) fn issue(
    clinic: &Clinic,
    mut entries: Vec<DeviceEntry>,
    staff_id: StaffId,
    now: DateTime<Utc>,
) -> Cookie<'static> {
    use rand::RngExt;
    let mut nonce = [0u8; 16];
    rand::rng().fill(&mut nonce[..]);
    entries.retain(|e| e.staff_id != staff_id);
    entries.insert(
        0,
        DeviceEntry {
            staff_id,
            nonce,
            issued: now,
        },
    );
    entries.truncate(MAX_ENTRIES);
    Cookie::build((cookie_name(clinic), format(&entries)))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(clinic.config().is_https())
        .max_age(time::Duration::days(MAX_AGE_DAYS))
        .build()
}

/// `v1` then `,<staff uuid>.<nonce hex>.<issued unix seconds>` per entry.
fn format(entries: &[DeviceEntry]) -> String {
    let mut s = String::from("v1");
    for e in entries {
        s.push_str(&format!(
            ",{}.{}.{}",
            e.staff_id.0.simple(),
            hex::encode(e.nonce),
            e.issued.timestamp()
        ));
    }
    s
}

fn parse(value: &str, now: DateTime<Utc>) -> Vec<DeviceEntry> {
    let mut parts = value.split(',');
    if parts.next() != Some("v1") {
        return Vec::new();
    }
    parts
        .take(MAX_ENTRIES)
        .filter_map(|part| {
            let mut fields = part.split('.');
            let staff_id = StaffId(Uuid::parse_str(fields.next()?).ok()?);
            let mut nonce = [0u8; 16];
            hex::decode_to_slice(fields.next()?, &mut nonce).ok()?;
            let issued = DateTime::from_timestamp(fields.next()?.parse().ok()?, 0)?;
            if fields.next().is_some() || now - issued > Duration::days(MAX_AGE_DAYS) {
                return None;
            }
            Some(DeviceEntry {
                staff_id,
                nonce,
                issued,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_expire() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let entries = vec![
            DeviceEntry {
                staff_id: StaffId(Uuid::new_v4()),
                nonce: [3; 16],
                issued: now,
            },
            DeviceEntry {
                staff_id: StaffId(Uuid::new_v4()),
                nonce: [4; 16],
                issued: now - Duration::days(MAX_AGE_DAYS - 1),
            },
        ];
        let text = format(&entries);
        assert_eq!(parse(&text, now), entries);
        assert_eq!(parse(&text, now + Duration::days(2)), entries[..1]);
        for bad in ["", "v2,x", "v1,not-a-uuid.00.1", &text.replace("v1", "v0")] {
            assert!(parse(bad, now).is_empty(), "{bad}");
        }
    }
}
