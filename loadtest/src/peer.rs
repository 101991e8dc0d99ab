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
//!
//! The client itself ([`Session`]: `Rtc`, socket, send tracks, SDP exchange) and its event loop
//! ([`drive`]) are shared with the fault-injecting peer of `faults::peer`, which plugs in through
//! [`Hooks`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use str0m::change::{SdpAnswer, SdpApi, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Rid, Simulcast};
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

/// One outgoing track: its m-line, the next frame's number and when that frame is due.
pub(crate) struct SendTrack {
    pub(crate) mid: Mid,
    seq: u32,
    pub(crate) next: Instant,
}

impl SendTrack {
    fn new(mid: Mid, next: Instant) -> SendTrack {
        SendTrack { mid, seq: 0, next }
    }
}

/// What every client peer (this one and `faults::peer`'s) has: its `Rtc` and UDP socket, the
/// offer it is waiting to have answered, its send tracks and their keyframe schedule.
pub(crate) struct Session {
    pub(crate) rtc: Rtc,
    pub(crate) socket: UdpSocket,
    local: SocketAddr,
    pending: Option<SdpPendingOffer>,
    pub(crate) audio: Option<SendTrack>,
    pub(crate) video: Option<SendTrack>,
    pub(crate) connected: bool,
    pub(crate) keyframe_due: bool,
    last_key: Option<Instant>,
}

/// Whether the [`drive`] loop goes on after [`Hooks::turn`].
pub(crate) enum Turn {
    /// Poll the `Rtc` and wait for the next input.
    Run,
    /// Start the next turn at once.
    Again,
    /// End the peer.
    Stop,
}

/// What one kind of client peer adds to the shared [`drive`] loop.
pub(crate) trait Hooks {
    /// Signalling towards the peer.
    type Sig;
    fn session(&mut self) -> &mut Session;
    /// Runs before the `Rtc` is polled (writes what is due to be sent).
    async fn turn(&mut self, now: Instant, until: Instant) -> anyhow::Result<Turn>;
    /// `wake` (the `Rtc`'s timeout, `until`, the send tracks), lowered for the peer's own timers.
    fn wake(&self, _now: Instant, wake: Instant) -> Instant {
        wake
    }
    /// An `Rtc` event, after [`Session::observe`] has seen it.
    async fn event(&mut self, e: Event) -> anyhow::Result<()>;
    async fn signal(&mut self, msg: Self::Sig) -> anyhow::Result<()>;
    /// One datagram from the socket.
    fn arrived(&mut self, data: &[u8], source: SocketAddr) {
        self.session().input(data, source);
    }
}

/// Runs one peer until `until`, the signalling closes, or the session fails.
pub async fn run(
    spec: PeerSpec,
    stats: Arc<Stats>,
    mut sig_in: mpsc::Receiver<SigIn>,
    out: mpsc::Sender<SigOut>,
    until: Instant,
) -> anyhow::Result<()> {
    let mut peer = Peer {
        session: Session::bind(spec.bind).await?,
        stats,
        out,
        recv: HashMap::new(),
    };
    if spec.offer_first {
        let mut api = peer.session.rtc.sdp_api();
        let mut mids = None;
        if spec.publish {
            mids = Some(add_send_media(&mut api, None));
        } else {
            api.add_channel("lt".into());
        }
        let (offer, pending) = api.apply().ok_or_else(|| anyhow!("nothing to offer"))?;
        peer.session.offered(pending, mids);
        peer.out.send(SigOut::Offer(offer.to_sdp_string())).await?;
    }
    let result = drive(&mut peer, &mut sig_in, until).await;
    peer.session.rtc.disconnect();
    if let Err(e) = &result {
        // Only the first few, so a mass failure does not flood the terminal.
        if peer.stats.failed.fetch_add(1, Relaxed) < 3 {
            eprintln!("peer failed: {e:#}");
        }
    }
    result
}

/// Adds the send-only audio and video m-lines (stream `lt`; the video in `simulcast` layers, if
/// any) to an offer; returns their mids.
pub(crate) fn add_send_media(api: &mut SdpApi<'_>, simulcast: Option<Simulcast>) -> (Mid, Mid) {
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
        simulcast,
    );
    (a, v)
}

