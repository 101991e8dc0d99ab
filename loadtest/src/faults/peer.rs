//! The str0m client peer of `loadtest faults`: the client of `crate::peer` (its [`Session`] and
//! [`drive`] loop: full ICE, DTLS, Opus 20 ms + VP8 30 fps frames from `crate::media` carrying
//! the latency/loss probe), with the [`Hooks`] the fault scenarios need, all on 127.0.0.1 and
//! bounded by `until`:
//!
//! - **freeze** (`Shared::frozen`): the peer stops all processing and sending (no STUN, no
//!   RTCP, no media, no signalling), as a process stopped with SIGSTOP; its UDP socket is still
//!   read, but only to count the datagrams the server keeps sending and when the last arrived
//!   (the kernel buffer of a frozen process still receives).
//! - **impairment** (`Shared::impaired`): this kernel has no netem, so loss, delay and rate are
//!   applied in-process on the receive path, before str0m sees a datagram (see [`Impairment`]).
//! - **simulcast** publishing (three VP8 layers with distinct keyframe sizes and bitrates).
//! - **SSRC hijack** (`Shared::spoof`): a publisher's extra send-only video m-line is moved onto
//!   another participant's SSRC (str0m direct API `reset_stream_tx`) and carries frames marked
//!   `SPOF`; keyframe requests are sent naming that participant's SSRC, and legitimately on the
//!   peer's own down track of it.
//! - per publisher accounting of what arrives (publisher = the msid `participant-<n>` of the
//!   m-line in the server's offer), keyframe requests received, offers that stopped m-lines.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde_json::{Value, json};
use str0m::format::Codec;
use str0m::media::{
    Direction, KeyframeRequestKind, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::rtp::Ssrc;
use str0m::{Event, Output};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::media::{self, VIDEO_INTERVAL};
use crate::peer::{Hooks, Session, Turn, add_send_media, advance_seq, drive, write};
use crate::sfu_host;

/// Where a video frame carries the publisher's tag and the layer index (after the probe).
const VIDEO_TAG_AT: usize = 28;
/// Where an audio frame carries the publisher's tag (after the probe).
const AUDIO_TAG_AT: usize = 17;
/// Spoofed video frames carry this instead of the probe magic (so `read_probe` ignores them).
const SPOOF_MAGIC: [u8; 4] = *b"SPOF";
const SPOOF_AT: usize = 12;
/// Keyframe requests per second a spoofer sends (each way: naming the victim's SSRC, and on
/// its own down track of the victim's video).
const SPOOF_PLI_INTERVAL: Duration = Duration::from_millis(20);

/// Simulcast layers: rid, keyframe width × height, divisor of the regular (~600 kbit/s) frame
/// size. About 75, 200 and 600 kbit/s; ordered low to high.
pub const LAYERS: [(&str, u16, u16, usize); 3] =
    [("q", 320, 180, 8), ("h", 640, 360, 3), ("f", 1280, 720, 1)];

/// The receive-path impairment standing in for `tc netem` (this kernel has none): applied to
/// every datagram arriving at the peer's socket, in netem's order — random loss, then a token
/// bucket rate limit whose excess is dropped, then a fixed delay before str0m sees it.
pub const IMPAIR_LOSS: f64 = 0.30;
pub const IMPAIR_DELAY: Duration = Duration::from_millis(200);
pub const IMPAIR_RATE_BPS: f64 = 300_000.0;
/// Token bucket depth: 16 KB, about 430 ms at 300 kbit/s (a keyframe fits when the bucket is
/// full, a sustained excess does not).
pub const IMPAIR_BUCKET_BYTES: f64 = 16_000.0;
/// Most datagrams held in the delay line (bounded: 200 ms at 300 kbit/s is ~30).
const DELAY_LINE_MAX: usize = 4096;

/// What a peer publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Subscriber only (offers a data channel, like `crate::peer`).
    No,
    /// One Opus and one VP8 track.
    Plain,
    /// One Opus track and one VP8 track in three simulcast layers ([`LAYERS`]).
    Simulcast,
}

/// How a peer is set up.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    pub publish: Publish,
    /// Written into every frame, so receivers can check whose media they got.
    pub tag: u8,
    /// Adds a second send-only video m-line that stays silent until a spoof target is set.
    pub spoof_mline: bool,
}

