//! Staff login throttling: password guessing is slowed per source, per account and source, per
//! account, and per device cookie (OWASP's "device cookies" scheme).
//!
//! Each key has a bucket of failures (a burst, refilled one per period). An attempt takes one cell
//! from each of its keys *before* its password is checked, so concurrent attempts cannot all pass;
//! a successful login (or a check refused because the server is busy) gives its cells back, so a
//! clinic behind one NAT is never slowed by its own logins. An attempt that finds a bucket empty
//! gets 429 with the wait until the next cell, without a password check (no Argon2 work for an
//! attacker).
//!
//! Which keys an attempt uses depends on the client:
//! - **Trusted** (a valid device cookie for this account, see `device.rs`): only that cookie's
//!   bucket. Guessing from elsewhere cannot lock the real user out of a browser they logged in
//!   from before; a stolen cookie is limited by its own bucket.
//! - **Untrusted**: its source across accounts, the (account, source) pair, and the account as a
//!   whole. The pair's burst is half the account's, so one source alone cannot lock an account
//!   for new devices; several sources can (the accepted trade-off: new devices wait, known
//!   devices do not).
//!
//! A source is an IPv4 address, or an IPv6 /64 (one subscriber's prefix), IPv4-mapped IPv6 being
//! IPv4. Time is the clinic's injected clock. In memory; a restart resets it.
//!
//! Invariant: e-mail addresses, IPs and cookie nonces are limiter keys only, never logged.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A failure budget: `burst` at once, one back per `period`.
#[derive(Clone, Copy, Debug)]
struct Limit {
    burst: u32,
    period: Duration,
}

/// Failed logins one source may make across accounts.
const SOURCE: Limit = Limit {
    burst: 20,
    period: Duration::from_secs(30),
};
/// Failed logins one untrusted source may make on one account.
const ACCOUNT_SOURCE: Limit = Limit {
    burst: 5,
    period: Duration::from_secs(60),
};
/// Failed logins an account may get from untrusted clients altogether.
const ACCOUNT: Limit = Limit {
    burst: 10,
    period: Duration::from_secs(60),
};
/// Failed logins with one device cookie.
const DEVICE: Limit = Limit {
    burst: 5,
    period: Duration::from_secs(60),
};
/// Keys kept per map before full (stale) buckets are pruned.
const PRUNE_AT: usize = 10_000;

/// A source address as a limiter key: [`crate::client_ip::source_key`] (IPv6 grouped by /64,
/// IPv4-mapped as IPv4).
pub(crate) type Source = IpAddr;

/// Who is trying to log in.
pub(crate) enum Client<'a> {
    /// No valid device cookie for the account.
    Untrusted { ip: Option<IpAddr>, email: &'a str },
    /// A valid device cookie for the account; its nonce.
    Device([u8; 16]),
}

#[derive(Clone, Copy)]
struct Bucket {
    /// Failures still allowed (fractional while refilling).
    cells: f64,
    at: DateTime<Utc>,
}

struct Buckets<K> {
    limit: Limit,
    map: HashMap<K, Bucket>,
    prune_at: usize,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(limit: Limit) -> Self {
        Self {
            limit,
            map: HashMap::new(),
            prune_at: PRUNE_AT,
        }
    }

    fn full(&self, now: DateTime<Utc>) -> Bucket {
        Bucket {
            cells: f64::from(self.limit.burst),
            at: now,
        }
    }

    /// `key`'s bucket refilled to `now`.
    fn current(&self, key: &K, now: DateTime<Utc>) -> Bucket {
        match self.map.get(key) {
            None => self.full(now),
            Some(b) => {
                let elapsed = (now - b.at).to_std().unwrap_or_default();
                let refill = elapsed.as_secs_f64() / self.limit.period.as_secs_f64();
                Bucket {
                    cells: (b.cells + refill).min(f64::from(self.limit.burst)),
                    at: now.max(b.at),
                }
            }
        }
    }

    /// Seconds until `key` has a cell, if it has none now.
    fn wait(&self, key: &K, now: DateTime<Utc>) -> Option<u64> {
        let b = self.current(key, now);
        (b.cells < 1.0).then(|| {
            let secs = (1.0 - b.cells) * self.limit.period.as_secs_f64();
            (secs.ceil() as u64).max(1)
        })
    }

