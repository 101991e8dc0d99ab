//! RFC 4571 framing for ICE over TCP: each STUN/DTLS/RTP/RTCP packet is sent as a 2-byte
//! big-endian length followed by that many bytes.
//!
//! Invariants: the decoder never panics on any byte sequence; frames longer than
//! [`MAX_FRAME`] are refused (the connection is then closed by the caller); the decoder holds at
//! most one partial frame plus its header, so per-connection memory is bounded.

/// Largest frame accepted (a WebRTC peer never sends more than an MTU).
pub(crate) const MAX_FRAME: usize = 1500;

/// Why a TCP stream is not RFC 4571 as we accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FramingError {
    /// A frame announced more than [`MAX_FRAME`] bytes.
    Oversize(usize),
}

/// Incremental decoder for one TCP connection.
#[derive(Debug, Default)]
pub(crate) struct FrameDecoder {
    pending: Vec<u8>,
}

impl FrameDecoder {
    /// Feeds bytes read from the socket; complete frames are appended to `out`. Zero-length
    /// frames are skipped.
    pub(crate) fn push(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), FramingError> {
        while !input.is_empty() {
            // Complete the header first.
            if self.pending.len() < 2 {
                let take = (2 - self.pending.len()).min(input.len());
                self.pending.extend_from_slice(&input[..take]);
                input = &input[take..];
                if self.pending.len() < 2 {
                    return Ok(());
                }
            }
            let len = usize::from(u16::from_be_bytes([self.pending[0], self.pending[1]]));
            if len > MAX_FRAME {
                return Err(FramingError::Oversize(len));
            }
            let have = self.pending.len() - 2;
            let take = (len - have).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() - 2 == len {
                if len > 0 {
                    out.push(self.pending[2..].to_vec());
                }
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Bytes held for an incomplete frame (≤ 2 + [`MAX_FRAME`]).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// Frames `packet` for sending; `None` when it is too large to frame.
pub(crate) fn encode(packet: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(packet.len()).ok()?;
    let mut framed = Vec::with_capacity(packet.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(packet);
    Some(framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Result<(), FramingError>, usize) {
        let mut d = FrameDecoder::default();
        let mut out = Vec::new();
        for c in chunks {
            if let Err(e) = d.push(c, &mut out) {
                return (out, Err(e), d.pending());
            }
        }
        (out, Ok(()), d.pending())
    }

    #[test]
    fn split_and_merged_frames() {
        let a = encode(b"hello").unwrap();
        let b = encode(&[7u8; 1500]).unwrap();
        let mut merged = a.clone();
        merged.extend_from_slice(&b);
        merged.extend_from_slice(&a);
        // Merged in one read.
        let (out, res, pending) = decode_all(&[&merged]);
        assert_eq!(res, Ok(()));
        assert_eq!(
            out,
            vec![b"hello".to_vec(), vec![7u8; 1500], b"hello".to_vec()]
        );
        assert_eq!(pending, 0);
        // Split at every possible point, including inside the length header.
        for cut in 0..=merged.len() {
            let (out, res, _) = decode_all(&[&merged[..cut], &merged[cut..]]);
            assert_eq!(res, Ok(()));
            assert_eq!(out.len(), 3, "cut at {cut}");
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = merged.chunks(1).collect();
        let (out, _, _) = decode_all(&bytes);
        assert_eq!(out.len(), 3);
        // A partial frame stays pending.
        let (out, _, pending) = decode_all(&[&b[..100]]);
        assert!(out.is_empty());
        assert_eq!(pending, 100);
    }

    #[test]
    fn zero_length_is_skipped_and_oversize_refused() {
        let (out, res, _) = decode_all(&[&[0, 0, 0, 1, 42, 0, 0]]);
        assert_eq!(res, Ok(()));
        assert_eq!(out, vec![vec![42]]);
        let (out, res, _) = decode_all(&[&[0x05, 0xDD]]);
        assert_eq!(res, Err(FramingError::Oversize(1501)));
        assert!(out.is_empty());
        let (_, res, _) = decode_all(&[&[0xFF], &[0xFF, 1, 2, 3]]);
        assert_eq!(res, Err(FramingError::Oversize(65535)));
        assert!(encode(&vec![0u8; 70_000]).is_none());
        assert_eq!(encode(&[]).unwrap(), vec![0, 0]);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded() {
        let mut seed = 0x1234_5678u32;
        for _ in 0..200 {
            let mut d = FrameDecoder::default();
            let mut out = Vec::new();
            for _ in 0..20 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let len = (seed >> 16) as usize % 700;
                let chunk: Vec<u8> = (0..len)
                    .map(|i| (seed.rotate_left(i as u32 % 32) & 0x07) as u8)
                    .collect();
                if d.push(&chunk, &mut out).is_err() {
                    break;
                }
                assert!(d.pending() <= 2 + MAX_FRAME);
            }
        }
    }
}
