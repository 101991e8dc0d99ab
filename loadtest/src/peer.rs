//! One synthetic WebRTC participant: a str0m `Rtc` in client mode (full ICE, DTLS client or
//! server as negotiated) with its own UDP socket on 127.0.0.1, driven by one tokio task.
//!
//! Many peers share a few runtime threads. A publisher sends Opus (20 ms) and VP8 (30 fps,
//! keyframe every 2 s or on PLI/FIR); every peer receives whatever the server offers and records
//! frames, RTP packets, gaps and end-to-end latency in [`Stats`]. str0m answers like a browser:
//! RTCP receiver reports, NACK and TWCC feedback for what it receives.
//!
//! Signalling is abstracted as two channels of SDP ([`SigIn`], [`SigOut`]); `consultroom`,
//! `sfu_host` and `janus` bridge them to their server's API. Every loop is bounded by `until`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Rid};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::media::{self, AUDIO_INTERVAL, KEYFRAME_INTERVAL, VIDEO_INTERVAL};
use crate::stats::Stats;

/// What a peer does.
#[derive(Debug, Clone, Copy)]
pub struct PeerSpec {
    /// Publishes one audio and one video track.
    pub publish: bool,
    /// Sends the first offer (a subscriber-only peer offers a data channel). When false the peer
    /// waits for the server's offer (Janus subscribers).
    pub offer_first: bool,
    /// Local address: 127.0.0.1, or the private namespace's address for Janus (see `netns`).
    pub bind: std::net::IpAddr,
}

/// Signalling towards the peer.
#[derive(Debug)]
pub enum SigIn {
    Offer(String),
    Answer(String),
    /// A trickled remote candidate line (`candidate:...`).
    Candidate(String),
}

/// Signalling from the peer.
#[derive(Debug)]
pub enum SigOut {
    Offer(String),
    Answer(String),
    Connected,
}

/// Where a peer's media goes: per received mid, whether it is video and the last probe seq.
struct RecvTrack {
    video: bool,
    last_seq: Option<u32>,
}

struct SendTrack {
    mid: Mid,
    seq: u32,
    next: Instant,
}

/// The state of one peer task.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    stats: Arc<Stats>,
    out: mpsc::Sender<SigOut>,
    pending: Option<SdpPendingOffer>,
    recv: HashMap<Mid, RecvTrack>,
    audio: Option<SendTrack>,
    video: Option<SendTrack>,
    connected: bool,
    keyframe_due: bool,
    last_key: Option<Instant>,
}

/// Runs one peer until `until`, the signalling closes, or the session fails.
pub async fn run(
    spec: PeerSpec,
    stats: Arc<Stats>,
    mut sig_in: mpsc::Receiver<SigIn>,
    out: mpsc::Sender<SigOut>,
    until: Instant,
) -> anyhow::Result<()> {
    let socket = UdpSocket::bind(SocketAddr::new(spec.bind, 0)).await?;
    let local = socket.local_addr()?;
    let mut rtc = RtcConfig::new()
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").context("host candidate")?);
    let mut peer = Peer {
        rtc,
        socket,
        local,
        stats,
        out,
        pending: None,
        recv: HashMap::new(),
        audio: None,
        video: None,
        connected: false,
        keyframe_due: true,
        last_key: None,
    };
    if spec.offer_first {
        let mut api = peer.rtc.sdp_api();
        let mut mids = None;
        if spec.publish {
            let a = api.add_media(
                MediaKind::Audio,
                Direction::SendOnly,
                Some("lt".into()),
                None,
                None,
            );
            let v = api.add_media(
                MediaKind::Video,
                Direction::SendOnly,
                Some("lt".into()),
                None,
                None,
            );
            mids = Some((a, v));
        } else {
            api.add_channel("lt".into());
        }
        let (offer, pending) = api.apply().ok_or_else(|| anyhow!("nothing to offer"))?;
        // Media we add ourselves raises no `MediaAdded`: start the send tracks here.
        if let Some((a, v)) = mids {
            let next = Instant::now();
            peer.audio = Some(SendTrack {
                mid: a,
                seq: 0,
                next,
            });
            peer.video = Some(SendTrack {
                mid: v,
                seq: 0,
                next,
            });
        }
        peer.pending = Some(pending);
        peer.out.send(SigOut::Offer(offer.to_sdp_string())).await?;
    }
    let result = peer.drive(&mut sig_in, until).await;
    peer.rtc.disconnect();
    if let Err(e) = &result {
        // Only the first few, so a mass failure does not flood the terminal.
        if peer.stats.failed.fetch_add(1, Relaxed) < 3 {
            eprintln!("peer failed: {e:#}");
        }
    }
    result
}

