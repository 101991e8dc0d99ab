//! Applying control commands (join, offer, answer, candidate, leave) inside the media loop.
//!
//! Invariant: a command's reply is sent before any [`SfuEvent::Offer`] it causes is queued, so a
//! signalling task that handles one thing at a time forwards our answer before our next offer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::bwe::Bitrate;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::media::KeyframeRequestKind;
use str0m::net::TcpType;
use str0m::{Candidate, IceCreds, Rtc, RtcConfig};
use tokio::sync::mpsc;

use super::{Command, MediaLoop, Peer, Removal};
use crate::{ParticipantId, PublishPolicy, RoomId, SfuError, SfuEvent};

/// How often str0m reports RTT, loss and feedback counts per session.
const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// Starting send-side bandwidth estimate of every session (see `build_rtc`): the high layer of a
/// typical camera simulcast (1280x720 at ~1.5-2.5 Mbit/s) fits, and pacing keeps up with bursts.
/// Also the lowest desired rate the rooms hand the estimator (`room::forward`).
const INITIAL_BWE: Bitrate = Bitrate::bps(crate::room::DESIRED_FLOOR_BPS);

impl MediaLoop {
    pub(super) fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Join {
                room,
                participant,
                generation,
                events,
                reply,
            } => {
                let _ = reply.send(self.join(room, participant, generation, events));
            }
            Command::JoinLoopback {
                room,
                participant,
                generation,
                events,
                reply,
            } => {
                let _ = reply.send(self.join_loopback(room, participant, generation, events));
            }
            Command::Offer {
                participant,
                offer,
                policy,
                reply,
            } => {
                let result = self.accept_offer(participant, *offer, policy);
                let ok = result.is_ok();
                let _ = reply.send(result);
                if ok {
                    // Media the offer added shows up as events: publish it, then offer the
                    // participant whatever it should receive.
                    self.drive(participant);
                    self.negotiate(participant);
                }
            }
            Command::Answer {
                participant,
                answer,
                reply,
            } => {
                let result = self.accept_answer(participant, *answer);
                let _ = reply.send(result);
                self.negotiate(participant);
            }
            Command::Candidate {
                participant,
                candidate,
                reply,
            } => {
                let _ = reply.send(self.add_candidate(participant, candidate));
            }
            Command::Leave { participant, reply } => {
                self.remove_peer(participant, Removal::Requested);
                let _ = reply.send(());
            }
            Command::SetView {
                subscriber,
                mid,
                view,
                reply,
            } => {
                let result = self.rooms.set_view(subscriber, mid, view, Instant::now());
                let result = result.map(|asks| {
                    for ask in asks {
                        self.request_keyframe(ask, KeyframeRequestKind::Pli);
                    }
                });
                let _ = reply.send(result);
            }
            Command::Stats { reply } => {
                let _ = reply.send(self.stats());
            }
            Command::Rebind {
                participant,
                events,
                reply,
            } => {
                let result = match self.peers.get_mut(&participant) {
                    Some(peer) => {
                        peer.events = events;
                        if peer.pending.is_some()
                            && let Some(sdp) = peer.offer_sdp.clone()
                        {
                            super::emit(&peer.events, SfuEvent::Offer { sdp });
                        }
                        Ok(())
                    }
                    None => Err(SfuError::UnknownParticipant),
                };
                let _ = reply.send(result);
            }
            // Handled by the run loop, which stops afterwards.
            Command::Shutdown { reply } => {
                let _ = reply.send(());
            }
        }
    }

    fn join(
        &mut self,
        room: RoomId,
        p: ParticipantId,
        generation: u64,
        events: mpsc::Sender<SfuEvent>,
    ) -> Result<(), SfuError> {
        if self.peers.contains_key(&p) {
            return Err(SfuError::AlreadyJoined);
        }
        self.rooms.join(room, p)?;
        self.add_peer(p, generation, events);
        Ok(())
    }

    /// Like `join`, into a new loopback room (see `room::loopback`).
    fn join_loopback(
        &mut self,
        room: RoomId,
        p: ParticipantId,
        generation: u64,
        events: mpsc::Sender<SfuEvent>,
    ) -> Result<(), SfuError> {
        if self.peers.contains_key(&p) {
            return Err(SfuError::AlreadyJoined);
        }
        self.rooms.join_loopback(room, p)?;
        self.add_peer(p, generation, events);
        Ok(())
    }

    /// A fresh session for `p`, already a member of a room.
    fn add_peer(&mut self, p: ParticipantId, generation: u64, events: mpsc::Sender<SfuEvent>) {
        let rtc = self.new_rtc(p);
        self.peers.insert(
            p,
            Peer {
                rtc,
                generation,
                events,
                pending: None,
                offer_sdp: None,
                ice_lost_at: None,
                joined_at: Instant::now(),
                connected: false,
                timeout: None,
                policy: PublishPolicy::default(),
                nacks_seen: HashMap::new(),
                wire: Default::default(),
            },
        );
        self.update_gauges();
        self.mark_dirty(p);
    }

    /// A fresh ICE-lite `Rtc` with our codecs and host candidates; its ufrag is routed to `p`.
    fn new_rtc(&mut self, p: ParticipantId) -> Rtc {
        let creds = IceCreds::new();
        self.routing.add_ufrag(creds.ufrag.clone(), p);
        let mut rtc = build_rtc(
            self.crypto.clone(),
            self.cert.clone(),
            creds,
            &self.candidates,
            Instant::now(),
        );
        // ICE-TCP: passive host candidates (RFC 6544); clients connect to us.
        for addr in &self.tcp_candidates {
            let candidate = Candidate::builder()
                .tcp()
                .host(*addr)
                .tcptype(TcpType::Passive)
                .build();
            match candidate {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => tracing::warn!(error = %e, "unusable tcp host candidate"),
            }
        }
        rtc
    }

    fn accept_offer(
        &mut self,
        p: ParticipantId,
        offer: SdpOffer,
        policy: PublishPolicy,
    ) -> Result<String, SfuError> {
        let ready = self.rooms.is_ready(p);
        let peer = self.peers.get_mut(&p).ok_or(SfuError::UnknownParticipant)?;
        if peer.pending.is_some() {
            // We are the impolite side of glare: the client answers our offer first.
            return Err(SfuError::NegotiationInProgress);
        }
        // Sources of m-lines added by this offer are looked up while its events drain.
        let previous = std::mem::replace(&mut peer.policy, policy);
        let result = peer.rtc.sdp_api().accept_offer(offer);
        if result.is_err() {
            peer.policy = previous;
        }
        match result {
            Ok(answer) => {
                let answer = answer.to_sdp_string();
                // An ICE restart gave the session a new local ufrag: route STUN for it too.
                if let Some(ufrag) = answer
                    .lines()
                    .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))
                {
                    self.routing.add_ufrag(ufrag.to_string(), p);
                }
                self.rooms.set_ready(p);
                self.mark_dirty(p);
                Ok(answer)
            }
            Err(e) => {
                // str0m kills the session on some bad first offers (e.g. no fingerprint);
                // a participant that never negotiated just gets a fresh one to retry with.
                if !peer.rtc.is_alive() && !ready {
                    self.routing.remove(p);
                    let rtc = self.new_rtc(p);
                    if let Some(peer) = self.peers.get_mut(&p) {
                        peer.rtc = rtc;
                    }
                }
                self.mark_dirty(p);
                Err(SfuError::InvalidSdp(e.to_string()))
            }
        }
    }

    fn accept_answer(&mut self, p: ParticipantId, answer: SdpAnswer) -> Result<(), SfuError> {
        let peer = self.peers.get_mut(&p).ok_or(SfuError::UnknownParticipant)?;
        let Some(pending) = peer.pending.take() else {
            return Err(SfuError::InvalidSdp(
                "no server offer awaits an answer".into(),
            ));
        };
        let result = peer.rtc.sdp_api().accept_answer(pending, answer);
        self.mark_dirty(p);
        match result {
            Ok(()) => {
                self.rooms.negotiation_completed(p);
                Ok(())
            }
            Err(e) => {
                // The offer is void; its changes are queued again for the next offer.
                self.rooms.negotiation_aborted(p);
                Err(SfuError::InvalidSdp(e.to_string()))
            }
        }
    }

    fn add_candidate(
        &mut self,
        p: ParticipantId,
        candidate: Option<Candidate>,
    ) -> Result<(), SfuError> {
        let peer = self.peers.get_mut(&p).ok_or(SfuError::UnknownParticipant)?;
        if let Some(c) = candidate {
            peer.rtc.add_remote_candidate(c);
            self.mark_dirty(p);
        }
        Ok(())
    }
}

