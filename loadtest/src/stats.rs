//! Counters shared by every synthetic peer of one run: frames and RTP packets sent and received,
//! frames lost (gaps in the probe sequence), and an end-to-end latency histogram.
//!
//! Everything is atomics, so peers on any thread record without locks. A run takes a
//! [`Snapshot`] at the start and the end of its measurement window and reports the difference.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Histogram resolution: 10 µs buckets up to 1 s, plus one overflow bucket.
const BUCKET_US: u64 = 10;
const BUCKETS: usize = 100_000;

/// Shared counters of one run.
pub struct Stats {
    pub frames_sent: AtomicU64,
    pub frames_recv: AtomicU64,
    pub packets_recv: AtomicU64,
    pub frames_lost: AtomicU64,
    pub connected: AtomicU64,
    pub failed: AtomicU64,
    /// Latency samples are only recorded while this is set (the measurement window).
    pub recording: AtomicBool,
    latency: Vec<AtomicU64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            frames_sent: AtomicU64::new(0),
            frames_recv: AtomicU64::new(0),
            packets_recv: AtomicU64::new(0),
            frames_lost: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            recording: AtomicBool::new(false),
            latency: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// Counter values at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub frames_sent: u64,
    pub frames_recv: u64,
    pub packets_recv: u64,
    pub frames_lost: u64,
}

impl Snapshot {
    /// `self - earlier`, saturating.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            frames_sent: self.frames_sent.saturating_sub(earlier.frames_sent),
            frames_recv: self.frames_recv.saturating_sub(earlier.frames_recv),
            packets_recv: self.packets_recv.saturating_sub(earlier.packets_recv),
            frames_lost: self.frames_lost.saturating_sub(earlier.frames_lost),
        }
    }
}

impl Stats {
    /// Records one received frame of `packets` RTP packets, `latency_us` after it was sent.
    pub fn frame_received(&self, packets: u64, latency_us: Option<u64>) {
        self.frames_recv.fetch_add(1, Relaxed);
        self.packets_recv.fetch_add(packets, Relaxed);
        if let Some(us) = latency_us
            && self.recording.load(Relaxed)
        {
            let i = ((us / BUCKET_US) as usize).min(BUCKETS);
            self.latency[i].fetch_add(1, Relaxed);
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            frames_sent: self.frames_sent.load(Relaxed),
            frames_recv: self.frames_recv.load(Relaxed),
            packets_recv: self.packets_recv.load(Relaxed),
            frames_lost: self.frames_lost.load(Relaxed),
        }
    }

    /// Latency quantile in milliseconds (`q` in 0..=1), from the recorded window; `None` if
    /// nothing was recorded. Values are bucket upper bounds (10 µs resolution).
    pub fn latency_quantile_ms(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self.latency.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(((i as u64 + 1) * BUCKET_US) as f64 / 1000.0);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_recorded_window_only() {
        let s = Stats::default();
        s.frame_received(1, Some(5_000)); // not recording: counted, no latency
        assert_eq!(s.latency_quantile_ms(0.5), None);
        s.recording.store(true, Relaxed);
        for us in [100, 200, 300, 400, 10_000] {
            s.frame_received(2, Some(us));
        }
        assert_eq!(s.latency_quantile_ms(0.5), Some(0.31));
        assert_eq!(s.latency_quantile_ms(0.99), Some(10.01));
        assert_eq!(s.snapshot().packets_recv, 11);
    }
}