/// Counts probe `seq` against the last one seen on an m-line: returns how many frames are
/// missing before it, and moves `last` forward.
pub(crate) fn advance_seq(last: &mut Option<u32>, seq: u32) -> u64 {
    let mut lost = 0;
    if let Some(l) = *last
        && seq > l + 1
    {
        lost = u64::from(seq - l - 1);
    }
    if last.is_none_or(|l| seq > l) {
        *last = Some(seq);
    }
    lost
}

/// Runs `peer` until `until`, its signalling closes, [`Hooks::turn`] stops it, or an error.
pub(crate) async fn drive<P: Hooks>(
    peer: &mut P,
    sig_in: &mut mpsc::Receiver<P::Sig>,
    until: Instant,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        match peer.turn(now, until).await? {
            Turn::Run => {}
            Turn::Again => continue,
            Turn::Stop => return Ok(()),
        }
        let timeout = poll(peer).await?;
        let wake = peer.session().wake(timeout.min(until));
        let wake = peer.wake(now, wake);
        tokio::select! {
            msg = sig_in.recv() => match msg {
                None => return Ok(()),
                Some(m) => peer.signal(m).await?,
            },
            res = peer.session().socket.recv_from(&mut buf) => {
                let (n, source) = res?;
                peer.arrived(&buf[..n], source);
                // Drain what else is queued before polling again.
                for _ in 0..32 {
                    match peer.session().socket.try_recv_from(&mut buf) {
                        Ok((n, source)) => peer.arrived(&buf[..n], source),
                        Err(_) => break,
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                peer.session().rtc.handle_input(Input::Timeout(Instant::now()))?;
            }
        }
    }
}

/// Polls the peer's `Rtc` until it asks for a timeout; returns that instant.
async fn poll<P: Hooks>(peer: &mut P) -> anyhow::Result<Instant> {
    // Bounded: an `Rtc` yields a timeout after its queued output.
    for _ in 0..100_000 {
        let session = peer.session();
        match session.rtc.poll_output()? {
            Output::Timeout(t) => return Ok(t),
            Output::Transmit(t) => {
                let _ = session.socket.try_send_to(&t.contents, t.destination);
            }
            Output::Event(e) => {
                session.observe(&e);
                peer.event(e).await?;
            }
        }
    }
    Ok(Instant::now() + Duration::from_millis(1))
}

impl Session {
    /// A client `Rtc` (Opus and VP8) with one host candidate: a UDP socket on `bind`.
    pub(crate) async fn bind(bind: std::net::IpAddr) -> anyhow::Result<Session> {
        let socket = UdpSocket::bind(SocketAddr::new(bind, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").context("host candidate")?);
        Ok(Session {
            rtc,
            socket,
            local,
            pending: None,
            audio: None,
            video: None,
            connected: false,
            keyframe_due: true,
            last_key: None,
        })
    }

    /// Our offer went out: keep it for the answer, and start the send tracks of `mids` (media we
    /// add ourselves raises no `MediaAdded`).
    pub(crate) fn offered(&mut self, pending: SdpPendingOffer, mids: Option<(Mid, Mid)>) {
        if let Some((a, v)) = mids {
            let next = Instant::now();
            self.audio = Some(SendTrack::new(a, next));
            self.video = Some(SendTrack::new(v, next));
        }
        self.pending = Some(pending);
    }

    /// Accepts the remote `sdp` offer; returns our answer.
    pub(crate) fn accept_offer(&mut self, sdp: &str) -> anyhow::Result<String> {
        let offer = SdpOffer::from_sdp_string(sdp)?;
        // Glare: the server's offer wins; ours is dropped (str0m rolls it back).
        self.pending = None;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        Ok(answer.to_sdp_string())
    }

    /// Applies the remote `sdp` answer to our pending offer (if any is still pending).
    pub(crate) fn accept_answer(&mut self, sdp: &str) -> anyhow::Result<()> {
        let answer = SdpAnswer::from_sdp_string(sdp)?;
        if let Some(pending) = self.pending.take() {
            self.rtc.sdp_api().accept_answer(pending, answer)?;
        }
        Ok(())
    }

    pub(crate) fn input(&mut self, data: &[u8], source: SocketAddr) {
        receive(&mut self.rtc, self.local, data, source);
    }

    /// What every peer does on an event: note the connection and keyframe requests.
    fn observe(&mut self, e: &Event) {
        match e {
            Event::Connected => self.connected = true,
            Event::KeyframeRequest(_) => self.keyframe_due = true,
            _ => {}
        }
    }

    /// `wake`, or earlier when a send track is due before.
    fn wake(&self, mut wake: Instant) -> Instant {
        for t in [&self.audio, &self.video].into_iter().flatten() {
            wake = wake.min(t.next);
        }
        wake
    }

    /// Writes the audio and video frames that are due, once connected; returns how many went
    /// out. `tag_audio` may mark an Opus frame; `video` writes one VP8 frame (with `rtc`, `mid`,
    /// whether it is a keyframe, its RTP time and the frame), saying whether it went out.
    pub(crate) fn send_media(
        &mut self,
        now: Instant,
        tag_audio: impl FnOnce(&mut [u8]),
        video: impl FnOnce(&mut Rtc, Mid, bool, MediaTime, Vec<u8>) -> bool,
    ) -> u64 {
        if !self.connected {
            return 0;
        }
        let mut sent = 0;
        if let Some(t) = self.audio.as_mut()
            && now >= t.next
        {
            let mut frame = media::opus_frame(t.seq);
            tag_audio(&mut frame);
            let rtp = MediaTime::from_millis(u64::from(t.seq) * 20);
            if write(&mut self.rtc, t.mid, None, Codec::Opus, now, rtp, frame) {
                sent += 1;
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
            if video(&mut self.rtc, t.mid, key, rtp, frame) {
                sent += 1;
                if key {
                    self.keyframe_due = false;
                    self.last_key = Some(now);
                }
            }
            t.seq += 1;
            t.next = (t.next + VIDEO_INTERVAL).max(now);
        }
        sent
    }
}

/// The state of one peer task.
struct Peer {
    session: Session,
    stats: Arc<Stats>,
    out: mpsc::Sender<SigOut>,
    recv: HashMap<Mid, RecvTrack>,
}

impl Hooks for Peer {
    type Sig = SigIn;

    fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    async fn turn(&mut self, now: Instant, _until: Instant) -> anyhow::Result<Turn> {
        let sent = self.session.send_media(
            now,
            |_| {},
            |rtc, mid, _key, rtp, frame| write(rtc, mid, None, Codec::Vp8, now, rtp, frame),
        );
        if sent > 0 {
            self.stats.frames_sent.fetch_add(sent, Relaxed);
        }
        Ok(Turn::Run)
    }

    async fn signal(&mut self, msg: SigIn) -> anyhow::Result<()> {
        match msg {
            SigIn::Offer(sdp) => {
                let answer = self.session.accept_offer(&sdp)?;
                self.out.send(SigOut::Answer(answer)).await?;
            }
            SigIn::Answer(sdp) => self.session.accept_answer(&sdp)?,
            SigIn::Candidate(line) => {
                let line = line.trim().trim_start_matches("a=");
                if let Ok(c) = Candidate::from_sdp_string(line)
                    && c.addr().ip().is_loopback()
                {
                    self.session.rtc.add_remote_candidate(c);
                }
            }
        }
        Ok(())
    }

    async fn event(&mut self, e: Event) -> anyhow::Result<()> {
        match e {
            Event::Connected => {
                self.stats.connected.fetch_add(1, Relaxed);
                let _ = self.out.send(SigOut::Connected).await;
            }
            Event::MediaAdded(m) => {
                if m.direction.is_sending() {
                    let t = SendTrack::new(m.mid, Instant::now());
                    match m.kind {
                        MediaKind::Audio => self.session.audio = Some(t),
                        MediaKind::Video => self.session.video = Some(t),
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
                    let lost = advance_seq(&mut track.last_seq, seq);
                    if lost > 0 {
                        self.stats.frames_lost.fetch_add(lost, Relaxed);
                    }
                }
                self.stats.frame_received(packets, latency);
            }
            _ => {}
        }
        Ok(())
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