    fn take(&mut self, key: &K, now: DateTime<Utc>) {
        self.prune(now);
        let mut b = self.current(key, now);
        b.cells -= 1.0;
        self.map.insert(key.clone(), b);
    }

    fn give_back(&mut self, key: &K, now: DateTime<Utc>) {
        let mut b = self.current(key, now);
        b.cells = (b.cells + 1.0).min(f64::from(self.limit.burst));
        if b.cells >= f64::from(self.limit.burst) {
            self.map.remove(key);
        } else {
            self.map.insert(key.clone(), b);
        }
    }

    /// Drops buckets that have refilled (they equal a fresh one); amortised by doubling the
    /// threshold while most keys are live.
    fn prune(&mut self, now: DateTime<Utc>) {
        if self.map.len() < self.prune_at {
            return;
        }
        let burst = f64::from(self.limit.burst);
        let period = self.limit.period.as_secs_f64();
        self.map.retain(|_, b| {
            let elapsed = (now - b.at).to_std().unwrap_or_default().as_secs_f64();
            b.cells + elapsed / period < burst
        });
        self.prune_at = (self.map.len() * 2).max(PRUNE_AT);
    }
}

/// The keys one attempt holds a cell of.
#[derive(Debug)]
enum Keys {
    Untrusted {
        source: Option<Source>,
        account: String,
    },
    Device([u8; 16]),
}

struct State {
    source: Buckets<Source>,
    account_source: Buckets<(String, Source)>,
    account: Buckets<String>,
    device: Buckets<[u8; 16]>,
}

impl State {
    /// Longest wait among `keys`' buckets, if any is empty.
    fn wait(&self, keys: &Keys, now: DateTime<Utc>) -> Option<u64> {
        match keys {
            Keys::Device(nonce) => self.device.wait(nonce, now),
            Keys::Untrusted { source, account } => {
                let by_source = source.and_then(|s| {
                    self.source
                        .wait(&s, now)
                        .max(self.account_source.wait(&(account.clone(), s), now))
                });
                by_source.max(self.account.wait(account, now))
            }
        }
    }

    fn take(&mut self, keys: &Keys, now: DateTime<Utc>) {
        match keys {
            Keys::Device(nonce) => self.device.take(nonce, now),
            Keys::Untrusted { source, account } => {
                if let Some(s) = source {
                    self.source.take(s, now);
                    self.account_source.take(&(account.clone(), *s), now);
                }
                self.account.take(account, now);
            }
        }
    }

    fn give_back(&mut self, keys: &Keys, now: DateTime<Utc>) {
        match keys {
            Keys::Device(nonce) => self.device.give_back(nonce, now),
            Keys::Untrusted { source, account } => {
                if let Some(s) = source {
                    self.source.give_back(s, now);
                    self.account_source.give_back(&(account.clone(), *s), now);
                }
                self.account.give_back(account, now);
            }
        }
    }
}

/// The login limiters (a field of the clinic's shared state).
pub(crate) struct LoginThrottle {
    state: Mutex<State>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                source: Buckets::new(SOURCE),
                account_source: Buckets::new(ACCOUNT_SOURCE),
                account: Buckets::new(ACCOUNT),
                device: Buckets::new(DEVICE),
            }),
        }
    }
}

/// A login attempt counted as a failure until [`Attempt::give_back`]: dropping it (a wrong
/// password, or the client going away mid-check) leaves the failure counted.
#[must_use]
pub(crate) struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: Keys,
}

impl Attempt<'_> {
    /// The attempt did not fail (the password was right, or it was never checked): its cells
    /// come back.
    pub(crate) fn give_back(self, now: DateTime<Utc>) {
        self.throttle.state().give_back(&self.keys, now);
    }
}

fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

impl LoginThrottle {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a failure cell from each of `client`'s buckets, or `Err(seconds to wait)` (taking
    /// none) when one of them is empty.
    pub(crate) fn reserve(
        &self,
        client: Client<'_>,
        now: DateTime<Utc>,
    ) -> Result<Attempt<'_>, u64> {
        let keys = match client {
            Client::Device(nonce) => Keys::Device(nonce),
            Client::Untrusted { ip, email } => Keys::Untrusted {
                source: ip.map(crate::client_ip::source_key),
                account: account_key(email),
            },
        };
        let mut state = self.state();
        if let Some(wait) = state.wait(&keys, now) {
            return Err(wait);
        }
        state.take(&keys, now);
        Ok(Attempt {
            throttle: self,
            keys,
        })
    }
}