/// Another participant's SSRCs, learnt out of band, for the hijack.
#[derive(Debug, Clone, Copy)]
pub struct SpoofTarget {
    /// The victim's participant id (to find our own down track of its video).
    pub victim: u64,
    pub video: Ssrc,
    pub video_rtx: Option<Ssrc>,
}

/// What arrived from one publisher (audio and video together, except where noted).
#[derive(Debug, Clone, Default)]
pub struct TrackLog {
    pub frames: u64,
    /// Gaps in the probe sequence, per m-line.
    pub lost: u64,
    /// Frames marked as spoofed.
    pub spoofed: u64,
    /// Video frames per simulcast layer index (0 = plain or lowest).
    pub layers: [u64; LAYERS.len()],
    /// End-to-end latency samples (µs); drained by the scenario at phase boundaries.
    pub latency_us: Vec<u64>,
    /// Publisher write → arrival of the frame's first packet at str0m (after any impairment
    /// delay): the latency without the receiver's wait for retransmissions (µs).
    pub arrival_us: Vec<u64>,
    pub last_frame: Option<Instant>,
    /// Longest time between two frames since the scenario last reset it.
    pub max_gap: Duration,
}

/// Everything a scenario reads from or sets on a peer.
#[derive(Debug, Default)]
pub struct State {
    pub connected: bool,
    pub failed: Option<String>,
    /// Raw socket arrivals (before any impairment; also while frozen).
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub last_rx: Option<Instant>,
    /// Impairment: datagrams dropped by the random loss, by the token bucket, and delivered.
    pub impair_lost: u64,
    pub impair_rate_dropped: u64,
    pub impair_delivered: u64,
    /// Received media by publisher id (0 when the m-line's msid is unknown).
    pub tracks: HashMap<u64, TrackLog>,
    /// Server offers received, and when an offer first made every m-line of a publisher
    /// inactive.
    pub offers: u64,
    pub inactive_at: HashMap<u64, Instant>,
    /// Keyframe requests (PLI/FIR) this peer received for what it publishes.
    pub keyframe_requests: u64,
    /// Our own published SSRCs: (kind, ssrc, rtx).
    pub own_ssrcs: Vec<(MediaKind, Ssrc, Option<Ssrc>)>,
    /// Spoofing done: frames written on the hijacked SSRC, keyframe requests naming the
    /// victim's SSRC, keyframe requests on our own down track of the victim's video.
    pub spoof_frames: u64,
    pub spoof_plis: u64,
    pub legit_plis: u64,
    pub spoof_started: Option<Instant>,
}

