//! The WebSocket endpoint: one task per connection, translating frames to [`HubState`]
//! operations and SFU commands.
//!
//! Limits enforced here: a message over `max_message_bytes` closes the socket with 1009; a
//! connection that has not sent a valid `join` within `join_timeout` is closed with 1008; every
//! connection has a bounded outgoing queue, and a client that cannot keep up is disconnected
//! rather than buffered without bound. Malformed frames get an `error` reply and the connection
//! stays open.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, Utc};
use consultroom_sfu::{OfferError, PublishPolicy, Sfu, SfuError, SfuEvent, TrackSource, View};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use tokio::sync::{Mutex, mpsc};

use crate::files::{Files, FilesConfig, HandOffError, HandOffTarget, StoredFile, UploadTicket};
use crate::metrics::Metrics;
use crate::protocol::{
    ClientMessage, ErrorCode, ServerFrame, ServerMessage, TrackSourceKind, decode_client_frame,
};
use crate::state::{Announcement, ConnId, Effects, HubState, Refusal};
use crate::{Permissions, TokenError, TokenRefresher, TokenVerifier, Verified, Visit};

mod probe;
mod refresh;

/// Close code: message too big (RFC 6455).
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: policy violation (bad token, no join in time).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: server going away (drain, replaced by a newer connection).
pub const CLOSE_GOING_AWAY: u16 = 1001;
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

