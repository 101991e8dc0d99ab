//! A WebRTC test client on the independent `webrtc` crate (webrtc-rs), for media tests against
//! the SFU: create a peer on loopback, publish synthetic Opus + VP8 RTP, count what arrives.
//!
//! The client is signalling-agnostic ([`TestPeer`] trades SDP strings); [`SfuClient`] wires it
//! straight to an in-process [`Sfu`]. Full-stack tests can reuse [`TestPeer`] over WebSocket.
//! Every wait is bounded by a timeout. Traffic stays on 127.0.0.1.

#![allow(dead_code)] // Each test binary uses a different subset.

mod sdp;
mod sfu_client;
mod simulcast;
#[allow(unused_imports)] // Each test binary uses a different subset.
pub use sdp::{MLine, firefox_bundle, m_lines};
#[allow(unused_imports)] // Re-exported for other test binaries.
pub use sfu_client::{Publish, SfuClient, SfuStatus};
#[allow(unused_imports)] // Re-exported for other test binaries.
pub use simulcast::SimulcastVideo;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{Mutex, Notify, watch};
use tokio::task::JoinHandle;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry,
    SettingEngineBuilder, register_default_interceptors,
};

/// Payload types the client offers (webrtc-rs defaults); the SFU answers with the same.
const OPUS_PT: u8 = 111;
const VP8_PT: u8 = 96;

/// Media kind, without leaking webrtc-rs types into tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Video,
}

/// Packets and tracks received by one peer.
#[derive(Debug, Default)]
pub struct Received {
    audio_packets: AtomicU64,
    video_packets: AtomicU64,
    tracks: AtomicU64,
    stream_ids: std::sync::Mutex<Vec<String>>,
    /// Video packets counted by the last byte of their payload (the synthetic layers fill
    /// frames with a per-layer marker byte).
    markers: std::sync::Mutex<std::collections::HashMap<u8, u64>>,
    last_marker: std::sync::atomic::AtomicU8,
    changed: Notify,
    /// The first remote video track and its SSRC (for sending feedback such as PLI upstream).
    video_remote: std::sync::Mutex<Option<VideoRemote>>,
}

/// A remote video track with the SSRC its packets arrive on.
#[derive(Clone)]
struct VideoRemote {
    track: Arc<dyn TrackRemote>,
    ssrc: u32,
}

impl std::fmt::Debug for VideoRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VideoRemote({})", self.ssrc)
    }
}

