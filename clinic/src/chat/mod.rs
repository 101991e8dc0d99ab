//! Chat channels (issue #5, F129–F147): one channel per practitioner and client, created with
//! the pair's first appointment (F135) or by the practitioner (F136); colleagues may join it
//! (F137); department colleagues read and answer when the organisation allows it (F141).
//!
//! - Staff HTTP routes (session cookie): list with unread counts, create, join, history
//!   (paginated), mark read, delete history (F143).
//! - [`Clinic::chat_send`], [`Clinic::chat_history`], … serve the signalling hub (through the
//!   composing binary's `ChatStore`), which carries messages in real time.
//! - `GET /chat/access?client_id=`: a client's channels as the client list shows them, with
//!   what the caller may do (open, join — F137, manage — F142), listed only to those who may.
//! - F142: `PUT /chat/channels/{id}/patient-access` lets department admins (of the
//!   practitioner's department) and organisation admins grant a patient chat between visits or
//!   stop it ([`PatientAccess`]); the organisation decides whether channels start open or
//!   closed (`continuous_chat_by_grant`).
//! - `POST /invitations/chat` gives a patient a chat-only token from their invitation link at
//!   any time from booking until [`CHAT_LINK_DAYS`] after the appointment (F146), when the
//!   organisation has continuous chat; it never enters the waiting room.
//!
//! Invariants: every access is checked against the channel's organisation and the caller's
//! rights, on every call, from fresh database rows (another organisation's channel is a 404); a
//! message is acknowledged only after its transaction committed; message texts never reach the
//! logs.

mod db;

use std::sync::{Arc, RwLock};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use db::PartyKind;
use db::{ChannelListRow, ChannelRow, MessageRow};

