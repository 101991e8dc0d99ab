//! SQL for appointments and their invitations.
//!
//! Invariant: every read goes through the visibility predicate [`scope`]: organisation first, then
//! role (practitioner → own, department admin → department, organisation admin → all).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::{
    AppointmentId, ClientId, DepartmentId, ExternalParticipantId, GuestInvitationId, InvitationId,
    OrganisationId, StaffId,
};
use crate::jobs::NewJob;
use crate::mail::{MailError, MailStamp, OutgoingMail};
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
    /// Personal message for the client and guests (F68); empty when none.
    pub personal_message: String,
    /// The start in the organisation's time zone (RFC 3339 with its offset), where the API
    /// shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_start: Option<String>,
    /// Organisation (not serialised; used for checks).
    #[serde(skip)]
    pub organisation_id: OrganisationId,
    /// The calendar `SEQUENCE` of its mails, raised by every reschedule and the cancellation
    /// (not serialised).
    #[serde(skip)]
    pub sequence: i32,
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
    personal_message: String,
    sequence: i32,
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
            personal_message: self.personal_message,
            local_start: None,
            organisation_id: self.organisation_id,
            sequence: self.sequence,
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
    /// Personal message (F68), validated by the API; empty when none.
    pub personal_message: String,
}

/// A guest invited with the booking: its id, display name, record and link digest.
pub(crate) struct GuestSeed {
    pub(crate) id: GuestInvitationId,
    pub(crate) name: String,
    pub(crate) external_participant_id: Option<ExternalParticipantId>,
    pub(crate) token_hash: Vec<u8>,
}

/// A client created with its booking (`new_client`), inserted first in the booking's transaction.
pub(crate) struct NewClientRow<'a> {
    pub(crate) person: &'a crate::clients::NewClient,
    pub(crate) register: crate::clients::Register<'a>,
}

/// Everything written when an appointment is booked, in one transaction.
pub(crate) struct Booking<'a> {
    pub(crate) id: AppointmentId,
    /// The client to create first (its id is `new.client_id`), if the booking creates one.
    pub(crate) new_client: Option<NewClientRow<'a>>,
    pub(crate) new: &'a NewAppointment,
    pub(crate) invitation_id: InvitationId,
    pub(crate) invitation_hash: &'a [u8],
    pub(crate) guests: &'a [GuestSeed],
    pub(crate) created_by: Option<StaffId>,
    /// `(key, SHA-256 of the request)` of an `Idempotency-Key` create.
    pub(crate) idempotency: Option<(&'a str, &'a [u8])>,
    /// Keys created before this are forgotten (deleted in the booking's transaction).
    pub(crate) keys_expire_before: DateTime<Utc>,
    /// The invitation mails (one per participant with an address), recorded in the outbox.
    pub(crate) mails: &'a [OutgoingMail],
    /// The outbox's clock and Message-ID domain.
    pub(crate) stamp: Option<&'a MailStamp>,
    /// The reminder job (F70), if the organisation sends reminders and its time is ahead.
    pub(crate) reminder: Option<&'a NewJob>,
}

/// What a reschedule or a cancellation writes besides the appointment row.
pub(crate) struct Change<'a> {
    /// The sequence the caller read: the change applies only if it is still the stored one.
    pub(crate) expected_sequence: i32,
    /// The update or cancellation mails.
    pub(crate) mails: &'a [OutgoingMail],
    /// The outbox's clock and Message-ID domain.
    pub(crate) stamp: &'a MailStamp,
    /// The reminder job for the new time (reschedule only).
    pub(crate) reminder: Option<&'a NewJob>,
}

/// How a guarded change ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Changed {
    /// Applied, with its mails and jobs.
    Yes,
    /// Not scheduled any more, or changed by someone else since it was read: nothing written.
    Stale,
}

/// The outbox's error inside a store transaction: the mails were validated before the
/// transaction, so only the database can fail here.
fn mail_error(e: MailError) -> sqlx::Error {
    match e {
        MailError::Database(e) => e,
        other => sqlx::Error::Protocol(format!("an unvalidated mail reached the outbox: {other}")),
    }
}

/// Removes the reminder jobs of `id` that have not started (a reschedule replaces them, a
/// cancellation ends them). Their unique keys all begin with [`reminder_key_prefix`].
macro_rules! drop_pending_reminders {
    ($tx:expr, $id:expr) => {
        sqlx::query("delete from job where status = 'queued' and unique_key like $1")
            .bind(format!("{}%", reminder_key_prefix($id)))
            .execute(&mut *$tx)
            .await
    };
}

/// The common start of the unique keys of an appointment's reminder jobs.
pub(crate) fn reminder_key_prefix(id: AppointmentId) -> String {
    format!("appointment:{id}:reminder:")
}

