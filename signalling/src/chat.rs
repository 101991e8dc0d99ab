//! Chat over the signalling WebSocket (issue #5): `chat_channels`, `chat_sync`, `chat_send`,
//! `chat_read`, and the pushes `chat_message`, `chat_activity`, `chat_cleared`.
//!
//! Storage and every access rule live behind [`ChatStore`], implemented by the composing binary
//! (signalling knows no SQL). This module keeps only who is connected to what:
//!
//! - a connection *opens* a channel with `chat_sync` or `chat_send` (after the store allowed
//!   it) and from then on receives that channel's `chat_message`s; staff connections in a new
//!   message's audience that have not opened the channel get `chat_activity` instead;
//! - sends and history reads of one channel are serialised by a striped lock held across the
//!   store call and the fan-out, so every connection receives a channel's messages in `seq`
//!   order, and a `chat_sync` reply is never overtaken by, nor repeats, a live message;
//! - `chat_ack` is sent only after the store committed the message; a retry with the same
//!   `client_msg_id` is acknowledged again and fanned out no second time;
//! - the hub's state lock is never held across a store call (only a short look at whether a
//!   patient is in a consultation, passed in as a future);
//! - replies and pushes go through the [`Outbox`] it is given, never through the hub itself.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;

use crate::outbox::{CLOSE_POLICY, Outbox, lock};
use crate::protocol::{ChatChannelInfo, ChatMessageInfo, ClientMessage, ErrorCode, ServerMessage};
use crate::state::ConnId;
use crate::{Identity, Permissions, Visit};

/// A boxed, sendable future (the [`ChatStore`] methods are async).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Who is chatting, as far as the store is concerned. Organisation ids come from the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatPrincipal {
    /// A staff member.
    Staff {
        organisation_id: String,
        staff_id: String,
    },
    /// A patient through one appointment (invitation join token or chat-only token).
    Appointment {
        organisation_id: String,
        appointment_id: String,
    },
    /// A patient as a client, with all their channels (the portal, F147, when it exists).
    Client {
        organisation_id: String,
        client_id: String,
    },
}

/// Where the chatting patient is; the store applies the organisation's settings to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatPresence {
    Staff,
    /// In a waiting room.
    Waiting,
    /// In a consultation.
    InConsultation,
    /// Outside any visit (chat-only link, portal).
    Away,
}

/// Which part of a channel's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRange {
    /// Every message with a greater seq, oldest first.
    After(i64),
    /// The newest messages with a smaller seq (`None`: the newest of all).
    Before(Option<i64>),
}

/// Why the store refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatStoreError {
    NotFound,
    Forbidden(String),
    Invalid(String),
    Internal(String),
}

/// Who may see a new message live besides connections that opened its channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatAudience {
    pub staff_ids: Vec<String>,
    pub department_ids: Vec<String>,
}

/// A committed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSent {
    pub message: ChatMessageInfo,
    /// A retry of an earlier send: nothing new was stored.
    pub duplicate: bool,
    pub audience: ChatAudience,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatPage {
    pub messages: Vec<ChatMessageInfo>,
    pub has_more: bool,
    pub cleared_through_seq: i64,
    pub last_seq: i64,
}

/// Durable chat storage and its access rules. Every method checks that `who` may do this.
pub trait ChatStore: Send + Sync + 'static {
    /// The channels `who` may use.
    fn channels(
        &self,
        who: ChatPrincipal,
        presence: ChatPresence,
    ) -> BoxFuture<Result<Vec<ChatChannelInfo>, ChatStoreError>>;
    /// Stores a message; resolves only after it is durable.
    fn send(
        &self,
        who: ChatPrincipal,
        presence: ChatPresence,
        channel_id: String,
        client_msg_id: String,
        text: String,
    ) -> BoxFuture<Result<ChatSent, ChatStoreError>>;
    /// Reads history.
    fn history(
        &self,
        who: ChatPrincipal,
        presence: ChatPresence,
        channel_id: String,
        range: ChatRange,
        limit: u32,
    ) -> BoxFuture<Result<ChatPage, ChatStoreError>>;
    /// Moves the reader's position.
    fn mark_read(
        &self,
        who: ChatPrincipal,
        channel_id: String,
        seq: i64,
    ) -> BoxFuture<Result<(), ChatStoreError>>;
    /// A consultation of `visit` completed: the channel and seq whose history was deleted, if
    /// the organisation deletes chats after consultations (F133).
    fn visit_completed(
        &self,
        visit: Visit,
    ) -> BoxFuture<Result<Option<(String, i64)>, ChatStoreError>>;
}

