//! SQL of the outbox (`mail` table, migration 0011).

use chrono::{DateTime, Utc};

use super::model::{CalendarMethod, CalendarPart, MailKind, MailStatus, OutgoingMail};
use crate::ids::{AppointmentId, ClientId, DepartmentId, JobId, MailId, OrganisationId, StaffId};
use crate::jobs::QueueConn;
use crate::store::{Store, dispatch};

/// A mail row to insert (built by [`super::enqueue`]).
pub struct MailInsert<'a> {
    pub(super) id: MailId,
    pub(super) mail: &'a OutgoingMail,
    pub(super) message_id: &'a str,
    pub(super) job_id: Option<JobId>,
    pub(super) now: DateTime<Utc>,
}

/// A connection the outbox can write a mail row through (SQLite's or PostgreSQL's; a
/// transaction dereferences to one). Implemented for both by one macro, so the SQL is written once.
pub trait MailConn: QueueConn {
    /// Inserts the mail row.
    fn insert_mail<'a>(
        &'a mut self,
        row: &'a MailInsert<'a>,
    ) -> impl std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'a;
}

macro_rules! impl_mail_conn {
    ($conn:ty) => {
        impl MailConn for $conn {
            async fn insert_mail(&mut self, row: &MailInsert<'_>) -> Result<(), sqlx::Error> {
                let m = row.mail;
                sqlx::query(
                    "insert into mail (mail_id, organisation_id, department_id, appointment_id, \
                     client_id, staff_id, kind, to_name, to_address, subject, text_body, \
                     html_body, calendar_method, calendar_ics, message_id, status, attempts, \
                     job_id, created_by, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, \
                     $7, $8, $9, $10, $11, $12, $13, $14, $15, 'queued', 0, $16, $17, $18, $18)",
                )
                .bind(row.id)
                .bind(m.organisation_id)
                .bind(m.related.department_id)
                .bind(m.related.appointment_id)
                .bind(m.related.client_id)
                .bind(m.related.staff_id)
                .bind(m.kind.as_str())
                .bind(m.to_name.as_str())
                .bind(m.to_address.trim())
                .bind(m.subject.as_str())
                .bind(m.text_body.as_str())
                .bind(m.html_body.as_str())
                .bind(m.calendar.as_ref().map(|c| c.method.as_str()))
                .bind(m.calendar.as_ref().map(|c| c.ics.as_str()))
                .bind(row.message_id)
                .bind(row.job_id)
                .bind(m.created_by)
                .bind(row.now)
                .execute(&mut *self)
                .await
                .map(|_| ())
            }
        }
    };
}

impl_mail_conn!(sqlx::SqliteConnection);
impl_mail_conn!(sqlx::PgConnection);

/// A stored mail.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MailRow {
    pub mail_id: MailId,
    pub organisation_id: OrganisationId,
    pub department_id: Option<DepartmentId>,
    pub appointment_id: Option<AppointmentId>,
    pub client_id: Option<ClientId>,
    pub staff_id: Option<StaffId>,
    pub kind: String,
    pub to_name: String,
    pub to_address: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub calendar_method: Option<String>,
    pub calendar_ics: Option<String>,
    pub message_id: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// When an admin marked this failed mail as dealt with.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who did.
    pub acknowledged_by: Option<StaffId>,
    /// Their name (now).
    pub acknowledged_by_name: Option<String>,
}

impl MailRow {
    /// The calendar part, if any.
    pub fn calendar(&self) -> Option<CalendarPart> {
        let method = match self.calendar_method.as_deref()? {
            "REQUEST" => CalendarMethod::Request,
            "CANCEL" => CalendarMethod::Cancel,
            _ => return None,
        };
        Some(CalendarPart {
            method,
            ics: self.calendar_ics.clone()?,
        })
    }

    /// The status (an unknown stored value reads as failed).
    pub fn status(&self) -> MailStatus {
        self.status.parse().unwrap_or(MailStatus::Failed)
    }
}

/// Whose mails a caller sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailScope {
    /// All of an organisation's.
    Organisation(OrganisationId),
    /// One department's.
    Department(OrganisationId, DepartmentId),
}

impl MailScope {
    fn binds(self) -> (OrganisationId, Option<DepartmentId>) {
        match self {
            MailScope::Organisation(o) => (o, None),
            MailScope::Department(o, d) => (o, Some(d)),
        }
    }
}

/// List filters and page.
#[derive(Clone, Debug, Default)]
pub struct MailFilter {
    pub status: Option<MailStatus>,
    pub kind: Option<MailKind>,
    pub limit: i64,
    pub offset: i64,
}

const COLUMNS: &str = "mail_id, organisation_id, department_id, appointment_id, client_id, \
     staff_id, kind, to_name, to_address, subject, text_body, html_body, calendar_method, \
     calendar_ics, message_id, status, attempts, last_error, created_at, updated_at, sent_at, \
     acknowledged_at, acknowledged_by, \
     (select s.name from staff s where s.staff_id = mail.acknowledged_by) as acknowledged_by_name";

macro_rules! scoped {
    ($tail:literal) => {
        concat!(
            "from mail where organisation_id = $1 and ($2 is null or department_id = $2) ",
            $tail
        )
    };
}

impl Store {
    /// An organisation's name (for the test mail).
    pub async fn organisation_name(
        &self,
        id: OrganisationId,
    ) -> Result<Option<String>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar("select name from organisation where organisation_id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })
    }

