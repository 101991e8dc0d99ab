//! SQL for chat channels, their members, messages and read positions.
//!
//! Invariants: a message's `seq` is taken from its channel's `last_seq` counter in the same
//! transaction that inserts it (the `update … returning` locks the channel row on PostgreSQL and
//! SQLite has one writer), so seqs are gap-free, ordered, and never reused; a retried send with
//! the same `(channel, sender, client_msg_id)` finds its first copy instead of a second row.
//! Deleting history blanks the text but keeps the row, so a late retry is not stored again.

use chrono::{DateTime, Utc};

use crate::ids::{AppointmentId, ChatChannelId, ClientId, DepartmentId, OrganisationId, StaffId};
use crate::store::{Store, dispatch};

/// Who wrote or reads a message: a staff member or the channel's client (the patient).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartyKind {
    Staff,
    Client,
}

impl PartyKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PartyKind::Staff => "staff",
            PartyKind::Client => "client",
        }
    }
}

/// One channel with the names and department needed for access checks and lists.
#[derive(sqlx::FromRow, Clone, Debug)]
pub(crate) struct ChannelRow {
    pub chat_channel_id: ChatChannelId,
    pub organisation_id: OrganisationId,
    pub practitioner_id: StaffId,
    pub practitioner_name: String,
    pub practitioner_department_id: Option<DepartmentId>,
    pub client_id: ClientId,
    pub client_name: String,
    pub last_seq: i64,
    pub cleared_through_seq: i64,
    /// `default`, `granted` or `stopped` (F142; see [`super::PatientAccess`]).
    pub patient_access: String,
}

/// A channel in a list, with the reader's unread count.
#[derive(sqlx::FromRow, Clone, Debug)]
pub(crate) struct ChannelListRow {
    pub chat_channel_id: ChatChannelId,
    pub practitioner_id: StaffId,
    pub practitioner_name: String,
    pub client_id: ClientId,
    pub client_name: String,
    pub last_seq: i64,
    pub cleared_through_seq: i64,
    pub patient_access: String,
    pub updated_at: DateTime<Utc>,
    pub unread: i64,
    pub joined: bool,
}