/// How many channels one connection may have open.
const MAX_OPEN_PER_CONN: usize = 1000;
/// Stripes of the per-channel ordering lock.
const STRIPES: usize = 64;
/// Default and largest history page.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

#[derive(Clone)]
enum ConnKind {
    Staff {
        staff_id: String,
        department_ids: Vec<String>,
    },
    Patient {
        permissions: Permissions,
    },
    ChatOnly,
}

#[derive(Clone)]
struct ConnChat {
    principal: ChatPrincipal,
    kind: ConnKind,
}

#[derive(Default)]
struct Registry {
    conns: HashMap<ConnId, ConnChat>,
    open: HashMap<String, HashSet<ConnId>>,
    open_by_conn: HashMap<ConnId, HashSet<String>>,
    staff: HashMap<String, HashSet<ConnId>>,
    departments: HashMap<String, HashSet<ConnId>>,
}

/// The hub's chat part: the store, who is connected, the ordering locks, and the outbox its
/// replies and pushes go through.
pub(crate) struct ChatHub {
    store: Option<Arc<dyn ChatStore>>,
    registry: std::sync::Mutex<Registry>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    outbox: Outbox,
}

impl ChatHub {
    pub(crate) fn new(store: Option<Arc<dyn ChatStore>>, outbox: Outbox) -> ChatHub {
        ChatHub {
            store,
            registry: Default::default(),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            outbox,
        }
    }

    fn stripe(&self, channel_id: &str) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        channel_id.hash(&mut h);
        &self.stripes[(h.finish() as usize) % STRIPES]
    }

    /// Whether chat is on (a store is configured): chat-only tokens are refused otherwise.
    pub(crate) fn enabled(&self) -> bool {
        self.store.is_some()
    }

    /// Remember a joined connection's chat identity (walk-ins have none: no client record).
    pub(crate) fn register(&self, conn: ConnId, identity: &Identity) {
        let chat = match identity {
            Identity::Staff {
                staff_id,
                organisation_id,
                department_ids,
                ..
            } => ConnChat {
                principal: ChatPrincipal::Staff {
                    organisation_id: organisation_id.clone(),
                    staff_id: staff_id.clone(),
                },
                kind: ConnKind::Staff {
                    staff_id: staff_id.clone(),
                    department_ids: department_ids.clone(),
                },
            },
            Identity::Patient(p) => match &p.visit {
                Visit::Appointment { appointment_id, .. } => ConnChat {
                    principal: ChatPrincipal::Appointment {
                        organisation_id: p.organisation_id.clone(),
                        appointment_id: appointment_id.clone(),
                    },
                    kind: ConnKind::Patient {
                        permissions: p.permissions,
                    },
                },
                // Walk-ins (and anyone else without a client record) have no chat.
                _ => return,
            },
        };
        self.insert(conn, chat);
    }

    /// Remember a chat-only connection (F146).
    pub(crate) fn register_chat_only(&self, conn: ConnId, principal: ChatPrincipal) {
        self.insert(
            conn,
            ConnChat {
                principal,
                kind: ConnKind::ChatOnly,
            },
        );
    }

    fn insert(&self, conn: ConnId, chat: ConnChat) {
        let mut r = lock(&self.registry);
        if let ConnKind::Staff {
            staff_id,
            department_ids,
        } = &chat.kind
        {
            r.staff.entry(staff_id.clone()).or_default().insert(conn);
            for d in department_ids {
                r.departments.entry(d.clone()).or_default().insert(conn);
            }
        }
        r.conns.insert(conn, chat);
    }

    /// Forget a closed connection.
    pub(crate) fn unregister(&self, conn: ConnId) {
        let mut r = lock(&self.registry);
        let Some(chat) = r.conns.remove(&conn) else {
            return;
        };
        if let ConnKind::Staff {
            staff_id,
            department_ids,
        } = &chat.kind
        {
            remove_from(&mut r.staff, staff_id, conn);
            for d in department_ids {
                remove_from(&mut r.departments, d, conn);
            }
        }
        for ch in r.open_by_conn.remove(&conn).unwrap_or_default() {
            remove_from(&mut r.open, &ch, conn);
        }
    }

    fn conn_chat(&self, conn: ConnId) -> Option<ConnChat> {
        lock(&self.registry).conns.get(&conn).cloned()
    }

    fn open(&self, conn: ConnId, channel_id: &str) {
        let mut r = lock(&self.registry);
        if !r.conns.contains_key(&conn) {
            return;
        }
        let mine = r.open_by_conn.entry(conn).or_default();
        if mine.len() >= MAX_OPEN_PER_CONN && !mine.contains(channel_id) {
            return;
        }
        mine.insert(channel_id.to_owned());
        r.open
            .entry(channel_id.to_owned())
            .or_default()
            .insert(conn);
    }

    /// Connections to push a new message to: those that opened the channel get the message,
    /// staff of the audience that did not get `chat_activity`.
    fn fan_out_targets(
        &self,
        channel_id: &str,
        audience: &ChatAudience,
        except: ConnId,
    ) -> (Vec<ConnId>, Vec<ConnId>) {
        let r = lock(&self.registry);
        let open: HashSet<ConnId> = r.open.get(channel_id).cloned().unwrap_or_default();
        let mut activity: HashSet<ConnId> = HashSet::new();
        for s in &audience.staff_ids {
            activity.extend(r.staff.get(s).into_iter().flatten().copied());
        }
        for d in &audience.department_ids {
            activity.extend(r.departments.get(d).into_iter().flatten().copied());
        }
        let mut full: Vec<ConnId> = open.iter().copied().filter(|c| *c != except).collect();
        let mut light: Vec<ConnId> = activity
            .into_iter()
            .filter(|c| *c != except && !open.contains(c))
            .collect();
        full.sort();
        light.sort();
        (full, light)
    }

    fn opened_by(&self, channel_id: &str) -> Vec<ConnId> {
        lock(&self.registry)
            .open
            .get(channel_id)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

fn remove_from(map: &mut HashMap<String, HashSet<ConnId>>, key: &str, conn: ConnId) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&conn);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

