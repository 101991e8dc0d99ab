//! Walk-in visits: the intake a visitor submits in the widget (`POST
//! /public/widgets/{id}/visits`), and the visit token the patient page resolves into a join token
//! (`POST /invitations/resolve` with `w.<token>`).
//!
//! Invariants: an intake that breaks a rule (missing required field, date of birth in the future,
//! over-long or malformed values, terms not accepted) gets a 422 naming the field and creates
//! nothing; attempts are rate-limited per source IP and created visits per widget (429); the
//! practitioner must be available now and belong to one of the widget's departments; only the
//! token's SHA-256 is stored; intake data is never logged.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Duration, NaiveDate, SecondsFormat};
use serde::Deserialize;
use serde_json::{Value, json};

use super::db::NewVisit;
use super::lookup::widget;
use super::settings::{FieldRule, Intake};
use crate::Clinic;
use crate::client_ip::ClientIp;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::ids::StaffId;
use crate::secrets::{random_token, sha256};

/// Largest intake body (a 10 KB name still gets a readable 422; far larger is refused unread).
pub(crate) const MAX_VISIT_BODY: usize = 16 * 1024;
/// How long a walk-in link stays usable.
const VISIT_TTL_HOURS: i64 = 2;
/// Name shown when the widget does not ask for one.
const ANONYMOUS_NAME: &str = "Walk-in visitor";
/// Prefix that marks a walk-in visit token in `POST /invitations/resolve` ([`crate::links`]).
pub const VISIT_TOKEN_PREFIX: &str = crate::links::VISIT_PREFIX;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VisitRequest {
    practitioner_id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    date_of_birth: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    accept_terms: bool,
}

fn field(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        field,
        message: message.into(),
    }
}

/// The trimmed value of a field under its rule: `None` when hidden or left empty.
fn take(
    rule: FieldRule,
    name: &'static str,
    label: &str,
    value: Option<String>,
    max: usize,
) -> ApiResult<Option<String>> {
    if rule == FieldRule::Hidden {
        return Ok(None);
    }
    let value = value.unwrap_or_default();
    if value.chars().count() > max {
        return Err(field(
            name,
            format!("{label} must be at most {max} characters"),
        ));
    }
    let value = value.trim().to_owned();
    if value.chars().any(char::is_control) {
        return Err(field(
            name,
            format!("{label} contains characters that are not allowed"),
        ));
    }
    if value.is_empty() {
        if rule == FieldRule::Required {
            return Err(field(name, format!("{label} is required")));
        }
        return Ok(None);
    }
    Ok(Some(value))
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | '"' | ','))
}

fn valid_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    (6..=15).contains(&digits)
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.'))
}

/// The validated intake: display name, date of birth, phone, e-mail.
struct Checked {
    name: Option<String>,
    date_of_birth: Option<NaiveDate>,
    phone: Option<String>,
    email: Option<String>,
}

fn check_intake(intake: &Intake, req: VisitRequest, today: NaiveDate) -> ApiResult<Checked> {
    let name = take(intake.name, "name", "Name", req.name, 100)?;
    let dob = take(
        intake.date_of_birth,
        "date_of_birth",
        "Date of birth",
        req.date_of_birth,
        10,
    )?;
    let date_of_birth = match dob {
        None => None,
        Some(raw) => {
            let d: NaiveDate = raw.parse().map_err(|_| {
                field(
                    "date_of_birth",
                    "Date of birth must be a date such as 1980-05-17",
                )
            })?;
            if d > today {
                return Err(field(
                    "date_of_birth",
                    "Date of birth cannot be in the future",
                ));
            }
            if d < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN) {
                return Err(field("date_of_birth", "Date of birth is not plausible"));
            }
            Some(d)
        }
    };
    let phone = take(intake.phone, "phone", "Phone number", req.phone, 32)?;
    if let Some(p) = &phone
        && !valid_phone(p)
    {
        return Err(field(
            "phone",
            "Phone number must look like +31 20 123 4567",
        ));
    }
    let email = take(intake.email, "email", "E-mail address", req.email, 254)?;
    if let Some(e) = &email
        && !valid_email(e)
    {
        return Err(field(
            "email",
            "E-mail address must look like name@example.nl",
        ));
    }
    if intake.accept_terms && !req.accept_terms {
        return Err(field("accept_terms", "Please accept the terms to continue"));
    }
    Ok(Checked {
        name,
        date_of_birth,
        phone,
        email,
    })
}

pub(crate) async fn create(
    State(clinic): State<Clinic>,
    ApiPath(id): ApiPath<String>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<VisitRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let limits = &clinic.walkin_state().limits;
    // Every attempt from a source counts, valid or not; without a peer address (a test router
    // without connect info) only the per-widget limit applies.
    if let Some(ip) = ip {
        limits
            .check_ip(ip)
            .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    }
    let (row, settings) = widget(&clinic, &id).await?;
    let practitioner_id: StaffId = req
        .practitioner_id
        .parse()
        .map_err(|_| field("practitioner_id", "Choose a practitioner"))?;
    let now = clinic.now();
    let checked = check_intake(&settings.intake, req, now.date_naive())?;
    let practitioner = clinic
        .available_practitioners(row.organisation_id)
        .await?
        .into_iter()
        .find(|p| {
            p.staff_id == practitioner_id
                && p.department_id
                    .is_some_and(|d| settings.department_ids.contains(&d))
        })
        .ok_or(ApiError::Conflict(
            "this practitioner is not available for walk-ins right now",
        ))?;
    limits
        .check_widget(row.widget_id)
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;

    let token = random_token();
    let expires_at = now + Duration::hours(VISIT_TTL_HOURS);
    let display_name = checked.name.as_deref().unwrap_or(ANONYMOUS_NAME);
    let visit = NewVisit {
        organisation_id: row.organisation_id,
        widget_id: row.widget_id,
        practitioner_id,
        department_id: practitioner.department_id,
        display_name,
        date_of_birth: checked.date_of_birth,
        phone: checked.phone.as_deref(),
        email: checked.email.as_deref(),
        terms_accepted_at: settings.intake.accept_terms.then_some(now),
        token_hash: &sha256(&token),
        expires_at,
    };
    let visit_id = clinic.store().insert_visit(&visit, now).await?;
    tracing::info!(%visit_id, widget_id = %row.widget_id, "walk-in visit created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "visit": {
                "id": visit_id,
                "practitioner_name": practitioner.name,
                "expires_at": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            },
            "join_url": format!("{}/join#{VISIT_TOKEN_PREFIX}{token}", clinic.config().public_url),
        })),
    ))
}

impl Clinic {
    /// Marks a walk-in visit completed (its consultation ended), so its link stops working.
    /// Returns `false` when `visit_id` is not a waiting walk-in visit.
    pub async fn complete_walk_in(&self, visit_id: &str) -> anyhow::Result<bool> {
        let Ok(id) = visit_id.parse() else {
            return Ok(false);
        };
        let changed = self.store().complete_visit(id, self.now()).await?;
        if changed {
            tracing::info!(%visit_id, "walk-in visit completed");
        }
        Ok(changed)
    }
}
