//! SQL for widgets, their images and walk-in visits.
//!
//! Invariant: admin reads and writes are scoped by organisation; public reads go by widget id only
//! and return nothing that is not shown in the widget anyway.

use chrono::{DateTime, NaiveDate, Utc};

use crate::ids::{DepartmentId, OrganisationId, StaffId, WalkInVisitId, WidgetId};
use crate::store::{Store, dispatch};

/// A stored widget.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct WidgetRow {
    pub widget_id: WidgetId,
    pub organisation_id: OrganisationId,
    pub name: String,
    pub settings: String,
    pub custom_css: String,
    pub has_logo: bool,
    pub has_background: bool,
}

/// A stored image.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct ImageRow {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A department's id and name.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct DepartmentRow {
    pub department_id: DepartmentId,
    pub name: String,
}

/// A walk-in visit to create.
pub(crate) struct NewVisit<'a> {
    pub organisation_id: OrganisationId,
    pub widget_id: WidgetId,
    pub practitioner_id: StaffId,
    pub department_id: Option<DepartmentId>,
    pub display_name: &'a str,
    pub date_of_birth: Option<NaiveDate>,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
    pub terms_accepted_at: Option<DateTime<Utc>>,
    pub token_hash: &'a [u8],
    pub expires_at: DateTime<Utc>,
}

macro_rules! widget_select {
    () => {
        "select w.widget_id, w.organisation_id, w.name, w.settings, w.custom_css, \
         exists (select 1 from widget_image i where i.widget_id = w.widget_id and i.kind = 'logo') \
         as has_logo, \
         exists (select 1 from widget_image i where i.widget_id = w.widget_id \
         and i.kind = 'background') as has_background \
         from widget w "
    };
}

impl Store {
    pub(crate) async fn insert_widget(
        &self,
        organisation_id: OrganisationId,
        name: &str,
        settings: &str,
        custom_css: &str,
        now: DateTime<Utc>,
    ) -> Result<WidgetId, sqlx::Error> {
        let id = WidgetId::new();
        dispatch!(self, pool => {
            sqlx::query(
                "insert into widget (widget_id, organisation_id, name, settings, custom_css, \
                 created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(id)
            .bind(organisation_id)
            .bind(name)
            .bind(settings)
            .bind(custom_css)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(id)
    }

    pub(crate) async fn update_widget(
        &self,
        organisation_id: OrganisationId,
        id: WidgetId,
        name: &str,
        settings: &str,
        custom_css: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "update widget set name = $3, settings = $4, custom_css = $5, updated_at = $6 \
                 where organisation_id = $1 and widget_id = $2",
            )
            .bind(organisation_id)
            .bind(id)
            .bind(name)
            .bind(settings)
            .bind(custom_css)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    pub(crate) async fn delete_widget(
        &self,
        organisation_id: OrganisationId,
        id: WidgetId,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query("delete from widget where organisation_id = $1 and widget_id = $2")
                .bind(organisation_id)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    pub(crate) async fn widgets_of(
        &self,
        organisation_id: OrganisationId,
    ) -> Result<Vec<WidgetRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, WidgetRow>(concat!(
                widget_select!(),
                "where w.organisation_id = $1 order by w.name, w.widget_id"
            ))
            .bind(organisation_id)
            .fetch_all(pool)
            .await
        })
    }

    /// A widget by id alone (public endpoints and the framing check).
    pub(crate) async fn widget_by_id(
        &self,
        id: WidgetId,
    ) -> Result<Option<WidgetRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, WidgetRow>(concat!(widget_select!(), "where w.widget_id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
    }

    pub(crate) async fn put_widget_image(
        &self,
        id: WidgetId,
        kind: &str,
        content_type: &str,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "insert into widget_image (widget_id, kind, content_type, bytes, updated_at) \
                 values ($1, $2, $3, $4, $5) on conflict (widget_id, kind) do update set \
                 content_type = excluded.content_type, bytes = excluded.bytes, \
                 updated_at = excluded.updated_at",
            )
            .bind(id)
            .bind(kind)
            .bind(content_type)
            .bind(bytes)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    pub(crate) async fn delete_widget_image(
        &self,
        id: WidgetId,
        kind: &str,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query("delete from widget_image where widget_id = $1 and kind = $2")
                .bind(id)
                .bind(kind)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    pub(crate) async fn widget_image(
        &self,
        id: WidgetId,
        kind: &str,
    ) -> Result<Option<ImageRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, ImageRow>(
                "select content_type, bytes from widget_image where widget_id = $1 and kind = $2",
            )
            .bind(id)
            .bind(kind)
            .fetch_optional(pool)
            .await
        })
    }

    pub(crate) async fn departments_of(
        &self,
        organisation_id: OrganisationId,
    ) -> Result<Vec<DepartmentRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, DepartmentRow>(
                "select department_id, name from department where organisation_id = $1 \
                 order by name, department_id",
            )
            .bind(organisation_id)
            .fetch_all(pool)
            .await
        })
    }

    pub(crate) async fn insert_visit(
        &self,
        v: &NewVisit<'_>,
        now: DateTime<Utc>,
    ) -> Result<WalkInVisitId, sqlx::Error> {
        let id = WalkInVisitId::new();
        dispatch!(self, pool => {
            sqlx::query(
                "insert into walkin_visit (walkin_visit_id, organisation_id, widget_id, \
                 practitioner_id, department_id, display_name, date_of_birth, phone, email, \
                 terms_accepted_at, token_hash, status, expires_at, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'waiting', $12, $13, $13)",
            )
            .bind(id)
            .bind(v.organisation_id)
            .bind(v.widget_id)
            .bind(v.practitioner_id)
            .bind(v.department_id)
            .bind(v.display_name)
            .bind(v.date_of_birth)
            .bind(v.phone)
            .bind(v.email)
            .bind(v.terms_accepted_at)
            .bind(v.token_hash)
            .bind(v.expires_at)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(id)
    }

    /// Marks a waiting walk-in visit completed; false when it was not waiting.
    pub(crate) async fn complete_visit(
        &self,
        id: WalkInVisitId,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "update walkin_visit set status = 'completed', updated_at = $2 \
                 where walkin_visit_id = $1 and status = 'waiting'",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Number of visits created through a widget (tests check that refusals create nothing).
    pub async fn count_walkin_visits(&self, widget_id: WidgetId) -> Result<i64, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar("select count(*) from walkin_visit where widget_id = $1")
                .bind(widget_id)
                .fetch_one(pool)
                .await
        })
    }
}
