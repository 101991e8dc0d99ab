//! Simulcast: the layers of one published video track, and the choice of a layer per down
//! track.
//!
//! Invariants:
//! - A track with rids (RFC 8851/8853) is simulcast; each down track gets at most one layer at a
//!   time (`switch`), chosen by `select::choose_layer` from the subscriber's send-side
//!   bandwidth estimate (str0m TWCC BWE) and the tile size it reported with `Sfu::set_view`,
//!   with hysteresis (`select::Hysteresis`: down promptly when the budget falls clearly below
//!   the current layer, up only with a margin held for a while, a minimum dwell between
//!   budget-driven switches), so an estimate hovering at a layer's bitrate does not flap.
//! - A layer nobody is given is neither forwarded nor asked for keyframes. (Pausing it at the
//!   publisher needs the client's `RTCRtpSender.setParameters`; the SFU cannot stop a browser
//!   encoder from the server side without renegotiation.)
//! - Keyframe requests upstream are throttled per layer (one per 500 ms), whatever the number of
//!   subscribers waiting.

use std::time::{Duration, Instant};

use str0m::media::Rid;

use crate::keyframe::KeyframeThrottle;

pub(crate) mod select;
pub(crate) mod switch;

pub(crate) use select::{Hysteresis, LayerInfo, choose_layer};
pub(crate) use switch::{Decision, LayerSwitch, Rebaser};

/// A layer with no media for this long is not chosen. Browsers suspend simulcast layers under
/// CPU or bandwidth pressure; a viewer on a suspended layer sees a frozen picture until this
/// passes and a keyframe of another layer arrives, so it is short (camera layers run at 15–30
/// frames per second; screen shares are not simulcast).
const LAYER_IDLE: Duration = Duration::from_secs(1);
/// Bitrate measurement window.
const RATE_WINDOW: Duration = Duration::from_millis(1000);

/// One incoming layer.
#[derive(Debug)]
struct Layer {
    rid: Rid,
    meter: RateMeter,
    width: u32,
    height: u32,
    last_seen: Option<Instant>,
    keyframe: KeyframeThrottle,
}

/// The layers of one simulcast track.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    layers: Vec<Layer>,
}

impl Layers {
    /// Layers announced in SDP (`a=simulcast`), in announced order.
    pub(crate) fn new(rids: impl IntoIterator<Item = Rid>) -> Layers {
        let mut layers = Layers::default();
        for rid in rids {
            layers.layer_mut(rid);
        }
        layers
    }

    fn layer_mut(&mut self, rid: Rid) -> &mut Layer {
        let index = match self.layers.iter().position(|l| l.rid == rid) {
            Some(i) => i,
            None => {
                self.layers.push(Layer {
                    rid,
                    meter: RateMeter::default(),
                    width: 0,
                    height: 0,
                    last_seen: None,
                    keyframe: KeyframeThrottle::default(),
                });
                self.layers.len() - 1
            }
        };
        &mut self.layers[index]
    }

    /// Records a frame of `bytes` on layer `rid`; `dimensions` from a keyframe when known.
    pub(crate) fn observe(
        &mut self,
        rid: Rid,
        bytes: usize,
        dimensions: Option<(u32, u32)>,
        now: Instant,
    ) {
        // Bounded: a publisher cannot make us track more than a handful of layers.
        if self.layers.len() >= 8 && !self.layers.iter().any(|l| l.rid == rid) {
            return;
        }
        let layer = self.layer_mut(rid);
        layer.meter.add(bytes, now);
        layer.last_seen = Some(now);
        if let Some((w, h)) = dimensions {
            if layer.height != 0 && (layer.width, layer.height) != (w, h) {
                // A layer's keyframes changed size: the publisher rescaled it, or frames of
                // another layer arrive under this rid (issue #13's climb-back stall).
                tracing::debug!(rid = %layer.rid, from = ?(layer.width, layer.height), to = ?(w, h), "simulcast layer size changed");
            }
            layer.width = w;
            layer.height = h;
        }
    }