enum Outgoing {
    Frame(ServerFrame),
    Close(u16, &'static str),
}

/// Queues `frame` on `out`; when the queue is full, wakes the connection's task through
/// `overflow` to drop it and returns false. A queue already closed (the server closed the
/// connection on purpose and its writer is gone) is not an overflow.
fn enqueue(
    out: &mpsc::Sender<Outgoing>,
    overflow: &tokio::sync::Notify,
    frame: ServerFrame,
) -> bool {
    match out.try_send(Outgoing::Frame(frame)) {
        Err(mpsc::error::TrySendError::Full(_)) => {
            overflow.notify_one();
            false
        }
        _ => true,
    }
}

struct ConnHandle {
    out: mpsc::Sender<Outgoing>,
    /// Ends the connection's task when its queue is full: a close frame cannot be queued then,
    /// so the connection is dropped instead (its writer gets a moment to flush, then is cut).
    overflow: Arc<tokio::sync::Notify>,
    sfu_events: mpsc::Sender<SfuEvent>,
    /// Events of this connection's connectivity probe (a separate SFU participant).
    probe_events: mpsc::Sender<SfuEvent>,
    /// The staff login session this connection joined with (set at `join`, check-only too).
    staff_session: Option<String>,
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

struct Inner {
    state: Mutex<HubState>,
    conns: std::sync::Mutex<HashMap<ConnId, ConnHandle>>,
    verifier: Arc<dyn TokenVerifier>,
    sfu: Sfu,
    config: HubConfig,
    next_conn: AtomicU64,
    draining: AtomicBool,
    metrics: Metrics,
    files: Arc<Files>,
    chat: crate::chat::ChatHub,
    /// Written and read under the `state` lock, so a join and a session's end are ordered.
    ended_sessions: std::sync::Mutex<EndedSessions>,
    /// The join token each joined connection holds, for `token_refresh` (`ws/refresh.rs`).
    held_tokens: refresh::HeldTokens,
}

/// The signalling hub of this node. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
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
        let chat = crate::chat::ChatHub::new(config.chat.clone());
        Hub {
            inner: Arc::new(Inner {
                state: Mutex::new(HubState::default()),
                conns: std::sync::Mutex::new(HashMap::new()),
                verifier,
                sfu,
                config,
                next_conn: AtomicU64::new(1),
                draining: AtomicBool::new(false),
                metrics: Metrics::register(registry),
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
            .route("/ws", get(upgrade))
            .with_state(self.clone())
    }

    /// The file upload and download routes (`/api/v1/consultation-files/...`); the only routes
    /// that take bodies above the 64 KiB cap (they stream). See [`crate::files`].
    pub fn files_router(&self) -> Router {
        crate::files::http::router(self.clone())
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

    pub(crate) fn files(&self) -> &Arc<Files> {
        &self.inner.files
    }

    pub(crate) fn chat_hub(&self) -> &crate::chat::ChatHub {
        &self.inner.chat
    }

    /// Queue a frame for connection `to`; a connection that cannot take it is dropped as too slow.
    pub(crate) fn push(&self, to: ConnId, reply_to: Option<String>, msg: ServerMessage) {
        let conns = lock(&self.inner.conns);
        if let Some(h) = conns.get(&to)
            && !enqueue(&h.out, &h.overflow, ServerFrame { reply_to, msg })
        {
            self.inner.metrics.slow_clients.inc();
        }
    }

    /// Closes connection `conn` with 1008 and `reason` (a policy decision, not a fault).
    pub(crate) fn close_policy(&self, conn: ConnId, reason: &'static str) {
        if let Some(h) = lock(&self.inner.conns).get(&conn) {
            let _ = h.out.try_send(Outgoing::Close(CLOSE_POLICY, reason));
        }
    }

    /// Whether connection `conn` is in a consultation now (a short look under the state lock).
    pub(crate) async fn is_in_consultation(&self, conn: ConnId) -> bool {
        self.inner.state.lock().await.in_consultation(conn)
    }

    /// Register a completed upload and tell everyone in its consultation; `None` when the
    /// consultation has ended meanwhile.
    pub(crate) async fn share_file(
        &self,
        t: &UploadTicket,
        file: StoredFile,
    ) -> Option<StoredFile> {
        let state = self.inner.state.lock().await;
        let members = state.consultation_members(&t.consultation_id)?;
        let file = self.inner.files.complete(t, file)?;
        let frame = crate::files::http::shared_frame(&file);
        let conns = lock(&self.inner.conns);
        for m in members {
            if let Some(h) = conns.get(&m) {
                let _ = h.out.try_send(Outgoing::Frame(ServerFrame {
                    reply_to: None,
                    msg: frame.clone(),
                }));
            }
        }
        Some(file)
    }

    /// Stop accepting connections and close every open one with 1001 ("going away").
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        let conns = lock(&self.inner.conns);
        for handle in conns.values() {
            let _ = handle
                .out
                .try_send(Outgoing::Close(CLOSE_GOING_AWAY, "server shutting down"));
        }
    }

    /// Replace the service announcements (all organisations) and push the changes to waiting
    /// patients. The composing binary calls this at start-up and whenever they change.
    pub async fn set_announcements(&self, items: Vec<Announcement>) {
        let mut state = self.inner.state.lock().await;
        let fx = state.set_announcements(items, self.now());
        self.apply(&state, fx).await;
    }

    /// A guest link was revoked (the composing binary calls this after `DELETE
    /// /appointments/{id}/guests/{guest_id}`): that guest leaves the consultation or the guest
    /// lobby at once and its connection is closed with 1008 `revoked`.
    pub async fn revoke_guest(&self, organisation_id: &str, guest_id: &str) {
        let mut state = self.inner.state.lock().await;
        let fx = state.revoke_guest(organisation_id, guest_id);
        self.apply(&state, fx).await;
    }

    /// A staff login session ended (logout; later deactivation or a password change — the
    /// composing binary calls this through the clinic's `on_staff_session_ended` listener). Every
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
            self.chat_hub().unregister(*c);
        }
        self.apply(&state, fx).await;
    }

    /// Whether `session` ended recently; call with the state lock held.
    fn session_ended(&self, session: &str) -> bool {
        lock(&self.inner.ended_sessions).contains(session, Instant::now())
    }

