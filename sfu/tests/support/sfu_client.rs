//! [`SfuClient`]: a [`TestPeer`] signalled straight through the in-process [`Sfu`] API, answering
//! server offers as they arrive and recording what the SFU reported.

use std::sync::Arc;
use std::time::Duration;

use consultroom_sfu::{ParticipantId, RoomId, Sfu, SfuEvent};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Publisher, TestPeer};

/// What the SFU told one [`SfuClient`] so far.
#[derive(Debug, Clone, Default)]
pub struct SfuStatus {
    /// [`SfuEvent::Connected`] arrived.
    pub connected: bool,
    /// [`SfuEvent::Disconnected`] arrived.
    pub disconnected: bool,
    /// Server offers answered successfully.
    pub offers_answered: u32,
    /// The last server offer's SDP.
    pub last_offer: String,
    /// Why the SFU refused one of our answers, if it did.
    pub answer_error: Option<String>,
}

/// A [`TestPeer`] joined to an in-process [`Sfu`], answering server offers as they come.
pub struct SfuClient {
    pub peer: Arc<TestPeer>,
    pub id: ParticipantId,
    publisher: Option<Publisher>,
    events: JoinHandle<()>,
    status: watch::Receiver<SfuStatus>,
}

impl SfuClient {
    /// Joins `room` as `id`, publishes synthetic audio + video, offers and applies the answer.
    pub async fn connect(sfu: &Sfu, room: RoomId, id: ParticipantId) -> SfuClient {
        let peer = Arc::new(TestPeer::new().await);
        let (events_tx, mut events_rx) = mpsc::channel(16);
        sfu.join(room, id, events_tx).await.expect("join");
        let tracks = peer.add_synthetic_tracks().await;
        let offer = peer.offer().await;
        let answer = sfu.offer(id, offer).await.expect("sfu answers our offer");
        peer.accept_answer(answer).await;
        let (status_tx, status) = watch::channel(SfuStatus::default());
        let events = {
            let sfu = sfu.clone();
            let peer = peer.clone();
            tokio::spawn(async move {
                while let Some(event) = events_rx.recv().await {
                    match event {
                        SfuEvent::Offer { sdp } => {
                            let answer = peer.answer(sdp.clone()).await;
                            let result = sfu.answer(id, answer).await;
                            status_tx.send_modify(|s| {
                                s.last_offer = sdp;
                                match result {
                                    Ok(()) => s.offers_answered += 1,
                                    Err(e) => s.answer_error = Some(e.to_string()),
                                }
                            });
                        }
                        SfuEvent::Connected => status_tx.send_modify(|s| s.connected = true),
                        SfuEvent::Disconnected => status_tx.send_modify(|s| s.disconnected = true),
                    }
                }
            })
        };
        SfuClient {
            peer,
            id,
            publisher: Some(tracks.start()),
            events,
            status,
        }
    }

    /// The SFU's view of this client so far.
    pub fn status(&self) -> SfuStatus {
        self.status.borrow().clone()
    }

    /// Waits (bounded) until `pred` holds for the status; returns the last status seen.
    pub async fn wait_status(
        &self,
        timeout: Duration,
        pred: impl Fn(&SfuStatus) -> bool,
    ) -> SfuStatus {
        let mut rx = self.status.clone();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| pred(s))).await;
        self.status()
    }

    /// Waits until the SFU reported [`SfuEvent::Connected`] for this client.
    pub async fn wait_sfu_connected(&self, timeout: Duration) -> bool {
        self.wait_status(timeout, |s| s.connected).await.connected
    }

    /// Stops publishing media (the peer connection stays up).
    pub fn stop_publishing(&mut self) {
        self.publisher.take();
    }

    /// Stops publishing and closes the peer connection.
    pub async fn close(mut self) {
        self.publisher.take();
        self.events.abort();
        self.peer.close().await;
    }
}
