//! Draining `Rtc` outputs: transmits, connection events, media fan-out, keyframe requests and
//! server offers.
//!
//! Invariant: media is written only to down tracks whose m-line is negotiated (the room's
//! fan-out list), so a participant receives nothing from outside its own room.

use std::time::Instant;

use str0m::media::{Direction, KeyframeRequest, KeyframeRequestKind, MediaData, Mid};
use str0m::{Event, IceConnectionState, Output};

use super::{MediaLoop, Removal, emit};
use crate::{ParticipantId, SfuEvent};

impl MediaLoop {
    /// Polls `p`'s `Rtc` until it asks for a timeout, acting on everything it outputs.
    pub(super) fn drive(&mut self, p: ParticipantId) {
        loop {
            let Some(peer) = self.peers.get_mut(&p) else {
                return;
            };
            if !peer.rtc.is_alive() {
                self.remove_peer(p, Removal::Lost);
                return;
            }
            match peer.rtc.poll_output() {
                Ok(Output::Transmit(t)) => self.send(t.destination, &t.contents),
                Ok(Output::Timeout(at)) => {
                    self.schedule(p, at);
                    return;
                }
                Ok(Output::Event(event)) => self.handle_event(p, event),
                Err(e) => {
                    tracing::info!(participant = p.0, error = %e, "rtc failed");
                    self.remove_peer(p, Removal::Lost);
                    return;
                }
            }
        }
    }

    fn handle_event(&mut self, p: ParticipantId, event: Event) {
        match event {
            Event::Connected => {
                if let Some(peer) = self.peers.get_mut(&p)
                    && !peer.connected
                {
                    peer.connected = true;
                    let took = peer.joined_at.elapsed();
                    self.metrics.connect_seconds.observe(took.as_secs_f64());
                    tracing::info!(participant = p.0, ms = took.as_millis() as u64, "connected");
                    emit(&peer.events, SfuEvent::Connected);
                }
            }
            // After a connection, Disconnected means consent expired (no STUN from the client
            // for 15 s): ICE-lite cannot repair that, the client joins again. Before one, it
            // can be transient while candidates trickle in, so it is ignored.
            Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                if self.peers.get(&p).is_some_and(|peer| peer.connected) =>
            {
                self.remove_peer(p, Removal::Lost);
            }
            Event::Closed => self.remove_peer(p, Removal::Lost),
            // Only m-lines the client sends on are published tracks.
            Event::MediaAdded(added) if added.direction.is_receiving() => {
                for q in self.rooms.publish(p, added.mid, added.kind) {
                    self.negotiate(q);
                }
            }
            Event::MediaData(data) => self.forward(p, data),
            Event::KeyframeRequest(req) => self.keyframe_requested(p, req),
            _ => {}
        }
    }

    /// Writes one incoming frame to every subscriber of its track.
    fn forward(&mut self, p: ParticipantId, data: MediaData) {
        let now = Instant::now();
        if !data.contiguous && self.rooms.keyframe_on_loss(p, data.mid, now) {
            self.request_keyframe(p, data.mid, KeyframeRequestKind::Pli);
        }
        // Simulcast layer choice is not implemented yet: forward the plain stream, or the "h"
        // layer of a simulcast publisher, never several layers interleaved.
        if data.rid.is_some_and(|rid| rid.to_string() != "h") {
            return;
        }
        for &(q, mid) in self.rooms.fanout(p, data.mid) {
            let Some(peer) = self.peers.get_mut(&q) else {
                continue;
            };
            let Some(writer) = peer.rtc.writer(mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                continue;
            };
            if let Err(e) = writer.write(pt, data.network_time, data.time, data.data.clone()) {
                tracing::debug!(participant = q.0, error = %e, "write to down track failed");
            }
            if !self.dirty.contains(&q) {
                self.dirty.push(q);
            }
        }
    }

    /// A subscriber lost a picture: ask the publisher, at most every 500 ms per track.
    fn keyframe_requested(&mut self, subscriber: ParticipantId, req: KeyframeRequest) {
        if let Some((publisher, mid)) =
            self.rooms
                .keyframe_upstream(subscriber, req.mid, Instant::now())
        {
            self.request_keyframe(publisher, mid, req.kind);
        }
    }

    fn request_keyframe(&mut self, publisher: ParticipantId, mid: Mid, kind: KeyframeRequestKind) {
        let Some(peer) = self.peers.get_mut(&publisher) else {
            return;
        };
        let Some(mut writer) = peer.rtc.writer(mid) else {
            return;
        };
        // Prefer what the publisher negotiated: PLI is near universal, FIR the fallback.
        let kind = if writer.is_request_keyframe_possible(kind) {
            kind
        } else {
            match kind {
                KeyframeRequestKind::Pli => KeyframeRequestKind::Fir,
                KeyframeRequestKind::Fir => KeyframeRequestKind::Pli,
            }
        };
        if let Err(e) = writer.request_keyframe(None, kind) {
            tracing::debug!(participant = publisher.0, error = %e, "keyframe request failed");
        }
        self.mark_dirty(publisher);
    }

    /// Sends `p` a server offer for its queued down-track changes, unless one is outstanding.
    pub(super) fn negotiate(&mut self, p: ParticipantId) {
        let Some(plan) = self.rooms.plan_negotiation(p) else {
            return;
        };
        let Some(peer) = self.peers.get_mut(&p) else {
            return;
        };
        let mut api = peer.rtc.sdp_api();
        let mut opened = Vec::with_capacity(plan.open.len());
        for (track, kind, publisher) in plan.open {
            // The stream id (a=msid) tells the client whose media an m-line carries.
            let stream_id = format!("participant-{}", publisher.0);
            let mid = api.add_media(kind, Direction::SendOnly, Some(stream_id), None, None);
            opened.push((track, mid));
        }
        for mid in plan.stop {
            api.set_direction(mid, Direction::Inactive);
        }
        match api.apply() {
            Some((offer, pending)) => {
                peer.pending = Some(pending);
                emit(
                    &peer.events,
                    SfuEvent::Offer {
                        sdp: offer.to_sdp_string(),
                    },
                );
                self.rooms.negotiation_started(p, &opened);
            }
            None => {
                // Nothing needed the client's consent (e.g. an m-line was already inactive).
                self.rooms.negotiation_started(p, &opened);
                if self.rooms.negotiation_completed(p) {
                    self.negotiate(p);
                }
            }
        }
        self.mark_dirty(p);
    }
}
