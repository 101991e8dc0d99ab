//! SQL for appointments and their invitations.
//!
//! Invariant: every read goes through the visibility predicate [`scope`]: organisation first, then
//! role (practitioner → own, department admin → department, organisation admin → all).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::{AppointmentId, ClientId, DepartmentId, InvitationId, OrganisationId, StaffId};
use crate::staff::{Role, Staff};
use crate::store::{Store, dispatch};
use crate::waiting_room::WaitingRoomKind;

/// Lifecycle of an appointment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    /// Booked and still ahead (or in progress).
    Scheduled,
    /// Cancelled; its invitation is refused.
    Cancelled,
    /// The consultation took place.
    Completed,
}

impl AppointmentStatus {
    fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "scheduled" => Ok(Self::Scheduled),
            "cancelled" => Ok(Self::Cancelled),
            "completed" => Ok(Self::Completed),
            other => anyhow::bail!("unknown appointment status {other:?}"),
        }
    }
}

/// `{id, name}` of a related person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PersonRef<Id> {
    /// Id.
    pub id: Id,
    /// Display name.
    pub name: String,
}

/// An appointment as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Appointment {
    /// Appointment id.
    pub id: AppointmentId,
    /// The client (patient).
    pub client: PersonRef<ClientId>,
    /// The practitioner.
    pub practitioner: PersonRef<StaffId>,
    /// Department, if any.
    pub department_id: Option<DepartmentId>,
    /// Where the patient waits: the practitioner's room or the department's shared room.
    pub waiting_room: WaitingRoomKind,
    /// Scheduled start (UTC).
    pub starts_at: DateTime<Utc>,
    /// Planned length.
    pub duration_minutes: i32,
    /// Status.
    pub status: AppointmentStatus,
    /// Organisation (not serialised; used for checks).
    #[serde(skip)]
    pub organisation_id: OrganisationId,
}

#[derive(sqlx::FromRow)]
pub(crate) struct AppointmentRow {
    appointment_id: AppointmentId,
    organisation_id: OrganisationId,
    practitioner_id: StaffId,
    practitioner_name: String,
    client_id: ClientId,
    client_name: String,
    department_id: Option<DepartmentId>,
    waiting_room: String,
    starts_at: DateTime<Utc>,
    duration_minutes: i32,
    status: String,
}

impl AppointmentRow {
    pub(crate) fn into_appointment(self) -> anyhow::Result<Appointment> {
        Ok(Appointment {
            id: self.appointment_id,
            client: PersonRef {
                id: self.client_id,
                name: self.client_name,
            },
            practitioner: PersonRef {
                id: self.practitioner_id,
                name: self.practitioner_name,
            },
            department_id: self.department_id,
            waiting_room: WaitingRoomKind::parse(&self.waiting_room)?,
            starts_at: self.starts_at,
            duration_minutes: self.duration_minutes,
            status: AppointmentStatus::parse(&self.status)?,
            organisation_id: self.organisation_id,
        })
    }
}

/// Everything needed to book an appointment (already authorised).
#[derive(Clone, Debug)]
pub struct NewAppointment {
    /// Organisation.
    pub organisation_id: OrganisationId,
    /// Practitioner.
    pub practitioner_id: StaffId,
    /// Client.
    pub client_id: ClientId,
    /// Department.
    pub department_id: Option<DepartmentId>,
    /// Waiting room kind; `Department` needs a `department_id` (checked by the API).
    pub waiting_room: WaitingRoomKind,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// Length in minutes.
    pub duration_minutes: i32,
}

/// The caller-dependent part of the visibility predicate, bound as `$1..$4`.
pub(crate) struct Scope {
    organisation_id: OrganisationId,
    role: &'static str,
    department_id: Option<DepartmentId>,
    staff_id: StaffId,
}

