//! [`SfuClient`]: a [`TestPeer`] signalled straight through the in-process [`Sfu`] API, answering
//! server offers as they arrive and recording what the SFU reported.

use std::sync::Arc;
use std::time::Duration;

use consultroom_sfu::{
    OfferError, ParticipantId, PublishPolicy, RoomId, Sfu, SfuEvent, TrackSource,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

use super::{Kind, Publisher, TestPeer, m_lines};

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
    /// Every [`SfuEvent::Speaking`], in order.
    pub speakers: Vec<ParticipantId>,
}

/// What an [`SfuClient`] publishes.
#[derive(Debug, Clone)]
pub enum Publish {
    /// Synthetic Opus + VP8.
    Default,
    /// Synthetic Opus + simulcast VP8 with these rids (lowest first).
    Simulcast(Vec<&'static str>),
    /// Synthetic Opus + VP8 camera + a second VP8 track (the screen; payloads end in `S`).
    WithScreen,
    /// Like `Simulcast`, with Firefox's bundled m-lines (RFC 8843, `max-bundle`): every m-line
    /// but the first has port 0, marked `a=bundle-only` in the offer (also in the answers to
    /// server offers, without `bundle-only`). See [`super::firefox_bundle`].
    SimulcastBundleOnly(Vec<&'static str>),
}

/// A [`TestPeer`] joined to an in-process [`Sfu`], answering server offers as they come.
pub struct SfuClient {
    pub peer: Arc<TestPeer>,
    pub id: ParticipantId,
    /// The SSRC of the synthetic camera track (not for simulcast, which has one per layer).
    pub video_ssrc: Option<u32>,
    publisher: Option<Publisher>,
    events: JoinHandle<()>,
    status: watch::Receiver<SfuStatus>,
}

impl SfuClient {
    /// Joins `room` as `id`, publishes synthetic audio + video, offers and applies the answer.
    pub async fn connect(sfu: &Sfu, room: RoomId, id: ParticipantId) -> SfuClient {
        let peer = Arc::new(TestPeer::new().await);
        SfuClient::connect_peer(sfu, room, id, peer, Publish::Default, None)
            .await
            .expect("sfu answers our offer")
    }

    /// Joins with what `publish` says, offering under a `PublishPolicy` when a
    /// policy is given (the screen m-line, if any, is declared `Screen`, others undeclared).
    pub async fn connect_with(
        sfu: &Sfu,
        room: RoomId,
        id: ParticipantId,
        publish: Publish,
        allow_screen: Option<bool>,
    ) -> Result<SfuClient, OfferError> {
        let peer = Arc::new(TestPeer::new().await);
        SfuClient::connect_peer(sfu, room, id, peer, publish, allow_screen).await
    }

    /// Like [`SfuClient::connect`] with a peer built by the caller (e.g. TCP-only). The SFU's
    /// passive TCP candidates in the answer are trickled to the peer.
    pub async fn connect_on(
        sfu: &Sfu,
        room: RoomId,
        id: ParticipantId,
        peer: TestPeer,
    ) -> SfuClient {
        SfuClient::connect_peer(sfu, room, id, Arc::new(peer), Publish::Default, None)
            .await
            .expect("sfu answers our offer")
    }

    async fn connect_peer(
        sfu: &Sfu,
        room: RoomId,
        id: ParticipantId,
        peer: Arc<TestPeer>,
        publish: Publish,
        allow_screen: Option<bool>,
    ) -> Result<SfuClient, OfferError> {
        let (events_tx, mut events_rx) = mpsc::channel(16);
        let firefox = matches!(publish, Publish::SimulcastBundleOnly(_));
        sfu.join(room, id, events_tx).await.expect("join");
        enum Started {
            Default(super::SyntheticTracks),
            Simulcast(super::SyntheticTracks, super::SimulcastVideo),
            Screen(super::SyntheticTracks, (Arc<TrackLocalStaticRTP>, u32)),
        }
        let started = match publish {
            Publish::Default => Started::Default(peer.add_synthetic_tracks().await),
            Publish::Simulcast(rids) | Publish::SimulcastBundleOnly(rids) => {
                let audio_video = peer.add_synthetic_audio_only().await;
                let video = peer.add_simulcast_video(&rids).await;
                Started::Simulcast(audio_video, video)
            }
            Publish::WithScreen => {
                let tracks = peer.add_synthetic_tracks().await;
                let screen = peer.add_track_of(Kind::Video).await;
                Started::Screen(tracks, screen)
            }
        };
        let offer = peer.offer().await;
        let sent = if firefox {
            super::firefox_bundle(&offer, true)
        } else {
            offer.clone()
        };
        let answer = match allow_screen {
            None => sfu.offer(id, sent, PublishPolicy::default()).await,
            Some(allow_screen) => {
                let videos: Vec<_> = m_lines(&offer)
                    .into_iter()
                    .filter(|m| m.kind == "video")
                    .collect();
                let sources = match (&started, videos.get(1)) {
                    (Started::Screen(..), Some(screen)) => {
                        vec![(screen.mid.clone(), TrackSource::Screen)]
                    }
                    _ => vec![],
                };
                let policy = PublishPolicy {
                    sources,
                    allow_screen,
                };
                sfu.offer(id, offer.clone(), policy).await
            }
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                sfu.leave(id).await;
                peer.close().await;
                return Err(e);
            }
        };
        peer.accept_answer(answer.clone()).await;
        peer.add_tcp_candidates_from(&answer).await;
        let video_ssrc = match &started {
            Started::Default(tracks) | Started::Screen(tracks, _) => {
                tracks.video.as_ref().map(|v| v.1)
            }
            Started::Simulcast(..) => None,
        };
        let publisher = match started {
            Started::Default(tracks) => tracks.start(),
            Started::Simulcast(audio, video) => {
                let mut p = audio.start();
                p.tasks.append(&mut video.start(&offer, &answer).tasks);
                p
            }
            Started::Screen(tracks, screen) => {
                let mut p = tracks.start();
                p.tasks.push(super::start_vp8(screen.0, screen.1, b'S'));
                p
            }
        };
        let (status_tx, status) = watch::channel(SfuStatus::default());
        let events = {
            let sfu = sfu.clone();
            let peer = peer.clone();
            tokio::spawn(async move {
                while let Some(event) = events_rx.recv().await {
                    match event {
                        SfuEvent::Offer { sdp } => {
                            let mut answer = peer.answer(sdp.clone()).await;
                            if firefox {
                                answer = super::firefox_bundle(&answer, false);
                            }
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
                        SfuEvent::Speaking { participant } => {
                            status_tx.send_modify(|s| s.speakers.push(participant))
                        }
                    }
                }
            })
        };
        Ok(SfuClient {
            peer,
            id,
            video_ssrc,
            publisher: Some(publisher),
            events,
            status,
        })
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
