//! Media plane: a selective forwarding unit built on str0m (sans-IO WebRTC).
//!
//! Invariant: this crate knows nothing of HTTP, JSON, SQL or JWT. It owns the sockets and every
//! participant's `str0m::Rtc`; the signalling layer drives it through [`Sfu`] (commands on
//! bounded channels) and hears back through the per-participant [`SfuEvent`] channel.
//!
//! CONTRACT (used by `signalling`; keep these signatures stable):
//! - [`Sfu::start`] binds the sockets and starts the media loops ([`SfuConfig`]: `loops`, 0 =
//!   one per core; `tcp_bind` for ICE-TCP).
//! - [`Sfu::join`] registers a participant in a room (no media until it offers). The room's
//!   first participant places the room on the least-loaded loop.
//! - [`Sfu::offer`] takes the participant's SDP offer under a [`PublishPolicy`] (which m-line
//!   is microphone/camera/screen; whether a screen share is allowed → [`OfferError::Forbidden`])
//!   and returns the SDP answer.
//!   A second offer with new ICE credentials is an ICE restart on the same session.
//! - Server-initiated renegotiation arrives as [`SfuEvent::Offer`]; the reply goes to [`Sfu::answer`].
//! - [`Sfu::candidate`] adds a trickled remote ICE candidate (`candidate:...` line).
//! - [`Sfu::set_view`] says how a subscriber shows a video down track ([`View`]): simulcast
//!   layer choice and pausing hidden tiles.
//! - [`SfuEvent::Speaking`] announces the room's active speaker (≤ 2/s per room).
//! - [`Sfu::leave`] removes a participant; its published tracks stop for everyone.
//! - [`Sfu::rebind_queued`] sends a participant's events to a new channel (a resumed connection).
//! - [`Sfu::join_loopback_queued`] makes a one-member room that sends the participant its own tracks
//!   back (a connectivity probe; `loopback`).
//! - A peer that vanishes without `leave` (no ICE consent for [`CONSENT_EXPIRY`], or a DTLS
//!   close) is removed and reported as [`SfuEvent::Disconnected`]; until then an ICE restart
//!   (a new offer with new credentials) brings it back with its tracks and subscriptions.
//! - [`Sfu::stats`], [`Sfu::local_addrs`], [`Sfu::tcp_addrs`] for tests and diagnostics.
//!
//! ```ignore
//! let config = SfuConfig { bind, announce: vec![], loops: 0, tcp_bind: Some(addr) };
//! let sfu = Sfu::start(config, &registry).await?;
//! sfu.join(RoomId(1), ParticipantId(7), events_tx).await?;   // events_tx: mpsc::Sender<SfuEvent>
//! let policy = PublishPolicy { sources: vec![("2".into(), TrackSource::Screen)], allow_screen: true };
//! let answer_sdp = sfu.offer(ParticipantId(7), offer_sdp, policy).await?;
//! sfu.answer(ParticipantId(7), answer_sdp).await?;          // after an SfuEvent::Offer
//! sfu.set_view(ParticipantId(7), "3".into(), View { visible: true, width: 640, height: 360 }).await?;
//! sfu.leave(ParticipantId(7)).await;
//! ```
//!
//! **Down-track msid** (`a=msid:<stream id> <track id>` of every m-line the SFU offers): stream
//! id `participant-<publisher id>` for microphone and camera, `participant-<publisher id>-screen`
//! for a screen share (so a browser's `ontrack` gets it in its own `MediaStream`:
//! `event.streams[0].id`); track id `<source>-<publisher's mid>-t<track number>` with source
//! `microphone`, `camera` or `screen`, e.g. `a=msid:participant-7-screen screen-2-t14` (the
//! number keeps a re-published track distinct from its old, inactive m-line).
//!
//! Module map: [`Sfu`] (this file) is the cheap handle (one `Arc`: a command sender per loop
//! plus the `placement` map, touched by control commands only). `media_loop` is one OS thread
//! per loop owning its UDP socket, TCP listener (`tcp`) and `Rtc`s, applying commands between
//! packets. `room` is the IO-free bookkeeping of rooms, published tracks, down tracks and
//! forwarding decisions; `simulcast` chooses layers (pure) and gates switches on keyframes;
//! `speaker` detects the active speaker; `policy` checks offers against the publish policy;
//! `routing` maps datagrams to participants; `keyframe` throttles keyframe requests; `addrs`
//! picks ICE host candidates; `metrics` registers the Prometheus metrics.
//!
//! Forwarding is frame-level: str0m depacketizes incoming media (`Event::MediaData`) and the
//! subscriber's `Rtc` packetizes it again (`Writer::write`), so str0m owns, per leg, sequence
//! numbers, SSRCs, payload-type mapping, NACK/RTX and RTCP. A simulcast layer switch therefore
//! keeps the outgoing SSRC and sequence numbers continuous by construction; RTP timestamps
//! (which differ per incoming layer) are rebased per down track so they never jump back. The
//! cost is a depacketize/packetize per frame and a little reordering latency in str0m's
//! depacketizer; RTP mode can replace it later inside `media_loop::output`.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use str0m::Candidate;
use str0m::change::{SdpAnswer, SdpOffer};
use tokio::sync::{mpsc, oneshot};