fn store_error(e: ChatStoreError) -> (ErrorCode, String) {
    match e {
        ChatStoreError::NotFound => (ErrorCode::NotFound, "no such chat channel".to_owned()),
        ChatStoreError::Forbidden(m) => (ErrorCode::Forbidden, m),
        ChatStoreError::Invalid(m) => (ErrorCode::InvalidMessage, m),
        ChatStoreError::Internal(cause) => {
            let correlation = uuid::Uuid::new_v4();
            tracing::error!(%correlation, error = %cause, "chat store failure");
            (
                ErrorCode::Internal,
                format!("internal error ({correlation})"),
            )
        }
    }
}

impl ChatHub {
    fn push(&self, to: ConnId, reply_to: Option<String>, msg: ServerMessage) {
        self.outbox.push(to, reply_to, msg);
    }

    /// Handle one chat frame of connection `conn`; replies and pushes go through its queue.
    /// `in_consultation` says whether `conn` is in a consultation now; it is awaited only for
    /// a patient (a short look under the hub's state lock, never held across a store call).
    pub(crate) async fn dispatch(
        &self,
        conn: ConnId,
        id: Option<String>,
        msg: ClientMessage,
        in_consultation: impl Future<Output = bool>,
    ) {
        match self.request(conn, id.clone(), msg, in_consultation).await {
            Ok(()) => {}
            Err((code, message)) => self.push(conn, id, ServerMessage::Error { code, message }),
        }
    }