/// Shared between a peer task and its scenario.
#[derive(Debug, Default)]
pub struct Shared {
    pub frozen: AtomicBool,
    pub impaired: AtomicBool,
    /// Close the session politely (str0m `Rtc::close`: RTCP BYE for every SSRC we send on,
    /// a hijacked one included, then DTLS close_notify) and end the peer.
    pub close: AtomicBool,
    pub spoof: Mutex<Option<SpoofTarget>>,
    state: Mutex<State>,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn spoof_target(&self) -> Option<SpoofTarget> {
        *self.spoof.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One m-line as the server's offer describes it.
#[derive(Debug, Clone)]
struct MLine {
    publisher: u64,
    video: bool,
    inactive: bool,
}

/// Parses `(mid, publisher, video, inactive)` of every m-line with a `participant-<n>` msid.
fn parse_offer(sdp: &str) -> Vec<(String, MLine)> {
    let mut out = Vec::new();
    let mut current: Option<(Option<String>, MLine)> = None;
    let flush = |c: Option<(Option<String>, MLine)>, out: &mut Vec<(String, MLine)>| {
        if let Some((Some(mid), m)) = c
            && m.publisher != 0
        {
            out.push((mid, m));
        }
    };
    for line in sdp.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("m=") {
            flush(current.take(), &mut out);
            current = Some((
                None,
                MLine {
                    publisher: 0,
                    video: rest.starts_with("video"),
                    inactive: false,
                },
            ));
        } else if let Some((mid, m)) = current.as_mut() {
            if let Some(v) = line.strip_prefix("a=mid:") {
                *mid = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("a=msid:participant-") {
                let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
                m.publisher = digits.parse().unwrap_or(0);
            } else if line == "a=inactive" {
                m.inactive = true;
            }
        }
    }
    flush(current.take(), &mut out);
    out
}

/// The in-process netem stand-in (see the `IMPAIR_*` constants).
struct Impairment {
    rng: u64,
    tokens: f64,
    refilled: Instant,
    line: VecDeque<(Instant, Vec<u8>, SocketAddr)>,
}

impl Impairment {
    fn new(now: Instant) -> Impairment {
        Impairment {
            rng: 0x9E37_79B9_7F4A_7C15,
            tokens: IMPAIR_BUCKET_BYTES,
            refilled: now,
            line: VecDeque::new(),
        }
    }

    fn uniform(&mut self) -> f64 {
        // xorshift64*: deterministic, so runs are comparable.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Takes one arriving datagram: lost, rate-dropped, or queued for `now + IMPAIR_DELAY`.
    fn admit(&mut self, data: &[u8], source: SocketAddr, now: Instant, state: &mut State) {
        if self.uniform() < IMPAIR_LOSS {
            state.impair_lost += 1;
            return;
        }
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * IMPAIR_RATE_BPS / 8.0).min(IMPAIR_BUCKET_BYTES);
        let cost = data.len() as f64;
        if self.tokens < cost || self.line.len() >= DELAY_LINE_MAX {
            state.impair_rate_dropped += 1;
            return;
        }
        self.tokens -= cost;
        state.impair_delivered += 1;
        self.line
            .push_back((now + IMPAIR_DELAY, data.to_vec(), source));
    }
}

struct Peer {
    session: Session,
    opts: Opts,
    shared: Arc<Shared>,
    out: mpsc::Sender<Value>,
    /// Received m-lines: publisher, video, last probe seq.
    recv: HashMap<Mid, (u64, bool, Option<u32>)>,
    spoof_mid: Option<Mid>,
    spoof_seq: u32,
    spoof_next: Instant,
    spoof_applied: bool,
    next_pli: Instant,
    impair: Impairment,
}

/// Joins `room` as `id` through the `loadtest sfu-server` control channel and runs the peer
/// until `until` (or the control connection closes). Errors are also left in `State::failed`.
pub async fn participant(
    control: SocketAddr,
    room: u64,
    id: u64,
    opts: Opts,
    shared: Arc<Shared>,
    until: Instant,
) -> anyhow::Result<()> {
    let r = run(control, room, id, opts, shared.clone(), until).await;
    if let Err(e) = &r {
        shared.state().failed = Some(format!("{e:#}"));
    }
    r
}

async fn run(
    control: SocketAddr,
    room: u64,
    id: u64,
    opts: Opts,
    shared: Arc<Shared>,
    until: Instant,
) -> anyhow::Result<()> {
    let (read, mut write) = sfu_host::join(control, room, id).await?;
    let (in_tx, mut in_rx) = mpsc::channel::<Value>(16);
    let (out_tx, mut out_rx) = mpsc::channel::<Value>(16);
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if matches!(v["t"].as_str(), Some("offer" | "answer")) && in_tx.send(v).await.is_err() {
                break;
            }
        }
    });
    let writer = tokio::spawn(async move {
        while let Some(v) = out_rx.recv().await {
            if write.write_all(format!("{v}\n").as_bytes()).await.is_err() {
                break;
            }
        }
        // Keep the control connection (the SFU seat) until the peer ends.
        write
    });

    let session = Session::bind(std::net::Ipv4Addr::LOCALHOST.into()).await?;
    let now = Instant::now();
    let mut peer = Peer {
        session,
        opts,
        shared,
        out: out_tx,
        recv: HashMap::new(),
        spoof_mid: None,
        spoof_seq: 0,
        spoof_next: now,
        spoof_applied: false,
        next_pli: now,
        impair: Impairment::new(now),
    };
    peer.first_offer().await?;
    let result = drive(&mut peer, &mut in_rx, until).await;
    peer.session.rtc.disconnect();
    reader.abort();
    drop(peer);
    let _ = writer.await;
    result
}

impl Hooks for Peer {
    type Sig = Value;

    fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    async fn turn(&mut self, now: Instant, until: Instant) -> anyhow::Result<Turn> {
        if self.shared.frozen.load(Relaxed) {
            self.frozen(until).await?;
            return Ok(Turn::Again);
        }
        if self.shared.close.load(Relaxed) {
            let Session { rtc, socket, .. } = &mut self.session;
            rtc.close()?;
            // Bounded: a closing `Rtc` has a few datagrams (BYE, close_notify) left.
            for _ in 0..64 {
                match rtc.poll_output() {
                    Ok(Output::Transmit(t)) => {
                        let _ = socket.try_send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Event(_)) => {}
                    Ok(Output::Timeout(_)) | Err(_) => break,
                }
            }
            return Ok(Turn::Stop);
        }
        self.release_delayed(now);
        self.send_media(now);
        self.spoof(now);
        Ok(Turn::Run)
    }

