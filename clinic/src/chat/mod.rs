//! Chat channels (issue #5, F129–F147): one channel per practitioner and client, created with
//! the pair's first appointment (F135) or by the practitioner (F136); colleagues may join it
//! (F137); department colleagues read and answer when the organisation allows it (F141).
//!
//! - [`model`]: the types (channels, messages, principals, presence, errors, `PatientAccess`).
//! - [`access`]: who may read, write, join or manage which channel, decided from fresh rows.
//! - [`service`]: the operations — [`Clinic::chat_send`], [`Clinic::chat_history`], … — used by
//!   the HTTP handlers and by the signalling hub (through the composing binary's `ChatStore`),
//!   which carries messages in real time; chat-only tokens.
//! - [`http`]: the staff routes (session cookie: list with unread counts, create, join, history,
//!   mark read, delete history — F143; `GET /chat/access?client_id=`: a client's channels as the
//!   client list shows them, with what the caller may do — open, join F137, manage F142;
//!   `PUT /chat/channels/{id}/patient-access`: F142, granted or stopped by department admins of
//!   the practitioner's department and organisation admins) and `POST /invitations/chat`, which
//!   gives a patient a chat-only token from their invitation link from booking until
//!   [`CHAT_LINK_DAYS`] after the appointment (F146), when the organisation has continuous chat;
//!   it never enters the waiting room.
//! - `db`: the SQL.
//!
//! Dependencies run one way: `http` → `service` → `access` → `model` → `db`.
//!
//! Invariants: every access is checked against the channel's organisation and the caller's
//! rights, on every call, from fresh database rows (another organisation's channel is a 404); a
//! message is acknowledged only after its transaction committed; message texts never reach the
//! logs.

pub mod access;
mod db;
pub(crate) mod http;
pub mod model;
pub mod service;

pub use db::PartyKind;
pub use model::{
    CHAT_AUDIENCE, CHAT_LINK_DAYS, ChatAudience, ChatChannelSummary, ChatError, ChatMessage,
    ChatPage, ChatPresence, ChatPrincipal, ChatRange, ChatSent, MAX_CLIENT_MSG_ID, MAX_PAGE,
    MAX_TEXT_CHARS, PatientAccess,
};