use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::ids::{AppointmentId, ChatChannelId, ClientId, DepartmentId, OrganisationId, StaffId};
use crate::org_settings::{ChatAfterConsultation, OrganisationSettings};
use crate::staff::Role;
use crate::tokens::{ChatClaims, Grant};
use crate::{Clinic, Route};

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
    fn from_db(raw: &str) -> Self {
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

/// The organisation's settings changed from `before` to `after`: end the live chat-only
/// connections of every channel that was open between visits and no longer is (continuous chat
/// switched off, or switched to "by grant" for the channels left at the default). Without this
/// a patient's open chat page kept working until its next reconnect.
pub(crate) async fn close_chats_no_longer_open(
    clinic: &Clinic,
    organisation_id: OrganisationId,
    before: &OrganisationSettings,
    after: &OrganisationSettings,
) -> ApiResult<()> {
    for access in [PatientAccess::Default, PatientAccess::Granted] {
        if access.open_between_visits(before) && !access.open_between_visits(after) {
            let ids = clinic
                .store()
                .chat_channel_ids_with_access(organisation_id, access.as_str())
                .await?;
            for id in ids {
                clinic.chat_closed_between_visits(id);
            }
        }
    }
    Ok(())
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

/// Called with a channel whose history was deleted and the seq it was deleted through.
pub type ChatClearedListener = Arc<dyn Fn(ChatChannelId, i64) + Send + Sync>;

/// Called with a channel whose patient may no longer chat between visits (F142).
pub type ChatClosedListener = Arc<dyn Fn(ChatChannelId) + Send + Sync>;

/// The registered listeners (a field of the clinic's shared state).
#[derive(Default)]
pub(crate) struct Listeners {
    cleared: RwLock<Vec<ChatClearedListener>>,
    closed: RwLock<Vec<ChatClosedListener>>,
}

/// A channel the caller may use, with what the caller is in it.
struct Access {
    channel: ChannelRow,
    reader: (PartyKind, String),
    /// The reader's name (staff; the client's name for patients).
    reader_name: String,
    /// Colleagues who joined the channel (F137).
    members: Vec<StaffId>,
    settings: OrganisationSettings,
}

fn message(channel: ChatChannelId, r: MessageRow) -> ChatMessage {
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

fn summary(settings: &OrganisationSettings, r: ChannelListRow) -> ChatChannelSummary {
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

/// The department whose staff share a practitioner's chats, when the organisation allows it.
fn shared_department(settings: &OrganisationSettings, ch: &ChannelRow) -> Option<DepartmentId> {
    settings
        .department_chat_access
        .then_some(ch.practitioner_department_id)
        .flatten()
}

impl Clinic {
    /// Registers `f` to run after a channel's history was deleted (through the API, or after a
    /// consultation). It runs on the request's task: return quickly.
    pub fn on_chat_cleared(&self, f: ChatClearedListener) {
        self.inner
            .chat_listeners
            .cleared
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(f);
    }

    /// Registers `f` to run after a channel's chat between visits was closed (F142), so that
    /// live connections outside a visit end too. Runs on the request's task: return quickly.
    pub fn on_chat_closed_between_visits(&self, f: ChatClosedListener) {
        self.inner
            .chat_listeners
            .closed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(f);
    }

    pub(crate) fn chat_closed_between_visits(&self, channel: ChatChannelId) {
        let listeners = self
            .inner
            .chat_listeners
            .closed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for f in listeners {
            f(channel);
        }
    }

    fn chat_cleared(&self, channel: ChatChannelId, through: i64) {
        let listeners = self
            .inner
            .chat_listeners
            .cleared
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for f in listeners {
            f(channel, through);
        }
    }

    /// The channel of an appointment's practitioner and client, created if missing (F135).
    pub async fn ensure_chat_channel_for_appointment(
        &self,
        appointment_id: AppointmentId,
    ) -> Result<Option<ChatChannelId>, ChatError> {
        let Some((org, practitioner, client, _)) =
            self.store().appointment_pair(appointment_id).await?
        else {
            return Ok(None);
        };
        let (id, _) = self
            .store()
            .ensure_chat_channel(org, practitioner, client, None, self.now())
            .await?;
        Ok(Some(id))
    }

    /// Checks that `who` (of organisation `org`) may use channel `id`.
    async fn chat_access(
        &self,
        who: ChatPrincipal,
        org: OrganisationId,
        id: ChatChannelId,
    ) -> Result<Access, ChatError> {
        let store = self.store();
        let channel = store
            .chat_channel(org, id)
            .await?
            .ok_or(ChatError::NotFound)?;
        let settings = self.organisation_settings(org).await.map_err(api_to_chat)?;
        let members = store.chat_members(id).await?;
        let (reader, reader_name) = match who {
            ChatPrincipal::Staff(staff_id) => {
                let staff = store
                    .staff_by_id(staff_id)
                    .await?
                    .ok_or(ChatError::NotFound)?
                    .into_staff()?;
                if staff.organisation_id != org {
                    return Err(ChatError::NotFound);
                }
                let allowed = channel.practitioner_id == staff_id
                    || members.contains(&staff_id)
                    || (staff.department_id.is_some()
                        && shared_department(&settings, &channel) == staff.department_id);
                if !allowed {
                    return Err(ChatError::NotFound);
                }
                ((PartyKind::Staff, staff_id.to_string()), staff.name)
            }
            ChatPrincipal::Appointment(a) => {
                let (a_org, practitioner, client, status) = store
                    .appointment_pair(a)
                    .await?
                    .ok_or(ChatError::NotFound)?;
                if a_org != org
                    || status == "cancelled"
                    || practitioner != channel.practitioner_id
                    || client != channel.client_id
                {
                    return Err(ChatError::NotFound);
                }
                (
                    (PartyKind::Client, client.to_string()),
                    channel.client_name.clone(),
                )
            }
            ChatPrincipal::Client(c) => {
                if c != channel.client_id {
                    return Err(ChatError::NotFound);
                }
                (
                    (PartyKind::Client, c.to_string()),
                    channel.client_name.clone(),
                )
            }
        };
        Ok(Access {
            channel,
            reader,
            reader_name,
            members,
            settings,
        })
    }

    /// Refuses a patient where the organisation's settings close the chat.
    fn chat_presence_allowed(
        settings: &OrganisationSettings,
        channel: &ChannelRow,
        presence: ChatPresence,
    ) -> Result<(), ChatError> {
        let access = PatientAccess::from_db(&channel.patient_access);
        match presence {
            ChatPresence::Staff | ChatPresence::InConsultation => Ok(()),
            ChatPresence::Waiting if settings.chat_in_waiting_room => Ok(()),
            ChatPresence::Waiting => Err(ChatError::Forbidden(
                "chat in the waiting room is not enabled by this organisation",
            )),
            ChatPresence::Away if access.open_between_visits(settings) => Ok(()),
            ChatPresence::Away if settings.continuous_chat => Err(ChatError::Forbidden(
                "chat between visits is not open for this conversation",
            )),
            ChatPresence::Away => Err(ChatError::Forbidden(
                "this organisation offers chat only during consultations",
            )),
        }
    }

    /// The channels `who` may use (a patient through an appointment: that appointment's
    /// channel, created if missing), with unread counts.
    pub async fn chat_channels(
        &self,
        who: ChatPrincipal,
        org: OrganisationId,
        client_filter: Option<ClientId>,
    ) -> Result<Vec<ChatChannelSummary>, ChatError> {
        let store = self.store();
        let settings = self.organisation_settings(org).await.map_err(api_to_chat)?;
        let rows = match who {
            ChatPrincipal::Staff(staff_id) => {
                let staff = store
                    .staff_by_id(staff_id)
                    .await?
                    .ok_or(ChatError::NotFound)?
                    .into_staff()?;
                if staff.organisation_id != org {
                    return Err(ChatError::NotFound);
                }
                let department = staff
                    .department_id
                    .filter(|_| settings.department_chat_access);
                store
                    .chat_channels_for_staff(org, staff_id, department, client_filter)
                    .await?
            }
            ChatPrincipal::Appointment(a) => {
                let Some((a_org, practitioner, client, status)) = store.appointment_pair(a).await?
                else {
                    return Ok(vec![]);
                };
                if a_org != org || status == "cancelled" {
                    return Ok(vec![]);
                }
                store
                    .ensure_chat_channel(org, practitioner, client, None, self.now())
                    .await?;
                store
                    .chat_channels_for_client(org, client, Some(practitioner))
                    .await?
            }
            ChatPrincipal::Client(c) => store.chat_channels_for_client(org, c, None).await?,
        };
        Ok(rows.into_iter().map(|r| summary(&settings, r)).collect())
    }

    /// Stores a message and returns it once committed, with who should see it live. A retry
    /// (same sender and `client_msg_id`) returns the first copy with `duplicate: true`.
    pub async fn chat_send(
        &self,
        who: ChatPrincipal,
        org: OrganisationId,
        presence: ChatPresence,
        id: ChatChannelId,
        client_msg_id: &str,
        text: &str,
    ) -> Result<ChatSent, ChatError> {
        if client_msg_id.is_empty() || client_msg_id.len() > MAX_CLIENT_MSG_ID {
            return Err(ChatError::Invalid("client_msg_id must be 1 to 64 bytes"));
        }
        let chars = text.chars().count();
        if text.trim().is_empty() || chars > MAX_TEXT_CHARS {
            return Err(ChatError::Invalid("text must be 1 to 4000 characters"));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(ChatError::Invalid("control characters are not allowed"));
        }
        let access = self.chat_access(who, org, id).await?;
        Self::chat_presence_allowed(&access.settings, &access.channel, presence)?;
        let (kind, sender_id) = &access.reader;
        let appended = self
            .store()
            .append_chat_message(id, *kind, sender_id, client_msg_id, text, self.now())
            .await?;
        let sender_name = access.reader_name.clone();
        let mut staff_ids = vec![access.channel.practitioner_id];
        staff_ids.extend(access.members.iter().copied());
        Ok(ChatSent {
            message: ChatMessage {
                channel_id: id,
                seq: appended.seq,
                sender_kind: *kind,
                sender_id: sender_id.clone(),
                sender_name,
                client_msg_id: client_msg_id.to_owned(),
                text: if appended.deleted {
                    String::new()
                } else {
                    text.to_owned()
                },
                sent_at: appended.created_at,
            },
            duplicate: appended.duplicate,
            audience: ChatAudience {
                staff_ids,
                department_id: shared_department(&access.settings, &access.channel),
            },
        })
    }

    /// A page of a channel's history.
    pub async fn chat_history(
        &self,
        who: ChatPrincipal,
        org: OrganisationId,
        presence: ChatPresence,
        id: ChatChannelId,
        range: ChatRange,
        limit: i64,
    ) -> Result<ChatPage, ChatError> {
        let access = self.chat_access(who, org, id).await?;
        Self::chat_presence_allowed(&access.settings, &access.channel, presence)?;
        let limit = limit.clamp(1, MAX_PAGE);
        let store = self.store();
        // One more than asked tells whether there is more.
        let (mut rows, forward) = match range {
            ChatRange::After(after) => (
                store
                    .chat_messages_after(id, after.max(0), limit + 1)
                    .await?,
                true,
            ),
            ChatRange::Before(before) => (
                store
                    .chat_messages_before(id, before.unwrap_or(i64::MAX), limit + 1)
                    .await?,
                false,
            ),
        };
        let has_more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        if !forward {
            rows.reverse();
        }
        Ok(ChatPage {
            messages: rows.into_iter().map(|r| message(id, r)).collect(),
            has_more,
            cleared_through_seq: access.channel.cleared_through_seq,
            last_seq: access.channel.last_seq,
        })
    }

    /// Records that `who` has read channel `id` up to `seq`.
    pub async fn chat_mark_read(
        &self,
        who: ChatPrincipal,
        org: OrganisationId,
        id: ChatChannelId,
        seq: i64,
    ) -> Result<(), ChatError> {
        let access = self.chat_access(who, org, id).await?;
        let seq = seq.clamp(0, access.channel.last_seq);
        let (kind, reader) = &access.reader;
        self.store()
            .mark_chat_read(id, *kind, reader, seq, self.now())
            .await?;
        Ok(())
    }

    /// After an appointment's consultation: with `chat_after_consultation: delete` (F133), its
    /// channel's messages are deleted. Returns the channel and the seq deleted through.
    pub async fn chat_consultation_completed(
        &self,
        appointment_id: AppointmentId,
    ) -> Result<Option<(ChatChannelId, i64)>, ChatError> {
        let Some(channel) = self
            .store()
            .chat_channel_of_appointment(appointment_id)
            .await?
        else {
            return Ok(None);
        };
        let settings = self
            .organisation_settings(channel.organisation_id)
            .await
            .map_err(api_to_chat)?;
        if settings.chat_after_consultation != ChatAfterConsultation::Delete {
            return Ok(None);
        }
        let through = self
            .store()
            .clear_chat_history(channel.chat_channel_id, self.now())
            .await?;
        tracing::info!(channel_id = %channel.chat_channel_id, "chat deleted after consultation");
        Ok(Some((channel.chat_channel_id, through)))
    }
}

fn api_to_chat(e: ApiError) -> ChatError {
    match e {
        ApiError::Internal(e) => ChatError::Internal(e),
        other => ChatError::Internal(anyhow::anyhow!("{other}")),
    }
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/chat/channels", get(list)),
        Route::new("POST", "/chat/channels", post(create)),
        Route::new("GET", "/chat/unread", get(unread)),
        Route::new("POST", "/chat/channels/{id}/join", post(join)),
        Route::new("GET", "/chat/channels/{id}/messages", get(history)),
        Route::new("DELETE", "/chat/channels/{id}/messages", delete(clear)),
        Route::new("POST", "/chat/channels/{id}/read", post(read)),
        Route::new("GET", "/chat/access", get(access_list)),
        Route::new(
            "PUT",
            "/chat/channels/{id}/patient-access",
            put(set_patient_access),
        ),
        Route::new("POST", "/invitations/chat", post(invitation_chat)),
    ]
}

fn parse_channel(raw: &str) -> ApiResult<ChatChannelId> {
    raw.parse().map_err(|_| ApiError::NotFound("chat channel"))
}

#[derive(Deserialize)]
struct ListParams {
    client_id: Option<String>,
}

async fn list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let client = match params.client_id.as_deref() {
        Some(raw) => Some(
            raw.parse::<ClientId>()
                .map_err(|_| ApiError::invalid("client_id must be a client id"))?,
        ),
        None => None,
    };
    let staff = &current.staff;
    let channels = clinic
        .chat_channels(
            ChatPrincipal::Staff(staff.id),
            staff.organisation_id,
            client,
        )
        .await?;
    let total: i64 = channels.iter().map(|c| c.unread).sum();
    Ok(Json(json!({ "channels": channels, "total_unread": total })))
}

async fn unread(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
) -> ApiResult<Json<serde_json::Value>> {
    let staff = &current.staff;
    let channels = clinic
        .chat_channels(ChatPrincipal::Staff(staff.id), staff.organisation_id, None)
        .await?;
    let mut by_client = serde_json::Map::new();
    for c in &channels {
        let entry = by_client.entry(c.client_id.to_string()).or_insert(json!(0));
        *entry = json!(entry.as_i64().unwrap_or(0) + c.unread);
    }
    let total: i64 = channels.iter().map(|c| c.unread).sum();
    Ok(Json(
        json!({ "total_unread": total, "by_client": by_client }),
    ))
}

#[derive(Deserialize)]
struct CreateRequest {
    client_id: ClientId,
}

/// F136: a practitioner opens a channel between themselves and a client; if the pair has one
/// already, that one is returned (200).
async fn create(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<CreateRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let staff = &current.staff;
    clinic
        .store()
        .client_in_organisation(staff.organisation_id, req.client_id)
        .await?
        .ok_or(ApiError::NotFound("client"))?;
    let (id, created) = clinic
        .store()
        .ensure_chat_channel(
            staff.organisation_id,
            staff.id,
            req.client_id,
            Some(staff.id),
            clinic.now(),
        )
        .await?;
    if created {
        tracing::info!(channel_id = %id, staff_id = %staff.id, "chat channel created");
    }
    let channel = one_summary(&clinic, &current, id).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "channel": channel }))))
}