    /// The layers from the lowest quality to the highest, as rids and selection inputs.
    /// Ordered by keyframe height when every layer's is known; else by rid when every rid is
    /// a conventional name ([`rid_rank`]: the web client's q < h < f); else by measured bitrate
    /// when every layer has one; else in announced order. (Before this, bitrate came second:
    /// while a Firefox sender's heights were unknown its layers' first bitrates put "q" on
    /// top, and the SFU forwarded it for 250–500 ms before "h" or "f".)
    pub(crate) fn ordered(&self, now: Instant) -> (Vec<Rid>, Vec<LayerInfo>) {
        let mut order: Vec<&Layer> = self.layers.iter().collect();
        let ranks: Option<Vec<u8>> = order.iter().map(|l| rid_rank(&l.rid)).collect();
        let distinct =
            |r: &Vec<u8>| r.iter().collect::<std::collections::HashSet<_>>().len() == r.len();
        if order.iter().all(|l| l.height > 0) {
            order.sort_by_key(|l| (l.height, l.meter.bps()));
        } else if ranks.as_ref().is_some_and(distinct) {
            order.sort_by_key(|l| rid_rank(&l.rid));
        } else if order.iter().all(|l| l.meter.bps() > 0) {
            order.sort_by_key(|l| l.meter.bps());
        }
        let rids = order.iter().map(|l| l.rid).collect();
        let infos = order
            .iter()
            .map(|l| LayerInfo {
                bitrate: l.meter.bps(),
                width: l.width,
                height: l.height,
                active: l
                    .last_seen
                    .is_some_and(|t| now.saturating_duration_since(t) < LAYER_IDLE),
            })
            .collect();
        (rids, infos)
    }

    /// Whether a keyframe request for `rid` may go upstream now (one per 500 ms per layer).
    pub(crate) fn allow_keyframe(&mut self, rid: Rid, now: Instant) -> bool {
        self.layer_mut(rid).keyframe.allow(now)
    }
}

/// The rank of a conventional simulcast rid, lowest quality first: `q` < `h` < `f` (the web
/// client's, docs/protocol.md; also LiveKit's), `low` < `mid` < `high`, `l` < `m`, `r0` < `r1` <
/// `r2` (mediasoup's examples). `None` for any other name.
fn rid_rank(rid: &Rid) -> Option<u8> {
    match &**rid {
        "q" | "l" | "low" | "r0" => Some(0),
        "h" | "m" | "mid" | "r1" => Some(1),
        "f" | "high" | "r2" => Some(2),
        _ => None,
    }
}

/// Bitrate over fixed windows, smoothed over the last two.
#[derive(Debug, Default)]
struct RateMeter {
    start: Option<Instant>,
    bytes: u64,
    bps: u64,
}

impl RateMeter {
    fn add(&mut self, bytes: usize, now: Instant) {
        let start = *self.start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            let measured = self.bytes * 8 * 1000 / (elapsed.as_millis().max(1) as u64);
            self.bps = if self.bps == 0 {
                measured
            } else {
                (self.bps + measured) / 2
            };
            self.start = Some(now);
            self.bytes = 0;
        }
        self.bytes += bytes as u64;
    }

    fn bps(&self) -> u64 {
        self.bps
    }
}

