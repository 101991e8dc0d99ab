//! A media loop: one OS thread owning one UDP socket (and ICE-TCP listener) and the `Rtc` of
//! every participant placed on it; `Sfu` runs one loop per core (see `spawn`).
//!
//! Invariants:
//! - Nothing here is shared: commands arrive on a bounded channel and are applied between
//!   datagrams, so forwarding never takes a lock or crosses a thread.
//! - The loop never awaits anything but its three wake-ups (command, datagram, timer): sends use
//!   `try_send_to` (a full socket buffer drops the datagram, counted) and events to signalling use
//!   `try_send`.
//! - Every `Rtc` that got input is polled until it returns a timeout before the loop sleeps.
//!
//! `commands` applies control commands, `output` drains `Rtc` outputs and forwards media.

use std::collections::{BTreeSet, HashMap};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::IntGauge;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::{Candidate, Input, Rtc};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::{LoopGauge, Metrics};
use crate::placement::Placement;
use crate::room::{Delivery, Rooms};
use crate::routing::RoutingTable;
use crate::speaker::SpeakerDetector;
use crate::tcp::{TcpConns, TcpEvent};
use crate::{
    LoopStats, ParticipantId, PublishPolicy, RoomId, SfuError, SfuEvent, TrackSource, View,
};
use spawn::LoopSetup;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid};

mod commands;
mod io;
mod output;
mod recv_time;
pub(crate) mod spawn;
mod wire;

pub(crate) use commands::build_rtc;

/// Inbound datagrams larger than this are dropped (no WebRTC peer sends more than an MTU).
pub(crate) const MAX_DATAGRAM: usize = 1500;
/// Receive buffer: larger than [`MAX_DATAGRAM`] so oversize datagrams are seen, not truncated.
const RECV_BUFFER: usize = 2048;
/// Datagrams read in one go before timers and commands get a turn.
const RECV_BATCH: usize = 64;
/// Longest sleep when no `Rtc` asks for an earlier wake-up.
const IDLE_WAKE: Duration = Duration::from_millis(500);
/// str0m's ICE-lite agent gives up on a pair 15 s after the last STUN request from the client;
/// the rest of [`crate::CONSENT_EXPIRY`] is waited here.
const ICE_LOST_GRACE: Duration = crate::CONSENT_EXPIRY.saturating_sub(Duration::from_secs(15));
/// Period of simulcast layer re-selection.
const TICK: Duration = Duration::from_millis(250);