mod addrs;
mod api;
mod bundle;
#[doc(hidden)]
pub mod fuzzing;
mod keyframe;
mod loopback;
mod media_loop;
mod metrics;
mod placement;
mod policy;
mod room;
mod routing;
mod simulcast;
mod speaker;
mod tcp;

pub use api::{LoopStats, OfferError, PublishPolicy, SfuStats, TrackSource, View};
use media_loop::Command;
use placement::Placement;

/// Largest SDP accepted from a client; bigger ones are refused before parsing.
pub const MAX_SDP_BYTES: usize = 64 * 1024;

/// Largest trickled candidate line accepted.
const MAX_CANDIDATE_BYTES: usize = 1024;

/// How long a connected peer may go without ICE consent (STUN from it) before it is removed
/// (RFC 7675's 30 s). str0m's ICE-lite agent declares the pair dead after 15 s; the SFU keeps
/// the session another 15 s so that an ICE restart can still revive it.
pub const CONSENT_EXPIRY: std::time::Duration = std::time::Duration::from_secs(30);

/// Capacity of the command queue into the media loop.
const COMMAND_QUEUE: usize = 1024;

/// Identifies a room (one consultation) inside the SFU. Assigned by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u64);

/// Identifies a participant inside the SFU. Assigned by the caller; unique per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);

/// Configuration of the media plane.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// UDP address to bind (one port for all peers). Port 0 picks a free port.
    pub bind: SocketAddr,
    /// Addresses announced as ICE host candidates. When empty, the bound address is announced
    /// (if it is unspecified, 0.0.0.0, every non-loopback interface address is announced).
    pub announce: Vec<IpAddr>,
    /// Number of media loops, each an OS thread with its own UDP socket and sessions.
    /// `0` means one per CPU core.
    pub loops: usize,
    /// Where to accept ICE over TCP (RFC 4571 framing). `None` disables ICE-TCP. Loop `i`
    /// listens on this port `+ i` (or on a free port each when the port is 0).
    pub tcp_bind: Option<SocketAddr>,
}

impl SfuConfig {
    /// Whether start-up will find an address to announce as an ICE candidate (the `announce`
    /// list, a specific bind address, or a non-loopback interface address for a wildcard bind);
    /// when false, [`Sfu::start`] fails with [`SfuError::NoAnnounceAddress`].
    pub fn has_announce_address(&self) -> bool {
        !addrs::candidate_addrs(self, self.bind, addrs::interface_ips).is_empty()
    }
}

/// What the SFU tells the signalling layer about one participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// The SFU wants to (re)negotiate: send this SDP offer to the client, reply with `Sfu::answer`.
    Offer { sdp: String },
    /// ICE + DTLS are up: media flows.
    Connected,
    /// The peer is gone and has been removed (no ICE consent for [`CONSENT_EXPIRY`], DTLS
    /// close, or a failed session); its tracks stopped for everyone.
    Disconnected,
    /// The room's active speaker changed to `participant` (sent to every member of the room,
    /// at most twice a second per room).
    Speaking {
        /// Who is speaking now (possibly the receiver itself).
        participant: ParticipantId,
    },
}