    /// Run the periodic clock: grace periods and announcement expiries are checked every
    /// `period` (one second in the server) against the injected clock.
    pub fn spawn_ticker(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        self.spawn_token_refresh(period);
        let hub = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            loop {
                interval.tick().await;
                if hub.inner.draining.load(Ordering::SeqCst) {
                    break;
                }
                let mut state = hub.inner.state.lock().await;
                let fx = state.tick(hub.now());
                hub.apply(&state, fx).await;
            }
        })
    }

    /// Number of open WebSocket connections.
    pub fn open_connections(&self) -> usize {
        lock(&self.inner.conns).len()
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.inner.config.now)()
    }

    /// Apply effects: SFU operations first (so a client's media offer always finds its
    /// participant), then frames in order. Called with the state lock held so that frames from
    /// concurrent operations are never reordered.
    async fn apply(&self, state: &HubState, fx: Effects) {
        for p in &fx.sfu_leave {
            self.inner.sfu.leave(*p).await;
        }
        for (room, c) in &fx.sfu_join {
            let events = lock(&self.inner.conns).get(c).map(|h| h.sfu_events.clone());
            let participant = state.media(*c).unwrap_or(c.participant());
            if let Some(events) = events
                && let Err(e) = self.inner.sfu.join(*room, participant, events).await
            {
                tracing::warn!(error = %e, "sfu join failed");
            }
        }
        // Connectivity probes: a loopback room each, events on the connection's probe channel.
        for (room, p, c) in &fx.probe_join {
            let events = lock(&self.inner.conns)
                .get(c)
                .map(|h| h.probe_events.clone());
            if let Some(events) = events
                && let Err(e) = self.inner.sfu.join_loopback(*room, *p, events).await
            {
                tracing::warn!(error = %e, "sfu probe join failed");
            }
        }
        // A resumed seat: the SFU participant's events go to the new connection.
        for (p, c) in &fx.sfu_rebind {
            let events = lock(&self.inner.conns).get(c).map(|h| h.sfu_events.clone());
            if let Some(events) = events
                && let Err(e) = self.inner.sfu.rebind(*p, events).await
            {
                tracing::warn!(error = %e, "sfu rebind failed");
            }
        }
        {
            let conns = lock(&self.inner.conns);
            for (to, msg) in fx.sends {
                if let Some(h) = conns.get(&to) {
                    let frame = ServerFrame {
                        reply_to: None,
                        msg,
                    };
                    if !enqueue(&h.out, &h.overflow, frame) {
                        // Too slow: its own task drops it.
                        self.inner.metrics.slow_clients.inc();
                    }
                }
            }
            for c in fx.close {
                if let Some(h) = conns.get(&c) {
                    let _ = h
                        .out
                        .try_send(Outgoing::Close(CLOSE_GOING_AWAY, "replaced"));
                }
            }
            for c in fx.revoked {
                if let Some(h) = conns.get(&c) {
                    let _ = h.out.try_send(Outgoing::Close(CLOSE_POLICY, "revoked"));
                }
            }
            for c in fx.session_ended {
                if let Some(h) = conns.get(&c) {
                    let _ = h
                        .out
                        .try_send(Outgoing::Close(CLOSE_POLICY, REASON_SESSION_ENDED));
                }
            }
            // Whoever enters a consultation sees the files shared there before.
            for (room, c) in &fx.sfu_join {
                let Some(h) = conns.get(c) else { continue };
                let Some(cid) = state.consultation_public_id(room.0) else {
                    continue;
                };
                for f in self.inner.files.files_of(&cid) {
                    let msg = crate::files::http::shared_frame(&f);
                    let _ = h.out.try_send(Outgoing::Frame(ServerFrame {
                        reply_to: None,
                        msg,
                    }));
                }
            }
        }
        for consultation in &fx.ended {
            self.inner.files.end_consultation(consultation);
        }
        self.chat_visits_completed(&fx.completed);
        if let Some(cb) = &self.inner.config.on_completed {
            for visit in fx.completed {
                cb(visit);
            }
        }
        self.inner.metrics.observe(state);
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the map half-updated (single inserts and
    // removes), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn upgrade(State(hub): State<Hub>, ws: WebSocketUpgrade) -> impl IntoResponse {
    let max = hub.inner.config.max_message_bytes;
    // The transport limit is a little above the protocol limit so that an oversized message is
    // read far enough to be answered with a proper 1009 close instead of a protocol error.
    // Small per-connection buffers: a waiting room holds thousands of mostly idle sockets, and
    // tungstenite's defaults (128 KiB to read, 128 KiB to write) would dominate the server's
    // memory (measured: ~140 KiB per waiting patient). Larger messages still assemble fine.
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(max * 4)
        .max_frame_size(max * 4)
        .max_write_buffer_size(4 * 1024 * 1024)
        .on_upgrade(move |socket| run_connection(hub, socket))
}

async fn run_connection(hub: Hub, socket: WebSocket) {
    if hub.inner.draining.load(Ordering::SeqCst) {
        let mut socket = socket;
        let _ = socket
            .send(close_msg(CLOSE_GOING_AWAY, "server shutting down"))
            .await;
        return;
    }
    let conn = ConnId(hub.inner.next_conn.fetch_add(1, Ordering::Relaxed));
    let (out_tx, out_rx) = mpsc::channel(hub.inner.config.outgoing_queue);
    let (sfu_tx, mut sfu_rx) = mpsc::channel(32);
    let (probe_tx, mut probe_rx) = mpsc::channel(8);
    let overflow = Arc::new(tokio::sync::Notify::new());
    lock(&hub.inner.conns).insert(
        conn,
        ConnHandle {
            out: out_tx.clone(),
            overflow: overflow.clone(),
            sfu_events: sfu_tx,
            probe_events: probe_tx,
            staff_session: None,
        },
    );
    hub.inner.metrics.connections.inc();
    let (ws_tx, mut ws_rx) = socket.split();
    let writer = tokio::spawn(write_loop(ws_tx, out_rx));

    let mut session = Session {
        hub: hub.clone(),
        conn,
        out: out_tx,
        overflow: overflow.clone(),
        joined: false,
        check_only: false,
        permissions: Permissions::default(),
        rate: RateLimit::new(Instant::now()),
    };
    let deadline = tokio::time::sleep(hub.inner.config.join_timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            biased;
            () = overflow.notified() => {
                // Its queue is full (it does not read, or reads too slowly): no frame, not even
                // a close, can reach it in order, so the connection is dropped.
                break;
            }
            () = &mut deadline, if !session.joined => {
                session.close(CLOSE_POLICY, "join timeout");
                break;
            }
            ev = sfu_rx.recv() => {
                match ev {
                    Some(SfuEvent::Offer { sdp }) => {
                        session.send(None, ServerMessage::MediaOffer { sdp });
                    }
                    Some(SfuEvent::Disconnected) => {
                        // The SFU removed our media participant (ICE consent expired, DTLS
                        // closed): the seat goes as after a grace period.
                        let mut state = hub.inner.state.lock().await;
                        if let Some(media) = state.media(conn) {
                            let fx = state.media_lost(media);
                            hub.apply(&state, fx).await;
                        }
                    }
                    Some(SfuEvent::Speaking { participant }) => {
                        let public = hub.inner.state.lock().await.public_id_of_media(participant);
                        if let Some(participant_id) = public {
                            session.send(None, ServerMessage::Speaking { participant_id });
                        }
                    }
                    _ => {}
                }
            }
            ev = probe_rx.recv() => {
                if let Some(ev) = ev {
                    session.on_probe_event(ev).await;
                }
            }
            msg = ws_rx.next() => {
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        if !session.on_text(text).await {
                            break;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        session.error(None, ErrorCode::MalformedJson, "binary frames are not supported");
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        let text = e.to_string();
                        if text.contains("too long") || text.contains("limit") {
                            session.close(CLOSE_TOO_BIG, "message too big");
                        }
                        break;
                    }
                }
            }
        }
    }

    // Clean-up: leave every room, drop the handle, let the writer flush a pending close.
    {
        let mut state = hub.inner.state.lock().await;
        let fx = state.leave(conn, hub.now());
        hub.apply(&state, fx).await;
    }
    hub.chat_hub().unregister(conn);
    hub.inner.held_tokens.release(conn);
    lock(&hub.inner.conns).remove(&conn);
    hub.inner.metrics.connections.dec();
    drop(session);
    // A writer stuck on a client that does not read is cut after a moment (dropping the
    // handle alone would leave the task, and the socket, behind).
    let cut = writer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        cut.abort();
    }
}