impl Received {
    /// RTP packets received of `kind`.
    pub fn packets(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Audio => self.audio_packets.load(Ordering::Relaxed),
            Kind::Video => self.video_packets.load(Ordering::Relaxed),
        }
    }

    /// Remote tracks announced by `on_track`.
    pub fn tracks(&self) -> u64 {
        self.tracks.load(Ordering::Relaxed)
    }

    /// Video packets received whose payload ends in `marker`.
    pub fn marker_count(&self, marker: u8) -> u64 {
        self.markers
            .lock()
            .map(|m| m.get(&marker).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// The last byte of the last video payload received.
    pub fn last_marker(&self) -> u8 {
        self.last_marker.load(Ordering::Relaxed)
    }

    /// Stream ids (`a=msid`) of the remote tracks seen so far.
    pub fn stream_ids(&self) -> Vec<String> {
        self.stream_ids
            .lock()
            .map(|ids| ids.clone())
            .unwrap_or_default()
    }
}

struct Handler {
    received: Arc<Received>,
    state: watch::Sender<RTCPeerConnectionState>,
    gathered: Arc<Notify>,
    gathering_complete: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathering_complete.store(true, Ordering::SeqCst);
            self.gathered.notify_waiters();
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.state.send(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = self.received.clone();
        received.tracks.fetch_add(1, Ordering::Relaxed);
        let kind = track.kind().await;
        let stream_id = track.stream_id().await;
        if let Ok(mut ids) = received.stream_ids.lock() {
            ids.push(stream_id.to_string());
        }
        received.changed.notify_waiters();
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    if kind != RtpCodecKind::Audio
                        && let Ok(mut v) = received.video_remote.lock()
                        && v.is_none()
                    {
                        *v = Some(VideoRemote {
                            track: track.clone(),
                            ssrc: packet.header.ssrc,
                        });
                    }
                    let counter = match kind {
                        RtpCodecKind::Audio => &received.audio_packets,
                        _ => &received.video_packets,
                    };
                    if kind != RtpCodecKind::Audio
                        && let Some(&last) = packet.payload.last()
                    {
                        if let Ok(mut m) = received.markers.lock() {
                            *m.entry(last).or_default() += 1;
                        }
                        received.last_marker.store(last, Ordering::Relaxed);
                    }
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

/// One webrtc-rs peer connection bound to 127.0.0.1.
pub struct TestPeer {
    pc: Arc<dyn PeerConnection>,
    received: Arc<Received>,
    state: watch::Receiver<RTCPeerConnectionState>,
    gathered: Arc<Notify>,
    gathering_complete: Arc<std::sync::atomic::AtomicBool>,
    // Serialises SDP work (an offer of ours against a renegotiation from the server).
    sdp_lock: Mutex<()>,
}

impl TestPeer {
    /// A peer with default codecs and interceptors, gathering loopback host candidates only.
    pub async fn new() -> TestPeer {
        TestPeer::build(true).await
    }

    /// A peer with no UDP socket at all: it can only reach the SFU by ICE-TCP (active
    /// candidates, connecting to the passive TCP candidates given to
    /// [`TestPeer::add_tcp_candidates_from`]).
    pub async fn new_tcp_only() -> TestPeer {
        TestPeer::build(false).await
    }

    async fn build(udp: bool) -> TestPeer {
        let mut media_engine = MediaEngine::default();
        media_engine
            .register_default_codecs()
            .expect("default codecs");
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)
            .expect("default interceptors");
        let setting_engine = SettingEngineBuilder::new()
            .with_include_loopback_candidate(true)
            .build();
        let received = Arc::new(Received::default());
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let gathered = Arc::new(Notify::new());
        let gathering_complete = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handler = Arc::new(Handler {
            received: received.clone(),
            state: state_tx,
            gathered: gathered.clone(),
            gathering_complete: gathering_complete.clone(),
        });
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_setting_engine(setting_engine)
            .with_handler(handler)
            .with_udp_addrs(if udp { vec!["127.0.0.1:0"] } else { vec![] })
            .with_tcp_addrs(if udp { vec![] } else { vec!["127.0.0.1:0"] })
            .build()
            .await
            .expect("peer connection");
        TestPeer {
            pc: Arc::new(pc),
            received,
            state,
            gathered,
            gathering_complete,
            sdp_lock: Mutex::new(()),
        }
    }

    /// Adds an Opus and a VP8 track fed with fabricated RTP; call before [`TestPeer::offer`].
    pub async fn add_synthetic_tracks(&self) -> SyntheticTracks {
        let audio = synthetic_track(
            RtpCodecKind::Audio,
            "audio/opus",
            48_000,
            2,
            "minptime=10;useinbandfec=1",
        );
        let video = synthetic_track(RtpCodecKind::Video, "video/VP8", 90_000, 0, "");
        for track in [&audio.0, &video.0] {
            self.pc
                .add_track(track.clone() as Arc<dyn TrackLocal>)
                .await
                .expect("add track");
        }
        SyntheticTracks {
            audio: audio.0,
            audio_ssrc: audio.1,
            video: Some((video.0, video.1)),
        }
    }

    /// Adds a track of `kind` fed by nothing (for m-line layouts such as a screen share).
    pub async fn add_track_of(&self, kind: Kind) -> (Arc<TrackLocalStaticRTP>, u32) {
        let (track, ssrc) = match kind {
            Kind::Audio => synthetic_track(
                RtpCodecKind::Audio,
                "audio/opus",
                48_000,
                2,
                "minptime=10;useinbandfec=1",
            ),
            Kind::Video => synthetic_track(RtpCodecKind::Video, "video/VP8", 90_000, 0, ""),
        };
        self.pc
            .add_track(track.clone() as Arc<dyn TrackLocal>)
            .await
            .expect("add track");
        (track, ssrc)
    }

    /// Sends `count` PLIs for the first remote video track, one every `every` (a keyframe-request
    /// storm); returns how many were handed to the peer connection (0 without remote video).
    pub async fn send_plis(&self, count: usize, every: Duration) -> usize {
        self.send_feedback(count, every, |ssrc| {
            Box::new(
                rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
                    sender_ssrc: 1,
                    media_ssrc: ssrc,
                },
            )
        })
        .await
    }

    /// Sends `count` NACKs, one every `every`, each for 17 packets from the start of the
    /// sequence space, naming `media_ssrc` (another participant's SSRC, for a spoofing test) or
    /// else the SSRC of the first remote video track; returns how many were handed to the peer
    /// connection (0 without remote video).
    pub async fn send_nacks(
        &self,
        count: usize,
        every: Duration,
        media_ssrc: Option<u32>,
    ) -> usize {
        use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
        self.send_feedback(count, every, move |ssrc| {
            Box::new(TransportLayerNack {
                sender_ssrc: 1,
                media_ssrc: media_ssrc.unwrap_or(ssrc),
                nacks: vec![NackPair {
                    packet_id: 1,
                    lost_packets: 0xffff,
                }],
            })
        })
        .await
    }

    /// Writes `count` RTCP packets made by `make(remote video SSRC)` on the first remote video
    /// track's receiver, one every `every`.
    async fn send_feedback(
        &self,
        count: usize,
        every: Duration,
        make: impl Fn(u32) -> Box<dyn rtc::rtcp::Packet>,
    ) -> usize {
        let remote = self
            .received
            .video_remote
            .lock()
            .ok()
            .and_then(|v| v.clone());
        let Some(remote) = remote else {
            return 0;
        };
        let mut sent = 0;
        for _ in 0..count {
            if remote
                .track
                .write_rtcp(vec![make(remote.ssrc)])
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
            tokio::time::sleep(every).await;
        }
        sent
    }

    /// The underlying peer connection (for tests that need more than the helpers).
    pub fn pc(&self) -> &Arc<dyn PeerConnection> {
        &self.pc
    }

    /// Adds only the synthetic Opus track (its `start` writes audio only).
    pub async fn add_synthetic_audio_only(&self) -> SyntheticTracks {
        let audio = synthetic_track(
            RtpCodecKind::Audio,
            "audio/opus",
            48_000,
            2,
            "minptime=10;useinbandfec=1",
        );
        self.pc
            .add_track(audio.0.clone() as Arc<dyn TrackLocal>)
            .await
            .expect("add track");
        SyntheticTracks {
            audio: audio.0,
            audio_ssrc: audio.1,
            video: None,
        }
    }

    /// Creates an offer, waits (≤ 5 s) for candidate gathering and returns the full SDP.
    pub async fn offer(&self) -> String {
        let _guard = self.sdp_lock.lock().await;
        let offer = self.pc.create_offer(None).await.expect("create offer");
        let gathered = self.gathered.notified();
        self.pc
            .set_local_description(offer)
            .await
            .expect("set local offer");
        if !self.gathering_complete.load(Ordering::SeqCst) {
            let _ = tokio::time::timeout(Duration::from_secs(5), gathered).await;
        }
        self.pc
            .local_description()
            .await
            .expect("local description")
            .sdp
    }

    /// Creates an ICE-restart offer (new ufrag/pwd), waits (≤ 5 s) for gathering.
    pub async fn restart_offer(&self) -> String {
        let _guard = self.sdp_lock.lock().await;
        let options = rtc::peer_connection::configuration::RTCOfferOptions { ice_restart: true };
        let offer = self
            .pc
            .create_offer(Some(options))
            .await
            .expect("create offer");
        self.pc
            .set_local_description(offer)
            .await
            .expect("set local offer");
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.offer_sdp_unlocked().await
    }

    /// Trickles the passive TCP candidates of `answer` to the peer (webrtc-rs dials them).
    pub async fn add_tcp_candidates_from(&self, answer: &str) -> usize {
        let mut n = 0;
        for line in answer.lines() {
            let line = line.trim_end();
            let Some(c) = line.strip_prefix("a=") else {
                continue;
            };
            if c.starts_with("candidate:") && c.contains(" tcp ") && c.contains("passive") {
                let init = webrtc::peer_connection::RTCIceCandidateInit {
                    candidate: c.to_string(),
                    sdp_mid: Some("0".into()),
                    sdp_mline_index: Some(0),
                    ..Default::default()
                };
                self.pc
                    .add_ice_candidate(init)
                    .await
                    .expect("add candidate");
                n += 1;
            }
        }
        n
    }

    async fn offer_sdp_unlocked(&self) -> String {
        self.pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .unwrap_or_default()
    }

    /// Our current local description's SDP.
    pub async fn offer_sdp(&self) -> String {
        self.pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .unwrap_or_default()
    }

    /// Applies the remote answer to our offer.
    pub async fn accept_answer(&self, sdp: String) {
        let _guard = self.sdp_lock.lock().await;
        let answer = RTCSessionDescription::answer(sdp).expect("answer sdp");
        self.pc
            .set_remote_description(answer)
            .await
            .expect("set remote answer");
    }

    /// Answers a remote (server-initiated) offer.
    pub async fn answer(&self, sdp: String) -> String {
        let _guard = self.sdp_lock.lock().await;
        let offer = RTCSessionDescription::offer(sdp).expect("offer sdp");
        self.pc
            .set_remote_description(offer)
            .await
            .expect("set remote offer");
        let answer = self.pc.create_answer(None).await.expect("create answer");
        self.pc
            .set_local_description(answer)
            .await
            .expect("set local answer");
        self.pc
            .local_description()
            .await
            .expect("local description")
            .sdp
    }

    /// What this peer has received so far.
    pub fn received(&self) -> &Received {
        &self.received
    }

    /// Waits until the peer connection is connected; `false` on timeout or failure.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut state = self.state.clone();
        let wait = state.wait_for(|s| {
            matches!(
                s,
                RTCPeerConnectionState::Connected | RTCPeerConnectionState::Failed
            )
        });
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(s)) => *s == RTCPeerConnectionState::Connected,
            _ => false,
        }
    }

    /// Waits until at least `min` packets of `kind` arrived; returns the count reached.
    pub async fn wait_packets(&self, kind: Kind, min: u64, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let n = self.received.packets(kind);
            if n >= min || tokio::time::Instant::now() >= deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Closes the peer connection (bounded).
    pub async fn close(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(3), self.pc.close()).await;
    }
}