    /// One mail by id, for its sender.
    pub async fn mail_by_id(&self, id: MailId) -> Result<Option<MailRow>, sqlx::Error> {
        let sql = format!("select {COLUMNS} from mail where mail_id = $1");
        dispatch!(self, pool => {
            sqlx::query_as::<_, MailRow>(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
    }

    /// One mail by id within `scope` (`None` when it is not there or outside the scope).
    pub async fn mail_in_scope(
        &self,
        scope: MailScope,
        id: MailId,
    ) -> Result<Option<MailRow>, sqlx::Error> {
        let (org, dept) = scope.binds();
        let sql = format!("select {COLUMNS} {}", scoped!("and mail_id = $3"));
        dispatch!(self, pool => {
            sqlx::query_as::<_, MailRow>(sqlx::AssertSqlSafe(sql))
                .bind(org)
                .bind(dept)
                .bind(id)
                .fetch_optional(pool)
                .await
        })
    }

    /// A page of mails within `scope`, newest first, and how many match in all.
    pub async fn list_mail(
        &self,
        scope: MailScope,
        filter: &MailFilter,
    ) -> Result<(Vec<MailRow>, i64), sqlx::Error> {
        let (org, dept) = scope.binds();
        let status = filter.status.map(|s| s.as_str());
        let kind = filter.kind.map(|k| k.as_str());
        let sql = format!(
            "select {COLUMNS} {} order by created_at desc, mail_id desc limit $5 offset $6",
            scoped!("and ($3 is null or status = $3) and ($4 is null or kind = $4)")
        );
        dispatch!(self, pool => {
            let rows = sqlx::query_as::<_, MailRow>(sqlx::AssertSqlSafe(sql))
                .bind(org)
                .bind(dept)
                .bind(status)
                .bind(kind)
                .bind(filter.limit)
                .bind(filter.offset)
                .fetch_all(pool)
                .await?;
            let total: i64 = sqlx::query_scalar(concat!(
                "select count(*) ",
                scoped!("and ($3 is null or status = $3) and ($4 is null or kind = $4)")
            ))
            .bind(org)
            .bind(dept)
            .bind(status)
            .bind(kind)
            .fetch_one(pool)
            .await?;
            Ok((rows, total))
        })
    }

    /// Marks failed mail `id` (within `scope`) as dealt with by `by` at `now`, unless it already
    /// is. `None`: no such mail in the scope; `Some(false)`: it is not `failed`.
    pub async fn acknowledge_mail(
        &self,
        scope: MailScope,
        id: MailId,
        by: StaffId,
        now: DateTime<Utc>,
    ) -> Result<Option<bool>, sqlx::Error> {
        let (org, dept) = scope.binds();
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let status: Option<String> = sqlx::query_scalar(concat!(
                "select status ",
                scoped!("and mail_id = $3")
            ))
            .bind(org)
            .bind(dept)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(status) = status else {
                return Ok(None);
            };
            if status != MailStatus::Failed.as_str() {
                return Ok(Some(false));
            }
            sqlx::query(
                "update mail set acknowledged_at = $2, acknowledged_by = $3, updated_at = $2 \
                 where mail_id = $1 and status = 'failed' and acknowledged_at is null",
            )
            .bind(id)
            .bind(now)
            .bind(by)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(true))
        })
    }

    /// Permanent failures the caller is to act on (F79) and nobody marked as dealt with: a
    /// department admin's are their
    /// department's; an organisation admin's are those of no department or of a department
    /// without a department admin (the fallback).
    pub async fn failed_mail_count(&self, scope: MailScope) -> Result<i64, sqlx::Error> {
        match scope {
            MailScope::Department(..) => {
                let (org, dept) = scope.binds();
                dispatch!(self, pool => {
                    sqlx::query_scalar(concat!(
                        "select count(*) ",
                        scoped!("and status = 'failed' and acknowledged_at is null")
                    ))
                        .bind(org)
                        .bind(dept)
                        .fetch_one(pool)
                        .await
                })
            }
            MailScope::Organisation(org) => dispatch!(self, pool => {
                sqlx::query_scalar(
                    "select count(*) from mail m where m.organisation_id = $1 \
                     and m.status = 'failed' and m.acknowledged_at is null \
                     and (m.department_id is null or not exists \
                     (select 1 from staff s where s.department_id = m.department_id \
                     and s.role = 'department_admin'))",
                )
                .bind(org)
                .fetch_one(pool)
                .await
            }),
        }
    }

    /// Records an attempt's result on a mail that is still `queued`: its new status, the
    /// attempt count and the error (kept when `None`). False when the mail was not `queued`.
    pub async fn record_mail_attempt(
        &self,
        id: MailId,
        status: MailStatus,
        attempts: u32,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let sent_at = (status == MailStatus::Sent).then_some(now);
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        dispatch!(self, pool => {
            sqlx::query(
                "update mail set status = $2, attempts = $3, last_error = coalesce($4, last_error), \
                 sent_at = coalesce($5, sent_at), updated_at = $6 \
                 where mail_id = $1 and status = 'queued'",
            )
            .bind(id)
            .bind(status.as_str())
            .bind(attempts)
            .bind(error)
            .bind(sent_at)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() > 0)
        })
    }
}