/// An active guest link of an appointment, with its digest (to rebuild derived links).
#[derive(sqlx::FromRow)]
pub(crate) struct GuestLinkRow {
    pub(crate) guest_invitation_id: GuestInvitationId,
    pub(crate) display_name: String,
    pub(crate) external_participant_id: Option<ExternalParticipantId>,
    pub(crate) token_hash: Vec<u8>,
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

/// Whether `staff` sees an appointment of their organisation with this department and
/// practitioner: the Rust twin of the predicate of `select_appointments!` (for lists that show
/// appointments read elsewhere, such as a client's timeline, to say which ones open).
pub(crate) fn sees(
    staff: &Staff,
    department_id: Option<DepartmentId>,
    practitioner_id: StaffId,
) -> bool {
    match staff.role {
        Role::OrganisationAdmin => true,
        Role::DepartmentAdmin => {
            staff.department_id.is_some() && department_id == staff.department_id
        }
        Role::Practitioner => practitioner_id == staff.id,
    }
}

/// The columns and joins of an [`AppointmentRow`], without a `where`.
macro_rules! appointment_rows {
    () => {
        "select a.appointment_id, a.organisation_id, a.practitioner_id, p.name as practitioner_name, \
         a.client_id, c.name as client_name, a.department_id, a.waiting_room, a.starts_at, a.duration_minutes, a.status, \
         a.personal_message, a.sequence \
         from appointment a \
         join staff p on p.staff_id = a.practitioner_id \
         join client c on c.client_id = a.client_id "
    };
}

macro_rules! select_appointments {
    () => {
        concat!(
            appointment_rows!(),
            "where a.organisation_id = $1 \
             and ($2 = 'organisation_admin' \
                  or ($2 = 'department_admin' and a.department_id = $3) \
                  or ($2 = 'practitioner' and a.practitioner_id = $4)) "
        )
    };
}

impl Store {
    /// Appointments visible to `scope` starting in `[from, to)`, by start time.
    pub(crate) async fn list_appointments(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        practitioner_id: Option<StaffId>,
        department_id: Option<DepartmentId>,
    ) -> Result<Vec<AppointmentRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, AppointmentRow>(concat!(
                select_appointments!(),
                "and a.starts_at >= $5 and a.starts_at < $6 \
                 and ($7 is null or a.practitioner_id = $7) \
                 and ($8 is null or a.department_id = $8) \
                 order by a.starts_at, a.appointment_id"
            ))
            .bind(scope.organisation_id)
            .bind(scope.role)
            .bind(scope.department_id)
            .bind(scope.staff_id)
            .bind(from)
            .bind(to)
            .bind(practitioner_id)
            .bind(department_id)
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

    /// One appointment by id, whoever may see it (the reminder job; no caller to scope by).
    pub(crate) async fn appointment_by_id(
        &self,
        id: AppointmentId,
    ) -> Result<Option<AppointmentRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, AppointmentRow>(concat!(
                appointment_rows!(),
                "where a.appointment_id = $1"
            ))
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
        self.book_appointment(
            &Booking {
                id: AppointmentId::new(),
                new_client: None,
                new,
                invitation_id: InvitationId::new(),
                invitation_hash: invitation_token_hash,
                guests: &[],
                created_by: None,
                idempotency: None,
                keys_expire_before: now,
                mails: &[],
                stamp: None,
                reminder: None,
            },
            now,
        )
        .await
    }