async fn one_summary(
    clinic: &Clinic,
    current: &CurrentStaff,
    id: ChatChannelId,
) -> ApiResult<ChatChannelSummary> {
    let staff = &current.staff;
    let channel = clinic
        .store()
        .chat_channel(staff.organisation_id, id)
        .await?
        .ok_or(ApiError::NotFound("chat channel"))?;
    clinic
        .chat_channels(
            ChatPrincipal::Staff(staff.id),
            staff.organisation_id,
            Some(channel.client_id),
        )
        .await?
        .into_iter()
        .find(|c| c.channel_id == id)
        .ok_or(ApiError::NotFound("chat channel"))
}

/// F137: join a colleague's channel with a client the caller also treats (they have their own
/// channel with that client), or whose practitioner is in the caller's department when the
/// organisation shares department chats.
async fn join(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = parse_channel(&id)?;
    let staff = &current.staff;
    let store = clinic.store();
    let channel = store
        .chat_channel(staff.organisation_id, id)
        .await?
        .ok_or(ApiError::NotFound("chat channel"))?;
    if channel.practitioner_id != staff.id {
        let settings = clinic.organisation_settings(staff.organisation_id).await?;
        let own = store
            .chat_channels_for_staff(
                staff.organisation_id,
                staff.id,
                None,
                Some(channel.client_id),
            )
            .await?
            .iter()
            .any(|c| c.practitioner_id == staff.id);
        let department = staff.department_id.is_some()
            && shared_department(&settings, &channel) == staff.department_id;
        if staff.role == Role::OrganisationAdmin && !own && !department {
            return Err(ApiError::Forbidden(
                "organisation admins join only channels of clients they treat",
            ));
        }
        if !own && !department {
            return Err(ApiError::NotFound("chat channel"));
        }
        store.add_chat_member(id, staff.id, clinic.now()).await?;
        tracing::info!(channel_id = %id, staff_id = %staff.id, "chat channel joined");
    }
    let channel = one_summary(&clinic, &current, id).await?;
    Ok(Json(json!({ "channel": channel })))
}

