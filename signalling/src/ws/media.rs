//! Translation between the protocol and the SFU: `media_offer`, `media_answer`,
//! `ice_candidate`, `view`, the SFU's events (server offers, lost sessions, the active
//! speaker), the SFU side of [`Effects`] (joins, leaves, rebinds) and SFU errors.
//!
//! Invariant: SFU joins, leaves and rebinds are *queued* while the hub's state lock is held
//! ([`Hub::queue_sfu`], synchronous) and their replies awaited after it is released
//! ([`SfuReplies::finish`]); no `.await` on a media loop happens under the state lock. Requests
//! of one connection (offer, answer, candidate, view) look up its SFU participant under the lock
//! and are sent after releasing it; they queue behind the participant's join on its loop.

use consultroom_sfu::{
    OfferError, ParticipantId, PublishPolicy, SfuError, SfuEvent, TrackSource, View,
};
use futures_util::future::BoxFuture;

use super::Hub;
use super::session::Session;
use crate::outbox::lock;
use crate::protocol::{ErrorCode, ServerMessage, TrackInfo, TrackSourceKind};
use crate::state::{Effects, HubState};

/// Replies of SFU commands queued under the state lock; [`SfuReplies::finish`] awaits them
/// (after the lock is released) and logs failures, as the hub did when it awaited each in turn.
#[must_use = "await the SFU replies (after releasing the state lock)"]
#[derive(Default)]
pub(crate) struct SfuReplies(Vec<(&'static str, BoxFuture<'static, Result<(), SfuError>>)>);

impl SfuReplies {
    pub(crate) async fn finish(self) {
        for (what, reply) in self.0 {
            if let Err(e) = reply.await {
                tracing::warn!(error = %e, "{what} failed");
            }
        }
    }
}

impl Hub {
    /// Queues the SFU side of `fx` on the media loops without waiting: leaves, joins, probe
    /// joins, rebinds, in that order (a leave frees the participant for a join in the same
    /// effects). Call with the state lock held.
    pub(super) fn queue_sfu(&self, state: &HubState, fx: &Effects) -> SfuReplies {
        let sfu = &self.inner.sfu;
        let mut replies = SfuReplies::default();
        for p in &fx.sfu_leave {
            let left = sfu.leave_queued(*p);
            replies.0.push((
                "sfu leave",
                Box::pin(async move {
                    left.await;
                    Ok(())
                }),
            ));
        }
        let conns = lock(&self.inner.conns);
        for (room, c) in &fx.sfu_join {
            let participant = state.media(*c).unwrap_or(c.participant());
            if let Some(h) = conns.get(c) {
                let joined = sfu.join_queued(*room, participant, h.sfu_events.clone());
                replies.0.push(("sfu join", Box::pin(joined)));
            }
        }
        // Connectivity probes: a loopback room each, events on the connection's probe channel.
        for (room, p, c) in &fx.probe_join {
            if let Some(h) = conns.get(c) {
                let joined = sfu.join_loopback_queued(*room, *p, h.probe_events.clone());
                replies.0.push(("sfu probe join", Box::pin(joined)));
            }
        }
        // A resumed seat: the SFU participant's events go to the new connection.
        for (p, c) in &fx.sfu_rebind {
            if let Some(h) = conns.get(c) {
                let rebound = sfu.rebind_queued(*p, h.sfu_events.clone());
                replies.0.push(("sfu rebind", Box::pin(rebound)));
            }
        }
        replies
    }
}

impl Session {
    /// An event of this connection's SFU participant.
    pub(super) async fn on_sfu_event(&mut self, ev: SfuEvent) {
        let hub = self.hub.clone();
        match ev {
            SfuEvent::Offer { sdp } => {
                self.send(None, ServerMessage::MediaOffer { sdp });
            }
            SfuEvent::Disconnected => {
                // The SFU removed our media participant (ICE consent expired, DTLS closed): the
                // seat goes as after a grace period.
                let mut state = hub.inner.state.lock().await;
                if let Some(media) = state.media(self.conn) {
                    let fx = state.media_lost(media);
                    let replies = hub.apply(&state, fx);
                    drop(state);
                    replies.finish().await;
                }
            }
            SfuEvent::Speaking { participant } => {
                let public = hub.inner.state.lock().await.public_id_of_media(participant);
                if let Some(participant_id) = public {
                    self.send(None, ServerMessage::Speaking { participant_id });
                }
            }
            SfuEvent::Connected => {}
        }
    }

