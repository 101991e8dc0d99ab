//! Per down track: the keyframe-gated layer switch and the RTP timestamp rebase that keeps the
//! outgoing stream continuous across switches. Time is passed in.
//!
//! Invariants:
//! - Frames of the current layer are forwarded until a keyframe of the target layer arrives;
//!   only then does the down track switch (so the decoder never gets a delta frame it cannot
//!   use). Invisible (target `None`) stops forwarding at once.
//! - While waiting, a keyframe of the target layer is asked for at most every
//!   [`KEYFRAME_REQUEST_INTERVAL`].
//! - Outgoing RTP timestamps never go backwards: each layer has its own timestamp base, so at a
//!   switch the new layer is rebased to continue from the last forwarded frame plus the
//!   wall-clock time since. Sequence numbers are str0m's per down track (frame-level
//!   forwarding re-packetizes), so they are continuous by construction.

use std::time::Instant;

use str0m::media::Rid;

use crate::keyframe::KEYFRAME_REQUEST_INTERVAL;

/// What to do with one incoming frame on one down track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Forward it; `switched` when this frame completed a layer switch.
    Forward { switched: bool },
    /// Not for this down track.
    Drop,
}

/// The layer a down track forwards and the one it is switching to.
#[derive(Debug, Clone, Default)]
pub(crate) struct LayerSwitch {
    current: Option<Rid>,
    target: Option<Rid>,
    last_request: Option<Instant>,
}

impl LayerSwitch {
    /// The layer being forwarded.
    pub(crate) fn current(&self) -> Option<Rid> {
        self.current
    }

    /// The layer wanted.
    pub(crate) fn target(&self) -> Option<Rid> {
        self.target
    }

    /// Sets the wanted layer. `None` stops forwarding immediately.
    pub(crate) fn set_target(&mut self, target: Option<Rid>) {
        if target == self.target {
            return;
        }
        self.target = target;
        self.last_request = None;
        if target.is_none() {
            self.current = None;
        }
    }

    /// Decides about a frame of layer `rid`.
    pub(crate) fn on_frame(&mut self, rid: Rid, keyframe: bool) -> Decision {
        if Some(rid) == self.target && self.current != self.target {
            if keyframe {
                self.current = self.target;
                return Decision::Forward { switched: true };
            }
            // Keep showing the old layer until the new one can be decoded.
            return Decision::Drop;
        }
        if Some(rid) == self.current {
            Decision::Forward { switched: false }
        } else {
            Decision::Drop
        }
    }

    /// The layer to ask a keyframe of now, if a switch waits for one (throttled).
    pub(crate) fn keyframe_wanted(&mut self, now: Instant) -> Option<Rid> {
        let target = self.target?;
        if self.current == self.target {
            return None;
        }
        match self.last_request {
            Some(at) if now.saturating_duration_since(at) < KEYFRAME_REQUEST_INTERVAL => None,
            _ => {
                self.last_request = Some(now);
                Some(target)
            }
        }
    }
}

/// Keeps a down track's RTP timestamps continuous across layers with different bases.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rebaser {
    /// The layer the offset belongs to (`Some(None)`: a plain, non-simulcast stream).
    layer: Option<Option<Rid>>,
    offset: i128,
    /// Last outgoing timestamp and when its frame arrived.
    last: Option<(u64, Instant)>,
}

