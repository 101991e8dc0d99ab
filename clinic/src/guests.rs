//! Guests of a consultation (issue #4; F16–F17, F74, F116): a staff member who may manage an
//! appointment invites an extra participant (colleague, family member, interpreter) by link.
//! `POST /invitations/resolve` with the link's `g.` token mints a guest join token, inside the
//! appointment's invitation window ([`crate::links`]); the signalling hub lets the guest in only while the
//! appointment's client is in the consultation.
//!
//! Invariants: only SHA-256 digests of guest tokens are stored; the guest list of an appointment
//! follows the appointment's visibility (another organisation's appointment is a 404); a revoked
//! guest link is refused like an unknown one; guest names and tokens are never logged.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::appointments::{
    Appointment, AppointmentStatus, GUEST_LABEL, GuestAddressee, guest_invitation_mails, guest_link,
};
use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::events::ClinicEvent;
use crate::ids::{AppointmentId, ExternalParticipantId, GuestInvitationId, StaffId};
use crate::invitees::{Invitee, invitees};
use crate::links::GUEST_PREFIX;
use crate::mail::{MailError, MailStamp, OutgoingMail};
use crate::secrets::sha256;
use crate::store::{Store, dispatch};
use crate::{Clinic, Route};

/// Guest links carry this prefix before their token (`/join#g.<token>`).
pub const GUEST_TOKEN_PREFIX: &str = GUEST_PREFIX;
/// Most active (unrevoked) guests per appointment.
const MAX_GUESTS: i64 = 20;

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/appointments/{id}/guests", get(list)),
        Route::new("POST", "/appointments/{id}/guests", post(create)),
        Route::new(
            "DELETE",
            "/appointments/{id}/guests/{guest_id}",
            delete(revoke),
        ),
    ]
}

#[derive(sqlx::FromRow)]
struct GuestRow {
    guest_invitation_id: GuestInvitationId,
    display_name: String,
    created_at: DateTime<Utc>,
    external_participant_id: Option<ExternalParticipantId>,
}

impl GuestRow {
    fn json(&self) -> Value {
        json!({
            "id": self.guest_invitation_id,
            "name": self.display_name,
            "created_at": self.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "external_participant_id": self.external_participant_id,
        })
    }
}

/// A guest about to be invited: the link's id (its token is derived from it, as at booking, so
/// later mails about the appointment can carry it again), name and record.
struct NewGuest {
    id: GuestInvitationId,
    name: String,
    external: Option<ExternalParticipantId>,
    token_hash: Vec<u8>,
}