/// A stored message with its sender's name.
#[derive(sqlx::FromRow, Clone, Debug)]
pub(crate) struct MessageRow {
    pub seq: i64,
    pub sender_kind: String,
    pub sender_id: String,
    pub sender_name: String,
    pub client_msg_id: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// The outcome of an append.
pub(crate) struct Appended {
    pub seq: i64,
    pub created_at: DateTime<Utc>,
    /// An earlier send with the same client id was found; nothing was written.
    pub duplicate: bool,
    /// That earlier copy was deleted since (its text is gone).
    pub deleted: bool,
}

macro_rules! select_channel {
    () => {
        "select ch.chat_channel_id, ch.organisation_id, ch.practitioner_id, \
         p.name as practitioner_name, p.department_id as practitioner_department_id, \
         ch.client_id, c.name as client_name, ch.last_seq, ch.cleared_through_seq, \
         ch.patient_access \
         from chat_channel ch \
         join staff p on p.staff_id = ch.practitioner_id \
         join client c on c.client_id = ch.client_id "
    };
}

macro_rules! select_messages {
    () => {
        "select m.seq, m.sender_kind, m.sender_id, \
         coalesce(s.name, c.name, '') as sender_name, m.client_msg_id, m.text, m.created_at \
         from chat_message m \
         left join staff s on m.sender_kind = 'staff' and s.staff_id = m.sender_id \
         left join client c on m.sender_kind = 'client' and c.client_id = m.sender_id \
         where m.chat_channel_id = $1 and m.deleted_at is null "
    };
}

/// Lists channels with `$2`/`$3` = reader kind/id; the caller appends the filter.
macro_rules! select_channel_list {
    () => {
        "select ch.chat_channel_id, ch.practitioner_id, p.name as practitioner_name, ch.client_id, \
         c.name as client_name, ch.last_seq, ch.cleared_through_seq, ch.patient_access, \
         ch.updated_at, \
         (select count(*) from chat_message m where m.chat_channel_id = ch.chat_channel_id \
            and m.deleted_at is null \
            and m.seq > coalesce((select r.last_read_seq from chat_read r \
                where r.chat_channel_id = ch.chat_channel_id and r.reader_kind = $2 \
                and r.reader_id = $3), 0) \
            and not (m.sender_kind = $2 and m.sender_id = $3)) as unread, \
         exists (select 1 from chat_channel_member mm where mm.chat_channel_id = ch.chat_channel_id \
            and mm.staff_id = $3) as joined \
         from chat_channel ch \
         join staff p on p.staff_id = ch.practitioner_id \
         join client c on c.client_id = ch.client_id \
         where ch.organisation_id = $1 "
    };
}

impl Store {
    /// The channel of `practitioner` and `client`, created if missing (F135). Returns its id and
    /// whether it was created now.
    pub(crate) async fn ensure_chat_channel(
        &self,
        organisation_id: OrganisationId,
        practitioner_id: StaffId,
        client_id: ClientId,
        created_by: Option<StaffId>,
        now: DateTime<Utc>,
    ) -> Result<(ChatChannelId, bool), sqlx::Error> {
        let id = ChatChannelId::new();
        let inserted = dispatch!(self, pool => {
            sqlx::query(
                "insert into chat_channel (chat_channel_id, organisation_id, practitioner_id, \
                 client_id, created_by, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $6) \
                 on conflict (practitioner_id, client_id) do nothing",
            )
            .bind(id)
            .bind(organisation_id)
            .bind(practitioner_id)
            .bind(client_id)
            .bind(created_by)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        if inserted > 0 {
            return Ok((id, true));
        }
        let existing: ChatChannelId = dispatch!(self, pool => {
            sqlx::query_scalar(
                "select chat_channel_id from chat_channel where practitioner_id = $1 and client_id = $2",
            )
            .bind(practitioner_id)
            .bind(client_id)
            .fetch_one(pool)
            .await
        })?;
        Ok((existing, false))
    }

    /// One channel of `organisation_id`.
    pub(crate) async fn chat_channel(
        &self,
        organisation_id: OrganisationId,
        id: ChatChannelId,
    ) -> Result<Option<ChannelRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, ChannelRow>(concat!(
                select_channel!(),
                "where ch.organisation_id = $1 and ch.chat_channel_id = $2"
            ))
            .bind(organisation_id)
            .bind(id)
            .fetch_optional(pool)
            .await
        })
    }

    /// The channel of an appointment's practitioner and client, if it exists.
    pub(crate) async fn chat_channel_of_appointment(
        &self,
        appointment_id: AppointmentId,
    ) -> Result<Option<ChannelRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, ChannelRow>(concat!(
                select_channel!(),
                "join appointment a on a.practitioner_id = ch.practitioner_id \
                 and a.client_id = ch.client_id and a.organisation_id = ch.organisation_id \
                 where a.appointment_id = $1"
            ))
            .bind(appointment_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// The organisation, practitioner and client of an appointment.
    pub(crate) async fn appointment_pair(
        &self,
        appointment_id: AppointmentId,
    ) -> Result<Option<(OrganisationId, StaffId, ClientId, String)>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, (OrganisationId, StaffId, ClientId, String)>(
                "select organisation_id, practitioner_id, client_id, status from appointment \
                 where appointment_id = $1",
            )
            .bind(appointment_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Adds `staff_id` to channel `id`; joining twice is harmless.
    pub(crate) async fn add_chat_member(
        &self,
        id: ChatChannelId,
        staff_id: StaffId,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "insert into chat_channel_member (chat_channel_id, staff_id, joined_at) \
                 values ($1, $2, $3) on conflict (chat_channel_id, staff_id) do nothing",
            )
            .bind(id)
            .bind(staff_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// Staff ids that joined channel `id`.
    pub(crate) async fn chat_members(
        &self,
        id: ChatChannelId,
    ) -> Result<Vec<StaffId>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar("select staff_id from chat_channel_member where chat_channel_id = $1")
                .bind(id)
                .fetch_all(pool)
                .await
        })
    }