    /// `media_offer`: the client's offer under its publish policy; replies `media_answer`.
    pub(super) async fn media_offer(
        &self,
        id: Option<String>,
        sdp: String,
        tracks: Vec<TrackInfo>,
    ) {
        let Some(participant) = self.media_participant().await else {
            self.error(id, ErrorCode::InvalidState, "not in a consultation");
            return;
        };
        let hub = &self.hub;
        let policy = PublishPolicy {
            sources: tracks
                .into_iter()
                .map(|t| {
                    let source = match t.source {
                        TrackSourceKind::Microphone => TrackSource::Microphone,
                        TrackSourceKind::Camera => TrackSource::Camera,
                        TrackSourceKind::Screen => TrackSource::Screen,
                    };
                    (t.mid, source)
                })
                .collect(),
            allow_screen: hub.inner.config.allow_screen_share && self.permissions.screen_share,
        };
        match hub.inner.sfu.offer(participant, sdp, policy).await {
            Ok(sdp) => self.send(id, ServerMessage::MediaAnswer { sdp }),
            Err(OfferError::Forbidden(_)) => self.error(
                id,
                ErrorCode::Forbidden,
                "screen sharing is not allowed in this organisation",
            ),
            Err(OfferError::Sfu(e)) => self.sfu_error(id, e),
        }
    }

    /// `view`: how the client shows one remote video.
    pub(super) async fn view(&self, id: Option<String>, mid: String, view: View) {
        let Some(participant) = self.media_participant().await else {
            self.error(id, ErrorCode::InvalidState, "not in a consultation");
            return;
        };
        match self.hub.inner.sfu.set_view(participant, mid, view).await {
            Ok(()) => self.ok_if_asked(id),
            Err(e) => self.sfu_error(id, e),
        }
    }

    /// `media_answer`: the client's answer to the SFU's last offer.
    pub(super) async fn media_answer(&self, id: Option<String>, sdp: String) {
        let Some(participant) = self.media_participant().await else {
            self.error(id, ErrorCode::InvalidState, "not in a consultation");
            return;
        };
        match self.hub.inner.sfu.answer(participant, sdp).await {
            Ok(()) => self.send(id, ServerMessage::Ok {}),
            Err(e) => self.sfu_error(id, e),
        }
    }

    /// `ice_candidate`: a trickled candidate of the client.
    pub(super) async fn ice_candidate(&self, id: Option<String>, candidate: String) {
        let Some(participant) = self.media_participant().await else {
            self.error(id, ErrorCode::InvalidState, "not in a consultation");
            return;
        };
        match self.hub.inner.sfu.candidate(participant, candidate).await {
            Ok(()) => self.ok_if_asked(id),
            Err(e) => self.sfu_error(id, e),
        }
    }

    /// The SFU participant of this connection, when it is in a consultation (its own, or
    /// that of the seat it resumed).
    async fn media_participant(&self) -> Option<ParticipantId> {
        let state = self.hub.inner.state.lock().await;
        if state.in_consultation(self.conn) {
            state.media(self.conn)
        } else {
            None
        }
    }

    pub(super) fn sfu_error(&self, id: Option<String>, e: SfuError) {
        match e {
            SfuError::InvalidSdp(reason) => {
                // The parser's reason names SDP syntax, never people; debug level only.
                tracing::debug!(%reason, "sdp refused");
                self.error(id, ErrorCode::InvalidSdp, "invalid sdp")
            }
            SfuError::InvalidCandidate => {
                self.error(id, ErrorCode::InvalidMessage, "invalid ice candidate")
            }
            SfuError::NegotiationInProgress => {
                self.error(id, ErrorCode::InvalidState, "negotiation in progress")
            }
            SfuError::UnknownParticipant | SfuError::AlreadyJoined => {
                self.error(id, ErrorCode::InvalidState, "not in a media session")
            }
            SfuError::Stopped | SfuError::Busy | SfuError::Io(_) | SfuError::NoAnnounceAddress => {
                let correlation = uuid::Uuid::new_v4();
                tracing::error!(%correlation, error = %e, "sfu failure");
                self.error(
                    id,
                    ErrorCode::Internal,
                    &format!("internal error ({correlation})"),
                );
            }
        }
    }
}
