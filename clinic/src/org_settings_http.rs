//! `GET /organisation/settings` (any staff member of the organisation: the staff app needs them)
//! and `PUT /organisation/settings` (organisation admins only; fields left out keep their value).
//! A change that closes chat between visits ends those channels' live chat-only connections.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::routing::{get, put};
use serde::Deserialize;

use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::ids::DepartmentId;
use crate::org_settings::{ChatAfterConsultation, OrganisationKind, OrganisationSettings};
use crate::staff::Role;
use crate::{Clinic, Route};

/// A partial update: every field optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRequest {
    screen_sharing: Option<bool>,
    file_sharing: Option<bool>,
    continuous_chat: Option<bool>,
    continuous_chat_by_grant: Option<bool>,
    chat_in_waiting_room: Option<bool>,
    chat_after_consultation: Option<ChatAfterConsultation>,
    department_chat_access: Option<bool>,
    arrival_notification: Option<bool>,
    waiting_room_text: Option<String>,
    department_waiting_room_texts: Option<BTreeMap<DepartmentId, String>>,
    disclaimer: Option<String>,
    after_consultation_text: Option<String>,
    do_not_send_emails: Option<bool>,
    appointment_reminders: Option<bool>,
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    reminder_days_before: Option<u32>,
    reminder_time: Option<String>,
    time_zone: Option<String>,
    strict_department_segregation: Option<bool>,
    strict_client_segregation: Option<bool>,
    organisation_kind: Option<OrganisationKind>,
}

impl UpdateRequest {
    fn apply(self, s: &mut OrganisationSettings) {
        macro_rules! set {
            ($($f:ident),*) => { $(if let Some(v) = self.$f { s.$f = v; })* };
        }
        set!(
            screen_sharing,
            file_sharing,
            continuous_chat,
            continuous_chat_by_grant,
            chat_in_waiting_room,
            chat_after_consultation,
            department_chat_access,
            arrival_notification,
            waiting_room_text,
            department_waiting_room_texts,
            disclaimer,
            after_consultation_text,
            do_not_send_emails,
            appointment_reminders,
            reminder_days_before,
            reminder_time,
            time_zone,
            strict_department_segregation,
            strict_client_segregation,
            organisation_kind
        );
        s.time_zone = s.time_zone.trim().to_owned();
        s.reminder_time = s.reminder_time.trim().to_owned();
        s.waiting_room_text = s.waiting_room_text.trim().to_owned();
        // An empty department text means "use the organisation's": not stored.
        s.department_waiting_room_texts = std::mem::take(&mut s.department_waiting_room_texts)
            .into_iter()
            .map(|(d, t)| (d, t.trim().to_owned()))
            .filter(|(_, t)| !t.is_empty())
            .collect();
        s.disclaimer = s.disclaimer.trim().to_owned();
        s.after_consultation_text = s.after_consultation_text.trim().to_owned();
    }
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/organisation/settings", get(read)),
        Route::new("PUT", "/organisation/settings", put(update)),
    ]
}

async fn read(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
) -> ApiResult<Json<OrganisationSettings>> {
    Ok(Json(
        clinic
            .organisation_settings(current.staff.organisation_id)
            .await?,
    ))
}

async fn update(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<UpdateRequest>,
) -> ApiResult<Json<OrganisationSettings>> {
    let staff = &current.staff;
    if staff.role != Role::OrganisationAdmin {
        return Err(ApiError::Forbidden(
            "only an organisation admin may change the organisation settings",
        ));
    }
    let before = clinic.organisation_settings(staff.organisation_id).await?;
    let mut settings = before.clone();
    req.apply(&mut settings);
    settings.validate()?;
    // Back to human only while no client owns an animal: their records would have nowhere to be
    // shown. Human → veterinary is always allowed (each client's own patient keeps the client's
    // records, as client-level items).
    if before.organisation_kind == OrganisationKind::Veterinary
        && settings.organisation_kind == OrganisationKind::Human
        && clinic
            .store()
            .organisation_has_animals(staff.organisation_id)
            .await?
    {
        return Err(ApiError::Conflict(
            "clients of the organisation own patients; a human organisation's clients are \
             their own patients only",
        ));
    }
    // Department texts only for this organisation's departments (another's is "not found").
    if !settings.department_waiting_room_texts.is_empty() {
        let own: Vec<DepartmentId> = clinic
            .store()
            .departments_of(staff.organisation_id)
            .await?
            .into_iter()
            .map(|d| d.department_id)
            .collect();
        if settings
            .department_waiting_room_texts
            .keys()
            .any(|d| !own.contains(d))
        {
            return Err(ApiError::InvalidField {
                field: "department_waiting_room_texts",
                message: "unknown department".to_owned(),
            });
        }
    }
    let text =
        serde_json::to_string(&settings).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?;
    clinic
        .store()
        .upsert_organisation_settings(staff.organisation_id, &text, staff.id, clinic.now())
        .await?;
    tracing::info!(staff_id = %staff.id, "organisation settings changed");
    // The settings are saved: a failure to look up the channels to close is logged, not
    // reported as a failed change (their next send or reconnect is refused anyway).
    if let Err(e) = crate::chat::service::close_chats_no_longer_open(
        &clinic,
        staff.organisation_id,
        &before,
        &settings,
    )
    .await
    {
        tracing::warn!(error = %e, "closing chats no longer open between visits failed");
    }
    Ok(Json(settings))
}