impl Rebaser {
    /// The outgoing timestamp for a frame of `layer` with incoming timestamp `ts` (in `hz`),
    /// received at `at`.
    pub(crate) fn rebase(&mut self, layer: Option<Rid>, ts: u64, hz: u32, at: Instant) -> u64 {
        if self.layer != Some(layer) {
            self.offset = match self.last {
                Some((last_ts, last_at)) => {
                    let elapsed = at.saturating_duration_since(last_at);
                    let ticks = (elapsed.as_micros() * u128::from(hz) / 1_000_000).max(1);
                    i128::from(last_ts) + ticks as i128 - i128::from(ts)
                }
                None => 0,
            };
            self.layer = Some(layer);
        }
        let mut out = (i128::from(ts) + self.offset).max(0) as u64;
        if let Some((last_ts, _)) = self.last {
            // Never backwards (a reordered or repeated frame keeps the last timestamp).
            out = out.max(last_ts);
        }
        self.last = Some((out, at));
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rid(s: &str) -> Rid {
        Rid::from(s)
    }

    #[test]
    fn switch_waits_for_a_keyframe_of_the_target_layer() {
        let mut s = LayerSwitch::default();
        // Nothing is forwarded before a target is set.
        assert_eq!(s.on_frame(rid("f"), true), Decision::Drop);
        s.set_target(Some(rid("f")));
        // Delta frames of the target cannot start the stream.
        assert_eq!(s.on_frame(rid("f"), false), Decision::Drop);
        assert_eq!(
            s.on_frame(rid("f"), true),
            Decision::Forward { switched: true }
        );
        assert_eq!(
            s.on_frame(rid("f"), false),
            Decision::Forward { switched: false }
        );
        // Other layers are never forwarded.
        assert_eq!(s.on_frame(rid("q"), true), Decision::Drop);

        // Down to "q": "f" keeps flowing until a "q" keyframe.
        s.set_target(Some(rid("q")));
        assert_eq!(
            s.on_frame(rid("f"), false),
            Decision::Forward { switched: false }
        );
        assert_eq!(s.on_frame(rid("q"), false), Decision::Drop);
        assert_eq!(
            s.on_frame(rid("q"), true),
            Decision::Forward { switched: true }
        );
        assert_eq!(s.on_frame(rid("f"), true), Decision::Drop);
        assert_eq!(s.current(), Some(rid("q")));

        // Invisible: stops at once, and no keyframe is wanted.
        s.set_target(None);
        assert_eq!(s.on_frame(rid("q"), true), Decision::Drop);
        assert_eq!(s.keyframe_wanted(Instant::now()), None);
    }

    #[test]
    fn keyframe_requests_while_waiting_are_throttled() {
        let t0 = Instant::now();
        let mut s = LayerSwitch::default();
        assert_eq!(s.keyframe_wanted(t0), None);
        s.set_target(Some(rid("h")));
        assert_eq!(s.keyframe_wanted(t0), Some(rid("h")));
        assert_eq!(s.keyframe_wanted(t0 + Duration::from_millis(499)), None);
        assert_eq!(
            s.keyframe_wanted(t0 + Duration::from_millis(500)),
            Some(rid("h"))
        );
        // A new target asks at once.
        s.set_target(Some(rid("q")));
        assert_eq!(
            s.keyframe_wanted(t0 + Duration::from_millis(600)),
            Some(rid("q"))
        );
        s.on_frame(rid("q"), true);
        assert_eq!(s.keyframe_wanted(t0 + Duration::from_secs(5)), None);
    }

    #[test]
    fn timestamps_continue_across_layers_with_different_bases() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut r = Rebaser::default();
        // Layer "f" starts at 1_000_000, 30 fps (3000 ticks at 90 kHz).
        assert_eq!(
            r.rebase(Some(rid("f")), 1_000_000, 90_000, ms(0)),
            1_000_000
        );
        assert_eq!(
            r.rebase(Some(rid("f")), 1_003_000, 90_000, ms(33)),
            1_003_000
        );
        // Switch to "q", whose base is far lower: continues 33 ms (2970 ticks) later.
        let out = r.rebase(Some(rid("q")), 5_000, 90_000, ms(66));
        assert_eq!(out, 1_003_000 + 2_970);
        assert_eq!(r.rebase(Some(rid("q")), 8_000, 90_000, ms(99)), out + 3_000);
        // A reordered older frame never moves time backwards.
        assert_eq!(
            r.rebase(Some(rid("q")), 4_000, 90_000, ms(100)),
            out + 3_000
        );
        // A plain stream is passed through unchanged.
        let mut plain = Rebaser::default();
        assert_eq!(plain.rebase(None, 42, 48_000, ms(0)), 42);
        assert_eq!(plain.rebase(None, 1002, 48_000, ms(20)), 1002);
    }
}