impl Store {
    /// Stores the guests and their invitation mails in one transaction: a refused mail stores
    /// no guest, and no guest is stored without its mail.
    async fn insert_guests(
        &self,
        appointment_id: AppointmentId,
        guests: &[NewGuest],
        created_by: StaffId,
        mails: &[OutgoingMail],
        stamp: &MailStamp,
    ) -> Result<(), MailError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            for g in guests {
                sqlx::query(
                    "insert into guest_invitation (guest_invitation_id, appointment_id, \
                     display_name, token_hash, created_by, created_at, external_participant_id) \
                     values ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(g.id)
                .bind(appointment_id)
                .bind(&g.name)
                .bind(&g.token_hash)
                .bind(created_by)
                .bind(stamp.now)
                .bind(g.external)
                .execute(&mut *tx)
                .await?;
            }
            for m in mails {
                crate::mail::enqueue(&mut *tx, m, stamp).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn active_guests(
        &self,
        appointment_id: AppointmentId,
    ) -> Result<Vec<GuestRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, GuestRow>(
                "select guest_invitation_id, display_name, created_at, external_participant_id \
                 from guest_invitation \
                 where appointment_id = $1 and revoked_at is null \
                 order by created_at, guest_invitation_id",
            )
            .bind(appointment_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Revokes guest `id` of `appointment_id`; `false` when there is no such active guest.
    async fn revoke_guest(
        &self,
        appointment_id: AppointmentId,
        id: GuestInvitationId,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "update guest_invitation set revoked_at = $3 \
                 where guest_invitation_id = $2 and appointment_id = $1 and revoked_at is null",
            )
            .bind(appointment_id)
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }
}

/// The appointment `raw` if the caller may manage it (its practitioner, its department's admin,
/// an admin of its organisation); anything else is a 404.
async fn managed_appointment(
    clinic: &Clinic,
    current: &CurrentStaff,
    raw: &str,
) -> ApiResult<Appointment> {
    let id: AppointmentId = raw.parse().map_err(|_| ApiError::NotFound("appointment"))?;
    crate::appointments::load_visible(clinic, current, id).await
}

async fn list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let id = managed_appointment(&clinic, &current, &id).await?.id;
    let guests = clinic.store().active_guests(id).await?;
    Ok(Json(
        json!({ "guests": guests.iter().map(GuestRow::json).collect::<Vec<_>>() }),
    ))
}

async fn create(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Invitee>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let appointment = managed_appointment(&clinic, &current, &id).await?;
    let id = appointment.id;
    let by_group = req.group_id.is_some();
    let mut people = invitees(&clinic, appointment.organisation_id, req).await?;
    if appointment.status != AppointmentStatus::Scheduled {
        return Err(ApiError::Conflict(
            "guests can only be added to a scheduled appointment",
        ));
    }
    let store = clinic.store();
    let active = store.active_guests(id).await?;
    // A record already invited keeps its link (revoke it to make a new one).
    let before = people.len();
    people.retain(|(_, record)| {
        record.is_none_or(|r| !active.iter().any(|g| g.external_participant_id == Some(r)))
    });
    let skipped = before - people.len();
    if people.is_empty() {
        return Err(ApiError::Conflict("already invited to this appointment"));
    }
    if (active.len() + people.len()) as i64 > MAX_GUESTS {
        return Err(ApiError::Conflict("this appointment has too many guests"));
    }
    // Each guest with an address (from their record) gets the invitation by mail, with their
    // own link, recorded with the guest (issue #12: every participant gets their own link).
    let mut guests = Vec::with_capacity(people.len());
    let mut addressees = Vec::with_capacity(people.len());
    for (name, record) in people {
        let guest_id = GuestInvitationId::new();
        addressees.push(
            GuestAddressee::of(store, appointment.organisation_id, guest_id, &name, record).await?,
        );
        guests.push(NewGuest {
            id: guest_id,
            token_hash: sha256(&clinic.link_token(GUEST_LABEL, &guest_id.to_string())),
            name,
            external: record,
        });
    }
    let mails =
        guest_invitation_mails(&clinic, &appointment, &addressees, current.staff.id).await?;
    store
        .insert_guests(id, &guests, current.staff.id, &mails, &clinic.mail_stamp())
        .await?;
    if !mails.is_empty() {
        clinic.wake_jobs();
    }
    let mut invitations = Vec::with_capacity(guests.len());
    for (g, a) in guests.iter().zip(&addressees) {
        tracing::info!(appointment_id = %id, guest_id = %g.id, staff_id = %current.staff.id, "guest invited");
        invitations.push(json!({
            "guest": { "id": g.id, "name": g.name, "external_participant_id": g.external },
            "invitation_url": guest_link(&clinic, g.id),
            "emailed": a.email.is_some(),
        }));
    }
    let body = if by_group {
        json!({ "invitations": invitations, "skipped_already_invited": skipped })
    } else {
        invitations.pop().unwrap_or_default()
    };
    Ok((StatusCode::CREATED, Json(body)))
}

async fn revoke(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath((id, guest_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let appointment = managed_appointment(&clinic, &current, &id).await?;
    let id = appointment.id;
    let guest_id: GuestInvitationId = guest_id.parse().map_err(|_| ApiError::NotFound("guest"))?;
    if !clinic
        .store()
        .revoke_guest(id, guest_id, clinic.now())
        .await?
    {
        return Err(ApiError::NotFound("guest"));
    }
    tracing::info!(appointment_id = %id, %guest_id, staff_id = %current.staff.id, "guest revoked");
    // A guest already connected leaves at once (not only at the next reconnect).
    clinic.emit(ClinicEvent::GuestRevoked {
        organisation_id: appointment.organisation_id,
        guest_id,
    });
    Ok(StatusCode::NO_CONTENT)
}