impl Peer {
    async fn drive(
        &mut self,
        sig_in: &mut mpsc::Receiver<SigIn>,
        until: Instant,
    ) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 2048];
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            self.send_media(now);
            let timeout = self.poll().await?;
            let mut wake = timeout.min(until);
            for t in [&self.audio, &self.video].into_iter().flatten() {
                wake = wake.min(t.next);
            }
            tokio::select! {
                msg = sig_in.recv() => match msg {
                    None => return Ok(()),
                    Some(m) => self.signal(m).await?,
                },
                res = self.socket.recv_from(&mut buf) => {
                    let (n, source) = res?;
                    self.input(&buf[..n], source);
                    // Drain what else is queued before polling again.
                    for _ in 0..32 {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, source)) => self.input(&buf[..n], source),
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    self.rtc.handle_input(Input::Timeout(Instant::now()))?;
                }
            }
        }
    }

    fn input(&mut self, data: &[u8], source: SocketAddr) {
        receive(&mut self.rtc, self.local, data, source);
    }

    async fn signal(&mut self, msg: SigIn) -> anyhow::Result<()> {
        match msg {
            SigIn::Offer(sdp) => {
                let offer = SdpOffer::from_sdp_string(&sdp)?;
                // Glare: the server's offer wins; ours is dropped (str0m rolls it back).
                self.pending = None;
                let answer = self.rtc.sdp_api().accept_offer(offer)?;
                self.out
                    .send(SigOut::Answer(answer.to_sdp_string()))
                    .await?;
            }
            SigIn::Answer(sdp) => {
                let answer = SdpAnswer::from_sdp_string(&sdp)?;
                if let Some(pending) = self.pending.take() {
                    self.rtc.sdp_api().accept_answer(pending, answer)?;
                }
            }
            SigIn::Candidate(line) => {
                let line = line.trim().trim_start_matches("a=");
                if let Ok(c) = Candidate::from_sdp_string(line)
                    && c.addr().ip().is_loopback()
                {
                    self.rtc.add_remote_candidate(c);
                }
            }
        }
        Ok(())
    }

    /// Polls the `Rtc` until it asks for a timeout; returns that instant.
    async fn poll(&mut self) -> anyhow::Result<Instant> {
        // Bounded: an `Rtc` yields a timeout after its queued output.
        for _ in 0..100_000 {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(e) => self.event(e).await?,
            }
        }
        Ok(Instant::now() + Duration::from_millis(1))
    }

    async fn event(&mut self, e: Event) -> anyhow::Result<()> {
        match e {
            Event::Connected => {
                self.connected = true;
                self.stats.connected.fetch_add(1, Relaxed);
                let _ = self.out.send(SigOut::Connected).await;
            }
            Event::MediaAdded(m) => {
                let now = Instant::now();
                if m.direction.is_sending() {
                    let t = SendTrack {
                        mid: m.mid,
                        seq: 0,
                        next: now,
                    };
                    match m.kind {
                        MediaKind::Audio => self.audio = Some(t),
                        MediaKind::Video => self.video = Some(t),
                    }
                } else {
                    self.recv.insert(
                        m.mid,
                        RecvTrack {
                            video: m.kind == MediaKind::Video,
                            last_seq: None,
                        },
                    );
                }
            }
            Event::MediaData(d) => {
                let (first, last): (u64, u64) = (**d.seq_range.start(), **d.seq_range.end());
                let packets = last.saturating_sub(first).saturating_add(1);
                let Some(track) = self.recv.get_mut(&d.mid) else {
                    self.stats.frame_received(packets, None);
                    return Ok(());
                };
                let probe = media::read_probe(&d.data, track.video);
                let latency = probe.map(|(_, sent)| media::now_micros().saturating_sub(sent));
                if let Some((seq, _)) = probe {
                    if let Some(last) = track.last_seq
                        && seq > last + 1
                    {
                        self.stats
                            .frames_lost
                            .fetch_add(u64::from(seq - last - 1), Relaxed);
                    }
                    if track.last_seq.is_none_or(|l| seq > l) {
                        track.last_seq = Some(seq);
                    }
                }
                self.stats.frame_received(packets, latency);
            }
            Event::KeyframeRequest(_) => self.keyframe_due = true,
            _ => {}
        }
        Ok(())
    }

    /// Writes the audio and video frames that are due.
    fn send_media(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        if let Some(t) = self.audio.as_mut()
            && now >= t.next
        {
            let frame = media::opus_frame(t.seq);
            let rtp = MediaTime::from_millis(u64::from(t.seq) * 20);
            if write(&mut self.rtc, t.mid, None, Codec::Opus, now, rtp, frame) {
                self.stats.frames_sent.fetch_add(1, Relaxed);
            }
            t.seq += 1;
            // Never burst to catch up: a late tick moves the schedule.
            t.next = (t.next + AUDIO_INTERVAL).max(now);
        }
        if let Some(t) = self.video.as_mut()
            && now >= t.next
        {
            let key = self.keyframe_due
                || self
                    .last_key
                    .is_none_or(|k| now.duration_since(k) >= KEYFRAME_INTERVAL);
            let frame = media::vp8_frame(t.seq, key);
            let rtp = MediaTime::from_90khz(u64::from(t.seq) * 3000);
            if write(&mut self.rtc, t.mid, None, Codec::Vp8, now, rtp, frame) {
                self.stats.frames_sent.fetch_add(1, Relaxed);
                if key {
                    self.keyframe_due = false;
                    self.last_key = Some(now);
                }
            }
            t.seq += 1;
            t.next = (t.next + VIDEO_INTERVAL).max(now);
        }
    }
}

/// Hands one datagram received on `local` to `rtc` (ignored when it is not for this session).
pub(crate) fn receive(rtc: &mut Rtc, local: SocketAddr, data: &[u8], source: SocketAddr) {
    let Ok(contents) = DatagramRecv::try_from(data) else {
        return;
    };
    let input = Input::Receive(
        Instant::now(),
        Receive {
            proto: Protocol::Udp,
            source,
            destination: local,
            contents,
        },
    );
    if rtc.accepts(&input) {
        let _ = rtc.handle_input(input);
    }
}

/// Writes frame `f` on `mid` (simulcast layer `rid`, if any) with the payload type negotiated
/// for `codec`; false when the m-line or the codec is not (yet) there.
pub(crate) fn write(
    rtc: &mut Rtc,
    mid: Mid,
    rid: Option<Rid>,
    codec: Codec,
    now: Instant,
    rtp: MediaTime,
    f: Vec<u8>,
) -> bool {
    let Some(writer) = rtc.writer(mid) else {
        return false;
    };
    let Some(pt) = writer
        .payload_params()
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt())
    else {
        return false;
    };
    let writer = match rid {
        Some(rid) => writer.rid(rid),
        None => writer,
    };
    writer.write(pt, now, rtp, f).is_ok()
}