pub(crate) fn synthetic_track(
    kind: RtpCodecKind,
    mime: &str,
    clock_rate: u32,
    channels: u16,
    fmtp: &str,
) -> (Arc<TrackLocalStaticRTP>, u32) {
    let ssrc = rand_ssrc();
    let label = if kind == RtpCodecKind::Audio {
        "audio"
    } else {
        "video"
    };
    let track = MediaStreamTrack::new(
        format!("synthetic-{ssrc}"),
        format!("{label}-{ssrc}"),
        label.to_string(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            active: true,
            codec: RTCRtpCodec {
                mime_type: mime.to_string(),
                clock_rate,
                channels,
                sdp_fmtp_line: fmtp.to_string(),
                rtcp_feedback: vec![],
            },
            ..Default::default()
        }],
    );
    (Arc::new(TrackLocalStaticRTP::new(track)), ssrc)
}

pub(crate) fn rand_ssrc() -> u32 {
    static NEXT: AtomicU64 = AtomicU64::new(0x1000);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Distinct, non-zero, and not sequential across processes' runs mattering little here.
    (n as u32).wrapping_mul(2_654_435_761) | 1
}

/// The synthetic audio and video tracks of one peer.
pub struct SyntheticTracks {
    audio: Arc<TrackLocalStaticRTP>,
    audio_ssrc: u32,
    video: Option<(Arc<TrackLocalStaticRTP>, u32)>,
}

