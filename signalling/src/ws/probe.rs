//! The WebSocket side of connectivity probes (see `state::probe`): `probe_offer`,
//! `probe_answer`, `probe_candidate`, `probe_stop`, and the probe's SFU events.
//!
//! Invariant: a probe's frames go to its own connection only, and its SFU participant is
//! addressed only through `HubState::probe_media` (never a consultation's).

use consultroom_sfu::{OfferError, PublishPolicy, SfuError, SfuEvent};

use super::session::Session;
use crate::protocol::{ClientMessage, ErrorCode, ServerMessage};
use crate::state::PROBE_DURATION;

impl Session {
    /// Handles one of the `probe_*` client messages.
    pub(super) async fn probe(&mut self, id: Option<String>, msg: ClientMessage) {
        let hub = self.hub.clone();
        match msg {
            ClientMessage::ProbeOffer { sdp } => {
                let participant = {
                    let mut state = hub.inner.state.lock().await;
                    match state.probe_start(self.conn, hub.now()) {
                        Ok((fx, participant)) => {
                            let replies = hub.apply(&state, fx);
                            drop(state);
                            replies.finish().await;
                            participant
                        }
                        Err(r) => {
                            self.error(id, r.code, r.message);
                            return;
                        }
                    }
                };
                hub.inner.metrics.probes_started.inc();
                // The default policy allows everything, so only an `SfuError` can come back.
                let offered = hub
                    .inner
                    .sfu
                    .offer(participant, sdp, PublishPolicy::default());
                match offered.await.map_err(|e| match e {
                    OfferError::Sfu(e) => e,
                    OfferError::Forbidden(why) => SfuError::InvalidSdp(why),
                }) {
                    Ok(sdp) => {
                        let sfu = &hub.inner.sfu;
                        self.send(
                            id,
                            ServerMessage::ProbeAnswer {
                                sdp,
                                seconds: PROBE_DURATION.num_seconds().unsigned_abs() as u32,
                                udp_ports: sfu.local_addrs().iter().map(|a| a.port()).collect(),
                                tcp_ports: sfu.tcp_addrs().iter().map(|a| a.port()).collect(),
                            },
                        )
                    }
                    Err(e) => {
                        // Nothing to measure without a session: free it for another try.
                        let mut state = hub.inner.state.lock().await;
                        let mut replies = None;
                        if state.probe_media(self.conn) == Some(participant)
                            && let Ok(fx) = state.probe_stop(self.conn)
                        {
                            replies = Some(hub.apply(&state, fx));
                        }
                        drop(state);
                        if let Some(replies) = replies {
                            replies.finish().await;
                        }
                        self.sfu_error(id, e);
                    }
                }
            }
            ClientMessage::ProbeAnswer { sdp } => {
                let Some(participant) = self.probe_participant().await else {
                    self.error(id, ErrorCode::InvalidState, "no probe is running");
                    return;
                };
                match hub.inner.sfu.answer(participant, sdp).await {
                    Ok(()) => self.send(id, ServerMessage::Ok {}),
                    Err(e) => self.sfu_error(id, e),
                }
            }
            ClientMessage::ProbeCandidate { candidate } => {
                let Some(participant) = self.probe_participant().await else {
                    self.error(id, ErrorCode::InvalidState, "no probe is running");
                    return;
                };
                match hub.inner.sfu.candidate(participant, candidate).await {
                    Ok(()) => {
                        if id.is_some() {
                            self.send(id, ServerMessage::Ok {});
                        }
                    }
                    Err(e) => self.sfu_error(id, e),
                }
            }
            ClientMessage::ProbeStop {} => {
                let mut state = hub.inner.state.lock().await;
                let r = state.probe_stop(self.conn);
                self.reply(state, id, r).await;
            }
            _ => {}
        }
    }

    /// An event of this connection's probe session.
    pub(super) async fn on_probe_event(&mut self, ev: SfuEvent) {
        let hub = self.hub.clone();
        match ev {
            SfuEvent::Offer { sdp } => {
                // A late offer of a probe that has ended meanwhile is dropped.
                if self.probe_participant().await.is_some() {
                    self.send(None, ServerMessage::ProbeOffer { sdp });
                }
            }
            SfuEvent::Connected => {
                if hub.inner.state.lock().await.probe_connected(self.conn) {
                    hub.inner.metrics.probes_connected.inc();
                }
            }
            SfuEvent::Disconnected => {
                let mut state = hub.inner.state.lock().await;
                let fx = state.probe_lost(self.conn);
                let replies = hub.apply(&state, fx);
                drop(state);
                replies.finish().await;
            }
            SfuEvent::Speaking { .. } => {}
        }
    }

    async fn probe_participant(&self) -> Option<consultroom_sfu::ParticipantId> {
        self.hub.inner.state.lock().await.probe_media(self.conn)
    }
}
