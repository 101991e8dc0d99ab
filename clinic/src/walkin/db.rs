//! SQL for walk-in availability: the per-practitioner switch and time zone, and scheduled ranges.
//!
//! Invariant: every query is scoped by organisation (and by staff id where it concerns one person).

use chrono::{DateTime, Utc};

use crate::ids::{AvailabilityRangeId, DepartmentId, OrganisationId, StaffId};
use crate::store::{Store, dispatch};

/// The walk-in settings row of a practitioner.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct SettingsRow {
    pub switch_on: bool,
    pub time_zone: String,
}

/// One stored availability range (either kind).
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct RangeRow {
    pub availability_range_id: AvailabilityRangeId,
    pub staff_id: StaffId,
    pub kind: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub weekday: Option<i32>,
    pub start_minute: Option<i32>,
    pub end_minute: Option<i32>,
}

/// A staff member of an organisation with their walk-in settings (defaults when never set).
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct CandidateRow {
    pub staff_id: StaffId,
    pub name: String,
    pub department_id: Option<DepartmentId>,
    pub switch_on: Option<bool>,
    pub time_zone: Option<String>,
}

/// A new range to insert.
pub(crate) enum NewRange {
    Once {
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    },
    Weekly {
        weekday: i32,
        start_minute: i32,
        end_minute: i32,
    },
}

macro_rules! range_columns {
    () => {
        "availability_range_id, staff_id, kind, starts_at, ends_at, weekday, start_minute, \
         end_minute"
    };
}

impl Store {
    pub(crate) async fn walkin_settings(
        &self,
        staff_id: StaffId,
    ) -> Result<Option<SettingsRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, SettingsRow>(
                "select switch_on, time_zone from walkin_practitioner where staff_id = $1",
            )
            .bind(staff_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Inserts or replaces a practitioner's switch and time zone.
    pub(crate) async fn upsert_walkin_settings(
        &self,
        organisation_id: OrganisationId,
        staff_id: StaffId,
        switch_on: bool,
        time_zone: &str,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "insert into walkin_practitioner (staff_id, organisation_id, switch_on, time_zone, \
                 created_at, updated_at) values ($1, $2, $3, $4, $5, $5) \
                 on conflict (staff_id) do update set switch_on = excluded.switch_on, \
                 time_zone = excluded.time_zone, updated_at = excluded.updated_at",
            )
            .bind(staff_id)
            .bind(organisation_id)
            .bind(switch_on)
            .bind(time_zone)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// A practitioner's ranges: all weekly ones and the one-off ones not yet over.
    pub(crate) async fn ranges_of_staff(
        &self,
        staff_id: StaffId,
        now: DateTime<Utc>,
    ) -> Result<Vec<RangeRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, RangeRow>(concat!(
                "select ",
                range_columns!(),
                " from availability_range where staff_id = $1 \
                 and (kind = 'weekly' or ends_at > $2) \
                 order by kind, weekday, start_minute, starts_at, availability_range_id"
            ))
                .bind(staff_id)
                .bind(now)
                .fetch_all(pool)
                .await
        })
    }

    /// Every range of an organisation that may cover `now` (weekly ones, and one-off ones around it).
    pub(crate) async fn live_ranges_of_organisation(
        &self,
        organisation_id: OrganisationId,
        now: DateTime<Utc>,
    ) -> Result<Vec<RangeRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, RangeRow>(concat!(
                "select ",
                range_columns!(),
                " from availability_range where organisation_id = $1 \
                 and (kind = 'weekly' or (starts_at <= $2 and ends_at > $2))"
            ))
                .bind(organisation_id)
                .bind(now)
                .fetch_all(pool)
                .await
        })
    }

    pub(crate) async fn count_ranges_of_staff(
        &self,
        staff_id: StaffId,
    ) -> Result<i64, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar("select count(*) from availability_range where staff_id = $1")
                .bind(staff_id)
                .fetch_one(pool)
                .await
        })
    }

    pub(crate) async fn insert_range(
        &self,
        organisation_id: OrganisationId,
        staff_id: StaffId,
        range: &NewRange,
        now: DateTime<Utc>,
    ) -> Result<AvailabilityRangeId, sqlx::Error> {
        let id = AvailabilityRangeId::new();
        let (kind, starts_at, ends_at, weekday, start_minute, end_minute) = match *range {
            NewRange::Once { starts_at, ends_at } => {
                ("once", Some(starts_at), Some(ends_at), None, None, None)
            }
            NewRange::Weekly {
                weekday,
                start_minute,
                end_minute,
            } => (
                "weekly",
                None,
                None,
                Some(weekday),
                Some(start_minute),
                Some(end_minute),
            ),
        };
        dispatch!(self, pool => {
            sqlx::query(
                "insert into availability_range (availability_range_id, organisation_id, staff_id, \
                 kind, starts_at, ends_at, weekday, start_minute, end_minute, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(id)
            .bind(organisation_id)
            .bind(staff_id)
            .bind(kind)
            .bind(starts_at)
            .bind(ends_at)
            .bind(weekday)
            .bind(start_minute)
            .bind(end_minute)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(id)
    }

    /// Deletes one of `staff_id`'s ranges; false when there was none.
    pub(crate) async fn delete_range(
        &self,
        staff_id: StaffId,
        id: AvailabilityRangeId,
    ) -> Result<bool, sqlx::Error> {
        let affected = dispatch!(self, pool => {
            sqlx::query(
                "delete from availability_range where staff_id = $1 and availability_range_id = $2",
            )
            .bind(staff_id)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(affected > 0)
    }

    /// Every staff member of an organisation with their walk-in settings, by name.
    pub(crate) async fn walkin_candidates(
        &self,
        organisation_id: OrganisationId,
    ) -> Result<Vec<CandidateRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, CandidateRow>(
                "select s.staff_id, s.name, s.department_id, w.switch_on, w.time_zone \
                 from staff s left join walkin_practitioner w on w.staff_id = s.staff_id \
                 where s.organisation_id = $1 and s.active order by s.name, s.staff_id",
            )
            .bind(organisation_id)
            .fetch_all(pool)
            .await
        })
    }
}
