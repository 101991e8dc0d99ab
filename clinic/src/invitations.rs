//! Invitations: the patient's way in. `POST /invitations/resolve` turns an opaque token (from the
//! link's URL fragment) into a short-lived patient join token, inside the appointment's window.
//!
//! Invariants: only SHA-256 digests of tokens are stored; refusals (unknown, cancelled, too early,
//! expired) reveal no patient, practitioner or clinic data; tokens are never logged.

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ApiJson, ApiResult};
use crate::ids::{AppointmentId, DepartmentId, OrganisationId, StaffId};
use crate::store::{Store, dispatch};
use crate::tokens::{JoinClaims, PatientJoin, sha256};
use crate::waiting_room::{WaitingRoomKind, WaitingRoomRef};
use crate::{Clinic, Route};

#[derive(sqlx::FromRow)]
pub(crate) struct InvitationRow {
    pub(crate) token_hash: Vec<u8>,
    pub(crate) appointment_id: AppointmentId,
    pub(crate) organisation_id: OrganisationId,
    practitioner_id: StaffId,
    practitioner_name: String,
    client_name: String,
    pub(crate) starts_at: DateTime<Utc>,
    duration_minutes: i32,
    pub(crate) status: String,
    department_id: Option<DepartmentId>,
    waiting_room: String,
}

impl Store {
    pub(crate) async fn invitation_by_hash(
        &self,
        hash: &[u8],
    ) -> Result<Option<InvitationRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, InvitationRow>(
                "select i.token_hash, a.appointment_id, a.organisation_id, a.practitioner_id, \
                 p.name as practitioner_name, c.name as client_name, a.starts_at, \
                 a.duration_minutes, a.status, a.department_id, a.waiting_room \
                 from invitation i \
                 join appointment a on a.appointment_id = i.appointment_id \
                 join staff p on p.staff_id = a.practitioner_id \
                 join client c on c.client_id = a.client_id \
                 where i.token_hash = $1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await
        })
    }
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![Route::new("POST", "/invitations/resolve", post(resolve))]
}

#[derive(Deserialize)]
struct ResolveRequest {
    token: String,
}

/// Where `now` falls relative to an appointment's invitation window.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Window {
    /// Before `opens_at`.
    TooEarly(DateTime<Utc>),
    /// Inside, bounds included.
    Open,
    /// After the close.
    Expired,
}

pub(crate) fn window(clinic: &Clinic, starts_at: DateTime<Utc>, now: DateTime<Utc>) -> Window {
    let opens_at = starts_at - clinic.config().invitation_before;
    let closes_at = starts_at + clinic.config().invitation_after;
    if now < opens_at {
        Window::TooEarly(opens_at)
    } else if now > closes_at {
        Window::Expired
    } else {
        Window::Open
    }
}

async fn resolve(
    State(clinic): State<Clinic>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    // Walk-in visit tokens (from a widget's intake) carry a `w.` prefix.
    if let Some(visit_token) = req
        .token
        .strip_prefix(crate::widgets::visits::VISIT_TOKEN_PREFIX)
    {
        return crate::widgets::resolve_walk_in(&clinic, visit_token).await;
    }
    // Guest links (an extra participant of an appointment) carry a `g.` prefix.
    if let Some(guest_token) = req.token.strip_prefix(crate::guests::GUEST_TOKEN_PREFIX) {
        return crate::guests::resolve_guest(&clinic, guest_token).await;
    }
    // Our tokens are 43 base64url characters; anything else cannot match, so skip the lookup.
    let decoded_len = URL_SAFE_NO_PAD
        .decode(req.token.as_bytes())
        .map(|b| b.len());
    if req.token.len() > 128 || decoded_len.is_err() {
        return Err(ApiError::InvitationNotFound);
    }
    let hash = sha256(&req.token);
    let row = clinic
        .store()
        .invitation_by_hash(&hash)
        .await?
        .filter(|row| bool::from(row.token_hash.ct_eq(&hash)))
        .ok_or(ApiError::InvitationNotFound)?;
    match row.status.as_str() {
        "cancelled" => return Err(ApiError::InvitationCancelled),
        "completed" => return Err(ApiError::InvitationExpired),
        _ => {}
    }
    match window(&clinic, row.starts_at, clinic.now()) {
        Window::TooEarly(opens_at) => return Err(ApiError::InvitationTooEarly { opens_at }),
        Window::Expired => return Err(ApiError::InvitationExpired),
        Window::Open => {}
    }
    let settings = clinic.organisation_settings(row.organisation_id).await?;
    let (token, expires_at) = clinic.issue_join_token(JoinClaims::Patient(PatientJoin {
        appointment_id: row.appointment_id,
        organisation_id: row.organisation_id,
        practitioner_id: row.practitioner_id,
        display_name: row.client_name.clone(),
        appointment_starts_at: row.starts_at,
        duration_minutes: u32::try_from(row.duration_minutes).map_err(anyhow::Error::from)?,
        waiting_room: WaitingRoomRef::for_appointment(
            WaitingRoomKind::parse(&row.waiting_room)?,
            row.practitioner_id,
            row.department_id,
        ),
        permissions: settings.permissions(),
    }))?;
    tracing::info!(appointment_id = %row.appointment_id, "invitation resolved");
    Ok(Json(json!({
        "walk_in": false,
        "settings": settings.patient_view(row.department_id),
        "appointment": {
            "starts_at": row.starts_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "duration_minutes": row.duration_minutes,
            "practitioner_name": row.practitioner_name,
            "opens_at": (row.starts_at - clinic.config().invitation_before)
                .to_rfc3339_opts(SecondsFormat::Secs, true),
        },
        "patient_display_name": row.client_name,
        "signalling_token": token,
        "signalling_token_expires_at": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    })))
}