    fn wake(&self, now: Instant, wake: Instant) -> Instant {
        let mut wake = wake.min(now + Duration::from_millis(100));
        if let Some((due, ..)) = self.impair.line.front() {
            wake = wake.min(*due);
        }
        if self.spoof_applied {
            wake = wake.min(self.spoof_next).min(self.next_pli);
        }
        wake
    }

    async fn event(&mut self, e: Event) -> anyhow::Result<()> {
        match e {
            Event::Connected => self.shared.state().connected = true,
            Event::MediaAdded(m) if !m.direction.is_sending() => {
                self.recv
                    .entry(m.mid)
                    .or_insert((0, m.kind == MediaKind::Video, None));
            }
            Event::MediaData(d) => self.media_data(d),
            Event::KeyframeRequest(_) => self.shared.state().keyframe_requests += 1,
            _ => {}
        }
        Ok(())
    }

    async fn signal(&mut self, msg: Value) -> anyhow::Result<()> {
        let sdp = msg["sdp"].as_str().unwrap_or_default();
        match msg["t"].as_str() {
            Some("offer") => {
                self.learn_offer(sdp);
                let answer = self.session.accept_offer(sdp)?;
                self.out.send(json!({"t": "answer", "sdp": answer})).await?;
            }
            Some("answer") => {
                self.session.accept_answer(sdp)?;
                self.record_own_ssrcs();
            }
            _ => {}
        }
        Ok(())
    }

    /// One datagram from the socket: counted, then impaired or handed to str0m.
    fn arrived(&mut self, data: &[u8], source: SocketAddr) {
        self.count_rx(data.len());
        if self.shared.impaired.load(Relaxed) {
            let shared = self.shared.clone();
            let mut state = shared.state();
            self.impair.admit(data, source, Instant::now(), &mut state);
        } else {
            self.session.input(data, source);
        }
    }
}

impl Peer {
    async fn first_offer(&mut self) -> anyhow::Result<()> {
        let mut api = self.session.rtc.sdp_api();
        let mut mids = None;
        let mut spoof = None;
        match self.opts.publish {
            Publish::No => api.add_channel("lt".into()),
            Publish::Plain | Publish::Simulcast => {
                let simulcast = (self.opts.publish == Publish::Simulcast).then(|| {
                    let mut s = Simulcast::new();
                    for (rid, ..) in LAYERS {
                        s.add_send_layer(SimulcastLayer::new(rid));
                    }
                    s
                });
                mids = Some(add_send_media(&mut api, simulcast));
                if self.opts.spoof_mline {
                    spoof = Some(api.add_media(
                        MediaKind::Video,
                        Direction::SendOnly,
                        Some("lt2".into()),
                        None,
                        None,
                    ));
                }
                api.add_channel("lt".into())
            }
        };
        let (offer, pending) = api.apply().ok_or_else(|| anyhow!("nothing to offer"))?;
        self.session.offered(pending, mids);
        self.spoof_mid = spoof;
        self.out
            .send(json!({"t": "offer", "sdp": offer.to_sdp_string()}))
            .await?;
        Ok(())
    }

