//! The hub: the [`Hub`] handle, its shared state (the state machine behind one async lock, the
//! connections' outbox and SFU event channels), the public operations the composing binary
//! calls, the ticker, and [`Hub::apply`], which turns [`Effects`] into SFU commands and frames.
//!
//! Invariant: [`Hub::apply`] never awaits. It runs under the state lock, so frames of concurrent
//! operations are never reordered and admission is atomic; SFU commands are *queued* under that
//! lock (placement is synchronous and each media loop's queue is FIFO) and their replies are
//! awaited by the caller after it released the lock ([`SfuReplies`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use chrono::{DateTime, Utc};
use consultroom_sfu::{Sfu, SfuEvent};
use tokio::sync::{Mutex, mpsc};

use super::media::SfuReplies;
use crate::chat::ChatHub;
use crate::files::http::FilesHttp;
use crate::files::{Files, FilesConfig, HandOffError, HandOffTarget};
use crate::metrics::Metrics;
use crate::outbox::{CLOSE_GOING_AWAY, CLOSE_POLICY, Outbox, lock};
use crate::state::{Announcement, ConnId, Effects, HubState};
use crate::{TokenRefresher, TokenVerifier, Visit};

/// Close reason (with [`CLOSE_POLICY`]) of a staff connection whose login session ended.
pub const REASON_SESSION_ENDED: &str = "session_ended";

/// How long an ended staff session is remembered, to refuse a join whose token was verified just
/// before the session ended: longer than any join token lives (the clinic's 120 s plus 5 s
/// leeway), after which no token of that session verifies anyway.
const ENDED_SESSION_MEMORY: Duration = Duration::from_secs(300);
/// Ended sessions remembered at most (the oldest are forgotten first).
const ENDED_SESSIONS_MAX: usize = 100_000;

/// Tunables of the signalling endpoint.
#[derive(Clone)]
pub struct HubConfig {
    /// Largest accepted text message, in bytes (default 64 KiB; SDP fits comfortably).
    pub max_message_bytes: usize,
    /// Time allowed between connecting and a valid `join` (default 10 s).
    pub join_timeout: Duration,
    /// Outgoing frames queued per connection before it is dropped as too slow (default 256).
    pub outgoing_queue: usize,
    /// The current time (injected so tests control punctuality).
    pub now: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Called with the visit (appointment or walk-in) when staff end its consultation.
    pub on_completed: Option<Arc<dyn Fn(Visit) + Send + Sync>>,
    /// Whether participants may publish a screen share (default true).
    pub allow_screen_share: bool,
    /// File sharing in consultations (off unless a directory is given).
    pub files: FilesConfig,
    /// Chat storage and rules (chat is off without one).
    pub chat: Option<Arc<dyn crate::chat::ChatStore>>,
    /// Mints fresh join tokens for joined connections (`token_refresh`; none without one).
    pub token_refresher: Option<Arc<dyn TokenRefresher>>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_message_bytes: 64 * 1024,
            join_timeout: Duration::from_secs(10),
            outgoing_queue: 256,
            now: Arc::new(Utc::now),
            on_completed: None,
            allow_screen_share: true,
            files: FilesConfig::default(),
            chat: None,
            token_refresher: None,
        }
    }
}

/// A connection's media side: where the SFU sends its events, and its staff login session.
pub(super) struct ConnMedia {
    pub sfu_events: mpsc::Sender<SfuEvent>,
    /// Events of this connection's connectivity probe (a separate SFU participant).
    pub probe_events: mpsc::Sender<SfuEvent>,
    /// The staff login session this connection joined with (set at `join`, check-only too).
    pub staff_session: Option<String>,
}

/// Staff sessions that ended recently (see [`ENDED_SESSION_MEMORY`]); bounded.
#[derive(Default)]
struct EndedSessions(HashMap<String, Instant>);

impl EndedSessions {
    fn insert(&mut self, session: &str, now: Instant) {
        self.0
            .retain(|_, at| now.saturating_duration_since(*at) < ENDED_SESSION_MEMORY);
        while self.0.len() >= ENDED_SESSIONS_MAX {
            let Some(oldest) = self
                .0
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.0.remove(&oldest);
        }
        self.0.insert(session.to_owned(), now);
    }

    fn contains(&self, session: &str, now: Instant) -> bool {
        self.0
            .get(session)
            .is_some_and(|at| now.saturating_duration_since(*at) < ENDED_SESSION_MEMORY)
    }
}

