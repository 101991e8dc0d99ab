//! A client's communication history (F196): `GET /clients/{id}/communications?limit=&offset=` —
//! every mail recorded for the client (`mail.client_id`), newest first, with its kind, subject,
//! status, when it was recorded and sent, and whether the caller may open it on the "Sent mail"
//! page (`viewable`).
//!
//! Who sees it: whoever sees the client in the register ([`ClientScope`]: organisation, then the
//! segregation settings F6–F9); another organisation's client, or one the caller does not see, is
//! a 404. The mail itself (`GET /mail/{id}`: headers, bodies) keeps its own rules
//! ([`crate::mail::http`]: organisation admins, and department admins for their department's
//! mails), which `viewable` reflects, so a practitioner sees that and when a client was written
//! to, not the text.
//!
//! Invariant: reads only; addresses and subjects are never logged.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::CurrentStaff;
use crate::clients::ClientScope;
use crate::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use crate::ids::{AppointmentId, ClientId, DepartmentId, MailId, OrganisationId};
use crate::mail::MailStatus;
use crate::staff::{Role, Staff};
use crate::store::{Store, dispatch};
use crate::{Clinic, Route};

/// Default page size.
const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
const MAX_LIMIT: i64 = 200;

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![Route::new("GET", "/clients/{id}/communications", get(list))]
}

/// One entry of the history, as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct Entry {
    pub(crate) mail_id: MailId,
    department_id: Option<DepartmentId>,
    appointment_id: Option<AppointmentId>,
    kind: String,
    to_address: String,
    subject: String,
    status: String,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

/// One communication as the history and a client's timeline (`records`) show it.
#[derive(Serialize)]
pub(crate) struct Communication {
    id: MailId,
    channel: &'static str,
    kind: String,
    to_address: String,
    subject: String,
    status: MailStatus,
    status_text: &'static str,
    last_error: Option<String>,
    appointment_id: Option<AppointmentId>,
    pub(crate) created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    viewable: bool,
}

impl Entry {
    /// The entry as `staff` sees it (`viewable`: they may open the mail itself).
    pub(crate) fn view(&self, staff: &Staff) -> Communication {
        let status = self.status.parse().unwrap_or(MailStatus::Failed);
        Communication {
            id: self.mail_id,
            channel: "email",
            kind: self.kind.clone(),
            to_address: self.to_address.clone(),
            subject: self.subject.clone(),
            status,
            status_text: status.label(),
            last_error: self.last_error.clone(),
            appointment_id: self.appointment_id,
            created_at: self.created_at,
            sent_at: self.sent_at,
            viewable: may_open(staff, self.department_id),
        }
    }
}

/// The columns of an [`Entry`].
const ENTRY_COLUMNS: &str = "select mail_id, department_id, appointment_id, kind, to_address, \
                             subject, status, last_error, created_at, sent_at from mail ";

impl Store {
    /// The mails `ids` of `client_id` of `organisation_id` (others are left out), any order.
    pub(crate) async fn client_mails_by_id(
        &self,
        organisation_id: OrganisationId,
        client_id: ClientId,
        ids: &[MailId],
    ) -> Result<Vec<Entry>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (3..ids.len() + 3).map(|n| format!("${n}")).collect();
        let sql = format!(
            "{ENTRY_COLUMNS}where organisation_id = $1 and client_id = $2 and mail_id in ({})",
            placeholders.join(", ")
        );
        dispatch!(self, pool => {
            let mut q = sqlx::query_as::<_, Entry>(sqlx::AssertSqlSafe(sql))
                .bind(organisation_id)
                .bind(client_id);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await
        })
    }

    /// A page of the mails recorded for `client_id` of `organisation_id`, newest first, and how
    /// many there are.
    async fn client_mails(
        &self,
        organisation_id: OrganisationId,
        client_id: ClientId,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Entry>, i64), sqlx::Error> {
        dispatch!(self, pool => {
            let rows = sqlx::query_as::<_, Entry>(
                "select mail_id, department_id, appointment_id, kind, to_address, subject, status, \
                 last_error, created_at, sent_at from mail \
                 where organisation_id = $1 and client_id = $2 \
                 order by created_at desc, mail_id desc limit $3 offset $4",
            )
            .bind(organisation_id)
            .bind(client_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?;
            let total: i64 = sqlx::query_scalar(
                "select count(*) from mail where organisation_id = $1 and client_id = $2",
            )
            .bind(organisation_id)
            .bind(client_id)
            .fetch_one(pool)
            .await?;
            Ok((rows, total))
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Whether `staff` may open a mail of `department` on the "Sent mail" page (the rule of
/// `crate::mail::http`).
fn may_open(staff: &Staff, department: Option<DepartmentId>) -> bool {
    match staff.role {
        Role::OrganisationAdmin => true,
        Role::DepartmentAdmin => staff.department_id.is_some() && staff.department_id == department,
        _ => false,
    }
}

async fn list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let limit = page.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidField {
            field: "limit",
            message: format!("between 1 and {MAX_LIMIT}"),
        });
    }
    let offset = page.offset.unwrap_or(0);
    if !(0..=1_000_000).contains(&offset) {
        return Err(ApiError::InvalidField {
            field: "offset",
            message: "between 0 and 1000000".to_owned(),
        });
    }
    let staff = &current.staff;
    let client_id: ClientId = raw.parse().map_err(|_| ApiError::NotFound("client"))?;
    let settings = clinic.organisation_settings(staff.organisation_id).await?;
    let scope = ClientScope::new(staff, &settings);
    clinic
        .store()
        .visible_client(&scope, client_id)
        .await?
        .ok_or(ApiError::NotFound("client"))?;
    let (rows, total) = clinic
        .store()
        .client_mails(staff.organisation_id, client_id, limit, offset)
        .await?;
    let communications: Vec<Communication> = rows.iter().map(|m| m.view(staff)).collect();
    Ok(Json(json!({
        "communications": communications,
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}
