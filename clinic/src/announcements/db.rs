//! SQL for announcements.
//!
//! Invariants: every query is bound to one organisation (except [`Store::active_announcements`],
//! which feeds the signalling hub with all of them); rows are only ever soft-deleted
//! (`deleted_at`, `deleted_by`), so the history stays for audit.

use chrono::{DateTime, Utc};

use crate::ids::{OrganisationId, StaffId};
use crate::staff::{Role, Staff};
use crate::store::{Store, dispatch};
use crate::waiting_room::WaitingRoomRef;

/// An announcement row joined with its author's name.
#[derive(sqlx::FromRow)]
pub(crate) struct AnnouncementRow {
    pub announcement_id: String,
    pub scope_kind: String,
    pub scope_id: String,
    pub text: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: StaffId,
    pub created_by_name: String,
    pub created_at: DateTime<Utc>,
}

/// A live announcement of any organisation, for the signalling hub.
#[derive(sqlx::FromRow)]
pub(crate) struct ActiveRow {
    pub announcement_id: String,
    pub organisation_id: OrganisationId,
    pub scope_kind: String,
    pub scope_id: String,
    pub text: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A validated, authorised announcement to store.
pub(crate) struct NewAnnouncement<'a> {
    pub id: &'a str,
    pub organisation_id: OrganisationId,
    pub room: WaitingRoomRef,
    pub text: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: StaffId,
    pub created_at: DateTime<Utc>,
}

macro_rules! select_announcements {
    () => {
        "select a.announcement_id, a.scope_kind, a.scope_id, a.text, a.expires_at, a.created_by, \
         s.name as created_by_name, a.created_at \
         from announcement a join staff s on s.staff_id = a.created_by \
         where a.organisation_id = $1 and a.deleted_at is null "
    };
}

impl Store {
    pub(crate) async fn insert_announcement(
        &self,
        new: &NewAnnouncement<'_>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "insert into announcement (announcement_id, organisation_id, scope_kind, scope_id, \
                 text, expires_at, created_by, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(new.id)
            .bind(new.organisation_id)
            .bind(new.room.kind().as_str())
            .bind(new.room.id_string())
            .bind(new.text)
            .bind(new.expires_at)
            .bind(new.created_by)
            .bind(new.created_at)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// One non-deleted announcement of `organisation_id` (expired or not).
    pub(crate) async fn get_announcement(
        &self,
        organisation_id: OrganisationId,
        id: &str,
    ) -> Result<Option<AnnouncementRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, AnnouncementRow>(concat!(
                select_announcements!(),
                "and a.announcement_id = $2"
            ))
            .bind(organisation_id)
            .bind(id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Non-deleted announcements of the rooms `staff` may manage (see
    /// [`may_manage`](crate::waiting_room::may_manage)), newest first; expired ones only with
    /// `include_expired`.
    pub(crate) async fn list_announcements(
        &self,
        staff: &Staff,
        include_expired: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<AnnouncementRow>, sqlx::Error> {
        let department_id = match staff.role {
            Role::OrganisationAdmin => None,
            Role::DepartmentAdmin | Role::Practitioner => staff.department_id,
        };
        dispatch!(self, pool => {
            sqlx::query_as::<_, AnnouncementRow>(concat!(
                select_announcements!(),
                "and ($2 or a.expires_at is null or a.expires_at > $3) \
                 and ($4 = 'organisation_admin' \
                      or (a.scope_kind = 'practitioner' and a.scope_id = $5) \
                      or (a.scope_kind = 'department' and a.scope_id = $6) \
                      or ($4 = 'department_admin' and a.scope_kind = 'practitioner' \
                          and a.scope_id in (select p.staff_id from staff p \
                                             where p.organisation_id = $1 and p.department_id = $6))) \
                 order by a.created_at desc, a.announcement_id desc"
            ))
            .bind(staff.organisation_id)
            .bind(include_expired)
            .bind(now)
            .bind(staff.role.as_str())
            .bind(staff.id)
            .bind(department_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Soft-deletes one announcement; returns whether it was live (not yet deleted).
    pub(crate) async fn delete_announcement(
        &self,
        organisation_id: OrganisationId,
        id: &str,
        deleted_by: StaffId,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "update announcement set deleted_at = $3, deleted_by = $4 \
                 where organisation_id = $1 and announcement_id = $2 and deleted_at is null",
            )
            .bind(organisation_id)
            .bind(id)
            .bind(now)
            .bind(deleted_by)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Soft-deletes every not yet deleted announcement of one room (expired ones included);
    /// returns how many.
    pub(crate) async fn delete_room_announcements(
        &self,
        organisation_id: OrganisationId,
        room: &WaitingRoomRef,
        deleted_by: StaffId,
        now: DateTime<Utc>,
    ) -> Result<u64, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "update announcement set deleted_at = $4, deleted_by = $5 \
                 where organisation_id = $1 and scope_kind = $2 and scope_id = $3 \
                 and deleted_at is null",
            )
            .bind(organisation_id)
            .bind(room.kind().as_str())
            .bind(room.id_string())
            .bind(now)
            .bind(deleted_by)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })
    }

    /// Every non-deleted, non-expired announcement of every organisation, newest first.
    pub(crate) async fn active_announcements(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<ActiveRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, ActiveRow>(
                "select announcement_id, organisation_id, scope_kind, scope_id, text, expires_at \
                 from announcement \
                 where deleted_at is null and (expires_at is null or expires_at > $1) \
                 order by created_at desc, announcement_id desc",
            )
            .bind(now)
            .fetch_all(pool)
            .await
        })
    }
}
