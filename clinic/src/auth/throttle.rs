//! Staff login throttling: password guessing is slowed per source address and per account.
//!
//! Only failed attempts count (a clinic behind one NAT logs in many times a day). Each key has a
//! governor bucket of failures; when a failure finds it empty (the burst is used up), the key is blocked until the
//! bucket has a cell again, and attempts meanwhile get 429 without a password check (no argon2
//! work for an attacker). The per-account bucket is larger and refills slowly, so an attacker
//! rotating addresses is slowed down too, while a user locked out by someone else's guessing
//! gets in again within minutes. In memory; a restart resets it.
//!
//! Invariant: e-mail addresses and IPs are limiter keys only, never logged.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Failed logins one address may make at once, and how fast they come back.
const IP_FAILURES: u32 = 20;
const IP_PERIOD: Duration = Duration::from_secs(30);
/// Failed logins one account may get at once, and how fast they come back.
const ACCOUNT_FAILURES: u32 = 10;
const ACCOUNT_PERIOD: Duration = Duration::from_secs(60);
/// Keys kept before stale ones are pruned.
const PRUNE_AT: usize = 10_000;

struct Keyed<K: Hash + Eq + Clone> {
    failures: DefaultKeyedRateLimiter<K>,
    blocked: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(burst: u32, period: Duration) -> Self {
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Self {
            failures: RateLimiter::keyed(quota),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `key` may try again, if it is blocked now.
    fn blocked_for(&self, key: &K, now: Instant) -> Option<u64> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        match blocked.get(key) {
            Some(until) if *until > now => Some(until.duration_since(now).as_secs().max(1)),
            Some(_) => {
                blocked.remove(key);
                None
            }
            None => None,
        }
    }

    /// Counts a failure of `key`; blocks it when its bucket is empty.
    fn failed(&self, key: &K, now: Instant) {
        if self.failures.len() > PRUNE_AT {
            self.failures.retain_recent();
        }
        if let Err(not_until) = self.failures.check_key(key) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
            if blocked.len() > PRUNE_AT {
                blocked.retain(|_, until| *until > now);
            }
            blocked.insert(key.clone(), now + wait);
        }
    }
}

/// The login limiters (a field of the clinic's shared state).
pub(crate) struct LoginThrottle {
    per_ip: Keyed<IpAddr>,
    per_account: Keyed<String>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            per_ip: Keyed::new(IP_FAILURES, IP_PERIOD),
            per_account: Keyed::new(ACCOUNT_FAILURES, ACCOUNT_PERIOD),
        }
    }
}

fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

impl LoginThrottle {
    /// `Err(seconds to wait)` when this source or account may not try now.
    pub(crate) fn check(&self, ip: Option<IpAddr>, email: &str) -> Result<(), u64> {
        let now = Instant::now();
        let by_ip = ip.and_then(|ip| self.per_ip.blocked_for(&ip, now));
        let by_account = self.per_account.blocked_for(&account_key(email), now);
        match by_ip.max(by_account) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub(crate) fn failed(&self, ip: Option<IpAddr>, email: &str) {
        let now = Instant::now();
        if let Some(ip) = ip {
            self.per_ip.failed(&ip, now);
        }
        self.per_account.failed(&account_key(email), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_blocked_after_its_failures_whatever_the_address() {
        let t = LoginThrottle::default();
        // The burst is allowed; the failure beyond it blocks.
        for i in 0..=ACCOUNT_FAILURES {
            let ip = IpAddr::from([192, 0, 2, i as u8]);
            assert!(t.check(Some(ip), "Doc@Clinic.test").is_ok());
            t.failed(Some(ip), "doc@clinic.test ");
        }
        let wait = t
            .check(Some(IpAddr::from([198, 51, 100, 1])), "doc@clinic.test")
            .unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        // Another account is not affected.
        assert!(t.check(None, "other@clinic.test").is_ok());
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_across_accounts() {
        let t = LoginThrottle::default();
        let ip = IpAddr::from([203, 0, 113, 9]);
        for i in 0..=IP_FAILURES {
            assert!(t.check(Some(ip), &format!("user{i}@clinic.test")).is_ok());
            t.failed(Some(ip), &format!("user{i}@clinic.test"));
        }
        assert!(t.check(Some(ip), "fresh@clinic.test").is_err());
        assert!(
            t.check(Some(IpAddr::from([203, 0, 113, 10])), "fresh@clinic.test")
                .is_ok()
        );
        // Without a known address only the account counts.
        assert!(t.check(None, "fresh@clinic.test").is_ok());
    }
}