/// One keyed budget for other endpoints (forgot-password requests, test mails): `burst` at once,
/// one more per `period`, per key; every request takes a cell (success or not). In memory.
pub(crate) struct KeyedLimit<K> {
    buckets: Mutex<Buckets<K>>,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    /// `burst` requests at once, one more per `period`.
    pub(crate) fn new(burst: u32, period: Duration) -> Self {
        Self {
            buckets: Mutex::new(Buckets::new(Limit { burst, period })),
        }
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, Buckets<K>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds to wait if `key` has no cell now (taking nothing).
    pub(crate) fn wait(&self, key: &K, now: DateTime<Utc>) -> Option<u64> {
        self.buckets().wait(key, now)
    }

    /// Takes a cell of `key` (it may go below zero: callers check [`Self::wait`] first).
    pub(crate) fn take(&self, key: &K, now: DateTime<Utc>) {
        self.buckets().take(key, now);
    }

    /// Takes a cell of `key`, or `Err(seconds to wait)` taking none.
    pub(crate) fn try_take(&self, key: &K, now: DateTime<Utc>) -> Result<(), u64> {
        let mut b = self.buckets();
        if let Some(wait) = b.wait(key, now) {
            return Err(wait);
        }
        b.take(key, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time")
    }

    fn untrusted<'a>(ip: [u8; 4], email: &'a str) -> Client<'a> {
        Client::Untrusted {
            ip: Some(IpAddr::from(ip)),
            email,
        }
    }

    /// `n` failed attempts (each reserved and dropped) must all be allowed.
    fn fail(t: &LoginThrottle, n: u32, client: impl Fn() -> Client<'static>, now: DateTime<Utc>) {
        for i in 0..n {
            let attempt = t.reserve(client(), now);
            assert!(attempt.is_ok(), "attempt {i}");
        }
    }

    #[test]
    fn a_keyed_limit_refills_one_cell_per_period() {
        let l = KeyedLimit::new(2, Duration::from_secs(60));
        let now = t0();
        assert!(l.try_take(&"a", now).is_ok());
        assert!(l.try_take(&"a", now).is_ok());
        assert_eq!(l.try_take(&"a", now), Err(60));
        assert!(
            l.try_take(&"b", now).is_ok(),
            "another key has its own cells"
        );
        assert_eq!(
            l.try_take(&"a", now + chrono::Duration::seconds(30)),
            Err(30)
        );
        assert!(
            l.try_take(&"a", now + chrono::Duration::seconds(60))
                .is_ok()
        );
    }

    #[test]
    fn an_account_is_blocked_for_untrusted_clients_after_failures_from_several_sources() {
        let t = LoginThrottle::default();
        let now = t0();
        for i in 0..ACCOUNT.burst {
            let ip = [192, 0, 2, i as u8];
            let attempt = t.reserve(untrusted(ip, "Doc@Clinic.test "), now);
            assert!(attempt.is_ok(), "attempt {i}");
        }
        let wait = t
            .reserve(untrusted([198, 51, 100, 1], "doc@clinic.test"), now)
            .err()
            .expect("blocked");
        assert_eq!(wait, 60);
        // Another account is not affected; a device cookie is not either.
        assert!(
            t.reserve(untrusted([198, 51, 100, 1], "other@clinic.test"), now)
                .is_ok()
        );
        assert!(t.reserve(Client::Device([7; 16]), now).is_ok());
        // One cell comes back per period.
        let later = now + Duration::from_secs(60);
        assert!(
            t.reserve(untrusted([198, 51, 100, 1], "doc@clinic.test"), later)
                .is_ok()
        );
        assert!(
            t.reserve(untrusted([198, 51, 100, 1], "doc@clinic.test"), later)
                .is_err()
        );
    }

