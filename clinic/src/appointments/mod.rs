//! Appointments: list, book, read, cancel, and completion by the consultation.
//!
//! An appointment's `waiting_room` is `practitioner` (default) or `department`: the patient then
//! waits in the department's shared room, where any practitioner of it can admit them (F7, F75).
//! It still names a responsible practitioner; `department` requires the appointment to have a
//! department (given, or the practitioner's).
//!
//! Invariants: staff see only their organisation's appointments, narrowed by role; another
//! organisation's appointment is a 404, never a 403. Booking returns the invitation link once; only
//! the token's hash is stored.

mod db;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, Duration, NaiveTime, Timelike, Utc};
use serde::Deserialize;
use serde_json::json;

pub use db::{Appointment, AppointmentStatus, NewAppointment, PersonRef};

use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::ids::{AppointmentId, ClientId, DepartmentId, StaffId};
use crate::secrets::{random_token, sha256};
use crate::staff::Role;
use crate::waiting_room::WaitingRoomKind;
use crate::{Clinic, Route};

/// Longest appointment that can be booked, in minutes.
const MAX_DURATION_MINUTES: i32 = 8 * 60;
/// Widest range `GET /appointments` accepts.
const MAX_LIST_RANGE_DAYS: i64 = 92;

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/appointments", get(list)),
        Route::new("POST", "/appointments", post(create)),
        Route::new("GET", "/appointments/{id}", get(read)),
        Route::new("POST", "/appointments/{id}/cancel", post(cancel)),
    ]
}

#[derive(Deserialize)]
struct ListParams {
    from: Option<String>,
    to: Option<String>,
}

fn parse_instant(name: &str, value: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::invalid(format!("{name} must be an RFC 3339 timestamp")))
}

async fn list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let today = clinic.now().date_naive().and_time(NaiveTime::MIN).and_utc();
    let from = match &params.from {
        Some(v) => parse_instant("from", v)?,
        None => today,
    };
    let to = match &params.to {
        Some(v) => parse_instant("to", v)?,
        None => from + Duration::days(1),
    };
    if to <= from {
        return Err(ApiError::invalid("to must be after from"));
    }
    if to - from > Duration::days(MAX_LIST_RANGE_DAYS) {
        return Err(ApiError::invalid(format!(
            "the range may span at most {MAX_LIST_RANGE_DAYS} days"
        )));
    }
    let rows = clinic
        .store()
        .list_appointments(&db::scope(&current.staff), from, to)
        .await?;
    let appointments = rows
        .into_iter()
        .map(db::AppointmentRow::into_appointment)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Json(json!({ "appointments": appointments })))
}

#[derive(Deserialize)]
struct CreateRequest {
    client_id: ClientId,
    #[serde(default)]
    practitioner_id: Option<StaffId>,
    #[serde(default)]
    department_id: Option<DepartmentId>,
    starts_at: DateTime<Utc>,
    #[serde(deserialize_with = "crate::json_int::int")]
    duration_minutes: i32,
    #[serde(default)]
    waiting_room: Option<WaitingRoomKind>,
}