    async fn request(
        &self,
        conn: ConnId,
        id: Option<String>,
        msg: ClientMessage,
        in_consultation: impl Future<Output = bool>,
    ) -> Result<(), (ErrorCode, String)> {
        let chat = self;
        let Some(store) = chat.store.clone() else {
            return Err((ErrorCode::Forbidden, "chat is not available".to_owned()));
        };
        let Some(me) = chat.conn_chat(conn) else {
            return Err((
                ErrorCode::Forbidden,
                "chat is not available for this visit".to_owned(),
            ));
        };
        let presence = match &me.kind {
            ConnKind::Staff { .. } => ChatPresence::Staff,
            ConnKind::ChatOnly => ChatPresence::Away,
            ConnKind::Patient { permissions } => {
                if in_consultation.await {
                    ChatPresence::InConsultation
                } else if permissions.chat_in_waiting_room {
                    ChatPresence::Waiting
                } else {
                    return Err((
                        ErrorCode::Forbidden,
                        "chat in the waiting room is not enabled by this organisation".to_owned(),
                    ));
                }
            }
        };
        match msg {
            ClientMessage::ChatChannels {} => {
                let channels = store
                    .channels(me.principal, presence)
                    .await
                    .map_err(store_error)?;
                self.push(conn, id, ServerMessage::ChatChannelList { channels });
            }
            ClientMessage::ChatSync {
                channel_id,
                after_seq,
                before_seq,
                limit,
            } => {
                let range = match (after_seq, before_seq) {
                    (Some(_), Some(_)) => {
                        return Err((
                            ErrorCode::InvalidMessage,
                            "give after_seq or before_seq, not both".to_owned(),
                        ));
                    }
                    (Some(a), None) => ChatRange::After(a),
                    (None, b) => ChatRange::Before(b),
                };
                let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
                let _order = chat.stripe(&channel_id).lock().await;
                let page = store
                    .history(me.principal, presence, channel_id.clone(), range, limit)
                    .await
                    .map_err(store_error)?;
                chat.open(conn, &channel_id);
                self.push(
                    conn,
                    id,
                    ServerMessage::ChatHistory {
                        channel_id,
                        messages: page.messages,
                        has_more: page.has_more,
                        cleared_through_seq: page.cleared_through_seq,
                        last_seq: page.last_seq,
                    },
                );
            }
            ClientMessage::ChatSend {
                channel_id,
                client_msg_id,
                text,
            } => {
                let _order = chat.stripe(&channel_id).lock().await;
                let sent = store
                    .send(
                        me.principal,
                        presence,
                        channel_id.clone(),
                        client_msg_id.clone(),
                        text,
                    )
                    .await
                    .map_err(store_error)?;
                chat.open(conn, &channel_id);
                self.push(
                    conn,
                    id,
                    ServerMessage::ChatAck {
                        channel_id: channel_id.clone(),
                        client_msg_id,
                        seq: sent.message.seq,
                        sent_at: sent.message.sent_at.clone(),
                    },
                );
                if !sent.duplicate {
                    let (full, light) = chat.fan_out_targets(&channel_id, &sent.audience, conn);
                    for c in full {
                        self.push(
                            c,
                            None,
                            ServerMessage::ChatMessage {
                                message: sent.message.clone(),
                            },
                        );
                    }
                    for c in light {
                        self.push(
                            c,
                            None,
                            ServerMessage::ChatActivity {
                                channel_id: channel_id.clone(),
                                seq: sent.message.seq,
                                sender: sent.message.sender,
                            },
                        );
                    }
                }
            }
            ClientMessage::ChatRead { channel_id, seq } => {
                store
                    .mark_read(me.principal, channel_id, seq)
                    .await
                    .map_err(store_error)?;
                self.push(conn, id, ServerMessage::Ok {});
            }
            _ => {}
        }
        Ok(())
    }

    /// Tell every connection that opened `channel_id` that its history up to `through_seq`
    /// was deleted (see `Hub::chat_cleared`).
    pub(crate) async fn cleared(&self, channel_id: &str, through_seq: i64) {
        let chat = self;
        let _order = chat.stripe(channel_id).lock().await;
        for c in chat.opened_by(channel_id) {
            self.push(
                c,
                None,
                ServerMessage::ChatCleared {
                    channel_id: channel_id.to_owned(),
                    through_seq,
                },
            );
        }
    }

    /// Chat between visits was closed for `channel_id` (F142: an admin stopped it): every
    /// chat-only connection that opened the channel is closed with 1008 `chat_closed`, so no
    /// further message reaches the patient outside a visit (a reconnect is refused by the store).
    /// Waiting-room and consultation connections keep the channel.
    pub(crate) async fn closed_between_visits(&self, channel_id: &str) {
        let chat = self;
        let _order = chat.stripe(channel_id).lock().await;
        let chat_only: Vec<ConnId> = {
            let reg = lock(&chat.registry);
            reg.open
                .get(channel_id)
                .into_iter()
                .flatten()
                .filter(|c| {
                    matches!(
                        reg.conns.get(*c).map(|cc| &cc.kind),
                        Some(ConnKind::ChatOnly)
                    )
                })
                .copied()
                .collect()
        };
        for c in chat_only {
            self.outbox.close(c, CLOSE_POLICY, "chat_closed");
        }
    }

    /// Completed visits: let the store delete their chats where the organisation wants that,
    /// then tell whoever has them open. Runs in the background.
    pub(crate) fn visits_completed(self: &Arc<Self>, visits: &[Visit]) {
        let Some(store) = self.store.clone() else {
            return;
        };
        for visit in visits {
            if !matches!(visit, Visit::Appointment { .. }) {
                continue;
            }
            let (hub, store, visit) = (self.clone(), store.clone(), visit.clone());
            tokio::spawn(async move {
                match store.visit_completed(visit).await {
                    Ok(Some((channel_id, through))) => hub.cleared(&channel_id, through).await,
                    Ok(None) => {}
                    Err(e) => {
                        store_error(e);
                    }
                }
            });
        }
    }
}
