//! A synthetic simulcast VP8 publisher on webrtc-rs: one track with one encoding per rid, each
//! layer its own SSRC. webrtc-rs announces the rids (`a=rid`, `a=simulcast:send`) but does not
//! stamp the RTP stream id on packets itself, so the writer adds the negotiated `sdes:mid` and
//! `sdes:rtp-stream-id` header extensions (as a browser does).
//!
//! Layer `i` of `n` is a 1280×720 / 2^(n-1-i) picture; every frame's payload ends with the
//! layer's marker byte (its rid's first letter), so a subscriber can tell layers apart after
//! the SFU re-packetized them onto its own SSRC. A keyframe every 15 frames (~0.5 s).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use super::{Publisher, TestPeer, VP8_PT, m_lines, rand_ssrc};

const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";

/// A simulcast video track added to a [`TestPeer`], ready to [`SimulcastVideo::start`].
pub struct SimulcastVideo {
    track: Arc<TrackLocalStaticRTP>,
    layers: Vec<(String, u32)>,
}

impl TestPeer {
    /// Adds a VP8 track with one encoding per rid (lowest quality first).
    pub async fn add_simulcast_video(&self, rids: &[&str]) -> SimulcastVideo {
        let layers: Vec<(String, u32)> =
            rids.iter().map(|r| (r.to_string(), rand_ssrc())).collect();
        let encodings = layers
            .iter()
            .map(|(rid, ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: rid.clone(),
                    ssrc: Some(*ssrc),
                    ..Default::default()
                },
                active: true,
                codec: RTCRtpCodec {
                    mime_type: "video/VP8".into(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line: String::new(),
                    rtcp_feedback: vec![],
                },
                ..Default::default()
            })
            .collect();
        let track = MediaStreamTrack::new(
            "simulcast-stream".into(),
            "simulcast-video".into(),
            "video".into(),
            RtpCodecKind::Video,
            encodings,
        );
        let track = Arc::new(TrackLocalStaticRTP::new(track));
        self.pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .expect("add simulcast track");
        SimulcastVideo { track, layers }
    }
}

impl SimulcastVideo {
    /// Starts every layer at 30 fps. `offer` is our offer (for the m-line's mid), `answer` the
    /// SFU's answer (for the negotiated extension ids).
    pub fn start(self, offer: &str, answer: &str) -> Publisher {
        let ours = m_lines(offer);
        let video = ours
            .iter()
            .find(|m| m.kind == "video")
            .expect("video m-line");
        let mid = video.mid.clone();
        let theirs = m_lines(answer);
        let negotiated = theirs
            .iter()
            .find(|m| m.mid == mid)
            .expect("answered m-line");
        let mid_id = negotiated
            .extmap(MID_URI)
            .expect("mid extension negotiated");
        let rid_id = negotiated
            .extmap(RID_URI)
            .expect("rid extension negotiated");
        let n = self.layers.len() as u32;
        let tasks = self
            .layers
            .into_iter()
            .enumerate()
            .map(|(i, (rid, ssrc))| {
                let height = 720u32 >> (n - 1 - i as u32);
                let layer = Layer {
                    track: self.track.clone(),
                    ssrc,
                    marker: rid.as_bytes().first().copied().unwrap_or(b'?'),
                    rid,
                    mid: mid.clone(),
                    ids: (mid_id, rid_id),
                    width: height * 16 / 9,
                    height,
                    size: 60 * (1 << i),
                };
                tokio::spawn(layer.run())
            })
            .collect();
        Publisher { tasks }
    }
}

struct Layer {
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    rid: String,
    mid: String,
    marker: u8,
    ids: (u8, u8),
    width: u32,
    height: u32,
    size: usize,
}

impl Layer {
    async fn run(self) {
        let mut seq: u16 = 1;
        let mut ts: u32 = 5000 + self.ssrc % 100_000;
        let mut tick = tokio::time::interval(Duration::from_millis(33));
        for frame in 0u64.. {
            tick.tick().await;
            let mut header = rtp::Header {
                version: 2,
                marker: true,
                payload_type: VP8_PT,
                sequence_number: seq,
                timestamp: ts,
                ssrc: self.ssrc,
                ..Default::default()
            };
            let _ = header.set_extension(self.ids.0, Bytes::from(self.mid.clone().into_bytes()));
            let _ = header.set_extension(self.ids.1, Bytes::from(self.rid.clone().into_bytes()));
            let packet = rtp::Packet {
                header,
                payload: self.payload(frame % 15 == 0),
            };
            let _ = self.track.write_rtp(packet).await;
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(3000);
        }
    }

    /// VP8 payload descriptor (S=1) + a key or delta frame ending in the marker byte.
    fn payload(&self, keyframe: bool) -> Bytes {
        let mut p = vec![0x10];
        if keyframe {
            let (w, h) = (self.width as u16, self.height as u16);
            p.extend_from_slice(&[0x50, 0x01, 0x00, 0x9D, 0x01, 0x2A]);
            p.extend_from_slice(&w.to_le_bytes());
            p.extend_from_slice(&h.to_le_bytes());
        } else {
            p.extend_from_slice(&[0x51, 0x01, 0x00]);
        }
        p.resize(p.len() + self.size, self.marker);
        Bytes::from(p)
    }
}