#[derive(Deserialize)]
struct HistoryParams {
    before_seq: Option<i64>,
    after_seq: Option<i64>,
    limit: Option<i64>,
}

async fn history(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let id = parse_channel(&id)?;
    let range = match (params.after_seq, params.before_seq) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("give after_seq or before_seq, not both"));
        }
        (Some(a), None) => ChatRange::After(a),
        (None, b) => ChatRange::Before(b),
    };
    let limit = params.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1 to 200"));
    }
    let staff = &current.staff;
    let page = clinic
        .chat_history(
            ChatPrincipal::Staff(staff.id),
            staff.organisation_id,
            ChatPresence::Staff,
            id,
            range,
            limit,
        )
        .await?;
    Ok(Json(json!({
        "messages": page.messages,
        "has_more": page.has_more,
        "cleared_through_seq": page.cleared_through_seq,
        "last_seq": page.last_seq,
    })))
}

#[derive(Deserialize)]
struct ReadRequest {
    #[serde(deserialize_with = "crate::json_int::int")]
    seq: i64,
}

async fn read(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ReadRequest>,
) -> ApiResult<StatusCode> {
    let id = parse_channel(&id)?;
    let staff = &current.staff;
    clinic
        .chat_mark_read(
            ChatPrincipal::Staff(staff.id),
            staff.organisation_id,
            id,
            req.seq,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// F143: the practitioner, or a colleague with access (joined, or department), deletes the
/// history; everyone connected is told (`chat_cleared`).
async fn clear(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = parse_channel(&id)?;
    let staff = &current.staff;
    clinic
        .chat_access(ChatPrincipal::Staff(staff.id), staff.organisation_id, id)
        .await?;
    let through = clinic.store().clear_chat_history(id, clinic.now()).await?;
    tracing::info!(channel_id = %id, staff_id = %staff.id, "chat history deleted");
    clinic.chat_cleared(id, through);
    Ok(Json(json!({ "cleared_through_seq": through })))
}

#[derive(Deserialize)]
struct InvitationChatRequest {
    token: String,
}

/// F146: the invitation link opens the chat early, on time or late — a chat-only token (no
/// waiting room) from booking until [`CHAT_LINK_DAYS`] after the appointment, when the
/// organisation has continuous chat. Refusals are the invitation's (no names revealed).
async fn invitation_chat(
    State(clinic): State<Clinic>,
    ApiJson(req): ApiJson<InvitationChatRequest>,
) -> ApiResult<Json<InvitationChat>> {
    let (organisation_id, appointment_id) =
        crate::links::resolve_for_chat(&clinic, &req.token).await?;
    let settings = clinic.organisation_settings(organisation_id).await?;
    if !settings.continuous_chat {
        return Err(ApiError::Forbidden(
            "this organisation offers chat only during consultations",
        ));
    }
    // F142: an admin may have stopped this patient's chat between visits (or the organisation
    // opens it only when granted; a channel not created yet has the default).
    let access = clinic
        .store()
        .chat_channel_of_appointment(appointment_id)
        .await?
        .map_or(PatientAccess::Default, |ch| {
            PatientAccess::from_db(&ch.patient_access)
        });
    if !access.open_between_visits(&settings) {
        return Err(ApiError::Forbidden(
            "chat between visits is not open for this conversation",
        ));
    }
    let (chat_token, expires_at) = clinic.issue_token(&Grant::Chat(ChatClaims {
        organisation_id,
        appointment_id,
    }))?;
    Ok(Json(InvitationChat {
        chat_token,
        chat_token_expires_at: expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    }))
}

/// The response of `POST /invitations/chat`.
#[derive(Serialize)]
struct InvitationChat {
    chat_token: String,
    chat_token_expires_at: String,
}

/// One of a client's channels as a staff member sees it in the client list (F137, F138, F142):
/// who it is with and what the caller may do — no messages, no unread counts.
#[derive(Serialize)]
struct AccessEntry {
    channel_id: ChatChannelId,
    practitioner_id: StaffId,
    practitioner_name: String,
    client_id: ClientId,
    client_name: String,
    patient_access: PatientAccess,
    open_between_visits: bool,
    /// The caller is the channel's practitioner.
    own: bool,
    /// The caller joined it (F137).
    joined: bool,
    /// The caller may read and write it now (own, joined, or department access, F141).
    can_open: bool,
    /// The caller may join it (F137: they have their own channel with the client too).
    can_join: bool,
    /// The caller may change `patient_access` (F142).
    can_manage: bool,
}

/// F142: who may grant or stop a channel's chat between visits — organisation admins for any
/// channel, department admins for channels of their department's practitioners.
fn manages_patient_access(staff: &crate::staff::Staff, channel: &ChannelRow) -> bool {
    match staff.role {
        Role::OrganisationAdmin => true,
        Role::DepartmentAdmin => {
            staff.department_id.is_some()
                && staff.department_id == channel.practitioner_department_id
        }
        Role::Practitioner => false,
    }
}

/// What the caller knows and may do about the channels of one client.
struct ClientChannels<'a> {
    staff: &'a crate::staff::Staff,
    settings: &'a OrganisationSettings,
    /// The caller has their own channel with this client (they treat the client, F137).
    treats: bool,
    /// Channels the caller joined.
    joined: std::collections::HashSet<ChatChannelId>,
}

impl ClientChannels<'_> {
    fn entry(&self, ch: ChannelRow) -> Option<AccessEntry> {
        let own = ch.practitioner_id == self.staff.id;
        let joined = self.joined.contains(&ch.chat_channel_id);
        let department = self.staff.department_id.is_some()
            && shared_department(self.settings, &ch) == self.staff.department_id;
        let can_manage = manages_patient_access(self.staff, &ch);
        let can_open = own || joined || department;
        let can_join = !can_open && self.treats;
        // Segregation: a channel is listed only to those who may use, join or manage it.
        if !(can_open || can_join || can_manage) {
            return None;
        }
        let patient_access = PatientAccess::from_db(&ch.patient_access);
        Some(AccessEntry {
            channel_id: ch.chat_channel_id,
            practitioner_id: ch.practitioner_id,
            practitioner_name: ch.practitioner_name,
            client_id: ch.client_id,
            client_name: ch.client_name,
            patient_access,
            open_between_visits: patient_access.open_between_visits(self.settings),
            own,
            joined,
            can_open,
            can_join,
            can_manage,
        })
    }
}