/// A control request for the media loop, with its reply channel.
pub(crate) enum Command {
    Join {
        room: RoomId,
        participant: ParticipantId,
        /// The placement's generation (a lost peer is removed from placement by it).
        generation: u64,
        events: mpsc::Sender<SfuEvent>,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    /// `Sfu::join_loopback_queued`: a one-member room whose member gets its own tracks back.
    JoinLoopback {
        room: RoomId,
        participant: ParticipantId,
        /// The placement's generation (a lost peer is removed from placement by it).
        generation: u64,
        events: mpsc::Sender<SfuEvent>,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Offer {
        participant: ParticipantId,
        offer: Box<SdpOffer>,
        policy: PublishPolicy,
        reply: oneshot::Sender<Result<String, SfuError>>,
    },
    Answer {
        participant: ParticipantId,
        answer: Box<SdpAnswer>,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Candidate {
        participant: ParticipantId,
        candidate: Option<Candidate>,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Leave {
        participant: ParticipantId,
        reply: oneshot::Sender<()>,
    },
    SetView {
        subscriber: ParticipantId,
        mid: Mid,
        view: View,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Stats {
        reply: oneshot::Sender<LoopStats>,
    },
    Rebind {
        participant: ParticipantId,
        events: mpsc::Sender<SfuEvent>,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// One participant's WebRTC session and what the loop knows about it.
struct Peer {
    rtc: Rtc,
    /// Its placement's generation: a lost peer removes only that placement.
    generation: u64,
    events: mpsc::Sender<SfuEvent>,
    /// Our outstanding offer, waiting for `Sfu::answer`.
    pending: Option<SdpPendingOffer>,
    /// The SDP of the last server offer (sent again by `Sfu::rebind_queued` while `pending`).
    offer_sdp: Option<String>,
    /// When str0m declared ICE disconnected (no consent for 15 s) on a connected session;
    /// the peer is removed [`ICE_LOST_GRACE`] later unless an ICE restart revives it.
    ice_lost_at: Option<Instant>,
    joined_at: Instant,
    connected: bool,
    /// The wake-up currently registered in `MediaLoop::timers`.
    timeout: Option<Instant>,
    /// What the participant declared about its m-lines (sources; screen permission).
    policy: PublishPolicy,
    /// Last cumulative NACK count per (mid, rid, egress) from str0m's stats, for deltas.
    nacks_seen: HashMap<(Mid, Option<str0m::media::Rid>, bool), u64>,
    /// The frames last written to it, to measure receive → on-the-wire latency (`wire`).
    wire: wire::WireStamps,
}

/// Why a participant is being removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// `Sfu::leave`: close politely, no event.
    Requested,
    /// ICE/DTLS gone or the session failed: tell signalling.
    Lost,
}

/// State of one media loop.
pub(crate) struct MediaLoop {
    index: usize,
    socket: UdpSocket,
    /// Reads datagrams with their kernel arrival time (see `recv_time`).
    recv: recv_time::TimedRecv,
    local_addr: SocketAddr,
    candidates: Vec<SocketAddr>,
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
    commands: mpsc::Receiver<Command>,
    metrics: Metrics,
    peers: HashMap<ParticipantId, Peer>,
    rooms: Rooms,
    routing: RoutingTable,
    /// `(wake-up, participant)`, ordered: the first entry is the next timer to fire.
    timers: BTreeSet<(Instant, ParticipantId)>,
    /// Participants that got input and must be polled before the loop sleeps.
    dirty: Vec<ParticipantId>,
    /// The handle's placement map: told when a participant is lost (control path only).
    placement: Arc<Mutex<Placement>>,
    gauges: Gauges,
    /// Reused buffer of one frame's deliveries (no allocation per frame).
    deliveries: Vec<Delivery>,
    /// Next periodic layer re-selection.
    next_tick: Instant,
    /// Active speaker detection per room.
    speakers: HashMap<RoomId, SpeakerDetector>,
    /// ICE-TCP: the listener (if enabled), its address and candidates, the connections, and
    /// the channel their reader tasks report on.
    tcp_listener: Option<TcpListener>,
    tcp_addr: Option<SocketAddr>,
    tcp_candidates: Vec<SocketAddr>,
    tcp: TcpConns,
    tcp_events: mpsc::Receiver<TcpEvent>,
}

/// This loop's share of the global gauges and its own `loop`-labelled gauges.
struct Gauges {
    rooms: i64,
    participants: i64,
    loop_rooms: IntGauge,
    loop_participants: IntGauge,
    loop_sessions: IntGauge,
    loop_published: IntGauge,
    loop_down: IntGauge,
    loop_tcp: IntGauge,
}

enum Wake {
    Command(Option<Command>),
    Readable(std::io::Result<()>),
    Accept(std::io::Result<(TcpStream, SocketAddr)>),
    Tcp(Option<TcpEvent>),
    Timer,
}

/// Accepts on the loop's TCP listener; never resolves when ICE-TCP is off.
async fn accept(listener: &Option<TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

impl MediaLoop {
    /// Sets up a loop over its already bound sockets; must run inside the loop's runtime.
    pub(crate) fn new(setup: LoopSetup) -> std::io::Result<MediaLoop> {
        let LoopSetup {
            index,
            sockets,
            crypto,
            cert,
            commands,
            metrics,
            placement,
        } = setup;
        let socket = UdpSocket::from_std(sockets.udp)?;
        let tcp_listener = sockets.tcp.map(TcpListener::from_std).transpose()?;
        let (tcp_tx, tcp_events) = mpsc::channel(crate::tcp::EVENT_QUEUE);
        let gauge = |kind| metrics.loop_gauge(index, kind);
        let gauges = Gauges {
            rooms: 0,
            participants: 0,
            loop_rooms: gauge(LoopGauge::Rooms),
            loop_participants: gauge(LoopGauge::Participants),
            loop_sessions: gauge(LoopGauge::Sessions),
            loop_published: gauge(LoopGauge::PublishedTracks),
            loop_down: gauge(LoopGauge::DownTracks),
            loop_tcp: gauge(LoopGauge::TcpConnections),
        };
        Ok(MediaLoop {
            index,
            socket,
            recv: recv_time::TimedRecv::new(),
            local_addr: sockets.udp_addr,
            candidates: sockets.candidates,
            crypto,
            cert,
            commands,
            metrics,
            peers: HashMap::new(),
            rooms: Rooms::default(),
            routing: RoutingTable::default(),
            timers: BTreeSet::new(),
            dirty: Vec::new(),
            placement,
            gauges,
            deliveries: Vec::new(),
            next_tick: Instant::now() + TICK,
            speakers: HashMap::new(),
            tcp_listener,
            tcp_addr: sockets.tcp_addr,
            tcp_candidates: sockets.tcp_candidates,
            tcp: TcpConns::new(tcp_tx),
            tcp_events,
        })
    }

    /// Runs until `Sfu::shutdown` or until every `Sfu` handle is dropped.
    pub(crate) async fn run(mut self) {
        let mut buf = vec![0u8; RECV_BUFFER];
        loop {
            let deadline = self
                .timers
                .first()
                .map(|(t, _)| *t)
                .unwrap_or_else(|| Instant::now() + IDLE_WAKE)
                .min(self.next_tick);
            // Unbiased: neither a burst of commands nor a flood of datagrams starves the other.
            let wake = tokio::select! {
                cmd = self.commands.recv() => Wake::Command(cmd),
                res = self.socket.readable() => Wake::Readable(res),
                res = accept(&self.tcp_listener) => Wake::Accept(res),
                ev = self.tcp_events.recv() => Wake::Tcp(ev),
                _ = tokio::time::sleep_until(deadline.into()) => Wake::Timer,
            };
            match wake {
                Wake::Command(None) => break,
                Wake::Command(Some(Command::Shutdown { reply })) => {
                    self.close_all();
                    let _ = reply.send(());
                    break;
                }
                Wake::Command(Some(cmd)) => self.handle_command(cmd),
                Wake::Readable(Ok(())) => {
                    for _ in 0..RECV_BATCH {
                        match self.recv.try_recv(&self.socket, &mut buf) {
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            res => self.handle_recv(res, &buf),
                        }
                    }
                }
                Wake::Readable(Err(e)) => tracing::debug!(error = %e, "udp readiness failed"),
                Wake::Accept(Ok((stream, remote))) => {
                    self.tcp.accept(stream, remote);
                    self.update_gauges();
                }
                Wake::Accept(Err(e)) => tracing::debug!(error = %e, "tcp accept failed"),
                Wake::Tcp(Some(event)) => self.handle_tcp(event),
                Wake::Tcp(None) | Wake::Timer => {}
            }
            let now = Instant::now();
            if now >= self.next_tick {
                self.tick(now);
            }
            self.fire_timers(now);
            self.drive_dirty();
        }
        // Give this loop's share of the global gauges back.
        self.rooms = Rooms::default();
        self.peers.clear();
        self.update_gauges();
        tracing::info!(index = self.index, "sfu media loop stopped");
    }

    /// Periodic work: re-choose simulcast layers (bitrates and estimates move) and ask for the
    /// keyframes that pending layer switches wait for.
    fn tick(&mut self, now: Instant) {
        self.next_tick = now + TICK;
        // Consent expired: the client neither came back nor restarted ICE.
        let expired: Vec<ParticipantId> = self
            .peers
            .iter()
            .filter(|(_, peer)| peer.ice_lost_at.is_some_and(|t| now >= t + ICE_LOST_GRACE))
            .map(|(p, _)| *p)
            .collect();
        for p in expired {
            tracing::info!(participant = p.0, "ice consent expired");
            self.remove_peer(p, Removal::Lost);
        }
        // Tracks are published and down tracks opened or dropped by media events and answers,
        // not only by joins and leaves: refresh the gauges here so they are never more than a
        // tick stale (they read 0 published tracks while media flowed before this).
        self.update_gauges();
        for ask in self.rooms.reselect_all(now) {
            self.request_keyframe(ask, KeyframeRequestKind::Pli);
        }
        // Let each subscriber's estimator sustain the next simulcast layer up and probe for
        // the one its view wants (str0m pads up to `minimum`, capped by the estimate).
        for (p, target) in self.rooms.take_bwe_targets(now) {
            if let Some(peer) = self.peers.get_mut(&p) {
                tracing::debug!(
                    participant = p.0,
                    minimum = target.minimum,
                    desired = target.desired,
                    "bwe target"
                );
                peer.rtc.bwe().set_bitrate(
                    str0m::bwe::Bitrate::bps(target.minimum),
                    str0m::bwe::Bitrate::bps(target.desired),
                );
            }
        }
        let rooms = &self.rooms;
        self.speakers
            .retain(|room, _| !rooms.members_of(*room).is_empty());
        for (room, detector) in &mut self.speakers {
            let Some(speaker) = detector.poll(now) else {
                continue;
            };
            self.metrics.speaker_changes.inc();
            for member in self.rooms.members_of(*room) {
                if let Some(peer) = self.peers.get(member) {
                    emit(
                        &peer.events,
                        SfuEvent::Speaking {
                            participant: speaker,
                        },
                    );
                }
            }
        }
    }

    /// The declared source of `p`'s m-line `mid`, or the default for its kind.
    fn source_of(&self, p: ParticipantId, mid: Mid, kind: MediaKind) -> TrackSource {
        self.peers
            .get(&p)
            .and_then(|peer| peer.policy.source_of(&mid.to_string()))
            .unwrap_or(match kind {
                MediaKind::Audio => TrackSource::Microphone,
                MediaKind::Video => TrackSource::Camera,
            })
    }

    /// Feeds a timeout to every `Rtc` whose wake-up is due.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(&(at, p)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(peer) = self.peers.get_mut(&p) {
                peer.timeout = None;
                if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!(participant = p.0, error = %e, "rtc timeout failed");
                }
                self.mark_dirty(p);
            }
        }
    }

    /// Registers `p`'s next wake-up, replacing the previous one.
    fn schedule(&mut self, p: ParticipantId, at: Instant) {
        let Some(peer) = self.peers.get_mut(&p) else {
            return;
        };
        if let Some(old) = peer.timeout.replace(at) {
            self.timers.remove(&(old, p));
        }
        self.timers.insert((at, p));
    }

    fn mark_dirty(&mut self, p: ParticipantId) {
        if !self.dirty.contains(&p) {
            self.dirty.push(p);
        }
    }

    /// Polls every dirty `Rtc`; forwarding may dirty others, which are polled in turn.
    fn drive_dirty(&mut self) {
        while let Some(p) = self.dirty.pop() {
            self.drive(p);
        }
    }

    /// Removes `p` everywhere; its tracks end for the rest of the room.
    fn remove_peer(&mut self, p: ParticipantId, why: Removal) {
        let Some(mut peer) = self.peers.remove(&p) else {
            return;
        };
        self.routing.remove(p);
        self.tcp.close_participant(p);
        if let Some(at) = peer.timeout.take() {
            self.timers.remove(&(at, p));
        }
        self.dirty.retain(|d| *d != p);
        if let Some(room) = self.rooms.room_of(p)
            && let Some(detector) = self.speakers.get_mut(&room)
        {
            detector.remove(p);
        }
        let affected = self.rooms.leave(p);
        self.update_gauges();
        match why {
            Removal::Requested => self.close_rtc(&mut peer.rtc),
            Removal::Lost => {
                self.placement
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .remove_generation(p, peer.generation);
                tracing::info!(participant = p.0, "participant disconnected");
                emit(&peer.events, SfuEvent::Disconnected);
            }
        }
        for q in affected {
            self.negotiate(q);
        }
    }

    /// Starts a polite close (DTLS close_notify, RTCP BYE) and flushes what it produces.
    fn close_rtc(&self, rtc: &mut Rtc) {
        if rtc.close().is_err() {
            return;
        }
        // Bounded: a closing `Rtc` only has a few datagrams left to send.
        for _ in 0..64 {
            match rtc.poll_output() {
                Ok(str0m::Output::Transmit(t)) => self.send(t.proto, t.destination, &t.contents),
                Ok(str0m::Output::Event(_)) => {}
                Ok(str0m::Output::Timeout(_)) | Err(_) => break,
            }
        }
    }

    fn close_all(&mut self) {
        let mut peers: Vec<Peer> = self.peers.drain().map(|(_, peer)| peer).collect();
        for peer in &mut peers {
            self.close_rtc(&mut peer.rtc);
        }
        self.rooms = Rooms::default();
        self.routing = RoutingTable::default();
        self.timers.clear();
        self.update_gauges();
    }

    /// Sets the loop gauges, and moves the global ones by this loop's change since last time.
    fn update_gauges(&mut self) {
        let rooms = self.rooms.room_count() as i64;
        let participants = self.rooms.participant_count() as i64;
        self.metrics.rooms.add(rooms - self.gauges.rooms);
        self.metrics
            .participants
            .add(participants - self.gauges.participants);
        self.gauges.rooms = rooms;
        self.gauges.participants = participants;
        self.gauges.loop_rooms.set(rooms);
        self.gauges.loop_participants.set(participants);
        self.gauges.loop_sessions.set(self.peers.len() as i64);
        self.gauges
            .loop_published
            .set(self.rooms.published_count() as i64);
        self.gauges.loop_down.set(self.rooms.down_count() as i64);
        self.gauges.loop_tcp.set(self.tcp.len() as i64);
    }

    fn stats(&self) -> LoopStats {
        LoopStats {
            udp_addr: Some(self.local_addr),
            tcp_addr: self.tcp_addr,
            participants: self.rooms.participant_count(),
            rooms: self.rooms.room_count(),
            published_tracks: self.rooms.published_count(),
            tcp_connections: self.tcp.len(),
        }
    }
}

/// Sends an event to signalling without waiting. If the channel is full the event is handed to
/// a task so it is not lost (the loop itself never blocks on a slow consumer).
fn emit(events: &mpsc::Sender<SfuEvent>, event: SfuEvent) {
    match events.try_send(event) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(event)) => {
            let events = events.clone();
            tokio::spawn(async move {
                let _ = events.send(event).await;
            });
        }
    }
}

/// Whether an outgoing datagram is (S)RTP media, as opposed to STUN, DTLS or RTCP.
pub(crate) fn is_rtp(contents: &[u8]) -> bool {
    match contents {
        [b0, b1, ..] => (128..192).contains(b0) && !(64..96).contains(&(b1 & 0x7F)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_rtp;

    #[test]
    fn classifies_rtp_against_rtcp_stun_dtls() {
        assert!(is_rtp(&[0x80, 96, 0, 1]));
        assert!(is_rtp(&[0x80, 0x80 | 111, 0, 1]));
        assert!(!is_rtp(&[0x80, 200, 0, 1])); // RTCP SR
        assert!(!is_rtp(&[0x81, 205, 0, 1])); // RTCP feedback
        assert!(!is_rtp(&[0x00, 0x01, 0, 0])); // STUN
        assert!(!is_rtp(&[22, 0xFE, 0xFD])); // DTLS
        assert!(!is_rtp(&[0x80]));
    }
}
