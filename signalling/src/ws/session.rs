//! One connection: the upgrade, its reader loop (client frames, SFU and probe events), its
//! writer task with the bounded queue, and [`Session::dispatch`], one line per message type.
//!
//! Invariant: every client frame is answered or the connection ends (never a silent drop); a
//! connection whose queue is full is dropped; on exit the connection leaves every room before
//! its queue is forgotten.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use consultroom_sfu::View;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{MutexGuard, mpsc};

use super::Hub;
use super::hub::ConnMedia;
use crate::Permissions;
use crate::outbox::{CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TOO_BIG, ConnQueue, Outgoing, lock};
use crate::protocol::{ClientMessage, ErrorCode, ServerFrame, ServerMessage, decode_client_frame};
use crate::state::{ConnId, Effects, HubState, Refusal};

pub(super) async fn upgrade(State(hub): State<Hub>, ws: WebSocketUpgrade) -> impl IntoResponse {
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
    let queue = ConnQueue {
        out: out_tx,
        overflow: Arc::new(tokio::sync::Notify::new()),
    };
    lock(&hub.inner.conns).insert(
        conn,
        ConnMedia {
            sfu_events: sfu_tx,
            probe_events: probe_tx,
            staff_session: None,
        },
    );
    hub.inner.outbox.insert(conn, queue.clone());
    hub.inner.metrics.connections.inc();
    let (ws_tx, mut ws_rx) = socket.split();
    let writer = tokio::spawn(write_loop(ws_tx, out_rx));

    let overflow = queue.overflow.clone();
    let mut session = Session {
        hub: hub.clone(),
        conn,
        out: queue,
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
                if let Some(ev) = ev {
                    session.on_sfu_event(ev).await;
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
        let replies = hub.apply(&state, fx);
        drop(state);
        replies.finish().await;
    }
    hub.inner.chat.unregister(conn);
    hub.inner.held_tokens.release(conn);
    lock(&hub.inner.conns).remove(&conn);
    hub.inner.outbox.remove(conn);
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

/// One connection's side of the hub.
pub(super) struct Session {
    pub hub: Hub,
    pub conn: ConnId,
    out: ConnQueue,
    pub joined: bool,
    /// A check-only connection (`join` with `check`): probes and `ping` only.
    pub check_only: bool,
    /// What the join token allows (organisation settings at mint time); default until joined.
    pub permissions: Permissions,
    rate: RateLimit,
}

impl Session {
    pub(super) fn send(&self, reply_to: Option<String>, msg: ServerMessage) {
        // Every frame is answered or the connection ends: never a silent drop.
        if !self.out.send(ServerFrame { reply_to, msg }) {
            self.hub.inner.metrics.slow_clients.inc();
        }
    }

    /// `ok` when the client asked for a reply (a request id), nothing otherwise.
    pub(super) fn ok_if_asked(&self, id: Option<String>) {
        if id.is_some() {
            self.send(id, ServerMessage::Ok {});
        }
    }

    pub(super) fn error(&self, reply_to: Option<String>, code: ErrorCode, message: &str) {
        self.hub.inner.metrics.error(code);
        self.send(
            reply_to,
            ServerMessage::Error {
                code,
                message: message.to_owned(),
            },
        );
    }

    pub(super) fn close(&self, code: u16, reason: &'static str) {
        self.out.close(code, reason);
    }

    /// Handle one text frame. Returns false when the connection must end.
    async fn on_text(&mut self, text: Utf8Bytes) -> bool {
        if self.out.out.is_closed() {
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

    /// One client message. Returns false when the connection must end.
    async fn dispatch(&mut self, id: Option<String>, msg: ClientMessage) -> bool {
        use ClientMessage as M;
        match msg {
            M::Join {
                token,
                resume,
                check,
            } => return self.join(id, token, resume, check).await,
            _ if !self.joined => self.error(id, ErrorCode::NotJoined, "send join first"),
            msg @ (M::ProbeOffer { .. }
            | M::ProbeAnswer { .. }
            | M::ProbeCandidate { .. }
            | M::ProbeStop {}) => self.probe(id, msg).await,
            M::Ping {} => self.send(id, ServerMessage::Pong {}),
            _ if self.check_only => self.error(
                id,
                ErrorCode::Forbidden,
                "a check-only connection runs connectivity probes only",
            ),
            M::Admit { participant_id } => {
                self.operate(id, |s, c, now| s.admit(c, &participant_id, now))
                    .await
            }
            M::Mute { audio, video } => self.operate(id, |s, c, _| s.mute(c, audio, video)).await,
            M::MediaState { state } => self.operate(id, |s, c, _| s.media_state(c, state)).await,
            M::ConnectionCheck { level } => {
                self.operate(id, |s, c, _| s.connection_check(c, level))
                    .await
            }
            M::LeaveConsultation {} => {
                self.operate(id, |s, c, _| s.leave_consultation_now(c))
                    .await
            }
            M::EndConsultation {} => self.operate(id, |s, c, now| s.end(c, now)).await,
            M::ForceStart { appointment_id } => {
                self.operate(id, |s, c, now| s.force_start(c, &appointment_id, now))
                    .await
            }
            M::Transfer { participant_id, to } => {
                self.operate(id, |s, c, now| s.transfer(c, &participant_id, &to, now))
                    .await
            }
            M::MediaOffer { sdp, tracks } => self.media_offer(id, sdp, tracks).await,
            M::View {
                mid,
                visible,
                width,
                height,
            } => {
                let view = View {
                    visible,
                    width,
                    height,
                };
                self.view(id, mid, view).await
            }
            M::MediaAnswer { sdp } => self.media_answer(id, sdp).await,
            M::IceCandidate { candidate } => self.ice_candidate(id, candidate).await,
            M::FileOffer { name, size, .. } => self.file_offer(id, name, size).await,
            M::FileDownload { file_id } => self.file_download(id, file_id).await,
            msg @ (M::ChatChannels {}
            | M::ChatSync { .. }
            | M::ChatSend { .. }
            | M::ChatRead { .. }) => self.chat(id, msg).await,
        }
        true
    }

    /// A state-machine operation of this connection, under the state lock.
    async fn operate(
        &self,
        id: Option<String>,
        op: impl FnOnce(&mut HubState, ConnId, DateTime<Utc>) -> Result<Effects, Refusal>,
    ) {
        let mut state = self.hub.inner.state.lock().await;
        let r = op(&mut state, self.conn, self.hub.now());
        self.reply(state, id, r).await;
    }

    /// Reply `ok` and apply the effects, or reply with the refusal. Releases `state` before
    /// awaiting the SFU's replies.
    pub(super) async fn reply(
        &self,
        state: MutexGuard<'_, HubState>,
        id: Option<String>,
        result: Result<Effects, Refusal>,
    ) {
        match result {
            Ok(fx) => {
                self.send(id, ServerMessage::Ok {});
                let replies = self.hub.apply(&state, fx);
                drop(state);
                replies.finish().await;
            }
            // Under the lock, like every frame of an operation.
            Err(r) => self.error(id, r.code, r.message),
        }
    }

    /// A chat frame (see [`crate::chat`]); the state lock is taken only for a patient's look at
    /// whether it is in a consultation.
    async fn chat(&self, id: Option<String>, msg: ClientMessage) {
        let state = self.hub.inner.state.clone();
        let conn = self.conn;
        let in_consultation = async move { state.lock().await.in_consultation(conn) };
        self.hub
            .inner
            .chat
            .dispatch(self.conn, id, msg, in_consultation)
            .await
    }
}