/// Every channel of `client` as `staff` may see it (see [`ClientChannels::entry`]).
async fn client_channel_entries(
    clinic: &Clinic,
    staff: &crate::staff::Staff,
    settings: &OrganisationSettings,
    client: ClientId,
) -> ApiResult<Vec<AccessEntry>> {
    let store = clinic.store();
    let rows = store
        .chat_channels_of_client(staff.organisation_id, client)
        .await?;
    let view = ClientChannels {
        staff,
        settings,
        treats: rows.iter().any(|ch| ch.practitioner_id == staff.id),
        joined: store
            .chat_channels_joined(staff.id, client)
            .await?
            .into_iter()
            .collect(),
    };
    Ok(rows.into_iter().filter_map(|ch| view.entry(ch)).collect())
}

#[derive(Deserialize)]
struct AccessListParams {
    client_id: String,
}

/// A client's channels that the caller may use, join (F137) or manage (F142), for the client
/// list. Others' channels are left out (a practitioner who does not treat the client sees only
/// what department access shows them).
async fn access_list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    params: Result<Query<AccessListParams>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let client: ClientId = params
        .client_id
        .parse()
        .map_err(|_| ApiError::invalid("client_id must be a client id"))?;
    let staff = &current.staff;
    let org = staff.organisation_id;
    let store = clinic.store();
    store
        .client_in_organisation(org, client)
        .await?
        .ok_or(ApiError::NotFound("client"))?;
    let settings = clinic.organisation_settings(org).await?;
    let channels = client_channel_entries(&clinic, staff, &settings, client).await?;
    Ok(Json(json!({
        "channels": channels,
        "continuous_chat": settings.continuous_chat,
        "continuous_chat_by_grant": settings.continuous_chat_by_grant,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatientAccessRequest {
    patient_access: PatientAccess,
}

/// F142: grant (`granted`), stop (`stopped`) or reset (`default`) a patient's chat between
/// visits on one channel. Chat in the waiting room and in consultations is not affected.
async fn set_patient_access(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PatientAccessRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = parse_channel(&id)?;
    let staff = &current.staff;
    let org = staff.organisation_id;
    let store = clinic.store();
    let channel = store
        .chat_channel(org, id)
        .await?
        .ok_or(ApiError::NotFound("chat channel"))?;
    if !manages_patient_access(staff, &channel) {
        return Err(ApiError::Forbidden(
            "only the practitioner's department admin or an organisation admin manages chat \
             between visits",
        ));
    }
    let settings = clinic.organisation_settings(org).await?;
    if req.patient_access == PatientAccess::Granted && !settings.continuous_chat {
        return Err(ApiError::invalid(
            "this organisation has no continuous chat: turn it on in the settings first",
        ));
    }
    store
        .set_chat_patient_access(id, req.patient_access.as_str(), staff.id, clinic.now())
        .await?;
    tracing::info!(
        channel_id = %id,
        staff_id = %staff.id,
        patient_access = req.patient_access.as_str(),
        "chat between visits changed"
    );
    let entry = client_channel_entries(&clinic, staff, &settings, channel.client_id)
        .await?
        .into_iter()
        .find(|e| e.channel_id == id)
        .ok_or(ApiError::NotFound("chat channel"))?;
    if !entry.open_between_visits {
        clinic.chat_closed_between_visits(id);
    }
    Ok(Json(json!({ "channel": entry })))
}