/// Width and height from a VP8 keyframe (RFC 6386 §9.1), `None` for other frames.
pub(crate) fn vp8_dimensions(frame: &[u8]) -> Option<(u32, u32)> {
    match frame {
        [tag, _, _, 0x9D, 0x01, 0x2A, w0, w1, h0, h1, ..] if tag & 1 == 0 => {
            let w = u32::from(u16::from_le_bytes([*w0, *w1]) & 0x3FFF);
            let h = u32::from(u16::from_le_bytes([*h0, *h1]) & 0x3FFF);
            (w > 0 && h > 0).then_some((w, h))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_dimensions() {
        let key = [
            0x50, 0x01, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01, 0xAA,
        ];
        assert_eq!(vp8_dimensions(&key), Some((640, 480)));
        let mut delta = key;
        delta[0] |= 1;
        assert_eq!(vp8_dimensions(&delta), None);
        for n in 0..key.len() {
            let _ = vp8_dimensions(&key[..n]);
        }
        assert_eq!(vp8_dimensions(&key[..9]), None);
    }

    #[test]
    fn layers_are_ordered_by_resolution_then_rid_then_bitrate() {
        let t0 = Instant::now();
        let mut layers = Layers::new([Rid::from("f"), Rid::from("q"), Rid::from("h")]);
        // Before any media: by the rid convention q < h < f, all inactive.
        let (rids, infos) = layers.ordered(t0);
        assert_eq!(rids, vec![Rid::from("q"), Rid::from("h"), Rid::from("f")]);
        assert!(infos.iter().all(|l| !l.active));
        // A Firefox-like start: the layers' first measured bitrates are upside down (the top
        // layer's encoder ramps up last) and no keyframe height is known yet: still by rid.
        for step in 0..=40u64 {
            let now = t0 + Duration::from_millis(step * 50);
            layers.observe(Rid::from("q"), 1600, None, now);
            layers.observe(Rid::from("h"), 400, None, now);
            layers.observe(Rid::from("f"), 100, None, now);
        }
        let (rids, _) = layers.ordered(t0 + Duration::from_secs(2));
        assert_eq!(rids, vec![Rid::from("q"), Rid::from("h"), Rid::from("f")]);
        // Names outside the convention: by measured bitrate once every layer has one, else
        // in announced order.
        let mut other = Layers::new([Rid::from("a"), Rid::from("b"), Rid::from("c")]);
        let (rids, _) = other.ordered(t0);
        assert_eq!(rids, vec![Rid::from("a"), Rid::from("b"), Rid::from("c")]);
        for step in 0..=40u64 {
            let now = t0 + Duration::from_millis(step * 50);
            other.observe(Rid::from("a"), 1600, None, now);
            other.observe(Rid::from("b"), 100, None, now);
            other.observe(Rid::from("c"), 400, None, now);
        }
        let (rids, _) = other.ordered(t0 + Duration::from_secs(2));
        assert_eq!(rids, vec![Rid::from("b"), Rid::from("c"), Rid::from("a")]);

        let mut layers = Layers::new([Rid::from("f"), Rid::from("q"), Rid::from("h")]);
        for step in 0..=40u64 {
            let now = t0 + Duration::from_millis(step * 50);
            layers.observe(Rid::from("q"), 100, None, now);
            layers.observe(Rid::from("h"), 400, None, now);
            layers.observe(Rid::from("f"), 1600, None, now);
        }
        let now = t0 + Duration::from_secs(2);
        let (rids, infos) = layers.ordered(now);
        assert_eq!(rids, vec![Rid::from("q"), Rid::from("h"), Rid::from("f")]);
        // 100 bytes every 50 ms = 16 kbit/s.
        assert!((15_000..=17_000).contains(&infos[0].bitrate), "{infos:?}");
        assert!(infos.iter().all(|l| l.active));
        // Keyframe sizes win over bitrate.
        layers.observe(Rid::from("q"), 10, Some((1280, 720)), now);
        layers.observe(Rid::from("h"), 10, Some((640, 360)), now);
        layers.observe(Rid::from("f"), 10, Some((320, 180)), now);
        let (rids, _) = layers.ordered(now);
        assert_eq!(rids, vec![Rid::from("f"), Rid::from("h"), Rid::from("q")]);
        // Idle layers become inactive.
        let (_, infos) = layers.ordered(now + Duration::from_secs(3));
        assert!(infos.iter().all(|l| !l.active));
        // Keyframe requests are throttled per layer.
        assert!(layers.allow_keyframe(Rid::from("q"), now));
        assert!(layers.allow_keyframe(Rid::from("h"), now));
        assert!(!layers.allow_keyframe(Rid::from("q"), now));
    }
}
