//! Keyframe request throttling, one throttle per published track.
//!
//! Invariant: at most one keyframe request per [`KEYFRAME_REQUEST_INTERVAL`] reaches a
//! publisher for one track, however many subscribers ask (or however often the incoming stream
//! breaks). Time is passed in, so the throttle is tested with fabricated `Instant`s.

use std::time::{Duration, Instant};

/// Minimum spacing of keyframe requests sent upstream for one track.
pub(crate) const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// Remembers when the last keyframe request for one track went upstream.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeyframeThrottle {
    last: Option<Instant>,
}

impl KeyframeThrottle {
    /// Returns `true` (and records `now`) when a request may be sent at `now`.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < KEYFRAME_REQUEST_INTERVAL => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_passes_then_throttled_for_interval() {
        let t0 = Instant::now();
        let mut throttle = KeyframeThrottle::default();
        assert!(throttle.allow(t0));
        assert!(!throttle.allow(t0));
        assert!(!throttle.allow(t0 + Duration::from_millis(499)));
        assert!(throttle.allow(t0 + Duration::from_millis(500)));
        assert!(!throttle.allow(t0 + Duration::from_millis(900)));
        assert!(throttle.allow(t0 + Duration::from_millis(1000)));
    }

    #[test]
    fn time_going_backwards_does_not_unlock() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut throttle = KeyframeThrottle::default();
        assert!(throttle.allow(t0));
        assert!(!throttle.allow(t0 - Duration::from_secs(5)));
    }
}