/// Builds a participant's `Rtc` exactly as the SFU does (ICE-lite, our DTLS certificate, our
/// codecs, our host candidates). Also used by `crate::fuzzing`, so the fuzz targets negotiate
/// with the SFU's real configuration.
pub(crate) fn build_rtc(
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
    creds: IceCreds,
    candidates: &[SocketAddr],
    now: Instant,
) -> Rtc {
    let mut rtc = RtcConfig::new()
        .set_ice_lite(true)
        .set_crypto_provider(crypto)
        .set_dtls_cert(cert)
        .set_local_ice_credentials(creds)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_h264(true)
        // Send-side BWE (TWCC) drives simulcast layer choice. str0m ties its leaky-bucket pacer
        // to BWE and paces at 1.1x the estimate, so a low starting estimate holds keyframe
        // bursts back for tens of milliseconds (measured: p99 49 ms at 1 Mbit/s, 4.7 ms at
        // 2.5-5 Mbit/s, 1.7 ms without BWE; docs/benchmarks.md). A congested subscriber's
        // estimate still falls within seconds and its layer with it.
        .enable_bwe(Some(INITIAL_BWE))
        // RTT, loss and NACK/PLI counts for the metrics.
        .set_stats_interval(Some(STATS_INTERVAL))
        .build(now);
    for addr in candidates {
        match Candidate::host(*addr, "udp") {
            Ok(c) => {
                rtc.add_local_candidate(c);
            }
            Err(e) => tracing::warn!(error = %e, "unusable host candidate"),
        }
    }
    rtc
}
