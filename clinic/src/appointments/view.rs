//! What the appointment routes share: loading an appointment the caller sees, the answer with
//! its local start and invitation link, the link labels and the duration rule.

use chrono_tz::Tz;
use serde_json::{Value, json};

use super::db::{self, Appointment};
use super::when::local_string;
use crate::Clinic;
use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiResult};
use crate::ids::AppointmentId;

/// Longest appointment that can be booked, in minutes.
pub(crate) const MAX_DURATION_MINUTES: i32 = 8 * 60;

impl Appointment {
    /// With `local_start` in `tz`.
    pub(crate) fn in_zone(mut self, tz: Tz) -> Self {
        self.local_start = Some(local_string(tz, self.starts_at));
        self
    }
}

/// An appointment the caller sees (another organisation's, or one their role hides: 404).
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

/// The appointment as the API answers it: with its local start, the organisation's zone, and
/// its invitation link when that can be rebuilt (appointments booked before links were derived
/// from the server secret have none to show).
pub(crate) async fn answer(
    clinic: &Clinic,
    current: &CurrentStaff,
    id: AppointmentId,
) -> ApiResult<Value> {
    let tz = clinic
        .organisation_settings(current.staff.organisation_id)
        .await?
        .tz();
    let appointment = load_visible(clinic, current, id).await?.in_zone(tz);
    let invitation_url = super::links::client_link(clinic, id).await?;
    let mailed_to = super::mail::client_address(clinic, appointment.client.id).await?;
    Ok(json!({
        "appointment": appointment,
        "invitation_url": invitation_url,
        "mailed_to": mailed_to,
        "time_zone": tz.name(),
    }))
}

/// 1 to [`MAX_DURATION_MINUTES`] minutes.
pub(crate) fn check_duration(minutes: i32) -> ApiResult<()> {
    if !(1..=MAX_DURATION_MINUTES).contains(&minutes) {
        return Err(ApiError::InvalidField {
            field: "duration_minutes",
            message: format!("duration_minutes must be 1 to {MAX_DURATION_MINUTES}"),
        });
    }
    Ok(())
}
