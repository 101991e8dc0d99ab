//! The outgoing side of every connection: a bounded queue per connection, and [`Outbox`], the
//! small handle through which the hub, chat and file HTTP send frames and closes.
//!
//! Invariant: a frame is queued or its connection is dropped (woken through its `overflow`
//! notifier), never silently lost; a close is only ever queued best-effort (a full queue is
//! dropped anyway). Knows nothing of the hub's state, so `chat` and `files` depend on this
//! module and not on `ws`.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus::IntCounter;
use tokio::sync::{Notify, mpsc};

use crate::protocol::{ServerFrame, ServerMessage};
use crate::state::ConnId;

/// Close code: message too big (RFC 6455).
pub const CLOSE_TOO_BIG: u16 = 1009;
/// Close code: policy violation (bad token, no join in time).
pub const CLOSE_POLICY: u16 = 1008;
/// Close code: server going away (drain, replaced by a newer connection).
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// What a connection's writer task sends.
pub(crate) enum Outgoing {
    Frame(ServerFrame),
    Close(u16, &'static str),
}

/// Queues `frame` on `out`; when the queue is full, wakes the connection's task through
/// `overflow` to drop it and returns false. A queue already closed (the server closed the
/// connection on purpose and its writer is gone) is not an overflow.
pub(crate) fn enqueue(out: &mpsc::Sender<Outgoing>, overflow: &Notify, frame: ServerFrame) -> bool {
    match out.try_send(Outgoing::Frame(frame)) {
        Err(mpsc::error::TrySendError::Full(_)) => {
            overflow.notify_one();
            false
        }
        _ => true,
    }
}

/// One connection's queue.
#[derive(Clone)]
pub(crate) struct ConnQueue {
    pub out: mpsc::Sender<Outgoing>,
    /// Ends the connection's task when its queue is full: a close frame cannot be queued then,
    /// so the connection is dropped instead (its writer gets a moment to flush, then is cut).
    pub overflow: Arc<Notify>,
}

impl ConnQueue {
    /// Queues a frame; a full queue drops the connection (see [`enqueue`]).
    pub fn send(&self, frame: ServerFrame) -> bool {
        enqueue(&self.out, &self.overflow, frame)
    }

    /// Queues a close (best-effort: a full queue is being dropped anyway).
    pub fn close(&self, code: u16, reason: &'static str) {
        let _ = self.out.try_send(Outgoing::Close(code, reason));
    }
}

/// Sends frames to connections by id. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Outbox {
    queues: Arc<std::sync::Mutex<HashMap<ConnId, ConnQueue>>>,
    slow_clients: IntCounter,
}

impl Outbox {
    pub fn new(slow_clients: IntCounter) -> Outbox {
        Outbox {
            queues: Default::default(),
            slow_clients,
        }
    }

    pub fn insert(&self, conn: ConnId, queue: ConnQueue) {
        lock(&self.queues).insert(conn, queue);
    }

    pub fn remove(&self, conn: ConnId) {
        lock(&self.queues).remove(&conn);
    }

    /// Number of connections with a queue.
    pub fn len(&self) -> usize {
        lock(&self.queues).len()
    }

    /// Queue a frame for connection `to`; a connection that cannot take it is dropped as too
    /// slow. An unknown connection (gone meanwhile) is skipped.
    pub fn push(&self, to: ConnId, reply_to: Option<String>, msg: ServerMessage) {
        let queues = lock(&self.queues);
        if let Some(q) = queues.get(&to) {
            self.send_counted(q, ServerFrame { reply_to, msg });
        }
    }

    /// Queue frames for many connections under one look at the registry, in order.
    pub fn push_all(&self, frames: impl IntoIterator<Item = (ConnId, ServerMessage)>) {
        let queues = lock(&self.queues);
        for (to, msg) in frames {
            if let Some(q) = queues.get(&to) {
                self.send_counted(
                    q,
                    ServerFrame {
                        reply_to: None,
                        msg,
                    },
                );
            }
        }
    }

    /// Closes connection `conn` with `code` and `reason`.
    pub fn close(&self, conn: ConnId, code: u16, reason: &'static str) {
        if let Some(q) = lock(&self.queues).get(&conn) {
            q.close(code, reason);
        }
    }

    /// Closes every connection with `code` and `reason`.
    pub fn close_all(&self, code: u16, reason: &'static str) {
        for q in lock(&self.queues).values() {
            q.close(code, reason);
        }
    }

    fn send_counted(&self, q: &ConnQueue, frame: ServerFrame) {
        if !q.send(frame) {
            // Too slow: its own task drops it.
            self.slow_clients.inc();
        }
    }
}

pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the map half-updated (single inserts and
    // removes), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