    /// Writes a [`Booking`] in one transaction: the appointment, its invitation, the pair's chat
    /// channel, the guests, the idempotency key, the invitation mails and the reminder job. A
    /// second booking with the same organisation and key fails on the key's primary key and
    /// leaves nothing behind (so a repeat sends nothing twice).
    pub(crate) async fn book_appointment(
        &self,
        b: &Booking<'_>,
        now: DateTime<Utc>,
    ) -> Result<AppointmentId, sqlx::Error> {
        let id = b.id;
        let new = b.new;
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            if let Some(c) = &b.new_client {
                crate::clients::insert_client!(
                    &mut *tx, new.client_id, new.organisation_id, c.person, c.register, now
                )?;
            }
            sqlx::query(
                "insert into appointment (appointment_id, organisation_id, practitioner_id, client_id, \
                 department_id, starts_at, duration_minutes, status, created_at, updated_at, \
                 waiting_room, personal_message) \
                 values ($1, $2, $3, $4, $5, $6, $7, 'scheduled', $8, $8, $9, $10)",
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
            .bind(&new.personal_message)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "insert into invitation (invitation_id, appointment_id, token_hash, created_at, updated_at) \
                 values ($1, $2, $3, $4, $4)",
            )
            .bind(b.invitation_id)
            .bind(id)
            .bind(b.invitation_hash)
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
            for g in b.guests {
                sqlx::query(
                    "insert into guest_invitation (guest_invitation_id, appointment_id, display_name, \
                     token_hash, created_by, created_at, external_participant_id) \
                     values ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(g.id)
                .bind(id)
                .bind(&g.name)
                .bind(&g.token_hash)
                .bind(b.created_by.unwrap_or(new.practitioner_id))
                .bind(now)
                .bind(g.external_participant_id)
                .execute(&mut *tx)
                .await?;
            }
            if let Some((key, hash)) = b.idempotency {
                sqlx::query("delete from appointment_idempotency where created_at < $1")
                    .bind(b.keys_expire_before)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "insert into appointment_idempotency (organisation_id, idempotency_key, \
                     request_hash, appointment_id, created_at) values ($1, $2, $3, $4, $5)",
                )
                .bind(new.organisation_id)
                .bind(key)
                .bind(hash)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(stamp) = b.stamp {
                for m in b.mails {
                    crate::mail::enqueue(&mut *tx, m, stamp).await.map_err(mail_error)?;
                }
            }
            if let Some(job) = b.reminder {
                crate::jobs::enqueue(&mut *tx, job, now).await?;
            }
            tx.commit().await
        })?;
        Ok(id)
    }

    /// The appointment an unexpired `Idempotency-Key` of `organisation_id` booked, with the
    /// digest of the request it answered.
    pub(crate) async fn idempotent_booking(
        &self,
        organisation_id: OrganisationId,
        key: &str,
        not_before: DateTime<Utc>,
    ) -> Result<Option<(Vec<u8>, AppointmentId)>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, (Vec<u8>, AppointmentId)>(
                "select request_hash, appointment_id from appointment_idempotency \
                 where organisation_id = $1 and idempotency_key = $2 and created_at >= $3",
            )
            .bind(organisation_id)
            .bind(key)
            .bind(not_before)
            .fetch_optional(pool)
            .await
        })
    }

    /// Moves a scheduled appointment to a new start and length, raising its calendar sequence,
    /// replacing its pending reminder and recording the update mails — all only if it is still
    /// scheduled with the sequence the caller read.
    pub(crate) async fn reschedule_appointment(
        &self,
        id: AppointmentId,
        starts_at: DateTime<Utc>,
        duration_minutes: i32,
        change: &Change<'_>,
    ) -> Result<Changed, sqlx::Error> {
        let now = change.stamp.now;
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "update appointment set starts_at = $2, duration_minutes = $3, \
                 sequence = sequence + 1, updated_at = $4 \
                 where appointment_id = $1 and status = 'scheduled' and sequence = $5",
            )
            .bind(id)
            .bind(starts_at)
            .bind(duration_minutes)
            .bind(now)
            .bind(change.expected_sequence)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(Changed::Stale);
            }
            drop_pending_reminders!(tx, id)?;
            if let Some(job) = change.reminder {
                crate::jobs::enqueue(&mut *tx, job, now).await?;
            }
            for m in change.mails {
                crate::mail::enqueue(&mut *tx, m, change.stamp).await.map_err(mail_error)?;
            }
            tx.commit().await?;
            Ok(Changed::Yes)
        })
    }

    /// Cancels a scheduled appointment, raising its calendar sequence, dropping its pending
    /// reminder and recording the cancellation mails — only if it is still scheduled with the
    /// sequence the caller read.
    pub(crate) async fn cancel_appointment(
        &self,
        id: AppointmentId,
        change: &Change<'_>,
    ) -> Result<Changed, sqlx::Error> {
        let now = change.stamp.now;
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "update appointment set status = 'cancelled', sequence = sequence + 1, \
                 updated_at = $2 where appointment_id = $1 and status = 'scheduled' \
                 and sequence = $3",
            )
            .bind(id)
            .bind(now)
            .bind(change.expected_sequence)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(Changed::Stale);
            }
            drop_pending_reminders!(tx, id)?;
            for m in change.mails {
                crate::mail::enqueue(&mut *tx, m, change.stamp).await.map_err(mail_error)?;
            }
            tx.commit().await?;
            Ok(Changed::Yes)
        })
    }

    /// `(invitation id, token digest)` of an appointment's invitations.
    pub(crate) async fn invitation_digests(
        &self,
        id: AppointmentId,
    ) -> Result<Vec<(InvitationId, Vec<u8>)>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, (InvitationId, Vec<u8>)>(
                "select invitation_id, token_hash from invitation where appointment_id = $1 \
                 order by created_at, invitation_id",
            )
            .bind(id)
            .fetch_all(pool)
            .await
        })
    }

    /// The active guest links of an appointment with their digests.
    pub(crate) async fn guest_links(
        &self,
        id: AppointmentId,
    ) -> Result<Vec<GuestLinkRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, GuestLinkRow>(
                "select guest_invitation_id, display_name, external_participant_id, token_hash \
                 from guest_invitation where appointment_id = $1 and revoked_at is null \
                 order by created_at, guest_invitation_id",
            )
            .bind(id)
            .fetch_all(pool)
            .await
        })
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
