//! Synthetic media: Opus-sized audio frames (20 ms) and VP8-shaped video frames (30 fps) that
//! carry a small probe (magic, frame sequence number, send time) so a subscriber can measure
//! end-to-end latency and frame loss without decoding anything.
//!
//! Sizes follow a 32 kbit/s Opus voice stream (60–120 B) and a ~600 kbit/s 640×360 VP8 camera
//! (delta frames ~1.5–3 KB, a keyframe ~15 KB every 2 s or on a keyframe request).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Audio frame interval (Opus, 20 ms).
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// Video frame interval (30 fps).
pub const VIDEO_INTERVAL: Duration = Duration::from_micros(33_333);
/// Regular keyframe interval.
pub const KEYFRAME_INTERVAL: Duration = Duration::from_secs(2);

const MAGIC: [u8; 4] = *b"CRLT";
const PROBE_LEN: usize = 16;
/// Where the probe starts in an Opus frame (after the TOC byte).
const AUDIO_PROBE_AT: usize = 1;
/// Where the probe starts in a VP8 frame (after the 10-byte keyframe header).
const VIDEO_PROBE_AT: usize = 12;

/// Microseconds since the Unix epoch. All processes on this machine share the clock, so a
/// difference between two processes' readings is a latency.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn put_probe(frame: &mut [u8], at: usize, seq: u32, sent_us: u64) {
    if let Some(slot) = frame.get_mut(at..at + PROBE_LEN) {
        slot[..4].copy_from_slice(&MAGIC);
        slot[4..8].copy_from_slice(&seq.to_be_bytes());
        slot[8..16].copy_from_slice(&sent_us.to_be_bytes());
    }
}

/// Reads `(seq, sent_us)` back from a received frame, if it carries our probe.
pub fn read_probe(frame: &[u8], video: bool) -> Option<(u32, u64)> {
    let at = if video {
        VIDEO_PROBE_AT
    } else {
        AUDIO_PROBE_AT
    };
    let p = frame.get(at..at + PROBE_LEN)?;
    if p[..4] != MAGIC {
        return None;
    }
    let seq = u32::from_be_bytes(p[4..8].try_into().ok()?);
    let sent = u64::from_be_bytes(p[8..16].try_into().ok()?);
    Some((seq, sent))
}

/// A deterministic filler byte pattern (no allocation of randomness per frame).
fn fill(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// One 20 ms Opus frame of 60–120 bytes.
pub fn opus_frame(seq: u32) -> Vec<u8> {
    let len = 60 + (seq.wrapping_mul(37) % 61) as usize;
    let mut f = fill(len, seq);
    f[0] = 0x78; // TOC: SILK-only wideband 20 ms, mono, one frame
    put_probe(&mut f, AUDIO_PROBE_AT, seq, now_micros());
    f
}

/// One VP8 frame; keyframes carry a valid frame tag and start code for 640×360.
pub fn vp8_frame(seq: u32, key: bool) -> Vec<u8> {
    let len = if key {
        14_000 + (seq % 7) as usize * 300
    } else {
        1_500 + (seq.wrapping_mul(7919) % 1_500) as usize
    };
    let mut f = fill(len, seq);
    let first_part = ((len / 4) as u32) << 5;
    // Frame tag: bit 0 = 0 for a keyframe, version 0, bit 4 = show_frame, then partition size.
    let tag = first_part | 0x10 | u32::from(!key);
    f[0] = tag as u8;
    f[1] = (tag >> 8) as u8;
    f[2] = (tag >> 16) as u8;
    if key {
        f[3..6].copy_from_slice(&[0x9d, 0x01, 0x2a]);
        f[6..8].copy_from_slice(&640u16.to_le_bytes());
        f[8..10].copy_from_slice(&360u16.to_le_bytes());
    }
    put_probe(&mut f, VIDEO_PROBE_AT, seq, now_micros());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_round_trip_and_sizes_are_realistic() {
        let a = opus_frame(7);
        assert!((60..=120).contains(&a.len()));
        assert_eq!(read_probe(&a, false).map(|p| p.0), Some(7));
        let k = vp8_frame(9, true);
        assert_eq!(k[0] & 1, 0, "keyframe bit");
        assert_eq!(read_probe(&k, true).map(|p| p.0), Some(9));
        let d = vp8_frame(10, false);
        assert_eq!(d[0] & 1, 1);
        assert!((1_500..3_000).contains(&d.len()));
        assert_eq!(read_probe(&[0u8; 40], true), None);
    }
}