    /// SIGSTOP stand-in: nothing is processed or sent; arriving datagrams are only counted.
    async fn frozen(&mut self, until: Instant) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 2048];
        while self.shared.frozen.load(Relaxed) {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            let wake = until.min(now + Duration::from_millis(100));
            tokio::select! {
                res = self.session.socket.recv_from(&mut buf) => {
                    let (n, _) = res?;
                    self.count_rx(n);
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        Ok(())
    }

    fn count_rx(&self, n: usize) {
        let mut s = self.shared.state();
        s.rx_packets += 1;
        s.rx_bytes += n as u64;
        s.last_rx = Some(Instant::now());
    }

    /// Feeds str0m the impaired datagrams whose delay has passed.
    fn release_delayed(&mut self, now: Instant) {
        while self
            .impair
            .line
            .front()
            .is_some_and(|(due, ..)| *due <= now)
        {
            if let Some((_, data, source)) = self.impair.line.pop_front() {
                self.session.input(&data, source);
            }
        }
    }

    /// Whose media each m-line of a server offer carries; which publishers it stopped.
    fn learn_offer(&mut self, sdp: &str) {
        let lines = parse_offer(sdp);
        let now = Instant::now();
        let mut s = self.shared.state();
        s.offers += 1;
        let mut by_publisher: HashMap<u64, bool> = HashMap::new();
        for (mid, m) in &lines {
            let mid = Mid::from(mid.as_str());
            let entry = self.recv.entry(mid).or_insert((m.publisher, m.video, None));
            entry.0 = m.publisher;
            entry.1 = m.video;
            let all = by_publisher.entry(m.publisher).or_insert(true);
            *all &= m.inactive;
        }
        for (publisher, all_inactive) in by_publisher {
            if all_inactive {
                s.inactive_at.entry(publisher).or_insert(now);
            }
        }
    }

    fn record_own_ssrcs(&mut self) {
        let mut own = Vec::new();
        for (kind, t) in [
            (MediaKind::Audio, &self.session.audio),
            (MediaKind::Video, &self.session.video),
        ] {
            let Some(t) = t else { continue };
            if let Some(tx) = self.session.rtc.direct_api().stream_tx_by_mid(t.mid, None) {
                own.push((kind, tx.ssrc(), tx.rtx()));
            }
        }
        self.shared.state().own_ssrcs = own;
    }

    fn media_data(&mut self, d: str0m::media::MediaData) {
        let now = Instant::now();
        let video = d.params.spec().codec == Codec::Vp8;
        let (publisher, last_seq) = self
            .recv
            .get(&d.mid)
            .map_or((0, None), |(p, _, last)| (*p, *last));
        let mut s = self.shared.state();
        let log = s.tracks.entry(publisher).or_default();
        if let Some(prev) = log.last_frame {
            log.max_gap = log.max_gap.max(now.saturating_duration_since(prev));
        }
        log.last_frame = Some(now);
        log.frames += 1;
        if d.data.get(SPOOF_AT..SPOOF_AT + 4) == Some(&SPOOF_MAGIC[..]) {
            log.spoofed += 1;
            return;
        }
        let Some((seq, sent)) = media::read_probe(&d.data, video) else {
            return;
        };
        let latency = media::now_micros().saturating_sub(sent);
        let held = now.saturating_duration_since(d.network_time).as_micros() as u64;
        log.latency_us.push(latency);
        log.arrival_us.push(latency.saturating_sub(held));
        if video && let Some(layer) = d.data.get(VIDEO_TAG_AT + 1) {
            let i = usize::from(*layer).min(LAYERS.len() - 1);
            log.layers[i] += 1;
        }
        let mut last = last_seq;
        log.lost += advance_seq(&mut last, seq);
        drop(s);
        if let Some(entry) = self.recv.get_mut(&d.mid) {
            entry.2 = last;
        } else {
            self.recv.insert(d.mid, (publisher, video, last));
        }
    }

    /// Writes the audio and video frames that are due, tagged, the video in simulcast layers
    /// when publishing so.
    fn send_media(&mut self, now: Instant) {
        let tag = self.opts.tag;
        let simulcast = self.opts.publish == Publish::Simulcast;
        self.session.send_media(
            now,
            |frame| {
                if let Some(b) = frame.get_mut(AUDIO_TAG_AT) {
                    *b = tag;
                }
            },
            |rtc, mid, key, rtp, full| {
                if !simulcast {
                    let mut f = full;
                    f[VIDEO_TAG_AT] = tag;
                    f[VIDEO_TAG_AT + 1] = 0;
                    return write(rtc, mid, None, Codec::Vp8, now, rtp, f);
                }
                let mut wrote = false;
                for (i, (rid, w, h, div)) in LAYERS.iter().enumerate() {
                    let mut f = full.clone();
                    f.truncate((f.len() / div).max(VIDEO_TAG_AT + 2));
                    if key {
                        f[6..8].copy_from_slice(&w.to_le_bytes());
                        f[8..10].copy_from_slice(&h.to_le_bytes());
                    }
                    f[VIDEO_TAG_AT] = tag;
                    f[VIDEO_TAG_AT + 1] = i as u8;
                    let rid = Rid::from(*rid);
                    wrote |= write(rtc, mid, Some(rid), Codec::Vp8, now, rtp, f);
                }
                wrote
            },
        );
    }

    /// The hijack, once a target is set: our spare m-line moves onto the victim's SSRC and
    /// carries `SPOF` frames; keyframe requests name the victim's SSRC, and go on our own down
    /// track of the victim's video too (the legitimate path the SFU throttles).
    fn spoof(&mut self, now: Instant) {
        let (Some(mid), true) = (self.spoof_mid, self.session.connected) else {
            return;
        };
        let Some(target) = self.shared.spoof_target() else {
            return;
        };
        if !self.spoof_applied {
            self.spoof_applied = true;
            // Our stream has an RTX SSRC, so a new (different) one must be given.
            let rtx = target.video_rtx.unwrap_or_else(Ssrc::new);
            let mut api = self.session.rtc.direct_api();
            let moved = api
                .reset_stream_tx(mid, None, target.video, Some(rtx))
                .is_some();
            api.expect_stream_rx(target.video, None, mid, None);
            let mut s = self.shared.state();
            s.spoof_started = Some(now);
            if !moved {
                s.failed = Some("could not move the spare m-line onto the victim's SSRC".into());
            }
        }
        if now >= self.spoof_next {
            let mut f = media::vp8_frame(self.spoof_seq, self.spoof_seq.is_multiple_of(60));
            f[SPOOF_AT..SPOOF_AT + 4].copy_from_slice(&SPOOF_MAGIC);
            f[VIDEO_TAG_AT] = self.opts.tag;
            let rtp = MediaTime::from_90khz(u64::from(self.spoof_seq) * 3000);
            if write(&mut self.session.rtc, mid, None, Codec::Vp8, now, rtp, f) {
                self.shared.state().spoof_frames += 1;
            }
            self.spoof_seq += 1;
            self.spoof_next = (self.spoof_next + VIDEO_INTERVAL).max(now);
        }
        if now >= self.next_pli {
            self.next_pli = (self.next_pli + SPOOF_PLI_INTERVAL).max(now);
            let mut spoofed = 0;
            let mut legit = 0;
            let mut api = self.session.rtc.direct_api();
            // str0m turns a pending request on any declared receive stream into a PLI naming
            // its SSRC in the next RTCP feedback (`StreamRx::maybe_create_keyframe_request`).
            // Its ingress stats cannot confirm it: they skip streams that never received bytes.
            if let Some(rx) = api.stream_rx(&target.video) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
                spoofed += 1;
            }
            let own_down = self
                .recv
                .iter()
                .find(|(_, (p, video, _))| *p == target.victim && *video)
                .map(|(mid, _)| *mid);
            if let Some(down) = own_down
                && let Some(rx) = api.stream_rx_by_mid(down, None)
            {
                rx.request_keyframe(KeyframeRequestKind::Pli);
                legit += 1;
            }
            let mut s = self.shared.state();
            s.spoof_plis += spoofed;
            s.legit_plis += legit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_map_mids_to_publishers_and_see_inactive_lines() {
        let sdp = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n\
                   m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=sendonly\r\n\
                   a=msid:participant-3 microphone-0-t1\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=inactive\r\n\
                   a=msid:participant-12 camera-1-t2\r\n";
        let lines = parse_offer(sdp);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, "1");
        assert_eq!(lines[0].1.publisher, 3);
        assert!(!lines[0].1.video && !lines[0].1.inactive);
        assert_eq!(lines[1].1.publisher, 12);
        assert!(lines[1].1.video && lines[1].1.inactive);
    }

    #[test]
    fn impairment_loses_about_30_percent_and_holds_the_rate() {
        let t0 = Instant::now();
        let mut imp = Impairment::new(t0);
        let mut s = State::default();
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        // 10 s of 1000-byte datagrams at 1 Mbit/s (125 per second).
        for i in 0..1250u64 {
            imp.admit(
                &[0u8; 1000],
                addr,
                t0 + Duration::from_millis(i * 8),
                &mut s,
            );
            while imp.line.len() > 100 {
                imp.line.pop_front();
            }
        }
        let lost = s.impair_lost as f64 / 1250.0;
        assert!((0.25..0.35).contains(&lost), "{lost}");
        // Delivered ≤ 300 kbit/s × 10 s + the bucket.
        let delivered_bytes = s.impair_delivered as f64 * 1000.0;
        assert!(delivered_bytes <= 300_000.0 / 8.0 * 10.0 + IMPAIR_BUCKET_BYTES);
        assert!(delivered_bytes >= 300_000.0 / 8.0 * 10.0 * 0.9);
        assert!(s.impair_rate_dropped > 0);
    }
}
