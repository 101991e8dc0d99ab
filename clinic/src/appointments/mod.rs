//! Appointments: list (a day, a week, or a range; per practitioner or department, F66), book
//! (`create.rs`: a local time in the organisation's time zone, a personal message, guests and
//! groups, an `Idempotency-Key`), read (with the invitation link), reschedule, cancel, and
//! completion by the consultation. `when.rs` turns local times into instants (DST rules there);
//! `mail.rs` composes the invitation, update, cancellation and reminder mails that the store
//! records in the outbox in the change's own transaction; `reminders.rs` times the reminder job
//! and runs it.
//!
//! An appointment's `waiting_room` is `practitioner` (default) or `department`: the patient then
//! waits in the department's shared room, where any practitioner of it can admit them (F7, F75).
//! It still names a responsible practitioner; `department` requires the appointment to have a
//! department (given, or the practitioner's).
//!
//! Invariants: staff see only their organisation's appointments, narrowed by role; another
//! organisation's appointment is a 404, never a 403. Booking returns the invitation link once; only
//! the token's hash is stored.

mod create;
mod db;
mod links;
mod mail;
mod reminders;
mod view;
mod when;

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Value, json};

pub use db::{Appointment, AppointmentStatus, NewAppointment, PersonRef};
pub use reminders::{REMINDER_JOB, ReminderSender};

use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::ids::{AppointmentId, DepartmentId, StaffId};
use crate::secrets::derived_token;
use crate::templates::AppointmentMailKind;
use crate::{Clinic, Route};

/// Widest range `GET /appointments` accepts.
const MAX_LIST_RANGE_DAYS: i64 = 92;

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/appointments", get(list)),
        Route::new("POST", "/appointments", post(create::create)),
        Route::new("GET", "/appointments/{id}", get(read)),
        Route::new("POST", "/appointments/{id}/reschedule", post(reschedule)),
        Route::new("POST", "/appointments/{id}/cancel", post(cancel)),
    ]
}

#[derive(Deserialize)]
struct ListParams {
    from: Option<String>,
    to: Option<String>,
    /// A local day (`YYYY-MM-DD`) in the organisation's time zone.
    day: Option<NaiveDate>,
    /// The Monday-to-Sunday week, in the organisation's time zone, holding this day.
    week: Option<NaiveDate>,
    practitioner_id: Option<StaffId>,
    department_id: Option<DepartmentId>,
}

fn parse_instant(name: &str, value: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::invalid(format!("{name} must be an RFC 3339 timestamp")))
}

/// The range a list asks for: `day`, `week`, or `from`/`to` (default: today, locally).
fn list_range(
    tz: Tz,
    p: &ListParams,
    now: DateTime<Utc>,
) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let local_days = |first: NaiveDate, days: u64| {
        let last = first
            .checked_add_days(chrono::Days::new(days))
            .ok_or_else(|| ApiError::invalid("the date is out of range"))?;
        Ok::<_, ApiError>((day_start(tz, first), day_start(tz, last)))
    };
    match (p.day, p.week, &p.from, &p.to) {
        (Some(day), None, None, None) => local_days(day, 1),
        (None, Some(day), None, None) => {
            let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
            local_days(monday, 7)
        }
        (None, None, from, to) => {
            let from = match from {
                Some(v) => parse_instant("from", v)?,
                None => day_start(tz, now.with_timezone(&tz).date_naive()),
            };
            let to = match to {
                Some(v) => parse_instant("to", v)?,
                None => from + Duration::days(1),
            };
            Ok((from, to))
        }
        _ => Err(ApiError::invalid("give one of day, week, or from/to")),
    }
}

async fn list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Value>> {
    let tz = clinic
        .organisation_settings(current.staff.organisation_id)
        .await?
        .tz();
    let (from, to) = list_range(tz, &params, clinic.now())?;
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
        .list_appointments(
            &db::scope(&current.staff),
            from,
            to,
            params.practitioner_id,
            params.department_id,
        )
        .await?;
    let appointments = rows
        .into_iter()
        .map(|r| Ok(r.into_appointment()?.in_zone(tz)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Json(json!({
        "appointments": appointments,
        "time_zone": tz.name(),
        "from": local_string(tz, from),
        "to": local_string(tz, to),
    })))
}

pub(crate) use db::sees as sees_appointment;
pub(crate) use links::{GUEST_LABEL, guest_link};
pub(crate) use mail::{GuestAddressee, guest_invitation_mails};
pub(crate) use view::load_visible;
use view::{answer, check_duration};
use when::{day_start, local_string};

/// Path ids that are not UUIDs are simply not found.
fn parse_id(raw: &str) -> ApiResult<AppointmentId> {
    raw.parse().map_err(|_| ApiError::NotFound("appointment"))
}

async fn read(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(answer(&clinic, &current, parse_id(&id)?).await?))
}

