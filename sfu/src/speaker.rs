//! Active speaker detection for one room, from the RFC 6464 audio levels on incoming audio.
//!
//! Invariants:
//! - Levels are averaged per participant over a sliding [`WINDOW`] (~400 ms); someone with no
//!   recent audio counts as silent.
//! - The speaker changes only to someone audibly louder than the current speaker (hysteresis
//!   [`MARGIN`]) or when the current one falls silent, and at most once per [`MIN_INTERVAL`]
//!   (≤ 2 events/s per room). Time is passed in; nothing here does IO.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::ParticipantId;

/// Averaging window.
pub(crate) const WINDOW: Duration = Duration::from_millis(400);
/// Minimum spacing of speaker changes in one room.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(500);
/// Loudness (127 − dBov) below which someone is taken as silent (quieter than −60 dBov).
const SILENCE: u32 = 127 - 60;
/// How much louder (in dB) a challenger must be than the current speaker.
const MARGIN: u32 = 6;
/// Samples kept per participant (50 packets/s × 0.4 s, with room for 10 ms ptime).
const MAX_SAMPLES: usize = 64;

/// Active speaker state of one room.
#[derive(Debug, Default)]
pub(crate) struct SpeakerDetector {
    samples: HashMap<ParticipantId, VecDeque<(Instant, u8)>>,
    current: Option<ParticipantId>,
    last_change: Option<Instant>,
}

impl SpeakerDetector {
    /// Records one audio level from `p` at `now`, as str0m reports the RFC 6464 extension: in
    /// dBov, 0 = loudest, −127 = silence (the wire carries 0..127 meaning −dBov; str0m negates
    /// it). Anything outside −127..=0 is taken by its magnitude and capped at silence.
    pub(crate) fn observe(&mut self, p: ParticipantId, level: i8, now: Instant) {
        let dbov_below_full_scale = level.unsigned_abs().min(127);
        let loudness = 127 - dbov_below_full_scale;
        let q = self.samples.entry(p).or_default();
        q.push_back((now, loudness));
        while q.len() > MAX_SAMPLES {
            q.pop_front();
        }
    }

    /// Forgets `p` (it left the room).
    pub(crate) fn remove(&mut self, p: ParticipantId) {
        self.samples.remove(&p);
        if self.current == Some(p) {
            self.current = None;
        }
    }

    /// The new active speaker, when it changed (and a change is allowed) at `now`.
    pub(crate) fn poll(&mut self, now: Instant) -> Option<ParticipantId> {
        if self
            .last_change
            .is_some_and(|t| now.saturating_duration_since(t) < MIN_INTERVAL)
        {
            return None;
        }
        let mut loudest: Option<(ParticipantId, u32)> = None;
        let mut current_loudness = 0;
        for (p, q) in &mut self.samples {
            while q
                .front()
                .is_some_and(|(t, _)| now.saturating_duration_since(*t) > WINDOW)
            {
                q.pop_front();
            }
            let avg = if q.is_empty() {
                0
            } else {
                q.iter().map(|(_, l)| u32::from(*l)).sum::<u32>() / q.len() as u32
            };
            if Some(*p) == self.current {
                current_loudness = avg;
            }
            // Ties go to the lower id so the result does not depend on map order.
            if avg >= SILENCE && loudest.is_none_or(|(lp, la)| avg > la || (avg == la && *p < lp)) {
                loudest = Some((*p, avg));
            }
        }
        self.samples.retain(|_, q| !q.is_empty());
        let (p, avg) = loudest?;
        if Some(p) == self.current {
            return None;
        }
        let current_silent = current_loudness < SILENCE;
        if self.current.is_some() && !current_silent && avg < current_loudness + MARGIN {
            return None;
        }
        self.current = Some(p);
        self.last_change = Some(now);
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ParticipantId = ParticipantId(1);
    const B: ParticipantId = ParticipantId(2);

    /// Feeds 20 ms packets from `from` for `ms`, A at `a` and B at `b` dB below full scale
    /// (given positive here, handed over negated as str0m reports them).
    fn talk(d: &mut SpeakerDetector, from: Instant, ms: u64, a: i8, b: i8) -> Instant {
        let mut t = from;
        for _ in 0..ms / 20 {
            d.observe(A, -a, t);
            d.observe(B, -b, t);
            t += Duration::from_millis(20);
        }
        t
    }

    #[test]
    fn the_loudest_speaker_wins_with_hysteresis_and_throttling() {
        let t0 = Instant::now();
        let mut d = SpeakerDetector::default();
        // Silence: nobody.
        let t = talk(&mut d, t0, 400, 127, 127);
        assert_eq!(d.poll(t), None);
        // A talks (-20 dBov), B is quiet.
        let t = talk(&mut d, t, 400, 20, 100);
        assert_eq!(d.poll(t), Some(A));
        assert_eq!(d.poll(t), None, "no repeat");
        // B slightly louder than A (3 dB): within the margin, no change.
        let t = talk(&mut d, t, 600, 20, 17);
        assert_eq!(d.poll(t), None);
        // B clearly louder: B.
        let t = talk(&mut d, t, 400, 30, 10);
        assert_eq!(d.poll(t), Some(B));
        // A louder again right away: throttled for 500 ms after the last change.
        let t2 = talk(&mut d, t, 200, 5, 40);
        assert_eq!(d.poll(t2), None);
        let t3 = talk(&mut d, t2, 400, 5, 40);
        assert_eq!(d.poll(t3), Some(A));
        // A falls silent and B speaks softly (above the silence floor): B, without margin.
        let t4 = talk(&mut d, t3 + Duration::from_millis(600), 400, 127, 50);
        assert_eq!(d.poll(t4), Some(B));
    }

    #[test]
    fn at_most_two_changes_per_second_and_leavers_are_forgotten() {
        let t0 = Instant::now();
        let mut d = SpeakerDetector::default();
        let mut changes = 0;
        let mut t = t0;
        // Alternate loud speakers every 100 ms for 3 s.
        for i in 0..30 {
            let (a, b) = if i % 2 == 0 { (0, 127) } else { (127, 0) };
            t = talk(&mut d, t, 100, a, b);
            if d.poll(t).is_some() {
                changes += 1;
            }
        }
        assert!(changes <= 6, "{changes} changes in 3 s");
        d.remove(A);
        d.remove(B);
        assert_eq!(d.poll(t + Duration::from_secs(1)), None);
        // Out-of-range levels (below −127 dBov) count as silence; −5 dBov is loud.
        d.observe(A, i8::MIN, t);
        assert_eq!(d.poll(t + Duration::from_secs(2)), None);
        d.observe(A, -5, t + Duration::from_secs(2));
        assert_eq!(d.poll(t + Duration::from_secs(2)), Some(A));
    }

    #[test]
    fn silence_as_str0m_reports_it_is_never_the_loudest() {
        // str0m gives −127 for a silent packet and e.g. −30 for speech. Before the fix every
        // negative level was clamped to 0 dBov (the loudest), so the lowest id always won.
        let t0 = Instant::now();
        let mut d = SpeakerDetector::default();
        let mut t = t0;
        for _ in 0..20 {
            d.observe(A, -127, t);
            d.observe(B, -30, t);
            t += Duration::from_millis(20);
        }
        assert_eq!(d.poll(t), Some(B), "the one talking, not the lowest id");
        // Both silent: nobody new.
        let mut d = SpeakerDetector::default();
        for _ in 0..20 {
            d.observe(A, -127, t);
            d.observe(B, -127, t);
            t += Duration::from_millis(20);
        }
        assert_eq!(d.poll(t), None);
    }
}