pub(super) struct Inner {
    pub state: Arc<Mutex<HubState>>,
    pub outbox: Outbox,
    pub conns: std::sync::Mutex<HashMap<ConnId, ConnMedia>>,
    pub verifier: Arc<dyn TokenVerifier>,
    pub sfu: Sfu,
    pub config: HubConfig,
    pub next_conn: AtomicU64,
    pub draining: AtomicBool,
    pub metrics: Metrics,
    pub files: Arc<Files>,
    pub chat: Arc<ChatHub>,
    /// Written and read under the `state` lock, so a join and a session's end are ordered.
    ended_sessions: std::sync::Mutex<EndedSessions>,
    /// The join token each joined connection holds, for `token_refresh` (`ws/refresh.rs`).
    pub held_tokens: super::refresh::HeldTokens,
}

/// The signalling hub of this node. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    pub(super) inner: Arc<Inner>,
}

impl Hub {
    /// A hub that authenticates with `verifier` and sends media through `sfu`.
    pub fn new(
        verifier: Arc<dyn TokenVerifier>,
        sfu: Sfu,
        config: HubConfig,
        registry: &prometheus::Registry,
    ) -> Hub {
        let files = Arc::new(Files::new(config.files.clone(), registry));
        let metrics = Metrics::register(registry);
        let outbox = Outbox::new(metrics.slow_clients.clone());
        let chat = Arc::new(ChatHub::new(config.chat.clone(), outbox.clone()));
        Hub {
            inner: Arc::new(Inner {
                state: Arc::new(Mutex::new(HubState::default())),
                outbox,
                conns: std::sync::Mutex::new(HashMap::new()),
                verifier,
                sfu,
                config,
                next_conn: AtomicU64::new(1),
                draining: AtomicBool::new(false),
                metrics,
                files,
                chat,
                ended_sessions: Default::default(),
                held_tokens: Default::default(),
            }),
        }
    }