#[derive(Deserialize)]
struct RescheduleRequest {
    #[serde(default)]
    starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    local_start: Option<String>,
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    duration_minutes: Option<i32>,
}

/// What a reschedule or cancellation must know of the appointment before it changes it.
async fn change_mails(
    clinic: &Clinic,
    current: &CurrentStaff,
    appointment: &Appointment,
    kind: AppointmentMailKind,
    starts_at: DateTime<Utc>,
    duration_minutes: i32,
) -> ApiResult<Vec<crate::mail::OutgoingMail>> {
    let id = appointment.id;
    let link = links::client_link(clinic, id).await?;
    let guests = mail::guests_of(clinic, id).await?;
    let occasion = mail::Occasion {
        kind,
        appointment_id: id,
        organisation_id: appointment.organisation_id,
        department_id: appointment.department_id,
        practitioner_name: &appointment.practitioner.name,
        client_id: appointment.client.id,
        starts_at,
        duration_minutes,
        personal_message: &appointment.personal_message,
        sequence: appointment.sequence + 1,
        created_by: Some(current.staff.id),
        new_client: None,
    };
    mail::compose(clinic, &occasion, link, &guests).await
}

/// Someone else changed the appointment between our read and our write.
const CHANGED_MEANWHILE: &str =
    "the appointment was changed or cancelled meanwhile; reload it and try again";

async fn reschedule(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RescheduleRequest>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let appointment = load_visible(&clinic, &current, id).await?;
    let settings = clinic
        .organisation_settings(current.staff.organisation_id)
        .await?;
    let tz = settings.tz();
    let now = clinic.now();
    let starts_at = when::start(tz, req.starts_at, req.local_start.as_deref(), now)?;
    let duration = req.duration_minutes.unwrap_or(appointment.duration_minutes);
    check_duration(duration)?;
    if appointment.status != AppointmentStatus::Scheduled {
        return Err(ApiError::Conflict(
            "only a scheduled appointment can be rescheduled",
        ));
    }
    let mails = change_mails(
        &clinic,
        &current,
        &appointment,
        AppointmentMailKind::Update,
        starts_at,
        duration,
    )
    .await?;
    let sequence = appointment.sequence + 1;
    let reminder = reminders::reminder_at(&settings, starts_at, now)
        .map(|at| reminders::reminder_job(id, sequence, at));
    let stamp = clinic.mail_stamp();
    let change = db::Change {
        expected_sequence: appointment.sequence,
        mails: &mails,
        stamp: &stamp,
        reminder: reminder.as_ref(),
    };
    match clinic
        .store()
        .reschedule_appointment(id, starts_at, duration, &change)
        .await?
    {
        db::Changed::Yes => clinic.wake_jobs(),
        db::Changed::Stale => return Err(ApiError::Conflict(CHANGED_MEANWHILE)),
    }
    tracing::info!(appointment_id = %id, staff_id = %current.staff.id, mails = mails.len(), "appointment rescheduled");
    Ok(Json(answer(&clinic, &current, id).await?))
}

async fn cancel(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let appointment = load_visible(&clinic, &current, id).await?;
    match appointment.status {
        AppointmentStatus::Completed => {
            return Err(ApiError::Conflict(
                "a completed appointment cannot be cancelled",
            ));
        }
        // Cancelling twice is harmless; answer with the current state (no second mail).
        AppointmentStatus::Cancelled => {}
        AppointmentStatus::Scheduled => {
            let mails = change_mails(
                &clinic,
                &current,
                &appointment,
                AppointmentMailKind::Cancellation,
                appointment.starts_at,
                appointment.duration_minutes,
            )
            .await?;
            let stamp = clinic.mail_stamp();
            let change = db::Change {
                expected_sequence: appointment.sequence,
                mails: &mails,
                stamp: &stamp,
                reminder: None,
            };
            match clinic.store().cancel_appointment(id, &change).await? {
                db::Changed::Yes => {
                    clinic.wake_jobs();
                    tracing::info!(appointment_id = %id, staff_id = %current.staff.id, mails = mails.len(), "appointment cancelled");
                }
                db::Changed::Stale => {
                    // Cancelled by someone else meanwhile is the state asked for; anything else
                    // (rescheduled, completed) is a conflict.
                    let now = load_visible(&clinic, &current, id).await?;
                    if now.status != AppointmentStatus::Cancelled {
                        return Err(ApiError::Conflict(CHANGED_MEANWHILE));
                    }
                }
            }
        }
    }
    let tz = clinic
        .organisation_settings(current.staff.organisation_id)
        .await?
        .tz();
    let appointment = load_visible(&clinic, &current, id).await?.in_zone(tz);
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

    /// A link token derived from the server secret (see [`crate::secrets::derived_token`]).
    pub(crate) fn link_token(&self, label: &str, id: &str) -> String {
        use secrecy::ExposeSecret;
        derived_token(self.config().jwt_secret.expose_secret(), label, id)
    }
}
