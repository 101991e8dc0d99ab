//! The outbox over HTTP ("Sent mail"):
//!
//! - `GET /mail?status=&kind=&limit=&offset=` — newest first, with the total and the caller's
//!   `failed_mail_count` (the red badge);
//! - `GET /mail/{id}` — one mail: headers as sent, text, HTML, calendar, status, attempts, error;
//! - `GET /mail/{id}/html` — the HTML body alone, for a `sandbox=""` iframe, served with a CSP
//!   that allows no scripts, no remote loads (inline styles and `data:` images only) and framing
//!   by our own pages only;
//! - `POST /mail/test` — an admin sends a test mail to an address (checks the SMTP set-up);
//!   at most [`TEST_MAIL_BURST`] at once per staff member, one more per [`TEST_MAIL_PERIOD`]
//!   (429 with `Retry-After` beyond), so the button cannot be used to flood an address;
//! - `POST /mail/{id}/acknowledge` — an admin marks a permanently failed mail as dealt with: it
//!   leaves `failed_mail_count` (the red badge) and shows who did it and when. Repeating it keeps
//!   the first acknowledgement; a mail that is not `failed` is a 409.
//!
//! Who sees what: an organisation admin sees every mail of the organisation; a department admin
//! those of their department (a department admin without a department: none); practitioners get
//! 403 (mails hold other patients' addresses). Another organisation's mail, or one outside the
//! caller's department, is a 404.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::db::{MailFilter, MailRow, MailScope};
use super::model::{MailKind, MailStatus, OutgoingMail, Related};
use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::ids::MailId;
use crate::staff::{Role, Staff};
use crate::store::dispatch;
use crate::{Clinic, Route};

/// Largest page.
pub const MAX_LIMIT: i64 = 100;
/// CSP of `GET /mail/{id}/html`.
pub const HTML_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                            frame-ancestors 'self'; form-action 'none'; base-uri 'none'; sandbox";

/// Test mails one staff member may send at once.
pub const TEST_MAIL_BURST: u32 = 10;
/// One more test mail after this long.
pub const TEST_MAIL_PERIOD: std::time::Duration = std::time::Duration::from_secs(60);

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/mail", get(list)),
        Route::new("GET", "/mail/{id}", get(read)),
        Route::new("GET", "/mail/{id}/html", get(html)),
        Route::new("POST", "/mail/test", post(send_test)),
        Route::new("POST", "/mail/{id}/acknowledge", post(acknowledge)),
    ]
}

/// The caller's scope, or 403.
fn scope(staff: &Staff) -> ApiResult<MailScope> {
    match (staff.role, staff.department_id) {
        (Role::OrganisationAdmin, _) => Ok(MailScope::Organisation(staff.organisation_id)),
        (Role::DepartmentAdmin, Some(d)) => Ok(MailScope::Department(staff.organisation_id, d)),
        _ => Err(ApiError::Forbidden(
            "only organisation and department admins see the sent mail",
        )),
    }
}

fn summary(m: &MailRow) -> Value {
    let status = m.status();
    json!({
        "id": m.mail_id,
        "kind": m.kind,
        "to_name": m.to_name,
        "to_address": m.to_address,
        "subject": m.subject,
        "status": status,
        "status_text": status.label(),
        "attempts": m.attempts,
        "last_error": m.last_error,
        "has_calendar": m.calendar_ics.is_some(),
        "created_at": m.created_at,
        "sent_at": m.sent_at,
        "acknowledged": m.acknowledged_at.map(|at| json!({
            "at": at,
            "by": m.acknowledged_by,
            "by_name": m.acknowledged_by_name,
        })),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    kind: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let scope = scope(&current.staff)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<MailStatus>()
                .map_err(|_| ApiError::InvalidField {
                    field: "status",
                    message: "one of queued, sent, failed, held, no_server".to_owned(),
                })?,
        ),
    };
    let kind = match q.kind.as_deref() {
        None => None,
        Some(k) => Some(k.parse::<MailKind>().map_err(|_| ApiError::InvalidField {
            field: "kind",
            message: "unknown mail kind".to_owned(),
        })?),
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidField {
            field: "limit",
            message: format!("between 1 and {MAX_LIMIT}"),
        });
    }
    let offset = q.offset.unwrap_or(0);
    if !(0..=1_000_000).contains(&offset) {
        return Err(ApiError::InvalidField {
            field: "offset",
            message: "between 0 and 1000000".to_owned(),
        });
    }
    let filter = MailFilter {
        status,
        kind,
        limit,
        offset,
    };
    let (rows, total) = clinic.store().list_mail(scope, &filter).await?;
    let failed = clinic.store().failed_mail_count(scope).await?;
    Ok(Json(json!({
        "mails": rows.iter().map(summary).collect::<Vec<_>>(),
        "total": total,
        "failed_mail_count": failed,
    })))
}