/// Errors from SFU operations.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    /// The SDP could not be parsed or applied (or is larger than [`MAX_SDP_BYTES`]).
    #[error("invalid sdp: {0}")]
    InvalidSdp(String),
    /// The trickled candidate line could not be parsed.
    #[error("invalid ice candidate")]
    InvalidCandidate,
    /// No participant with this id has joined.
    #[error("unknown participant")]
    UnknownParticipant,
    /// The participant id is already in use.
    #[error("participant already joined")]
    AlreadyJoined,
    /// A server offer awaits its answer; answer it before sending an offer.
    #[error("negotiation in progress")]
    NegotiationInProgress,
    /// The media loop is gone ([`Sfu::shutdown`] was called).
    #[error("the media loop has stopped")]
    Stopped,
    /// The media loop's command queue is full (a `*_queued` command that cannot wait).
    #[error("the media loop is too busy")]
    Busy,
    /// Binding the socket or another start-up step failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A wildcard bind on a machine with no non-loopback address and no `announce` list: there
    /// is no address to offer browsers as an ICE candidate.
    #[error("no network address to announce to browsers for media")]
    NoAnnounceAddress,
}

/// Handle to a running media plane. Cheap to clone (one `Arc`); every clone talks to the same
/// media loops.
#[derive(Clone)]
pub struct Sfu {
    inner: Arc<Inner>,
}

struct Inner {
    loops: Vec<LoopHandle>,
    /// Which loop owns which room and participant; control path only (see `placement`).
    placement: Arc<Mutex<Placement>>,
}

/// How the handle reaches one media loop.
struct LoopHandle {
    commands: mpsc::Sender<Command>,
    udp: SocketAddr,
    tcp: Option<SocketAddr>,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu")
            .field("local_addrs", &self.local_addrs())
            .finish_non_exhaustive()
    }
}

impl Sfu {
    /// Starts `config.loops` media loops (0 = one per core), each on its own OS thread with
    /// its own UDP socket (and TCP listener when `config.tcp_bind` is set), and registers the
    /// metrics on `registry`. Loop 0 binds `config.bind`; loop `i` binds its port `+ i`, or
    /// port 0 when the configured port is 0.
    pub async fn start(
        config: SfuConfig,
        registry: &prometheus::Registry,
    ) -> Result<Sfu, SfuError> {
        let metrics = metrics::Metrics::register(registry)?;
        let count = match config.loops {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let placement = Arc::new(Mutex::new(Placement::new(count)));
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto.dtls_provider.generate_certificate().ok_or_else(|| {
            SfuError::Io(std::io::Error::other("cannot generate a DTLS certificate"))
        })?;
        let mut loops = Vec::with_capacity(count);
        for index in 0..count {
            let sockets = media_loop::spawn::bind(&config, index)?;
            let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
            let handle = LoopHandle {
                commands,
                udp: sockets.udp_addr,
                tcp: sockets.tcp_addr,
            };
            media_loop::spawn::spawn(media_loop::spawn::LoopSetup {
                index,
                sockets,
                crypto: crypto.clone(),
                cert: cert.clone(),
                commands: rx,
                metrics: metrics.clone(),
                placement: placement.clone(),
            })?;
            tracing::info!(index, udp = %handle.udp, tcp = ?handle.tcp, "sfu media loop started");
            loops.push(handle);
        }
        Ok(Sfu {
            inner: Arc::new(Inner { loops, placement }),
        })
    }

    /// Loop 0's bound UDP address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.loops[0].udp
    }