impl SyntheticTracks {
    /// Starts writing 20 ms Opus packets (50/s) and one-packet VP8 keyframes at 30 fps until the
    /// returned handle is dropped or aborted. Writes before the track is bound are skipped.
    pub fn start(self) -> Publisher {
        let audio = tokio::spawn(write_loop(
            self.audio,
            self.audio_ssrc,
            OPUS_PT,
            Duration::from_millis(20),
            960,
            || Bytes::from_static(&[0xFC, 0xFF, 0xFE]),
            false,
        ));
        let mut tasks = vec![audio];
        if let Some((video, ssrc)) = self.video {
            tasks.push(tokio::spawn(write_loop(
                video,
                ssrc,
                VP8_PT,
                Duration::from_millis(33),
                3000,
                vp8_keyframe,
                true,
            )));
        }
        Publisher { tasks }
    }
}

/// Writes one-packet VP8 keyframes at 30 fps on `track`, payloads ending in `marker`.
pub(crate) fn start_vp8(track: Arc<TrackLocalStaticRTP>, ssrc: u32, marker: u8) -> JoinHandle<()> {
    tokio::spawn(write_loop(
        track,
        ssrc,
        VP8_PT,
        Duration::from_millis(33),
        3000,
        move || {
            let mut p = vp8_keyframe().to_vec();
            p.push(marker);
            Bytes::from(p)
        },
        true,
    ))
}

/// A VP8 RTP payload: descriptor with S=1, PID=0, then a keyframe header (P bit clear, start
/// code, 16x16) and a few bytes of "picture". Decoders would reject it; the SFU only
/// depacketizes, so it passes as a frame.
fn vp8_keyframe() -> Bytes {
    let mut p = vec![
        0x10, 0x50, 0x01, 0x00, 0x9D, 0x01, 0x2A, 0x10, 0x00, 0x10, 0x00,
    ];
    p.extend_from_slice(&[0x5A; 64]);
    Bytes::from(p)
}

async fn write_loop(
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    every: Duration,
    ts_step: u32,
    payload: impl Fn() -> Bytes,
    marker: bool,
) {
    let mut seq: u16 = 1;
    let mut ts: u32 = 1000;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let packet = rtp::Packet {
            header: rtp::Header {
                version: 2,
                marker,
                payload_type,
                sequence_number: seq,
                timestamp: ts,
                ssrc,
                ..Default::default()
            },
            payload: payload(),
        };
        let _ = track.write_rtp(packet).await;
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(ts_step);
    }
}

/// Running synthetic publishers; dropping it stops them.
pub struct Publisher {
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

impl Drop for Publisher {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