async fn load(clinic: &Clinic, current: &CurrentStaff, raw: &str) -> ApiResult<MailRow> {
    let scope = scope(&current.staff)?;
    let id: MailId = raw.parse().map_err(|_| ApiError::NotFound("mail"))?;
    clinic
        .store()
        .mail_in_scope(scope, id)
        .await?
        .ok_or(ApiError::NotFound("mail"))
}

async fn read(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let mail = load(&clinic, &current, &id).await?;
    let config = &clinic.config().mail;
    // The headers as the recipient gets them (the Date of a mail not yet sent is now).
    let date = mail.sent_at.unwrap_or_else(|| clinic.now());
    let headers = super::message::build(&mail, &config.from, date)
        .map(|m| super::message::headers(&m))
        .unwrap_or_default();
    let mut body = summary(&mail);
    let calendar = mail.calendar();
    if let Value::Object(map) = &mut body {
        map.insert("message_id".into(), json!(mail.message_id));
        // Nested, not beside `id`: the records the mail is about, for links to them.
        map.insert(
            "related".into(),
            json!({
                "department_id": mail.department_id,
                "appointment_id": mail.appointment_id,
                "client_id": mail.client_id,
                "staff_id": mail.staff_id,
            }),
        );
        map.insert("headers".into(), json!(headers));
        map.insert("text_body".into(), json!(mail.text_body));
        map.insert("html_body".into(), json!(mail.html_body));
        map.insert(
            "calendar_method".into(),
            json!(calendar.as_ref().map(|c| c.method)),
        );
        map.insert("calendar_ics".into(), json!(calendar.map(|c| c.ics)));
    }
    Ok(Json(json!({ "mail": body })))
}

async fn html(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let mail = load(&clinic, &current, &id).await?;
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        mail.html_body,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(HTML_CSP),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    to: String,
    #[serde(default)]
    name: Option<String>,
}

async fn send_test(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<TestRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let staff = &current.staff;
    let scope = scope(staff)?;
    let department_id = match scope {
        MailScope::Department(_, d) => Some(d),
        MailScope::Organisation(_) => None,
    };
    let name = req.name.unwrap_or_default().trim().to_owned();
    if let Err(retry_after_secs) = clinic
        .inner
        .test_mail_limit
        .try_take(&staff.id, clinic.now())
    {
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::InvalidField {
            field: "name",
            message: "control characters are not allowed".to_owned(),
        });
    }
    let org_name = clinic
        .store()
        .organisation_name(staff.organisation_id)
        .await?
        .unwrap_or_default();
    let text = format!(
        "This is a test message from Consultroom for {org_name}, sent by {}.\n\n\
         If you can read it, e-mail from Consultroom reaches this address.\n",
        staff.name
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family: sans-serif\">\
         <h1>Test message</h1><p>This is a test message from Consultroom for {}, sent by {}.</p>\
         <p>If you can read it, e-mail from Consultroom reaches this address.</p></body></html>",
        escape(&org_name),
        escape(&staff.name)
    );
    let mail = OutgoingMail {
        organisation_id: staff.organisation_id,
        kind: MailKind::Test,
        to_name: name,
        to_address: req.to,
        subject: format!("Consultroom test message ({org_name})"),
        text_body: text,
        html_body: html,
        calendar: None,
        related: Related {
            department_id,
            ..Related::default()
        },
        created_by: Some(staff.id),
    };
    mail.validate()?;
    let stamp = clinic.mail_stamp();
    let queued = dispatch!(clinic.store(), pool => {
        let mut tx = pool.begin().await?;
        let queued = super::enqueue(&mut *tx, &mail, &stamp).await?;
        tx.commit().await?;
        queued
    });
    clinic.wake_jobs();
    tracing::info!(mail_id = %queued.id, staff_id = %staff.id, "test mail queued");
    let row = clinic
        .store()
        .mail_in_scope(scope, queued.id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("queued mail vanished")))?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "mail": summary(&row) }))))
}

async fn acknowledge(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let staff = &current.staff;
    let scope = scope(staff)?;
    let id: MailId = raw.parse().map_err(|_| ApiError::NotFound("mail"))?;
    match clinic
        .store()
        .acknowledge_mail(scope, id, staff.id, clinic.now())
        .await?
    {
        None => return Err(ApiError::NotFound("mail")),
        Some(false) => {
            return Err(ApiError::Conflict(
                "only a failed mail can be marked as dealt with",
            ));
        }
        Some(true) => {}
    }
    tracing::info!(mail_id = %id, staff_id = %staff.id, "failed mail acknowledged");
    let row = load(&clinic, &current, &raw).await?;
    let failed = clinic.store().failed_mail_count(scope).await?;
    Ok(Json(
        json!({ "mail": summary(&row), "failed_mail_count": failed }),
    ))
}

/// Minimal HTML escaping for text put into the test mail.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
