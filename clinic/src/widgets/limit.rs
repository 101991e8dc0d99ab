//! Rate limits of walk-in entries, so a link raid cannot flood a waiting room: one keyed
//! limiter per source IP (every attempt counts) and one per widget (every visit that would be
//! created counts). In-memory (governor); a restart resets them.
//!
//! Invariant: IP addresses are only held in memory as limiter keys, never logged.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::ids::WidgetId;

/// Attempts one source IP may make at once, and how fast they come back.
const IP_BURST: u32 = 10;
const IP_PERIOD: Duration = Duration::from_secs(60);
/// Visits one widget may create at once, and how fast they come back.
const WIDGET_BURST: u32 = 30;
const WIDGET_PERIOD: Duration = Duration::from_secs(4);
/// Keys kept before stale ones are pruned.
const PRUNE_AT: usize = 10_000;

/// The walk-in limiters.
pub(crate) struct Limits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_widget: DefaultKeyedRateLimiter<WidgetId>,
}

fn quota(burst: u32, period: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_ip: RateLimiter::keyed(quota(IP_BURST, IP_PERIOD)),
            per_widget: RateLimiter::keyed(quota(WIDGET_BURST, WIDGET_PERIOD)),
        }
    }
}

impl Limits {
    /// Counts an attempt from `ip`; `Err(seconds to wait)` when over the limit.
    pub(crate) fn check_ip(&self, ip: IpAddr) -> Result<(), u64> {
        if self.per_ip.len() > PRUNE_AT {
            self.per_ip.retain_recent();
        }
        self.per_ip.check_key(&ip).map_err(wait_secs)
    }

    /// Counts a visit through `widget`; `Err(seconds to wait)` when over the limit.
    pub(crate) fn check_widget(&self, widget: WidgetId) -> Result<(), u64> {
        if self.per_widget.len() > PRUNE_AT {
            self.per_widget.retain_recent();
        }
        self.per_widget.check_key(&widget).map_err(wait_secs)
    }
}

fn wait_secs(not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> u64 {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    wait.as_secs().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_widget_limit_is_per_key() {
        let limits = Limits::default();
        let a = WidgetId::new();
        let b = WidgetId::new();
        for _ in 0..WIDGET_BURST {
            assert!(limits.check_widget(a).is_ok());
        }
        let wait = limits.check_widget(a).expect_err("over the burst");
        assert!((1..=4).contains(&wait), "{wait}");
        assert!(
            limits.check_widget(b).is_ok(),
            "another widget is unaffected"
        );
    }

    #[test]
    fn per_ip_limit() {
        let limits = Limits::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..IP_BURST {
            assert!(limits.check_ip(ip).is_ok());
        }
        assert!(limits.check_ip(ip).is_err());
        assert!(limits.check_ip("192.0.2.8".parse().unwrap()).is_ok());
    }
}