    /// Channels `staff_id` may use: their own, the ones they joined, and — with
    /// `department_id` (department access on) — those of practitioners of that department.
    /// Optionally only one client's. Most recently active first.
    pub(crate) async fn chat_channels_for_staff(
        &self,
        organisation_id: OrganisationId,
        staff_id: StaffId,
        department_id: Option<DepartmentId>,
        client_id: Option<ClientId>,
    ) -> Result<Vec<ChannelListRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, ChannelListRow>(concat!(
                select_channel_list!(),
                "and (ch.practitioner_id = $3 \
                      or exists (select 1 from chat_channel_member mm \
                                 where mm.chat_channel_id = ch.chat_channel_id and mm.staff_id = $3) \
                      or ($4 is not null and p.department_id = $4)) \
                 and ($5 is null or ch.client_id = $5) \
                 order by ch.updated_at desc, ch.chat_channel_id limit 1000"
            ))
            .bind(organisation_id)
            .bind(PartyKind::Staff.as_str())
            .bind(staff_id.to_string())
            .bind(department_id)
            .bind(client_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Channels of `client_id` (all, or only the one with `practitioner_id`).
    pub(crate) async fn chat_channels_for_client(
        &self,
        organisation_id: OrganisationId,
        client_id: ClientId,
        practitioner_id: Option<StaffId>,
    ) -> Result<Vec<ChannelListRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, ChannelListRow>(concat!(
                select_channel_list!(),
                "and ch.client_id = $3 and ($4 is null or ch.practitioner_id = $4) \
                 order by ch.updated_at desc, ch.chat_channel_id limit 100"
            ))
            .bind(organisation_id)
            .bind(PartyKind::Client.as_str())
            .bind(client_id.to_string())
            .bind(practitioner_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Stores a message with the channel's next seq, or finds the earlier copy of a retry.
    pub(crate) async fn append_chat_message(
        &self,
        channel: ChatChannelId,
        sender: PartyKind,
        sender_id: &str,
        client_msg_id: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Appended, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            // Taking the counter first locks the channel row (PostgreSQL), so two sends of the
            // same client id are serialised and the second finds the first below.
            let seq: i64 = sqlx::query_scalar(
                "update chat_channel set last_seq = last_seq + 1, updated_at = $2 \
                 where chat_channel_id = $1 returning last_seq",
            )
            .bind(channel)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            // A retry collides with its first copy on the unique client id: then nothing is
            // written (the counter goes back with the rollback) and the first copy answers.
            let inserted = sqlx::query(
                "insert into chat_message (chat_channel_id, seq, sender_kind, sender_id, \
                 client_msg_id, text, created_at) values ($1, $2, $3, $4, $5, $6, $7) \
                 on conflict (chat_channel_id, sender_kind, sender_id, client_msg_id) do nothing",
            )
            .bind(channel)
            .bind(seq)
            .bind(sender.as_str())
            .bind(sender_id)
            .bind(client_msg_id)
            .bind(text)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                let (seq, created_at, deleted_at) =
                    sqlx::query_as::<_, (i64, DateTime<Utc>, Option<DateTime<Utc>>)>(
                        "select seq, created_at, deleted_at from chat_message \
                         where chat_channel_id = $1 and sender_kind = $2 and sender_id = $3 \
                         and client_msg_id = $4",
                    )
                    .bind(channel)
                    .bind(sender.as_str())
                    .bind(sender_id)
                    .bind(client_msg_id)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.rollback().await?;
                return Ok(Appended { seq, created_at, duplicate: true, deleted: deleted_at.is_some() });
            }
            tx.commit().await?;
            Ok(Appended { seq, created_at: now, duplicate: false, deleted: false })
        })
    }

    /// Up to `limit` live messages with seq > `after`, oldest first.
    pub(crate) async fn chat_messages_after(
        &self,
        channel: ChatChannelId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<MessageRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, MessageRow>(concat!(
                select_messages!(),
                "and m.seq > $2 order by m.seq limit $3"
            ))
            .bind(channel)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    /// Up to `limit` live messages with seq < `before`, newest first.
    pub(crate) async fn chat_messages_before(
        &self,
        channel: ChatChannelId,
        before: i64,
        limit: i64,
    ) -> Result<Vec<MessageRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, MessageRow>(concat!(
                select_messages!(),
                "and m.seq < $2 order by m.seq desc limit $3"
            ))
            .bind(channel)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    /// Deletes every message of the channel so far (F133, F143); returns the seq they go up to.
    pub(crate) async fn clear_chat_history(
        &self,
        channel: ChatChannelId,
        now: DateTime<Utc>,
    ) -> Result<i64, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let through: i64 = sqlx::query_scalar(
                "update chat_channel set cleared_through_seq = last_seq, updated_at = $2 \
                 where chat_channel_id = $1 returning cleared_through_seq",
            )
            .bind(channel)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "update chat_message set text = '', deleted_at = $2 \
                 where chat_channel_id = $1 and deleted_at is null",
            )
            .bind(channel)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(through)
        })
    }

    /// Sets whether the channel's patient may chat between visits (F142).
    pub(crate) async fn set_chat_patient_access(
        &self,
        channel: ChatChannelId,
        access: &str,
        by: StaffId,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "update chat_channel set patient_access = $2, patient_access_changed_by = $3, \
                 patient_access_changed_at = $4 where chat_channel_id = $1",
            )
            .bind(channel)
            .bind(access)
            .bind(by)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// The channels of `organisation_id` whose patient access is `access` (ids only): the
    /// channels an organisation-wide settings change closes between visits.
    pub(crate) async fn chat_channel_ids_with_access(
        &self,
        organisation_id: OrganisationId,
        access: &str,
    ) -> Result<Vec<ChatChannelId>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar::<_, ChatChannelId>(
                "select chat_channel_id from chat_channel \
                 where organisation_id = $1 and patient_access = $2",
            )
            .bind(organisation_id)
            .bind(access)
            .fetch_all(pool)
            .await
        })
    }

    /// Every channel of `client_id` in `organisation_id`, whoever the practitioner (for the
    /// admins who manage continuous chat, F142; no message content).
    pub(crate) async fn chat_channels_of_client(
        &self,
        organisation_id: OrganisationId,
        client_id: ClientId,
    ) -> Result<Vec<ChannelRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, ChannelRow>(concat!(
                select_channel!(),
                "where ch.organisation_id = $1 and ch.client_id = $2 \
                 order by p.name, ch.chat_channel_id limit 100"
            ))
            .bind(organisation_id)
            .bind(client_id)
            .fetch_all(pool)
            .await
        })
    }

    /// The channels of `client_id` that `staff_id` joined (F137).
    pub(crate) async fn chat_channels_joined(
        &self,
        staff_id: StaffId,
        client_id: ClientId,
    ) -> Result<Vec<ChatChannelId>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar(
                "select m.chat_channel_id from chat_channel_member m \
                 join chat_channel ch on ch.chat_channel_id = m.chat_channel_id \
                 where m.staff_id = $1 and ch.client_id = $2",
            )
            .bind(staff_id)
            .bind(client_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Moves the reader's position forward to `seq` (never back).
    pub(crate) async fn mark_chat_read(
        &self,
        channel: ChatChannelId,
        reader: PartyKind,
        reader_id: &str,
        seq: i64,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "insert into chat_read (chat_channel_id, reader_kind, reader_id, last_read_seq, updated_at) \
                 values ($1, $2, $3, $4, $5) \
                 on conflict (chat_channel_id, reader_kind, reader_id) do update \
                 set last_read_seq = case when excluded.last_read_seq > chat_read.last_read_seq \
                     then excluded.last_read_seq else chat_read.last_read_seq end, \
                     updated_at = excluded.updated_at",
            )
            .bind(channel)
            .bind(reader.as_str())
            .bind(reader_id)
            .bind(seq)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }
}
