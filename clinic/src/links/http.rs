//! `POST /invitations/resolve`: any link (invitation, `g.` guest, `w.` walk-in) into a
//! short-lived join token and what the patient page shows.

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::{AppointmentInfo, Link};
use crate::error::{ApiJson, ApiResult};
use crate::templates::Language;
use crate::tokens::{GuestJoin, JoinClaims, PatientJoin, WalkInJoin};
use crate::waiting_room::{WaitingRoomKind, WaitingRoomRef};
use crate::{Clinic, Route};

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![Route::new("POST", "/invitations/resolve", post(resolve))]
}

#[derive(Deserialize)]
struct ResolveRequest {
    token: String,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The response of `POST /invitations/resolve` (`InvitationResolved` in the OpenAPI document).
/// Fields are in alphabetical order, as the document's examples show them.
#[derive(Serialize)]
struct Resolved {
    /// The appointment (`null` for a walk-in).
    appointment: Option<AppointmentView>,
    /// Present (and `true`) for a guest link only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    guest: bool,
    /// The client's language for an appointment's invitation; `null` for guest and walk-in links
    /// (the page then follows the browser's languages). A language the patient chose on the page
    /// wins over it.
    language: Option<Language>,
    /// The clinic as the patient's page shows it (F11): name, logo URL, contact details.
    organisation: serde_json::Value,
    patient_display_name: String,
    /// The organisation's settings as the patient's page needs them.
    settings: serde_json::Value,
    signalling_token: String,
    signalling_token_expires_at: String,
    /// The walk-in visit (walk-ins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    visit: Option<VisitView>,
    walk_in: bool,
}

#[derive(Serialize)]
struct AppointmentView {
    duration_minutes: i32,
    opens_at: String,
    practitioner_name: String,
    starts_at: String,
}

#[derive(Serialize)]
struct VisitView {
    expires_at: String,
    practitioner_name: String,
}

impl AppointmentView {
    fn new(clinic: &Clinic, a: &AppointmentInfo) -> Self {
        Self {
            duration_minutes: a.duration_minutes,
            opens_at: rfc3339(a.starts_at - clinic.config().invitation_before),
            practitioner_name: a.practitioner_name.clone(),
            starts_at: rfc3339(a.starts_at),
        }
    }
}

/// The waiting room of an appointment link.
pub(super) fn waiting_room(a: &AppointmentInfo) -> ApiResult<WaitingRoomRef> {
    Ok(WaitingRoomRef::for_appointment(
        WaitingRoomKind::parse(&a.waiting_room)?,
        a.practitioner_id,
        a.department_id,
    ))
}

async fn resolve(
    State(clinic): State<Clinic>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> ApiResult<Json<Resolved>> {
    let link = super::resolve(&clinic, &req.token).await?;
    let org = match &link {
        Link::Invitation { appointment, .. } | Link::Guest { appointment, .. } => {
            appointment.organisation_id
        }
        Link::WalkIn(v) => v.organisation_id,
    };
    let settings = clinic.organisation_settings(org).await?;
    let organisation = crate::organisation_profile::branding(&clinic, org).await?;
    let permissions = settings.permissions();
    let resolved = match link {
        Link::Invitation {
            appointment: a,
            client_name,
            client_language,
        } => {
            let (token, expires_at) =
                clinic.issue_join_token(JoinClaims::Patient(PatientJoin {
                    appointment_id: a.appointment_id,
                    organisation_id: a.organisation_id,
                    practitioner_id: a.practitioner_id,
                    display_name: client_name.clone(),
                    appointment_starts_at: a.starts_at,
                    duration_minutes: u32::try_from(a.duration_minutes)
                        .map_err(anyhow::Error::from)?,
                    waiting_room: waiting_room(&a)?,
                    permissions,
                }))?;
            tracing::info!(appointment_id = %a.appointment_id, "invitation resolved");
            Resolved {
                appointment: Some(AppointmentView::new(&clinic, &a)),
                guest: false,
                language: Some(client_language),
                organisation: organisation.clone(),
                patient_display_name: client_name,
                settings: settings.patient_view(a.department_id),
                signalling_token: token,
                signalling_token_expires_at: rfc3339(expires_at),
                visit: None,
                walk_in: false,
            }
        }
        Link::Guest {
            appointment: a,
            guest_id,
            display_name,
        } => {
            let (token, expires_at) = clinic.issue_join_token(JoinClaims::Guest(GuestJoin {
                appointment_id: a.appointment_id,
                organisation_id: a.organisation_id,
                practitioner_id: a.practitioner_id,
                display_name: display_name.clone(),
                guest_id,
                permissions,
            }))?;
            tracing::info!(
                appointment_id = %a.appointment_id,
                %guest_id,
                "guest invitation resolved"
            );
            Resolved {
                appointment: Some(AppointmentView::new(&clinic, &a)),
                guest: true,
                language: None,
                organisation: organisation.clone(),
                patient_display_name: display_name,
                // The department's waiting-room text, as the client sees it.
                settings: settings.patient_view(a.department_id),
                signalling_token: token,
                signalling_token_expires_at: rfc3339(expires_at),
                visit: None,
                walk_in: false,
            }
        }
        Link::WalkIn(v) => {
            let (token, expires_at) = clinic.issue_join_token(JoinClaims::WalkIn(WalkInJoin {
                visit_id: v.visit_id,
                organisation_id: v.organisation_id,
                practitioner_id: v.practitioner_id,
                display_name: v.display_name.clone(),
                permissions,
            }))?;
            tracing::info!(visit_id = %v.visit_id, "walk-in visit resolved");
            Resolved {
                appointment: None,
                guest: false,
                language: None,
                organisation: organisation.clone(),
                patient_display_name: v.display_name,
                settings: settings.patient_view(None),
                signalling_token: token,
                signalling_token_expires_at: rfc3339(expires_at),
                visit: Some(VisitView {
                    expires_at: rfc3339(v.expires_at),
                    practitioner_name: v.practitioner_name,
                }),
                walk_in: true,
            }
        }
    };
    Ok(Json(resolved))
}