async fn create(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<CreateRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let caller = &current.staff;
    if !(1..=MAX_DURATION_MINUTES).contains(&req.duration_minutes) {
        return Err(ApiError::invalid(format!(
            "duration_minutes must be 1 to {MAX_DURATION_MINUTES}"
        )));
    }
    let practitioner_id = req.practitioner_id.unwrap_or(caller.id);
    if caller.role == Role::Practitioner && practitioner_id != caller.id {
        return Err(ApiError::Forbidden(
            "practitioners may only book appointments for themselves",
        ));
    }
    let store = clinic.store();
    let practitioner = store
        .staff_by_id(practitioner_id)
        .await?
        // A deactivated staff member takes no appointments (issue #12).
        .filter(|p| p.organisation_id == caller.organisation_id && p.active)
        .ok_or(ApiError::NotFound("practitioner"))?;
    let department_id = match req.department_id {
        Some(id) => {
            if !store
                .department_in_organisation(caller.organisation_id, id)
                .await?
            {
                return Err(ApiError::NotFound("department"));
            }
            Some(id)
        }
        None => practitioner.department_id,
    };
    if caller.role == Role::DepartmentAdmin
        && (department_id.is_none() || department_id != caller.department_id)
    {
        return Err(ApiError::Forbidden(
            "department admins may only book in their own department",
        ));
    }
    let waiting_room = req.waiting_room.unwrap_or_default();
    if waiting_room == WaitingRoomKind::Department && department_id.is_none() {
        return Err(ApiError::invalid(
            "waiting_room \"department\" needs a department: pass department_id, or book for a \
             practitioner who belongs to a department",
        ));
    }
    store
        .client_in_organisation(caller.organisation_id, req.client_id)
        .await?
        .ok_or(ApiError::NotFound("client"))?;

    let token = random_token();
    let new = NewAppointment {
        organisation_id: caller.organisation_id,
        practitioner_id,
        client_id: req.client_id,
        department_id,
        waiting_room,
        // Sub-second precision means nothing for a booking and differs between backends.
        starts_at: req.starts_at.with_nanosecond(0).unwrap_or(req.starts_at),
        duration_minutes: req.duration_minutes,
    };
    let id = store
        .insert_appointment(&new, &sha256(&token), clinic.now())
        .await?;
    let appointment = load_visible(&clinic, &current, id).await?;
    tracing::info!(appointment_id = %id, staff_id = %caller.id, "appointment booked");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "appointment": appointment,
            "invitation_url": clinic.invitation_url(&token),
        })),
    ))
}

/// Path ids that are not UUIDs are simply not found.
fn parse_id(raw: &str) -> ApiResult<AppointmentId> {
    raw.parse().map_err(|_| ApiError::NotFound("appointment"))
}

pub(crate) async fn load_visible(
    clinic: &Clinic,
    current: &CurrentStaff,
    id: AppointmentId,
) -> ApiResult<Appointment> {
    let row = clinic
        .store()
        .get_appointment(&db::scope(&current.staff), id)
        .await?
        .ok_or(ApiError::NotFound("appointment"))?;
    Ok(row.into_appointment()?)
}

async fn read(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let appointment = load_visible(&clinic, &current, parse_id(&id)?).await?;
    Ok(Json(json!({ "appointment": appointment })))
}

async fn cancel(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = parse_id(&id)?;
    let appointment = load_visible(&clinic, &current, id).await?;
    match appointment.status {
        AppointmentStatus::Completed => {
            return Err(ApiError::Conflict(
                "a completed appointment cannot be cancelled",
            ));
        }
        // Cancelling twice is harmless; answer with the current state.
        AppointmentStatus::Cancelled => {}
        AppointmentStatus::Scheduled => {
            clinic
                .store()
                .set_appointment_status(id, AppointmentStatus::Cancelled, clinic.now())
                .await?;
            tracing::info!(appointment_id = %id, staff_id = %current.staff.id, "appointment cancelled");
        }
    }
    let appointment = load_visible(&clinic, &current, id).await?;
    Ok(Json(json!({ "appointment": appointment })))
}

impl Clinic {
    /// Marks a scheduled appointment completed (called when its consultation ends). Returns
    /// `false` when it was not scheduled (already completed, cancelled, or unknown).
    pub async fn complete_appointment(
        &self,
        appointment_id: AppointmentId,
    ) -> anyhow::Result<bool> {
        let changed = self
            .store()
            .set_appointment_status(appointment_id, AppointmentStatus::Completed, self.now())
            .await?;
        if changed {
            tracing::info!(%appointment_id, "appointment completed");
        }
        Ok(changed)
    }

    /// The link a patient opens: the token sits in the URL fragment, so it never reaches server
    /// or proxy logs.
    pub fn invitation_url(&self, token: &str) -> String {
        format!("{}/join#{token}", self.config().public_url)
    }
}
