//! The rows behind links, by token digest (to enter) and by id (to refresh a held seat).

use super::{AppointmentInfo, WalkInInfo};
use crate::ids::{AppointmentId, GuestInvitationId, OrganisationId, WalkInVisitId};
use crate::store::{Store, dispatch};
use crate::templates::Language;

#[derive(sqlx::FromRow)]
pub(super) struct InvitationRow {
    pub(super) token_hash: Vec<u8>,
    #[sqlx(flatten)]
    pub(super) appointment: AppointmentInfo,
    pub(super) client_name: String,
    /// The client's language (`en`, `nl`, `de`), for the patient page.
    #[sqlx(try_from = "String")]
    pub(super) client_language: Language,
    pub(super) status: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct GuestRow {
    pub(super) token_hash: Vec<u8>,
    pub(super) guest_invitation_id: GuestInvitationId,
    pub(super) display_name: String,
    #[sqlx(flatten)]
    pub(super) appointment: AppointmentInfo,
    pub(super) status: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct VisitRow {
    pub(super) token_hash: Vec<u8>,
    #[sqlx(flatten)]
    pub(super) visit: WalkInInfo,
    pub(super) status: String,
}

/// The appointment columns every appointment link reads (`a` the appointment, `p` its
/// practitioner).
macro_rules! appointment_columns {
    () => {
        "a.appointment_id, a.organisation_id, a.practitioner_id, \
         p.name as practitioner_name, a.starts_at, a.duration_minutes, a.status, \
         a.department_id, a.waiting_room"
    };
}

/// The status of a seat's appointment, guest or visit, for refreshing a held join token.
#[derive(sqlx::FromRow)]
pub(super) struct SeatRow {
    pub(super) status: String,
}

impl Store {
    pub(super) async fn invitation_by_hash(
        &self,
        hash: &[u8],
    ) -> Result<Option<InvitationRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, InvitationRow>(concat!(
                "select i.token_hash, ",
                appointment_columns!(),
                ", c.name as client_name, c.language as client_language \
                 from invitation i \
                 join appointment a on a.appointment_id = i.appointment_id \
                 join staff p on p.staff_id = a.practitioner_id \
                 join client c on c.client_id = a.client_id \
                 where i.token_hash = $1"
            ))
                .bind(hash)
                .fetch_optional(pool)
                .await
        })
    }

    /// An active (unrevoked) guest link by digest, with its appointment.
    pub(super) async fn guest_by_hash(&self, hash: &[u8]) -> Result<Option<GuestRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, GuestRow>(concat!(
                "select g.token_hash, g.guest_invitation_id, g.display_name, ",
                appointment_columns!(),
                " from guest_invitation g \
                 join appointment a on a.appointment_id = g.appointment_id \
                 join staff p on p.staff_id = a.practitioner_id \
                 where g.token_hash = $1 and g.revoked_at is null"
            ))
                .bind(hash)
                .fetch_optional(pool)
                .await
        })
    }

    pub(super) async fn visit_by_hash(&self, hash: &[u8]) -> Result<Option<VisitRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, VisitRow>(
                "select v.walkin_visit_id as visit_id, v.organisation_id, v.practitioner_id, \
                 p.name as practitioner_name, v.display_name, v.token_hash, v.status, \
                 v.expires_at \
                 from walkin_visit v join staff p on p.staff_id = v.practitioner_id \
                 where v.token_hash = $1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await
        })
    }

    /// The status of an appointment of `org`.
    pub(super) async fn appointment_seat(
        &self,
        org: OrganisationId,
        id: AppointmentId,
    ) -> Result<Option<SeatRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, SeatRow>(
                "select status from appointment where appointment_id = $1 and organisation_id = $2",
            )
            .bind(id)
            .bind(org)
            .fetch_optional(pool)
            .await
        })
    }

    /// The status of the appointment of an active (unrevoked) guest of `org`.
    pub(super) async fn guest_seat(
        &self,
        org: OrganisationId,
        id: GuestInvitationId,
    ) -> Result<Option<SeatRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, SeatRow>(
                "select a.status from guest_invitation g \
                 join appointment a on a.appointment_id = g.appointment_id \
                 where g.guest_invitation_id = $1 and a.organisation_id = $2 \
                 and g.revoked_at is null",
            )
            .bind(id)
            .bind(org)
            .fetch_optional(pool)
            .await
        })
    }

    /// The status of a walk-in visit of `org`.
    pub(super) async fn visit_seat(
        &self,
        org: OrganisationId,
        id: WalkInVisitId,
    ) -> Result<Option<SeatRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, SeatRow>(
                "select status from walkin_visit where walkin_visit_id = $1 and organisation_id = $2",
            )
            .bind(id)
            .bind(org)
            .fetch_optional(pool)
            .await
        })
    }
}