    /// The `/ws` route.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/ws", get(super::session::upgrade))
            .with_state(self.clone())
    }

    /// The file upload and download routes (`/api/v1/consultation-files/...`); the only routes
    /// that take bodies above the 64 KiB cap (they stream). See [`crate::files`].
    pub fn files_router(&self) -> Router {
        crate::files::http::router(FilesHttp {
            files: self.inner.files.clone(),
            outbox: self.inner.outbox.clone(),
            state: self.inner.state.clone(),
            now: self.inner.config.now.clone(),
        })
    }

    /// Hand a file of a running consultation to the configured [`crate::files::FileHandOff`]
    /// (the seam for filing it into the client's record, or e-mailing it).
    pub async fn hand_off_file(
        &self,
        consultation_id: &str,
        file_id: &str,
        target: HandOffTarget,
    ) -> Result<(), HandOffError> {
        self.inner
            .files
            .hand_off(consultation_id, file_id, target)
            .await
    }

    /// Stop accepting connections and close every open one with 1001 ("going away").
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.inner
            .outbox
            .close_all(CLOSE_GOING_AWAY, "server shutting down");
    }

    /// Replace the service announcements (all organisations) and push the changes to waiting
    /// patients. The composing binary calls this at start-up and whenever they change.
    pub async fn set_announcements(&self, items: Vec<Announcement>) {
        let mut state = self.inner.state.lock().await;
        let fx = state.set_announcements(items, self.now());
        let replies = self.apply(&state, fx);
        drop(state);
        replies.finish().await;
    }

    /// A guest link was revoked (the composing binary calls this after `DELETE
    /// /appointments/{id}/guests/{guest_id}`): that guest leaves the consultation or the guest
    /// lobby at once and its connection is closed with 1008 `revoked`.
    pub async fn revoke_guest(&self, organisation_id: &str, guest_id: &str) {
        let mut state = self.inner.state.lock().await;
        let fx = state.revoke_guest(organisation_id, guest_id);
        let replies = self.apply(&state, fx);
        drop(state);
        replies.finish().await;
    }

    /// A staff login session ended (logout; later deactivation or a password change — the
    /// composing binary calls this on the clinic's `ClinicEvent::StaffSessionEnded`). Every
    /// connection joined with a token of that session leaves at once — out of its consultation
    /// as with `leave_consultation` (the others get `participant_left`; no seat is held), out of
    /// its waiting rooms and chats, its probes stopped — and is closed with 1008
    /// `session_ended`. A join with such a token that is still being verified is refused. Other
    /// sessions of the same staff member are not touched.
    pub async fn end_staff_session(&self, session: &str) {
        let mut state = self.inner.state.lock().await;
        lock(&self.inner.ended_sessions).insert(session, Instant::now());
        let mut fx = state.end_staff_session(session);
        // Check-only connections are in no room; they are found by their tag.
        let tagged: Vec<ConnId> = lock(&self.inner.conns)
            .iter()
            .filter(|(_, h)| h.staff_session.as_deref() == Some(session))
            .map(|(c, _)| *c)
            .collect();
        let now = self.now();
        for c in tagged {
            fx.merge(state.leave(c, now));
            if !fx.session_ended.contains(&c) {
                fx.session_ended.push(c);
            }
        }
        for c in &fx.session_ended {
            self.inner.chat.unregister(*c);
        }
        let replies = self.apply(&state, fx);
        drop(state);
        replies.finish().await;
    }

    /// Tell every connection that opened `channel_id` that its history up to `through_seq`
    /// was deleted. The composing binary calls this after a deletion through the HTTP API.
    pub async fn chat_cleared(&self, channel_id: &str, through_seq: i64) {
        self.inner.chat.cleared(channel_id, through_seq).await;
    }

    /// Chat between visits was closed for `channel_id` (F142: an admin stopped it): every
    /// chat-only connection that opened the channel is closed with 1008 `chat_closed`, so no
    /// further message reaches the patient outside a visit (a reconnect is refused by the store).
    /// Waiting-room and consultation connections keep the channel.
    pub async fn chat_closed_between_visits(&self, channel_id: &str) {
        self.inner.chat.closed_between_visits(channel_id).await;
    }

    /// Whether `session` ended recently; call with the state lock held.
    pub(super) fn session_ended(&self, session: &str) -> bool {
        lock(&self.inner.ended_sessions).contains(session, Instant::now())
    }

    /// Run the periodic clock: grace periods and announcement expiries are checked every
    /// `period` (one second in the server) against the injected clock.
    pub fn spawn_ticker(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        self.spawn_token_refresh(period);
        self.spawn_every(period, |hub| async move {
            let mut state = hub.inner.state.lock().await;
            let fx = state.tick(hub.now());
            let replies = hub.apply(&state, fx);
            drop(state);
            replies.finish().await;
        })
    }

    /// Runs `round` every `period` until the hub drains (a round is awaited before the next).
    pub(super) fn spawn_every<F, Fut>(
        &self,
        period: Duration,
        mut round: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: FnMut(Hub) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            loop {
                interval.tick().await;
                if hub.inner.draining.load(Ordering::SeqCst) {
                    break;
                }
                round(hub.clone()).await;
            }
        })
    }

    /// Number of open WebSocket connections.
    pub fn open_connections(&self) -> usize {
        self.inner.outbox.len()
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.inner.config.now)()
    }

    /// Apply effects: SFU commands first (queued, so a client's media offer always finds its
    /// participant: it queues behind the join on the same loop), then frames in order. Called
    /// with the state lock held so that frames from concurrent operations are never reordered;
    /// never awaits. Await the returned replies after releasing the lock.
    #[must_use = "await the SFU replies (after releasing the state lock)"]
    pub(super) fn apply(&self, state: &HubState, fx: Effects) -> SfuReplies {
        let replies = self.queue_sfu(state, &fx);
        self.inner.outbox.push_all(fx.sends);
        for c in fx.close {
            self.inner.outbox.close(c, CLOSE_GOING_AWAY, "replaced");
        }
        for c in fx.revoked {
            self.inner.outbox.close(c, CLOSE_POLICY, "revoked");
        }
        for c in fx.session_ended {
            self.inner
                .outbox
                .close(c, CLOSE_POLICY, REASON_SESSION_ENDED);
        }
        // Whoever enters a consultation sees the files shared there before.
        self.send_files_shared_before(state, &fx.sfu_join);
        for consultation in &fx.ended {
            self.inner.files.end_consultation(consultation);
        }
        self.inner.chat.visits_completed(&fx.completed);
        if let Some(cb) = &self.inner.config.on_completed {
            for visit in fx.completed {
                cb(visit);
            }
        }
        self.inner.metrics.observe(state);
        replies
    }
}