    /// Every loop's bound UDP address, in loop order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner.loops.iter().map(|l| l.udp).collect()
    }

    /// Every loop's ICE-TCP listening address, in loop order (empty when TCP is off).
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.inner.loops.iter().filter_map(|l| l.tcp).collect()
    }

    /// Registers `participant` in `room`. Events about it (server offers, connected,
    /// disconnected) go to `events`; give it room for a few events, the loop never waits on it.
    ///
    /// The room's first participant places the room on the least-loaded loop.
    pub async fn join(
        &self,
        room: RoomId,
        participant: ParticipantId,
        events: mpsc::Sender<SfuEvent>,
    ) -> Result<(), SfuError> {
        let placed = self.placement().place(room, participant)?;
        let result = self
            .request_on(placed.index, |reply| Command::Join {
                room,
                participant,
                generation: placed.generation,
                events,
                reply,
            })
            .await
            .and_then(|r| r);
        if result.is_err() {
            self.placement()
                .remove_generation(participant, placed.generation);
        }
        result
    }

    /// Applies the participant's SDP offer under `policy` and returns the SDP answer
    /// ([`PublishPolicy::default`]: no declared sources, screen share allowed).
    ///
    /// Fails with [`SfuError::NegotiationInProgress`] while a server offer
    /// ([`SfuEvent::Offer`]) awaits its answer: answer that first, then offer again.
    ///
    /// `policy.sources` says what each of the client's m-lines is (undeclared video is
    /// [`TrackSource::Camera`], audio [`TrackSource::Microphone`]); subscribers see it in the
    /// msid of their down track (see the crate docs). An offer that sends on a
    /// [`TrackSource::Screen`] m-line while `policy.allow_screen` is false fails with
    /// [`OfferError::Forbidden`] and nothing of it is applied.
    ///
    /// A second offer from a connected participant with new ICE credentials is an ICE restart:
    /// it is applied to the same session, so its published tracks and subscriptions survive
    /// and nobody else sees new tracks.
    pub async fn offer(
        &self,
        p: ParticipantId,
        sdp: String,
        policy: PublishPolicy,
    ) -> Result<String, OfferError> {
        let text = checked_sdp(&sdp)?;
        policy::check(text, &policy)?;
        let offer = SdpOffer::from_sdp_string(&bundle::bundled_ports(text))
            .map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let answer = self
            .request(p, |reply| Command::Offer {
                participant: p,
                offer: Box::new(offer),
                policy,
                reply,
            })
            .await??;
        Ok(answer)
    }

    /// Applies the participant's SDP answer to the last [`SfuEvent::Offer`].
    pub async fn answer(&self, p: ParticipantId, sdp: String) -> Result<(), SfuError> {
        let answer = SdpAnswer::from_sdp_string(&bundle::bundled_ports(checked_sdp(&sdp)?))
            .map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        self.request(p, |reply| Command::Answer {
            participant: p,
            answer: Box::new(answer),
            reply,
        })
        .await?
    }

    /// Adds a trickled remote ICE candidate (`candidate:...`, an `a=` prefix is tolerated).
    /// An empty string (end of candidates) is accepted and ignored.
    pub async fn candidate(&self, p: ParticipantId, candidate: String) -> Result<(), SfuError> {
        let line = candidate.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        if line.len() > MAX_CANDIDATE_BYTES {
            return Err(SfuError::InvalidCandidate);
        }
        let parsed = if line.is_empty() {
            None
        } else {
            Some(Candidate::from_sdp_string(line).map_err(|_| SfuError::InvalidCandidate)?)
        };
        self.request(p, |reply| Command::Candidate {
            participant: p,
            candidate: parsed,
            reply,
        })
        .await?
    }

    /// Removes the participant; its tracks stop for everyone. Unknown participants are ignored.
    /// No [`SfuEvent::Disconnected`] is sent for a participant removed this way.
    pub async fn leave(&self, p: ParticipantId) {
        let _ = self
            .request(p, |reply| Command::Leave {
                participant: p,
                reply,
            })
            .await;
        self.placement().remove(p);
    }

    /// Tells the SFU how `subscriber` shows the remote video on its own m-line `mid` (a down
    /// track from an [`SfuEvent::Offer`]): hidden tiles get nothing, and a simulcast track is
    /// sent in the layer that fits `view` and the subscriber's bandwidth. Switching waits for
    /// a keyframe of the new layer. A `mid` that is not one of its down tracks (yet) is
    /// ignored; call again after the offer that creates it. Cheap: call on every resize.
    pub async fn set_view(
        &self,
        subscriber: ParticipantId,
        mid: String,
        view: View,
    ) -> Result<(), SfuError> {
        let mid = str0m::media::Mid::from(mid.as_str());
        self.request(subscriber, |reply| Command::SetView {
            subscriber,
            mid,
            view,
            reply,
        })
        .await?
    }

    /// A snapshot of every loop (participants, rooms, tracks). A stopped loop reports zeros.
    pub async fn stats(&self) -> SfuStats {
        let mut loops = Vec::with_capacity(self.inner.loops.len());
        for index in 0..self.inner.loops.len() {
            let stats = self
                .request_on(index, |reply| Command::Stats { reply })
                .await
                .unwrap_or_default();
            loops.push(stats);
        }
        SfuStats { loops }
    }

    /// Stops every media loop: every session is closed and the sockets released. Later calls
    /// on any clone fail with [`SfuError::Stopped`].
    pub async fn shutdown(&self) {
        for index in 0..self.inner.loops.len() {
            let _ = self
                .request_on(index, |reply| Command::Shutdown { reply })
                .await;
        }
    }

    /// [`Sfu::join`] without waiting: the participant is placed and the command queued on its
    /// loop before this returns; the returned future (`'static`, await it outside any lock)
    /// gives the loop's reply. Commands for `participant` made after this call (offer, answer,
    /// candidate, leave…) queue behind it on the same loop, whose queue is FIFO. Fails at once
    /// with [`SfuError::Busy`] when the loop's queue is full (nothing is placed then).
    pub fn join_queued(
        &self,
        room: RoomId,
        participant: ParticipantId,
        events: mpsc::Sender<SfuEvent>,
    ) -> impl std::future::Future<Output = Result<(), SfuError>> + Send + 'static {
        let queued = self.place_and_queue(room, participant, |generation, reply| Command::Join {
            room,
            participant,
            generation,
            events,
            reply,
        });
        self.clone().join_reply(participant, queued)
    }

    /// [`Sfu::leave`] without waiting: the command is queued on the participant's loop and
    /// the participant forgotten by placement before this returns (so it may join again at
    /// once, queued behind its leave when it lands on the same loop). The future completes
    /// when the loop has removed it. When the loop's queue is full, the command is sent by the
    /// future instead (it waits for room; a leave is never dropped).
    pub fn leave_queued(
        &self,
        p: ParticipantId,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let sent = self.placement().remove(p).map(|index| {
            self.queue_or_defer(
                index,
                Command::Leave {
                    participant: p,
                    reply: tx,
                },
            )
        });
        async move {
            if let Some(sent) = sent
                && sent.await.is_ok()
            {
                let _ = rx.await;
            }
        }
    }

    /// Sends `p`'s events from now on to `events` instead of the channel given at
    /// [`Sfu::join_queued`] (signalling resumes a participant on a new connection). A server
    /// offer that still awaits its answer is sent again on the new channel, since the old one
    /// may have been dropped before it was read. Queued on the participant's loop before this
    /// returns; the future gives the loop's reply. When the loop's queue is full, the future
    /// sends it (waiting for room), so later commands may overtake it then.
    pub fn rebind_queued(
        &self,
        p: ParticipantId,
        events: mpsc::Sender<SfuEvent>,
    ) -> impl std::future::Future<Output = Result<(), SfuError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let sent = self
            .placement()
            .loop_of(p)
            .ok_or(SfuError::UnknownParticipant)
            .map(|index| {
                self.queue_or_defer(
                    index,
                    Command::Rebind {
                        participant: p,
                        events,
                        reply: tx,
                    },
                )
            });
        async move {
            sent?.await?;
            rx.await.map_err(|_| SfuError::Stopped)?
        }
    }

    /// Queues `command` on loop `index` now; when that queue is full, the returned future sends
    /// it (waiting for room) instead of dropping it. Fails with [`SfuError::Stopped`] when the
    /// loop is gone.
    fn queue_or_defer(
        &self,
        index: usize,
        command: Command,
    ) -> impl std::future::Future<Output = Result<(), SfuError>> + Send + 'static {
        let deferred = match self.try_queue(index, command) {
            Ok(()) => Ok(None),
            Err(Overflow::Stopped) => Err(SfuError::Stopped),
            Err(Overflow::Full(command, index)) => self
                .inner
                .loops
                .get(index)
                .map(|handle| Some((handle.commands.clone(), *command)))
                .ok_or(SfuError::Stopped),
        };
        async move {
            if let Some((commands, command)) = deferred? {
                commands
                    .send(command)
                    .await
                    .map_err(|_| SfuError::Stopped)?;
            }
            Ok(())
        }
    }

    /// Places `participant` in `room` and queues the join command (made from the placement's
    /// generation) on that loop; on failure the placement is undone at once.
    pub(crate) fn place_and_queue(
        &self,
        room: RoomId,
        participant: ParticipantId,
        make: impl FnOnce(u64, oneshot::Sender<Result<(), SfuError>>) -> Command,
    ) -> Result<QueuedJoin, SfuError> {
        let placed = self.placement().place(room, participant)?;
        self.queue_on(placed.index, |reply| make(placed.generation, reply))
            .map(|reply| QueuedJoin {
                generation: placed.generation,
                reply,
            })
            .map_err(|e| {
                self.placement()
                    .remove_generation(participant, placed.generation);
                match e {
                    Overflow::Full(..) => SfuError::Busy,
                    Overflow::Stopped => SfuError::Stopped,
                }
            })
    }

    /// The reply of a queued join; a failed join is taken out of placement (only that
    /// placement: the participant may have left and joined again meanwhile).
    pub(crate) async fn join_reply(
        self,
        participant: ParticipantId,
        queued: Result<QueuedJoin, SfuError>,
    ) -> Result<(), SfuError> {
        let QueuedJoin { generation, reply } = queued?;
        let result = reply.await.map_err(|_| SfuError::Stopped).and_then(|r| r);
        if result.is_err() {
            self.placement().remove_generation(participant, generation);
        }
        result
    }

    /// Queues a command on loop `index` without waiting; see [`Overflow`].
    fn queue_on<T>(
        &self,
        index: usize,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<oneshot::Receiver<T>, Overflow> {
        let (tx, rx) = oneshot::channel();
        self.try_queue(index, make(tx))?;
        Ok(rx)
    }

    fn try_queue(&self, index: usize, command: Command) -> Result<(), Overflow> {
        let handle = self.inner.loops.get(index).ok_or(Overflow::Stopped)?;
        handle.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(command) => Overflow::Full(Box::new(command), index),
            mpsc::error::TrySendError::Closed(_) => Overflow::Stopped,
        })
    }

    fn placement(&self) -> std::sync::MutexGuard<'_, Placement> {
        // A panic while holding this lock cannot leave the map inconsistent in a way that
        // matters more than refusing all control traffic would, so recover the guard.
        self.inner
            .placement
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends a command to the loop owning `p`.
    async fn request<T>(
        &self,
        p: ParticipantId,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SfuError> {
        let index = self
            .placement()
            .loop_of(p)
            .ok_or(SfuError::UnknownParticipant)?;
        self.request_on(index, make).await
    }

    async fn request_on<T>(
        &self,
        index: usize,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SfuError> {
        let handle = self.inner.loops.get(index).ok_or(SfuError::Stopped)?;
        let (tx, rx) = oneshot::channel();
        handle
            .commands
            .send(make(tx))
            .await
            .map_err(|_| SfuError::Stopped)?;
        rx.await.map_err(|_| SfuError::Stopped)
    }
}

/// A join command on its loop's queue: its placement's generation and the loop's reply.
pub(crate) struct QueuedJoin {
    generation: u64,
    reply: oneshot::Receiver<Result<(), SfuError>>,
}

/// Why a command could not be queued without waiting.
enum Overflow {
    /// The loop's queue is full: the command back, and the loop it was for.
    Full(Box<Command>, usize),
    /// The loop is gone.
    Stopped,
}

/// Most lines an SDP may have. Chromium 156 writes 120–170 lines per video m-line (every codec
/// with its rtx, rtcp-fb and fmtp lines) and about 30 per audio m-line: a re-offer with audio,
/// simulcast camera, screen share and two remote participants is ~680 lines / 21 KB, so 2,500
/// lines is about what fits in [`MAX_SDP_BYTES`] anyway. str0m's processing time grows faster
/// than linearly in repeated attributes (`a=ssrc`, `a=rid`, `a=rtpmap`: ~1 s for 2,000 of them
/// in one section, found by fuzzing), and part of it runs on the media loop, so the number of
/// lines per m-line section is capped too ([`MAX_SDP_SECTION_LINES`]).
pub const MAX_SDP_LINES: usize = 2_500;

/// Most lines of one section (the session part, or one m-line and its attributes).
pub const MAX_SDP_SECTION_LINES: usize = 300;

/// Most m-lines an SDP may have (a consultation needs a handful per participant).
pub const MAX_SDP_MEDIA: usize = 64;

fn checked_sdp(sdp: &str) -> Result<&str, SfuError> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err(SfuError::InvalidSdp(format!(
            "sdp larger than {MAX_SDP_BYTES} bytes"
        )));
    }
    if over_line_caps(sdp) {
        return Err(SfuError::InvalidSdp(format!(
            "sdp has more than {MAX_SDP_LINES} lines, {MAX_SDP_SECTION_LINES} lines in one \
             section or {MAX_SDP_MEDIA} m-lines"
        )));
    }
    Ok(sdp)
}

/// Whether `sdp` has too many lines in all, in one section, or too many m-lines.
pub(crate) fn over_line_caps(sdp: &str) -> bool {
    let mut lines = 0usize;
    let mut section = 0usize;
    let mut media = 0usize;
    for line in sdp.lines() {
        lines += 1;
        section += 1;
        if line.starts_with("m=") {
            media += 1;
            section = 1;
        }
        if lines > MAX_SDP_LINES || section > MAX_SDP_SECTION_LINES || media > MAX_SDP_MEDIA {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod robustness_tests;
