//! Receive → on-the-wire latency of forwarded media, per outgoing RTP packet.
//!
//! Frame-level forwarding hands a frame to the subscriber's `Rtc` (`Writer::write`), which
//! packetizes it, queues the packets behind its pacer and gives them back later as
//! `Output::Transmit`, encrypted. The SRTP header is in the clear, and str0m writes the RTP
//! timestamp and payload type it was given, so each subscriber keeps the last few frames it was
//! written as (payload type, RTP timestamp, receive time of the frame's first datagram), and
//! every transmitted RTP packet that matches one is measured from that receive time to the
//! moment it is handed to the socket (`consultroom_sfu_wire_latency_seconds`). Retransmissions
//! and padding (on the RTX payload type) and RTCP match nothing and are not measured.
//!
//! Invariant: bounded ([`KEEP`] frames per subscriber); never panics on any datagram.

use std::collections::VecDeque;
use std::time::Instant;

/// Frames remembered per subscriber: more than a pacer queue holds at video frame rates.
const KEEP: usize = 64;

/// The frames recently written to one subscriber (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct WireStamps {
    recent: VecDeque<(u8, u32, Instant)>,
}

impl WireStamps {
    /// A frame was written with payload type `pt` and RTP timestamp `ts`; its first datagram
    /// arrived at `received`.
    pub(crate) fn written(&mut self, pt: u8, ts: u32, received: Instant) {
        if self
            .recent
            .back()
            .is_some_and(|&(p, t, _)| p == pt && t == ts)
        {
            return;
        }
        if self.recent.len() >= KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back((pt, ts, received));
    }

    /// When the media in an outgoing datagram (an SRTP packet) was received, if it is one of
    /// the remembered frames.
    pub(crate) fn received_at(&self, datagram: &[u8]) -> Option<Instant> {
        if !super::is_rtp(datagram) {
            return None;
        }
        let pt = datagram.get(1)? & 0x7F;
        let ts = u32::from_be_bytes(datagram.get(4..8)?.try_into().ok()?);
        self.recent
            .iter()
            .rev()
            .find(|&&(p, t, _)| p == pt && t == ts)
            .map(|&(_, _, at)| at)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rtp(pt: u8, ts: u32) -> Vec<u8> {
        let mut p = vec![0x80, pt, 0, 1];
        p.extend(ts.to_be_bytes());
        p.extend([0, 0, 0, 7, 0xAA, 0xBB]);
        p
    }

    #[test]
    fn packets_of_written_frames_are_matched_by_payload_type_and_timestamp() {
        let t0 = Instant::now();
        let mut w = WireStamps::default();
        w.written(96, 9000, t0);
        w.written(111, 9000, t0 + Duration::from_millis(5));
        assert_eq!(w.received_at(&rtp(96, 9000)), Some(t0));
        assert_eq!(
            w.received_at(&rtp(111 | 0x80, 9000)),
            Some(t0 + Duration::from_millis(5)),
            "the marker bit is not part of the payload type"
        );
        // RTX (another payload type), unknown timestamps, RTCP and garbage: nothing.
        assert_eq!(w.received_at(&rtp(97, 9000)), None);
        assert_eq!(w.received_at(&rtp(96, 1)), None);
        let mut rtcp = rtp(200, 9000);
        rtcp[1] = 200;
        assert_eq!(w.received_at(&rtcp), None);
        for n in 0..8 {
            assert_eq!(w.received_at(&rtp(96, 9000)[..n]), None);
        }
        // Bounded: the oldest frames are forgotten.
        for ts in 0..(KEEP as u32 + 10) {
            w.written(96, ts * 3000 + 1, t0);
        }
        assert_eq!(w.recent.len(), KEEP);
        assert_eq!(w.received_at(&rtp(96, 9000)), None);
        assert_eq!(
            w.received_at(&rtp(96, (KEEP as u32 + 9) * 3000 + 1)),
            Some(t0)
        );
    }
}