async fn write_loop(
    mut ws_tx: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    while let Some(o) = rx.recv().await {
        match o {
            Outgoing::Frame(f) => {
                let Ok(text) = serde_json::to_string(&f) else {
                    continue;
                };
                if ws_tx.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            Outgoing::Close(code, reason) => {
                let _ = ws_tx.send(close_msg(code, reason)).await;
                break;
            }
        }
    }
    let _ = ws_tx.close().await;
}

fn close_msg(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Per-connection token bucket: `RATE` messages per second with bursts of `BURST`.
struct RateLimit {
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    const RATE: f64 = 50.0;
    const BURST: f64 = 200.0;

    fn new(now: Instant) -> RateLimit {
        RateLimit {
            tokens: Self::BURST,
            last: now,
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * Self::RATE).min(Self::BURST);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Session {
    hub: Hub,
    conn: ConnId,
    out: mpsc::Sender<Outgoing>,
    /// See [`ConnHandle::overflow`].
    overflow: Arc<tokio::sync::Notify>,
    joined: bool,
    /// A check-only connection (`join` with `check`): probes and `ping` only.
    check_only: bool,
    /// What the join token allows (organisation settings at mint time); default until joined.
    permissions: Permissions,
    rate: RateLimit,
}

impl Session {
    fn send(&self, reply_to: Option<String>, msg: ServerMessage) {
        // Every frame is answered or the connection ends: never a silent drop.
        if !enqueue(&self.out, &self.overflow, ServerFrame { reply_to, msg }) {
            self.hub.inner.metrics.slow_clients.inc();
        }
    }

    fn error(&self, reply_to: Option<String>, code: ErrorCode, message: &str) {
        self.hub.inner.metrics.error(code);
        self.send(
            reply_to,
            ServerMessage::Error {
                code,
                message: message.to_owned(),
            },
        );
    }

    fn close(&self, code: u16, reason: &'static str) {
        let _ = self.out.try_send(Outgoing::Close(code, reason));
    }

    /// Handle one text frame. Returns false when the connection must end.
    async fn on_text(&mut self, text: Utf8Bytes) -> bool {
        if self.out.is_closed() {
            // Closed by the server (session ended, revoked, replaced): the writer is gone and
            // nothing more is answered while the client finishes the closing handshake.
            return true;
        }
        if text.len() > self.hub.inner.config.max_message_bytes {
            self.close(CLOSE_TOO_BIG, "message too big");
            return false;
        }
        if !self.rate.allow(Instant::now()) {
            let id = crate::protocol::request_id_of(text.as_str());
            self.error(id, ErrorCode::RateLimited, "too many messages; slow down");
            return true;
        }
        let (id, msg) = match decode_client_frame(text.as_str()) {
            Ok(decoded) => decoded,
            Err(e) => {
                self.error(e.id, e.code, e.message);
                return true;
            }
        };
        self.hub.inner.metrics.messages_in.inc();
        self.dispatch(id, msg).await
    }

    async fn dispatch(&mut self, id: Option<String>, msg: ClientMessage) -> bool {
        let hub = self.hub.clone();
        match msg {
            ClientMessage::Join {
                token,
                resume,
                check,
            } => {
                if self.joined {
                    self.error(id, ErrorCode::NotJoined, "already joined");
                    return true;
                }
                let verified = hub.inner.verifier.verify(&token).await;
                // A chat-only token (the invitation link outside its window, F146): chat and
                // nothing else; it never enters a waiting room. Refused when chat is off.
                if let Ok(Verified::ChatOnly(principal)) = &verified
                    && hub.chat_hub().enabled()
                {
                    self.joined = true;
                    hub.chat_hub()
                        .register_chat_only(self.conn, principal.clone());
                    self.send(
                        id,
                        ServerMessage::Joined {
                            protocol: crate::protocol::PROTOCOL_VERSION,
                            participant_id: uuid::Uuid::new_v4().to_string(),
                            role: crate::protocol::Role::Patient,
                            display_name: String::new(),
                        },
                    );
                    return true;
                }
                let (identity, expires_at) = match verified {
                    Ok(Verified::Consultation {
                        identity,
                        expires_at,
                    }) => (identity, expires_at),
                    e => {
                        let message = match e {
                            Err(TokenError::Expired) => "token expired",
                            _ => "token invalid",
                        };
                        self.error(id, ErrorCode::InvalidToken, message);
                        self.close(CLOSE_POLICY, "invalid token");
                        return false;
                    }
                };
                // Under the state lock, where `end_staff_session` also works: a session that
                // ended while its token was being verified is refused here, and one that ends
                // after this finds the connection by its tag.
                let mut state = hub.inner.state.lock().await;
                if let crate::Identity::Staff { session, .. } = &identity {
                    if hub.session_ended(session) {
                        drop(state);
                        self.error(id, ErrorCode::InvalidToken, "token invalid");
                        self.close(CLOSE_POLICY, "invalid token");
                        return false;
                    }
                    if let Some(h) = lock(&hub.inner.conns).get_mut(&self.conn) {
                        h.staff_session = Some(session.clone());
                    }
                }
                self.joined = true;
                if check {
                    // In no waiting room and told to nobody: it only runs probes.
                    self.check_only = true;
                    state.join_check(self.conn);
                    drop(state);
                    let role = match identity {
                        crate::Identity::Staff { .. } => crate::protocol::Role::Staff,
                        crate::Identity::Patient(_) => crate::protocol::Role::Patient,
                    };
                    self.send(
                        id,
                        ServerMessage::Joined {
                            protocol: crate::protocol::PROTOCOL_VERSION,
                            participant_id: uuid::Uuid::new_v4().to_string(),
                            role,
                            display_name: String::new(),
                        },
                    );
                    return true;
                }
                self.permissions = identity.permissions();
                hub.chat_hub().register(self.conn, &identity);
                // Refreshed before it expires while the connection lasts (`ws/refresh.rs`).
                hub.inner
                    .held_tokens
                    .hold(self.conn, token, expires_at, hub.now());
                let mut fx = state.join_resuming(
                    self.conn,
                    identity,
                    uuid::Uuid::new_v4().to_string(),
                    resume.as_deref(),
                    hub.now(),
                );
                // The reply to `join` is the first frame for this connection.
                if let Some((_, first)) = fx
                    .sends
                    .iter()
                    .position(|(to, _)| *to == self.conn)
                    .map(|i| fx.sends.remove(i))
                {
                    self.send(id, first);
                }
                hub.apply(&state, fx).await;
            }
            _ if !self.joined => {
                self.error(id, ErrorCode::NotJoined, "send join first");
            }
            msg @ (ClientMessage::ProbeOffer { .. }
            | ClientMessage::ProbeAnswer { .. }
            | ClientMessage::ProbeCandidate { .. }
            | ClientMessage::ProbeStop {}) => self.probe(id, msg).await,
            ClientMessage::Ping {} => self.send(id, ServerMessage::Pong {}),
            _ if self.check_only => {
                self.error(
                    id,
                    ErrorCode::Forbidden,
                    "a check-only connection runs connectivity probes only",
                );
            }
            ClientMessage::Admit { participant_id } => {
                let mut state = hub.inner.state.lock().await;
                let r = state.admit(self.conn, &participant_id, hub.now());
                self.reply(&hub, &state, id, r).await;
            }
            ClientMessage::Mute { audio, video } => {
                let mut state = hub.inner.state.lock().await;
                let r = state.mute(self.conn, audio, video);
                self.reply(&hub, &state, id, r).await;
            }
            ClientMessage::LeaveConsultation {} => {
                let mut state = hub.inner.state.lock().await;
                let r = state.leave_consultation_now(self.conn);
                self.reply(&hub, &state, id, r).await;
            }
            ClientMessage::EndConsultation {} => {
                let mut state = hub.inner.state.lock().await;
                let r = state.end(self.conn, hub.now());
                self.reply(&hub, &state, id, r).await;
            }
            ClientMessage::ForceStart { appointment_id } => {
                let mut state = hub.inner.state.lock().await;
                let r = state.force_start(self.conn, &appointment_id, hub.now());
                self.reply(&hub, &state, id, r).await;
            }
            ClientMessage::Transfer { participant_id, to } => {
                let mut state = hub.inner.state.lock().await;
                let r = state.transfer(self.conn, &participant_id, &to, hub.now());
                self.reply(&hub, &state, id, r).await;
            }
            ClientMessage::MediaOffer { sdp, tracks } => {
                let Some(participant) = self.media_participant().await else {
                    self.error(id, ErrorCode::InvalidState, "not in a consultation");
                    return true;
                };
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
                    allow_screen: hub.inner.config.allow_screen_share
                        && self.permissions.screen_share,
                };
                match hub
                    .inner
                    .sfu
                    .offer_with_policy(participant, sdp, policy)
                    .await
                {
                    Ok(sdp) => self.send(id, ServerMessage::MediaAnswer { sdp }),
                    Err(OfferError::Forbidden(_)) => self.error(
                        id,
                        ErrorCode::Forbidden,
                        "screen sharing is not allowed in this organisation",
                    ),
                    Err(OfferError::Sfu(e)) => self.sfu_error(id, e),
                }
            }
            ClientMessage::View {
                mid,
                visible,
                width,
                height,
            } => {
                let Some(participant) = self.media_participant().await else {
                    self.error(id, ErrorCode::InvalidState, "not in a consultation");
                    return true;
                };
                let view = View {
                    visible,
                    width,
                    height,
                };
                match hub.inner.sfu.set_view(participant, mid, view).await {
                    Ok(()) => {
                        if id.is_some() {
                            self.send(id, ServerMessage::Ok {});
                        }
                    }
                    Err(e) => self.sfu_error(id, e),
                }
            }
            ClientMessage::MediaAnswer { sdp } => {
                let Some(participant) = self.media_participant().await else {
                    self.error(id, ErrorCode::InvalidState, "not in a consultation");
                    return true;
                };
                match hub.inner.sfu.answer(participant, sdp).await {
                    Ok(()) => self.send(id, ServerMessage::Ok {}),
                    Err(e) => self.sfu_error(id, e),
                }
            }
            ClientMessage::IceCandidate { candidate } => {
                let Some(participant) = self.media_participant().await else {
                    self.error(id, ErrorCode::InvalidState, "not in a consultation");
                    return true;
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
            ClientMessage::FileOffer { name, size, .. } => {
                if !self.permissions.file_sharing {
                    self.error(
                        id,
                        ErrorCode::Forbidden,
                        "file sharing is not allowed in this organisation",
                    );
                    return true;
                }
                // Under the state lock, so the consultation cannot end between check and offer.
                let state = hub.inner.state.lock().await;
                let Some(member) = state.consultation_member(self.conn) else {
                    self.error(id, ErrorCode::InvalidState, "not in a consultation");
                    return true;
                };
                match hub.inner.files.offer(&member, &name, size, hub.now()) {
                    Ok((file_id, ticket, expires_at)) => self.send(
                        id,
                        ServerMessage::FileUploadReady {
                            file_id,
                            url: format!("/api/v1/consultation-files/uploads/{ticket}"),
                            expires_at: rfc3339(expires_at),
                        },
                    ),
                    Err(r) => self.error(id, r.code, r.message),
                }
            }
            ClientMessage::FileDownload { file_id } => {
                let state = hub.inner.state.lock().await;
                let Some(member) = state.consultation_member(self.conn) else {
                    self.error(id, ErrorCode::NotFound, "no such file in this consultation");
                    return true;
                };
                match hub
                    .inner
                    .files
                    .download_ticket(&member, &file_id, hub.now())
                {
                    Ok((ticket, expires_at)) => self.send(
                        id,
                        ServerMessage::FileDownloadReady {
                            file_id,
                            url: format!("/api/v1/consultation-files/downloads/{ticket}"),
                            expires_at: rfc3339(expires_at),
                        },
                    ),
                    Err(r) => self.error(id, r.code, r.message),
                }
            }
            msg @ (ClientMessage::ChatChannels {}
            | ClientMessage::ChatSync { .. }
            | ClientMessage::ChatSend { .. }
            | ClientMessage::ChatRead { .. }) => hub.chat_dispatch(self.conn, id, msg).await,
        }
        true
    }

    /// Reply `ok` and apply the effects, or reply with the refusal.
    async fn reply(
        &self,
        hub: &Hub,
        state: &HubState,
        id: Option<String>,
        result: Result<Effects, Refusal>,
    ) {
        match result {
            Ok(fx) => {
                self.send(id, ServerMessage::Ok {});
                hub.apply(state, fx).await;
            }
            Err(r) => self.error(id, r.code, r.message),
        }
    }

    /// The SFU participant of this connection, when it is in a consultation (its own, or
    /// that of the seat it resumed).
    async fn media_participant(&self) -> Option<consultroom_sfu::ParticipantId> {
        let state = self.hub.inner.state.lock().await;
        if state.in_consultation(self.conn) {
            state.media(self.conn)
        } else {
            None
        }
    }

    fn sfu_error(&self, id: Option<String>, e: SfuError) {
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
            SfuError::Stopped | SfuError::Io(_) => {
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
