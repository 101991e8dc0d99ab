//! Chat types: channels and messages as their users see them, who is chatting and from where,
//! what an admin set for chat between visits, and why an operation was refused. No IO.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::db::{ChannelListRow, MessageRow, PartyKind};
use crate::error::ApiError;
use crate::ids::{AppointmentId, ChatChannelId, ClientId, DepartmentId, StaffId};
use crate::org_settings::OrganisationSettings;

/// Longest message, in characters.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Longest client-generated message id, in bytes.
pub const MAX_CLIENT_MSG_ID: usize = 64;
/// Largest history page.
pub const MAX_PAGE: i64 = 200;
/// How long after the appointment its invitation link still opens the chat (F146).
pub const CHAT_LINK_DAYS: i64 = crate::links::CHAT_LINK_DAYS;
/// `aud` of chat-only tokens (distinct from join tokens: they never open a waiting room).
pub const CHAT_AUDIENCE: &str = crate::tokens::CHAT_AUDIENCE;

/// Whether a channel's patient may chat between visits (F142), as set by an admin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatientAccess {
    /// As the organisation's settings say (`continuous_chat`, `continuous_chat_by_grant`).
    Default,
    /// Opened by an admin (needed when the organisation grants continuous chat one by one).
    Granted,
    /// Closed by an admin, whatever the organisation's default.
    Stopped,
}

impl PatientAccess {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PatientAccess::Default => "default",
            PatientAccess::Granted => "granted",
            PatientAccess::Stopped => "stopped",
        }
    }

    /// The stored value; anything unknown reads as `stopped` (closed is the safe side).
    pub(crate) fn from_db(raw: &str) -> Self {
        match raw {
            "default" => PatientAccess::Default,
            "granted" => PatientAccess::Granted,
            _ => PatientAccess::Stopped,
        }
    }

    /// Whether the patient may chat outside a visit (chat-only link, portal): only with
    /// continuous chat, and then as granted or stopped, or else the organisation's default.
    pub fn open_between_visits(self, settings: &OrganisationSettings) -> bool {
        settings.continuous_chat
            && match self {
                PatientAccess::Stopped => false,
                PatientAccess::Granted => true,
                PatientAccess::Default => !settings.continuous_chat_by_grant,
            }
    }
}

/// Who is using a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatPrincipal {
    /// A staff member (session cookie or staff join token).
    Staff(StaffId),
    /// A patient through one appointment's invitation: the channel of that appointment's
    /// client and practitioner.
    Appointment(AppointmentId),
    /// A patient as a client (the portal, F147, once it exists): all their channels.
    Client(ClientId),
}

/// Where a patient is while chatting; decides which organisation settings apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatPresence {
    /// Staff.
    Staff,
    /// In the waiting room (`chat_in_waiting_room`, F131).
    Waiting,
    /// In the consultation (always allowed).
    InConsultation,
    /// Outside a visit: the chat-only link or the portal (`continuous_chat`, F129/F130).
    Away,
}

/// Why a chat operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// No such channel for this caller (also another organisation's).
    #[error("no such chat channel")]
    NotFound,
    /// Not allowed now (organisation settings).
    #[error("{0}")]
    Forbidden(&'static str),
    /// Bad input.
    #[error("{0}")]
    Invalid(&'static str),
    /// Storage failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ChatError {
    fn from(e: sqlx::Error) -> Self {
        ChatError::Internal(e.into())
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::NotFound => ApiError::NotFound("chat channel"),
            ChatError::Forbidden(m) => ApiError::Forbidden(m),
            ChatError::Invalid(m) => ApiError::invalid(m),
            ChatError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// A channel as listed to its users.
#[derive(Clone, Debug, Serialize)]
pub struct ChatChannelSummary {
    pub channel_id: ChatChannelId,
    pub practitioner_id: StaffId,
    pub practitioner_name: String,
    pub client_id: ClientId,
    pub client_name: String,
    pub last_seq: i64,
    pub cleared_through_seq: i64,
    pub unread: i64,
    /// The caller joined this colleague's channel (F137).
    pub joined: bool,
    /// What an admin set for chat between visits (F142).
    pub patient_access: PatientAccess,
    /// Whether the patient may chat between visits now (settings and `patient_access`).
    pub open_between_visits: bool,
    pub updated_at: String,
}

/// A stored message.
#[derive(Clone, Debug, Serialize)]
pub struct ChatMessage {
    pub channel_id: ChatChannelId,
    pub seq: i64,
    pub sender_kind: PartyKind,
    pub sender_id: String,
    pub sender_name: String,
    pub client_msg_id: String,
    pub text: String,
    pub sent_at: DateTime<Utc>,
}

impl Serialize for PartyKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            PartyKind::Staff => "staff",
            PartyKind::Client => "patient",
        })
    }
}

/// Who may see a channel's messages live: staff by id, and the connected staff of a department
/// when department access is on. The channel's patient is reached through its subscription.
#[derive(Clone, Debug, Default)]
pub struct ChatAudience {
    pub staff_ids: Vec<StaffId>,
    pub department_id: Option<DepartmentId>,
}

/// A committed send.
#[derive(Clone, Debug)]
pub struct ChatSent {
    pub message: ChatMessage,
    /// A retry of an earlier send: nothing new was stored (and nothing should be fanned out).
    pub duplicate: bool,
    pub audience: ChatAudience,
}

/// One page of history.
#[derive(Clone, Debug)]
pub struct ChatPage {
    /// Oldest first.
    pub messages: Vec<ChatMessage>,
    /// More messages lie beyond the page in the direction asked.
    pub has_more: bool,
    pub cleared_through_seq: i64,
    pub last_seq: i64,
}

/// Which part of the history to read.
#[derive(Clone, Copy, Debug)]
pub enum ChatRange {
    /// Messages with seq > n, oldest first (catching up after a reconnect).
    After(i64),
    /// Messages with seq < n, the newest of them (scrolling back); `None` = the latest.
    Before(Option<i64>),
}

pub(crate) fn message(channel: ChatChannelId, r: MessageRow) -> ChatMessage {
    ChatMessage {
        channel_id: channel,
        seq: r.seq,
        sender_kind: if r.sender_kind == "staff" {
            PartyKind::Staff
        } else {
            PartyKind::Client
        },
        sender_id: r.sender_id,
        sender_name: r.sender_name,
        client_msg_id: r.client_msg_id,
        text: r.text,
        sent_at: r.created_at,
    }
}

pub(crate) fn summary(settings: &OrganisationSettings, r: ChannelListRow) -> ChatChannelSummary {
    let patient_access = PatientAccess::from_db(&r.patient_access);
    ChatChannelSummary {
        patient_access,
        open_between_visits: patient_access.open_between_visits(settings),
        channel_id: r.chat_channel_id,
        practitioner_id: r.practitioner_id,
        practitioner_name: r.practitioner_name,
        client_id: r.client_id,
        client_name: r.client_name,
        last_seq: r.last_seq,
        cleared_through_seq: r.cleared_through_seq,
        unread: r.unread,
        joined: r.joined,
        updated_at: r.updated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

pub(crate) fn api_to_chat(e: ApiError) -> ChatError {
    match e {
        ApiError::Internal(e) => ChatError::Internal(e),
        other => ChatError::Internal(anyhow::anyhow!("{other}")),
    }
}