/// The visibility scope of `staff`.
pub(crate) fn scope(staff: &Staff) -> Scope {
    Scope {
        organisation_id: staff.organisation_id,
        role: staff.role.as_str(),
        department_id: match staff.role {
            Role::DepartmentAdmin => staff.department_id,
            _ => None,
        },
        staff_id: staff.id,
    }
}

macro_rules! select_appointments {
    () => {
        "select a.appointment_id, a.organisation_id, a.practitioner_id, p.name as practitioner_name, \
         a.client_id, c.name as client_name, a.department_id, a.waiting_room, a.starts_at, a.duration_minutes, a.status \
         from appointment a \
         join staff p on p.staff_id = a.practitioner_id \
         join client c on c.client_id = a.client_id \
         where a.organisation_id = $1 \
         and ($2 = 'organisation_admin' \
              or ($2 = 'department_admin' and a.department_id = $3) \
              or ($2 = 'practitioner' and a.practitioner_id = $4)) "
    };
}

impl Store {
    /// Appointments visible to `scope` starting in `[from, to)`, by start time.
    pub(crate) async fn list_appointments(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AppointmentRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, AppointmentRow>(concat!(
                select_appointments!(),
                "and a.starts_at >= $5 and a.starts_at < $6 order by a.starts_at, a.appointment_id"
            ))
            .bind(scope.organisation_id)
            .bind(scope.role)
            .bind(scope.department_id)
            .bind(scope.staff_id)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await
        })
    }

    /// One appointment, if visible to `scope`.
    pub(crate) async fn get_appointment(
        &self,
        scope: &Scope,
        id: AppointmentId,
    ) -> Result<Option<AppointmentRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, AppointmentRow>(concat!(
                select_appointments!(),
                "and a.appointment_id = $5"
            ))
            .bind(scope.organisation_id)
            .bind(scope.role)
            .bind(scope.department_id)
            .bind(scope.staff_id)
            .bind(id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Books an appointment and its invitation (only the token's hash) in one transaction.
    pub async fn insert_appointment(
        &self,
        new: &NewAppointment,
        invitation_token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<AppointmentId, sqlx::Error> {
        let id = AppointmentId::new();
        let invitation_id = InvitationId::new();
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "insert into appointment (appointment_id, organisation_id, practitioner_id, client_id, \
                 department_id, starts_at, duration_minutes, status, created_at, updated_at, \
                 waiting_room) values ($1, $2, $3, $4, $5, $6, $7, 'scheduled', $8, $8, $9)",
            )
            .bind(id)
            .bind(new.organisation_id)
            .bind(new.practitioner_id)
            .bind(new.client_id)
            .bind(new.department_id)
            .bind(new.starts_at)
            .bind(new.duration_minutes)
            .bind(now)
            .bind(new.waiting_room.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "insert into invitation (invitation_id, appointment_id, token_hash, created_at, updated_at) \
                 values ($1, $2, $3, $4, $4)",
            )
            .bind(invitation_id)
            .bind(id)
            .bind(invitation_token_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // F135: the pair's chat channel exists from its first appointment on.
            sqlx::query(
                "insert into chat_channel (chat_channel_id, organisation_id, practitioner_id, \
                 client_id, created_at, updated_at) values ($1, $2, $3, $4, $5, $5) \
                 on conflict (practitioner_id, client_id) do nothing",
            )
            .bind(crate::ids::ChatChannelId::new())
            .bind(new.organisation_id)
            .bind(new.practitioner_id)
            .bind(new.client_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })?;
        Ok(id)
    }

    /// Moves a `scheduled` appointment to `status`; returns whether a row changed.
    pub(crate) async fn set_appointment_status(
        &self,
        id: AppointmentId,
        status: AppointmentStatus,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let status = match status {
            AppointmentStatus::Scheduled => "scheduled",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::Completed => "completed",
        };
        let result = dispatch!(self, pool => {
            sqlx::query(
                "update appointment set status = $2, updated_at = $3 \
                 where appointment_id = $1 and status = 'scheduled'",
            )
            .bind(id)
            .bind(status)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(result > 0)
    }
}
