//! Draining `Rtc` outputs: transmits, connection events, media fan-out, keyframe requests and
//! server offers.
//!
//! Invariant: media is written only to down tracks whose m-line is negotiated (the room's
//! fan-out list), so a participant receives nothing from outside its own room.

use std::time::Instant;

use str0m::bwe::BweKind;
use str0m::media::{
    Direction, KeyframeRequest, KeyframeRequestKind, MediaData, MediaTime, Mid, Rid, Rids,
};
use str0m::{Event, IceConnectionState, Output, RtcError};

use super::{MediaLoop, Removal, emit};
use crate::metrics::{Direction as Dir, DropReason};
use crate::room::{Frame, KeyframeAsk, TrackId};
use crate::simulcast::vp8_dimensions;
use crate::{ParticipantId, SfuEvent, TrackSource};

/// The msid of a down track: stream id `participant-<id>` for microphone and camera,
/// `participant-<id>-screen` for a screen share (so browsers put it in its own MediaStream);
/// track id `<source>-<publisher's mid>-t<track number>` with source `microphone`, `camera` or
/// `screen`. The track number makes it unique even when the same publisher m-line is published
/// again (a second screen share) while the old down m-line is still in the SDP as inactive:
/// browsers refuse an SDP with duplicate msids.
pub(crate) fn msid(
    publisher: ParticipantId,
    source: TrackSource,
    mid: Mid,
    track: TrackId,
) -> (String, String) {
    let stream = match source {
        TrackSource::Screen => format!("participant-{}-screen", publisher.0),
        _ => format!("participant-{}", publisher.0),
    };
    let mid: String = mid
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (
        stream,
        format!("{}-{mid}-t{}", source.as_str(), track.number()),
    )
}

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
                Ok(Output::Transmit(t)) => {
                    let received = peer.wire.received_at(&t.contents);
                    self.send(t.proto, t.destination, &t.contents);
                    if let Some(at) = received {
                        self.metrics
                            .wire_latency_seconds
                            .observe(Instant::now().saturating_duration_since(at).as_secs_f64());
                    }
                }
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
            // After a connection, Disconnected means no STUN from the client for 15 s (str0m's
            // ICE-lite pair timeout). The session is kept until consent has been missing for
            // `CONSENT_EXPIRY` (see `MediaLoop::tick`): an ICE restart within that time (the
            // client's network came back, e.g. on a resumed signalling connection) revives it
            // with its tracks and subscriptions. Before a connection, Disconnected can be
            // transient while candidates trickle in, so it is ignored.
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                if let Some(peer) = self.peers.get_mut(&p)
                    && peer.connected
                    && peer.ice_lost_at.is_none()
                {
                    tracing::info!(participant = p.0, "ice consent lost");
                    peer.ice_lost_at = Some(Instant::now());
                }
            }
            // Only a nominated pair counts: a restart stuck in `Checking` still expires.
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) => {
                if let Some(peer) = self.peers.get_mut(&p)
                    && peer.ice_lost_at.take().is_some()
                {
                    tracing::info!(participant = p.0, "ice consent regained");
                }
            }
            Event::Closed => self.remove_peer(p, Removal::Lost),
            // Only m-lines the client sends on are published tracks.
            Event::MediaAdded(added) if added.direction.is_receiving() => {
                // str0m stores the remote's `a=simulcast:send` inverted, as our `recv` layers.
                let rids = added
                    .simulcast
                    .map(|s| {
                        let layers = if s.recv.is_empty() { s.send } else { s.recv };
                        layers.iter().map(|l| l.rid).collect()
                    })
                    .unwrap_or_default();
                let source = self.source_of(p, added.mid, added.kind);
                for q in self.rooms.publish(p, added.mid, added.kind, source, rids) {
                    self.negotiate(q);
                }
            }
            // The publisher changed the direction of one of its m-lines in a later offer:
            // stopped sending (e.g. ended a screen share: the track ends for everyone), or sends
            // again (published anew, with the simulcast layers its m-line negotiated). A
            // direction change of a track that is already published publishes nothing
            // (`Rooms::publish` ignores known tracks). Not a path for the first offer: bundled
            // port-0 m-lines (Firefox's `bundle-only`), which str0m reported here once at
            // connection, are read with port 9 (`bundle`).
            Event::MediaChanged(changed) => {
                tracing::debug!(participant = p.0, mid = %changed.mid, direction = ?changed.direction, "publisher m-line changed");
                let media = self.peers.get_mut(&p).and_then(|peer| {
                    peer.rtc.media(changed.mid).map(|m| {
                        let rids = match m.rids_rx() {
                            Rids::Specific(rids) => rids.clone(),
                            _ => Vec::new(),
                        };
                        (m.kind(), rids)
                    })
                });
                let receiving = changed.direction.is_receiving();
                // (A down track the SFU stops changes too: not a publisher's m-line.)
                if receiving || self.rooms.publishes(p, changed.mid) {
                    self.metrics.mline_changed(receiving);
                }
                let affected = if receiving {
                    match media {
                        Some((kind, rids)) => {
                            let source = self.source_of(p, changed.mid, kind);
                            self.rooms.publish(p, changed.mid, kind, source, rids)
                        }
                        None => Vec::new(),
                    }
                } else {
                    self.rooms.unpublish(p, changed.mid)
                };
                for q in affected {
                    self.negotiate(q);
                }
            }
            Event::MediaData(data) => self.forward(p, data),
            Event::KeyframeRequest(req) => self.keyframe_requested(p, req),
            Event::EgressBitrateEstimate(BweKind::Twcc {
                estimate,
                can_probe,
            }) => {
                tracing::trace!(
                    participant = p.0,
                    bps = estimate.as_u64(),
                    can_probe,
                    "bwe estimate"
                );
                self.rooms.set_estimate(p, estimate.as_u64());
            }
            Event::PeerStats(stats) => {
                if let Some(rtt) = stats.rtt {
                    self.metrics.rtt_seconds.observe(rtt.as_secs_f64());
                }
                if let Some(loss) = stats.ingress_loss_fraction {
                    self.metrics.loss(Dir::In, loss);
                }
                if let Some(loss) = stats.egress_loss_fraction {
                    self.metrics.loss(Dir::Out, loss);
                }
            }
            Event::MediaIngressStats(stats) => {
                self.count_nacks(p, (stats.mid, stats.rid, false), stats.nacks);
            }
            Event::MediaEgressStats(stats) => {
                self.count_nacks(p, (stats.mid, stats.rid, true), stats.nacks);
            }
            _ => {}
        }
    }

    /// Writes one incoming frame to every down track that wants it (see `room::forward`).
    fn forward(&mut self, p: ParticipantId, data: MediaData) {
        let now = Instant::now();
        let keyframe = data.is_keyframe();
        let frame = Frame {
            publisher: p,
            mid: data.mid,
            rid: data.rid,
            keyframe,
            dimensions: keyframe.then(|| vp8_dimensions(&data.data)).flatten(),
            bytes: data.data.len(),
            contiguous: data.contiguous,
            rtp_time: data.time.numer(),
            hz: data.time.frequency().get(),
            at: data.network_time,
        };
        let mut deliveries = std::mem::take(&mut self.deliveries);
        deliveries.clear();
        let ask = self.rooms.route_frame(&frame, now, &mut deliveries);
        let audio_level = data.ext_vals.audio_level;
        let voice = data.ext_vals.voice_activity.unwrap_or(false);
        if let Some(level) = audio_level
            && let Some(room) = self.rooms.room_of(p)
        {
            self.speakers
                .entry(room)
                .or_default()
                .observe(p, level, now);
        }
        for d in &deliveries {
            let Some(peer) = self.peers.get_mut(&d.subscriber) else {
                continue;
            };
            let Some(writer) = peer.rtc.writer(d.mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                continue;
            };
            let writer = match audio_level {
                Some(level) => writer.audio_level(level, voice),
                None => writer,
            };
            let time = MediaTime::new(d.rtp_time, data.time.frequency());
            let written = (*pt, d.rtp_time as u32);
            match writer.write(pt, data.network_time, time, data.data.clone()) {
                Ok(()) => {
                    peer.wire.written(written.0, written.1, data.network_time);
                    if d.switched {
                        self.metrics.layer_switches.inc();
                        tracing::debug!(subscriber = d.subscriber.0, mid = %d.mid, rid = ?data.rid, dimensions = ?frame.dimensions, "simulcast layer switched");
                    }
                    self.metrics.forward_latency_seconds.observe(
                        Instant::now()
                            .saturating_duration_since(data.network_time)
                            .as_secs_f64(),
                    );
                }
                // The subscriber's queue is full (it is not keeping up): it loses this frame.
                Err(RtcError::WriteWithoutPoll) => self.metrics.dropped(DropReason::SlowSubscriber),
                Err(e) => {
                    tracing::debug!(participant = d.subscriber.0, error = %e, "write to down track failed");
                }
            }
            if !self.dirty.contains(&d.subscriber) {
                self.dirty.push(d.subscriber);
            }
        }
        self.deliveries = deliveries;
        if let Some(ask) = ask {
            self.request_keyframe(ask, KeyframeRequestKind::Pli);
        }
    }

    /// Adds the growth of a cumulative NACK count from str0m's stats to the metric.
    fn count_nacks(&mut self, p: ParticipantId, key: (Mid, Option<Rid>, bool), total: u64) {
        let Some(peer) = self.peers.get_mut(&p) else {
            return;
        };
        let egress = key.2;
        // Bounded by the session's m-lines × layers.
        let seen = peer.nacks_seen.entry(key).or_insert(0);
        let delta = total.saturating_sub(*seen);
        *seen = total;
        self.metrics
            .nacks(if egress { Dir::Out } else { Dir::In }, delta);
    }

    /// A subscriber lost a picture: ask the publisher, at most every 500 ms per track/layer.
    fn keyframe_requested(&mut self, subscriber: ParticipantId, req: KeyframeRequest) {
        self.metrics.keyframe_request(Dir::Out);
        if let Some(ask) = self
            .rooms
            .keyframe_upstream(subscriber, req.mid, Instant::now())
        {
            self.request_keyframe(ask, req.kind);
        }
    }

    /// Sends a keyframe request upstream (the throttling happened in `room`).
    pub(super) fn request_keyframe(&mut self, ask: KeyframeAsk, kind: KeyframeRequestKind) {
        let Some(peer) = self.peers.get_mut(&ask.publisher) else {
            return;
        };
        let Some(mut writer) = peer.rtc.writer(ask.mid) else {
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
        match writer.request_keyframe(ask.rid, kind) {
            Ok(()) => self.metrics.keyframe_request(Dir::In),
            Err(e) => {
                tracing::debug!(participant = ask.publisher.0, error = %e, "keyframe request failed");
            }
        }
        self.mark_dirty(ask.publisher);
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
        for open in plan.open {
            // The msid tells the client whose media an m-line carries and what it is.
            let (stream_id, track_id) =
                msid(open.publisher, open.source, open.publisher_mid, open.track);
            let mid = api.add_media(
                open.kind,
                Direction::SendOnly,
                Some(stream_id),
                Some(track_id),
                None,
            );
            opened.push((open.track, mid));
        }
        for mid in plan.stop {
            api.set_direction(mid, Direction::Inactive);
        }
        match api.apply() {
            Some((offer, pending)) => {
                peer.pending = Some(pending);
                let sdp = offer.to_sdp_string();
                peer.offer_sdp = Some(sdp.clone());
                emit(&peer.events, SfuEvent::Offer { sdp });
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