    #[test]
    fn one_source_alone_cannot_lock_an_account_for_other_sources() {
        let t = LoginThrottle::default();
        let mut now = t0();
        fail(
            &t,
            ACCOUNT_SOURCE.burst,
            || untrusted([203, 0, 113, 1], "doc@clinic.test"),
            now,
        );
        assert!(
            t.reserve(untrusted([203, 0, 113, 1], "doc@clinic.test"), now)
                .is_err()
        );
        // The attacker keeps trying every 4 s; the user elsewhere still has cells.
        for _ in 0..30 {
            now += Duration::from_secs(4);
            let _ = t.reserve(untrusted([203, 0, 113, 1], "doc@clinic.test"), now);
            let user = t.reserve(untrusted([198, 51, 100, 7], "doc@clinic.test"), now);
            user.expect("the user's source is not blocked")
                .give_back(now);
        }
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_across_accounts() {
        let t = LoginThrottle::default();
        let now = t0();
        for i in 0..SOURCE.burst {
            let email = format!("user{i}@clinic.test");
            assert!(t.reserve(untrusted([203, 0, 113, 9], &email), now).is_ok());
        }
        assert!(
            t.reserve(untrusted([203, 0, 113, 9], "fresh@clinic.test"), now)
                .is_err()
        );
        assert!(
            t.reserve(untrusted([203, 0, 113, 10], "fresh@clinic.test"), now)
                .is_ok()
        );
        // Without a known address only the account counts.
        let no_ip = Client::Untrusted {
            ip: None,
            email: "fresh@clinic.test",
        };
        assert!(t.reserve(no_ip, now).is_ok());
    }

    #[test]
    fn ipv6_sources_are_grouped_by_prefix_and_mapped_ipv4_is_ipv4() {
        let t = LoginThrottle::default();
        let now = t0();
        for i in 0..SOURCE.burst {
            let ip: IpAddr = format!("2001:db8:1:2:{i:x}::{i:x}").parse().expect("ip");
            let email = format!("user{i}@clinic.test");
            let client = Client::Untrusted {
                ip: Some(ip),
                email: &email,
            };
            assert!(t.reserve(client, now).is_ok(), "attempt {i}");
        }
        let same_prefix = Client::Untrusted {
            ip: Some("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().expect("ip")),
            email: "fresh@clinic.test",
        };
        assert!(t.reserve(same_prefix, now).is_err());
        let next_prefix = Client::Untrusted {
            ip: Some("2001:db8:1:3::1".parse().expect("ip")),
            email: "fresh@clinic.test",
        };
        assert!(t.reserve(next_prefix, now).is_ok());

        let mapped: IpAddr = "::ffff:203.0.113.5".parse().expect("ip");
        assert_eq!(
            crate::client_ip::source_key(mapped),
            crate::client_ip::source_key(IpAddr::from([203, 0, 113, 5]))
        );
    }

    #[test]
    fn concurrent_attempts_cannot_all_pass_and_successes_give_their_cells_back() {
        let t = LoginThrottle::default();
        let now = t0();
        // Reserved at once, none settled yet: only the burst passes.
        let held: Vec<_> = (0..ACCOUNT_SOURCE.burst + 3)
            .filter_map(|_| {
                t.reserve(untrusted([192, 0, 2, 1], "doc@clinic.test"), now)
                    .ok()
            })
            .collect();
        assert_eq!(held.len(), ACCOUNT_SOURCE.burst as usize);
        // They all succeed: the cells come back, and a NAT full of staff logs in all day.
        for a in held {
            a.give_back(now);
        }
        for _ in 0..100 {
            let a = t.reserve(untrusted([192, 0, 2, 1], "doc@clinic.test"), now);
            a.expect("not throttled").give_back(now);
        }
    }

    #[test]
    fn a_device_cookie_has_its_own_limit() {
        let t = LoginThrottle::default();
        let now = t0();
        fail(&t, DEVICE.burst, || Client::Device([1; 16]), now);
        assert_eq!(t.reserve(Client::Device([1; 16]), now).err(), Some(60));
        assert!(t.reserve(Client::Device([2; 16]), now).is_ok());
        assert!(
            t.reserve(untrusted([192, 0, 2, 1], "doc@clinic.test"), now)
                .is_ok()
        );
    }

    #[test]
    fn refilled_buckets_are_pruned() {
        let mut b: Buckets<u32> = Buckets::new(ACCOUNT);
        let now = t0();
        for k in 0..PRUNE_AT as u32 {
            b.take(&k, now);
        }
        // Still live: nothing pruned, and the threshold doubles.
        b.take(&u32::MAX, now);
        assert_eq!(b.map.len(), PRUNE_AT + 1);
        assert_eq!(b.prune_at, 2 * PRUNE_AT);
        // Once refilled they go.
        b.prune_at = 0;
        b.take(&0, now + Duration::from_secs(60));
        assert_eq!(b.map.len(), 1);
    }
}
