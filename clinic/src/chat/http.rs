//! Chat HTTP routes (relative to `/api/v1`): the staff side under `/chat/…` (session cookie)
//! and `POST /invitations/chat` (the invitation link's chat-only token, F146). Handlers parse,
//! call the [`service`](super::service) or [`access`](super::access) rules, and shape JSON.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::access::{client_channel_entries, manages_patient_access, shared_department};
use super::model::{
    ChatChannelSummary, ChatPresence, ChatPrincipal, ChatRange, MAX_PAGE, PatientAccess,
};
use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::events::ClinicEvent;
use crate::ids::{ChatChannelId, ClientId};
use crate::staff::Role;
use crate::tokens::{ChatClaims, Grant};
use crate::{Clinic, Route};

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
    let through = clinic
        .chat_clear_history(ChatPrincipal::Staff(staff.id), staff.organisation_id, id)
        .await?;
    tracing::info!(channel_id = %id, staff_id = %staff.id, "chat history deleted");
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
        clinic.emit(ClinicEvent::ChatClosedBetweenVisits { channel_id: id });
    }
    Ok(Json(json!({ "channel": entry })))
}
