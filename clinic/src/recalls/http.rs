//! The recall routes: rules (`/recall-rules`), the views (`/recalls`, `/clients/{id}/recalls`,
//! `/patients/{id}/recalls`), manual recalls (`POST /recalls`), closing one
//! (`POST /recalls/{id}/complete|cancel`), a client's opt-out (`PUT /clients/{id}/recall-opt-out`)
//! and the forward preview (`GET /recalls/preview`).
//!
//! Who may: every staff member reads the rules; organisation admins manage every rule, a
//! department admin those of their own department (which apply to that department's clients).
//! The views, manual recalls, closing and the opt-out start from clients the caller sees
//! (`records::visible_client`, the register's F6–F9 predicate; the lists use the same predicate
//! in SQL). Every query is scoped to the caller's organisation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::db::{ListFilter, RuleInput};
use super::engine::{NewRecall, PlanContext, RecallConn};
use super::model::{Channel, Reason, Recall, Rule};
use super::plan::{
    Colour, Interval, IntervalUnit, MAX_INTERVAL_DAYS, MIN_LEAD_SECONDS, day_start,
    schedule_problem,
};
use super::send::{compose, evaluate};
use super::text::RecallText;
use crate::auth::CurrentStaff;
use crate::clients::ClientScope;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::ids::{ClientId, DepartmentId, PatientId, RecallId, RecallRuleId, ServiceId, StaffId};
use crate::org_settings::OrganisationSettings;
use crate::records::{local_today, visible_client, visible_patient};
use crate::staff::Role;
use crate::store::{dispatch, is_unique_violation};
use crate::templates::TemplateError;
use crate::{Clinic, Route};

/// Longest rule name or manual title, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Default page size of the list.
const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
const MAX_LIMIT: i64 = 200;
/// Most sending times of a manual recall.
const MAX_MANUAL_STEPS: usize = 10;
/// The preview's default and longest horizon, in days.
const PREVIEW_DAYS: i64 = 30;
const MAX_PREVIEW_DAYS: i64 = 90;
/// Most sendings (client and instant) one preview shows.
const MAX_PREVIEW_SENDINGS: i64 = 500;

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/recall-rules", get(list_rules)),
        Route::new("POST", "/recall-rules", post(create_rule)),
        Route::new("PUT", "/recall-rules/{id}", put(update_rule)),
        Route::new("DELETE", "/recall-rules/{id}", delete(delete_rule)),
        Route::new("GET", "/recalls", get(list)),
        Route::new("POST", "/recalls", post(create_manual)),
        Route::new("GET", "/recalls/preview", get(preview)),
        Route::new("POST", "/recalls/{id}/complete", post(complete)),
        Route::new("POST", "/recalls/{id}/cancel", post(cancel)),
        Route::new("GET", "/clients/{id}/recalls", get(client_recalls)),
        Route::new("GET", "/patients/{id}/recalls", get(patient_recalls)),
        Route::new("PUT", "/clients/{id}/recall-opt-out", put(set_opt_out)),
    ]
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        field,
        message: message.into(),
    }
}

/// A text refused, named as `template.*` (a rule's) or `text.*` (a manual recall's).
fn text_error(e: TemplateError, names: [&'static str; 2]) -> ApiError {
    let subject = match &e {
        TemplateError::MultiLineSubject => true,
        TemplateError::UnknownPlaceholder { field, .. }
        | TemplateError::Empty { field }
        | TemplateError::TooLong { field } => *field == "subject",
    };
    invalid(if subject { names[0] } else { names[1] }, e.to_string())
}

fn checked_name(field: &'static str, value: &str) -> ApiResult<String> {
    let v = value.trim();
    let n = v.chars().count();
    if n == 0 || n > MAX_NAME_CHARS || v.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{field} must be 1 to {MAX_NAME_CHARS} characters on one line"),
        ));
    }
    Ok(v.to_owned())
}

/// The organisation's zone and sending time (the reminders' local time, `reminder_time`).
fn plan_context(settings: &OrganisationSettings, now: DateTime<Utc>) -> PlanContext {
    PlanContext {
        tz: settings.tz(),
        send_time: settings
            .reminder_time_of_day()
            .unwrap_or(NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN)),
        now,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntervalBody {
    count: i64,
    unit: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleBody {
    name: String,
    service_id: ServiceId,
    #[serde(default)]
    due_service_id: Option<ServiceId>,
    interval: IntervalBody,
    #[serde(default)]
    schedule: Option<Vec<i32>>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    template: Option<RecallText>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    department_id: Option<DepartmentId>,
}

/// A rule body checked completely (nothing is written before).
struct CheckedRule {
    name: String,
    department_id: Option<DepartmentId>,
    service_id: ServiceId,
    due_service_id: ServiceId,
    interval: Interval,
    schedule: Vec<i32>,
    channels: Vec<Channel>,
    internal: bool,
    template: Option<RecallText>,
    active: bool,
}

impl CheckedRule {
    fn input(&self) -> RuleInput<'_> {
        RuleInput {
            name: &self.name,
            department_id: self.department_id,
            service_id: self.service_id,
            due_service_id: self.due_service_id,
            interval_count: i32::try_from(self.interval.count).unwrap_or(i32::MAX),
            interval_unit: self.interval.unit.as_str(),
            offsets: serde_json::to_string(&self.schedule).unwrap_or_else(|_| "[]".to_owned()),
            channels: serde_json::to_string(&self.channels).unwrap_or_else(|_| "[]".to_owned()),
            internal: self.internal,
            subject: self.template.as_ref().map(|t| t.subject.as_str()),
            body: self.template.as_ref().map(|t| t.body.as_str()),
            active: self.active,
        }
    }
}

/// Who may manage a rule of `department`: organisation admins any, a department admin their
/// own department's.
fn may_manage(current: &CurrentStaff, department: Option<DepartmentId>) -> ApiResult<()> {
    match current.staff.role {
        Role::OrganisationAdmin => Ok(()),
        Role::DepartmentAdmin
            if department.is_some() && department == current.staff.department_id =>
        {
            Ok(())
        }
        Role::DepartmentAdmin => Err(ApiError::Forbidden(
            "a department admin manages the reminder rules of their own department only",
        )),
        Role::Practitioner => Err(ApiError::Forbidden(
            "only an organisation or department admin may manage reminder rules",
        )),
    }
}

async fn check_rule(
    clinic: &Clinic,
    current: &CurrentStaff,
    body: RuleBody,
) -> ApiResult<CheckedRule> {
    let org = current.staff.organisation_id;
    let name = checked_name("name", &body.name)?;
    // A department admin's rule is their department's unless they name it.
    let department_id = match (current.staff.role, body.department_id) {
        (Role::DepartmentAdmin, None) => current.staff.department_id,
        (_, d) => d,
    };
    may_manage(current, department_id)?;
    if let Some(d) = department_id
        && !clinic.store().department_in_organisation(org, d).await?
    {
        return Err(invalid(
            "department_id",
            "no such department in the organisation",
        ));
    }
    let unit = IntervalUnit::parse(body.interval.unit.trim()).ok_or_else(|| {
        invalid(
            "interval",
            "the interval's unit must be days, weeks, months or years",
        )
    })?;
    let interval = Interval {
        count: body.interval.count,
        unit,
    };
    if let Some(problem) = interval.problem() {
        return Err(invalid("interval", problem));
    }
    let store = clinic.store();
    let service = store
        .service_in_organisation(org, body.service_id)
        .await?
        .ok_or_else(|| invalid("service_id", "no such service in the catalogue"))?;
    let due_service_id = body.due_service_id.unwrap_or(service.id);
    if due_service_id != service.id {
        store
            .service_in_organisation(org, due_service_id)
            .await?
            .ok_or_else(|| invalid("due_service_id", "no such service in the catalogue"))?;
    }
    let (schedule, channels, template) = if body.internal {
        if body.schedule.as_ref().is_some_and(|s| !s.is_empty())
            || body.channels.as_ref().is_some_and(|c| !c.is_empty())
            || body.template.is_some()
        {
            return Err(invalid(
                "internal",
                "an internal rule sends nothing to the client: leave schedule, channels and \
                 template out",
            ));
        }
        (Vec::new(), Vec::new(), None)
    } else {
        let mut schedule = body.schedule.unwrap_or_else(|| vec![0]);
        if let Some(problem) = schedule_problem(&schedule, interval) {
            return Err(invalid("schedule", problem));
        }
        schedule.sort_unstable();
        let mut channels = Vec::new();
        for c in body.channels.unwrap_or_else(|| vec!["email".to_owned()]) {
            match c.as_str() {
                "email" if !channels.contains(&Channel::Email) => channels.push(Channel::Email),
                "email" => return Err(invalid("channels", "email is named twice")),
                other => {
                    return Err(invalid(
                        "channels",
                        format!(
                            "unknown channel {:?}: only email is available",
                            other.chars().take(20).collect::<String>()
                        ),
                    ));
                }
            }
        }
        if channels.is_empty() {
            return Err(invalid(
                "channels",
                "name at least one channel, or make the rule internal",
            ));
        }
        let template = match body.template {
            Some(t) => {
                let t = RecallText {
                    subject: t.subject.trim().to_owned(),
                    body: t.body,
                };
                t.validate()
                    .map_err(|e| text_error(e, ["template.subject", "template.body"]))?;
                Some(t)
            }
            None => None,
        };
        (schedule, channels, template)
    };
    debug_assert!(interval.max_days() <= MAX_INTERVAL_DAYS);
    Ok(CheckedRule {
        name,
        department_id,
        service_id: service.id,
        due_service_id,
        interval,
        schedule,
        channels,
        internal: body.internal,
        template,
        active: body.active.unwrap_or(true),
    })
}

fn rule_taken(e: sqlx::Error) -> ApiError {
    if is_unique_violation(&e) {
        ApiError::Conflict("a rule for this service and due service exists already")
    } else {
        e.into()
    }
}

async fn list_rules(State(clinic): State<Clinic>, current: CurrentStaff) -> ApiResult<Json<Value>> {
    let rules = clinic
        .store()
        .recall_rules(current.staff.organisation_id)
        .await?;
    Ok(Json(json!({ "rules": rules })))
}

async fn create_rule(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(body): ApiJson<RuleBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let rule = check_rule(&clinic, &current, body).await?;
    let org = current.staff.organisation_id;
    let id = clinic
        .store()
        .insert_recall_rule(org, &rule.input(), current.staff.id, clinic.now())
        .await
        .map_err(rule_taken)?;
    let rule = clinic
        .store()
        .recall_rule(org, id)
        .await?
        .ok_or(ApiError::NotFound("recall rule"))?;
    tracing::info!(recall_rule_id = %id, staff_id = %current.staff.id, "recall rule created");
    Ok((StatusCode::CREATED, Json(json!({ "rule": rule }))))
}

async fn existing_rule(clinic: &Clinic, current: &CurrentStaff, raw: &str) -> ApiResult<Rule> {
    let id: RecallRuleId = raw.parse().map_err(|_| ApiError::NotFound("recall rule"))?;
    let rule = clinic
        .store()
        .recall_rule(current.staff.organisation_id, id)
        .await?
        .ok_or(ApiError::NotFound("recall rule"))?;
    may_manage(current, rule.department_id)?;
    Ok(rule)
}

async fn update_rule(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<RuleBody>,
) -> ApiResult<Json<Value>> {
    let old = existing_rule(&clinic, &current, &raw).await?;
    let rule = check_rule(&clinic, &current, body).await?;
    let org = current.staff.organisation_id;
    let settings = clinic.organisation_settings(org).await?;
    let woke = clinic
        .store()
        .update_recall_rule(
            org,
            old.id,
            &rule.input(),
            plan_context(&settings, clinic.now()),
        )
        .await
        .map_err(rule_taken)?
        .ok_or(ApiError::NotFound("recall rule"))?;
    if woke {
        clinic.wake_jobs();
    }
    let rule = clinic
        .store()
        .recall_rule(org, old.id)
        .await?
        .ok_or(ApiError::NotFound("recall rule"))?;
    tracing::info!(recall_rule_id = %old.id, staff_id = %current.staff.id, "recall rule updated");
    Ok(Json(json!({ "rule": rule })))
}

async fn delete_rule(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let rule = existing_rule(&clinic, &current, &raw).await?;
    if !clinic
        .store()
        .delete_recall_rule(current.staff.organisation_id, rule.id)
        .await?
    {
        return Err(ApiError::NotFound("recall rule"));
    }
    tracing::info!(recall_rule_id = %rule.id, staff_id = %current.staff.id, "recall rule deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Where a list page starts: strictly after this (due date, id).
fn encode_cursor(due_on: NaiveDate, id: RecallId) -> String {
    URL_SAFE_NO_PAD.encode(format!("{due_on}|{id}"))
}

fn decode_cursor(raw: &str) -> Option<(NaiveDate, RecallId)> {
    if raw.len() > 128 {
        return None;
    }
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    let (day, id) = text.split_once('|')?;
    Some((day.parse().ok()?, id.parse().ok()?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default)]
    due_from: Option<NaiveDate>,
    #[serde(default)]
    due_to: Option<NaiveDate>,
    #[serde(default)]
    colour: Option<Colour>,
    #[serde(default)]
    service_id: Option<ServiceId>,
    #[serde(default)]
    practitioner_id: Option<StaffId>,
    #[serde(default)]
    department_id: Option<DepartmentId>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    cursor: Option<String>,
}

fn status_param(raw: Option<&str>) -> ApiResult<&'static str> {
    match raw.unwrap_or("open") {
        "open" => Ok("open"),
        "completed" => Ok("completed"),
        "cancelled" => Ok("cancelled"),
        "all" => Ok("all"),
        _ => Err(invalid(
            "status",
            "status must be open, completed, cancelled or all",
        )),
    }
}

/// Sets each recall's colour for local day `today`.
fn coloured(recalls: Vec<Recall>, today: NaiveDate) -> Vec<Recall> {
    recalls.into_iter().map(|r| r.for_day(today)).collect()
}

fn later(a: Option<NaiveDate>, b: Option<NaiveDate>) -> Option<NaiveDate> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn earlier(a: Option<NaiveDate>, b: Option<NaiveDate>) -> Option<NaiveDate> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Serialize)]
struct RecallPage {
    recalls: Vec<Recall>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
    /// The organisation's local day the colours are computed for.
    today: NaiveDate,
}

async fn list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Json<RecallPage>> {
    let settings = clinic
        .organisation_settings(current.staff.organisation_id)
        .await?;
    let today = local_today(&settings, clinic.now());
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid("limit", format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let after = match p.cursor.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(decode_cursor(raw).ok_or_else(|| {
            invalid(
                "cursor",
                "not a cursor of this list; start again without one",
            )
        })?),
    };
    let (mut from, mut to) = (p.due_from, p.due_to);
    if let Some(c) = p.colour {
        let (f, t) = c.due_range(today);
        from = later(from, f);
        to = earlier(to, t);
    }
    let scope = ClientScope::new(&current.staff, &settings);
    let filter = ListFilter {
        due_from: from,
        due_to: to,
        service_id: p.service_id,
        practitioner_id: p.practitioner_id,
        department_id: p.department_id,
        status: status_param(p.status.as_deref())?,
        after,
        limit: limit + 1,
        ..ListFilter::default()
    };
    let mut recalls = clinic.store().recalls(&scope, &filter).await?;
    let more = recalls.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    recalls.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| recalls.last())
        .flatten()
        .map(|r| encode_cursor(r.due_on, r.id));
    Ok(Json(RecallPage {
        recalls: coloured(recalls, today),
        next_cursor,
        today,
    }))
}

async fn client_recalls(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let client_id: ClientId = raw.parse().map_err(|_| ApiError::NotFound("client"))?;
    let (client, settings) = visible_client(&clinic, &current, client_id).await?;
    let scope = ClientScope::new(&current.staff, &settings);
    let recalls = clinic
        .store()
        .recalls(
            &scope,
            &ListFilter {
                status: "all",
                client_id: Some(client.id),
                limit: MAX_LIMIT,
                ..ListFilter::default()
            },
        )
        .await?;
    let opt_out = clinic
        .store()
        .recall_recipient(client.id)
        .await?
        .is_some_and(|r| r.recall_opt_out);
    let today = local_today(&settings, clinic.now());
    Ok(Json(json!({
        "recalls": coloured(recalls, today),
        "opt_out": opt_out,
        "today": today,
    })))
}

async fn patient_recalls(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let (patient, settings) = visible_patient(&clinic, &current, &raw).await?;
    let scope = ClientScope::new(&current.staff, &settings);
    let recalls = clinic
        .store()
        .recalls(
            &scope,
            &ListFilter {
                status: "all",
                patient_id: Some(patient.id),
                limit: MAX_LIMIT,
                ..ListFilter::default()
            },
        )
        .await?;
    let today = local_today(&settings, clinic.now());
    Ok(Json(
        json!({ "recalls": coloured(recalls, today), "today": today }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptOutBody {
    opt_out: bool,
}

async fn set_opt_out(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<OptOutBody>,
) -> ApiResult<Json<Value>> {
    let client_id: ClientId = raw.parse().map_err(|_| ApiError::NotFound("client"))?;
    let (client, _) = visible_client(&clinic, &current, client_id).await?;
    if !clinic
        .store()
        .set_recall_opt_out(
            current.staff.organisation_id,
            client.id,
            body.opt_out,
            clinic.now(),
        )
        .await?
    {
        return Err(ApiError::NotFound("client"));
    }
    tracing::info!(client_id = %client.id, staff_id = %current.staff.id, opt_out = body.opt_out, "recall opt-out set");
    Ok(Json(
        json!({ "client_id": client.id, "opt_out": body.opt_out }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualBody {
    patient_id: PatientId,
    #[serde(default)]
    service_id: Option<ServiceId>,
    #[serde(default)]
    title: Option<String>,
    due_on: NaiveDate,
    #[serde(default)]
    send_at: Vec<DateTime<Utc>>,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    text: Option<RecallText>,
}

async fn create_manual(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(body): ApiJson<ManualBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (patient, settings) =
        visible_patient(&clinic, &current, &body.patient_id.to_string()).await?;
    let org = current.staff.organisation_id;
    let now = clinic.now();
    let service = match body.service_id {
        Some(id) => Some(
            clinic
                .store()
                .service_in_organisation(org, id)
                .await?
                .ok_or_else(|| invalid("service_id", "no such service in the catalogue"))?,
        ),
        None => None,
    };
    let title = match body.title.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(checked_name("title", t)?),
    };
    if service.is_none() && title.is_none() {
        return Err(invalid(
            "title",
            "name the service due (service_id) or give the reminder a title",
        ));
    }
    let today = local_today(&settings, now);
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    if body.due_on < earliest || (body.due_on - today).num_days() > MAX_INTERVAL_DAYS {
        return Err(invalid(
            "due_on",
            "due_on must be between 1900-01-01 and 50 years from today",
        ));
    }
    let mut send_at = body.send_at;
    send_at.sort();
    send_at.dedup();
    let text = if body.internal {
        if !send_at.is_empty() || body.text.is_some() {
            return Err(invalid(
                "internal",
                "an internal reminder sends nothing to the client: leave send_at and text out",
            ));
        }
        None
    } else {
        if send_at.is_empty() {
            return Err(invalid(
                "send_at",
                "give at least one sending time, or make the reminder internal",
            ));
        }
        if send_at.len() > MAX_MANUAL_STEPS {
            return Err(invalid(
                "send_at",
                format!("at most {MAX_MANUAL_STEPS} sending times"),
            ));
        }
        if let Some(past) = send_at
            .iter()
            .find(|t| **t < now + Duration::seconds(MIN_LEAD_SECONDS))
        {
            return Err(invalid(
                "send_at",
                format!(
                    "{} is in the past (or less than a minute ahead): a reminder cannot be sent then",
                    past.to_rfc3339()
                ),
            ));
        }
        match body.text {
            Some(t) => {
                let t = RecallText {
                    subject: t.subject.trim().to_owned(),
                    body: t.body,
                };
                t.validate()
                    .map_err(|e| text_error(e, ["text.subject", "text.body"]))?;
                Some(t)
            }
            None => None,
        }
    };
    if patient.deceased_on.is_some() {
        return Err(ApiError::Conflict(
            "the patient's death is recorded: no reminder can be made",
        ));
    }
    let new = NewRecall {
        id: RecallId::new(),
        organisation_id: org,
        client_id: patient.client_id,
        patient_id: patient.id,
        service_id: service.as_ref().map(|s| s.id),
        rule_id: None,
        origin: "manual",
        internal: body.internal,
        title: title.as_deref(),
        subject: text.as_ref().map(|t| t.subject.as_str()),
        body: text.as_ref().map(|t| t.body.as_str()),
        basis_record_id: None,
        basis_on: None,
        due_on: body.due_on,
        due_at: day_start(settings.tz(), body.due_on),
        created_by: Some(current.staff.id),
        steps: send_at.iter().map(|t| (None, *t)).collect(),
    };
    let woke = dispatch!(clinic.store(), pool => {
        let mut tx = pool.begin().await?;
        let woke = tx.insert_recall(&new, now).await;
        match woke {
            Ok(w) => {
                tx.commit().await?;
                Ok(w)
            }
            Err(e) => Err(e),
        }
    })
    .map_err(|e: sqlx::Error| {
        if is_unique_violation(&e) {
            ApiError::Conflict("the patient has an open reminder for this service already")
        } else {
            e.into()
        }
    })?;
    if woke {
        clinic.wake_jobs();
    }
    let recall = clinic
        .store()
        .recall_in_organisation(org, new.id)
        .await?
        .ok_or(ApiError::NotFound("recall"))?;
    tracing::info!(recall_id = %new.id, patient_id = %patient.id, staff_id = %current.staff.id, "manual recall created");
    let mut out = coloured(vec![recall], today);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "recall": out.remove(0) })),
    ))
}

/// The recall `raw` names if the caller sees its client.
async fn visible_recall(
    clinic: &Clinic,
    current: &CurrentStaff,
    raw: &str,
) -> ApiResult<(Recall, OrganisationSettings)> {
    let id: RecallId = raw.parse().map_err(|_| ApiError::NotFound("recall"))?;
    let recall = clinic
        .store()
        .recall_in_organisation(current.staff.organisation_id, id)
        .await?
        .ok_or(ApiError::NotFound("recall"))?;
    let (_, settings) = visible_client(clinic, current, recall.client_id)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound("recall"),
            e => e,
        })?;
    Ok((recall, settings))
}

async fn close(
    clinic: &Clinic,
    current: &CurrentStaff,
    raw: &str,
    status: &'static str,
) -> ApiResult<Json<Value>> {
    let (recall, settings) = visible_recall(clinic, current, raw).await?;
    let now = clinic.now();
    let closed = dispatch!(clinic.store(), pool => {
        let mut tx = pool.begin().await?;
        let closed = tx
            .close_recall(recall.id, status, Reason::ClosedByStaff, (Some(current.staff.id), None), now)
            .await?;
        tx.commit().await?;
        Ok::<bool, sqlx::Error>(closed)
    })?;
    if !closed {
        return Err(ApiError::Conflict("the reminder is not open"));
    }
    let recall = clinic
        .store()
        .recall_in_organisation(current.staff.organisation_id, recall.id)
        .await?
        .ok_or(ApiError::NotFound("recall"))?;
    tracing::info!(recall_id = %recall.id, staff_id = %current.staff.id, status, "recall closed by staff");
    let mut out = coloured(vec![recall], local_today(&settings, now));
    Ok(Json(json!({ "recall": out.remove(0) })))
}

async fn complete(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    close(&clinic, &current, &raw, "completed").await
}

async fn cancel(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    close(&clinic, &current, &raw, "cancelled").await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewParams {
    #[serde(default)]
    days: Option<i64>,
}

async fn preview(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiQuery(p): ApiQuery<PreviewParams>,
) -> ApiResult<Json<Value>> {
    let days = p.days.unwrap_or(PREVIEW_DAYS);
    if !(1..=MAX_PREVIEW_DAYS).contains(&days) {
        return Err(invalid(
            "days",
            format!("days must be 1 to {MAX_PREVIEW_DAYS}"),
        ));
    }
    let org = current.staff.organisation_id;
    let settings = clinic.organisation_settings(org).await?;
    let scope = ClientScope::new(&current.staff, &settings);
    let now = clinic.now();
    let to = now + Duration::days(days);
    let store = clinic.store();
    let letterhead = store
        .recall_letterhead(org)
        .await?
        .ok_or(ApiError::NotFound("organisation"))?;
    let sendings = store
        .pending_sendings(&scope, now, to, MAX_PREVIEW_SENDINGS)
        .await?;
    let mut out = Vec::new();
    for (client, at) in sendings {
        let when = DateTime::from_timestamp_millis(at).unwrap_or(now).max(now);
        // As things stand now, judged at the sending time (an appointment between now and
        // then still counts as booked if it is after the sending).
        let Some(e) = evaluate(&clinic, client, at, when)
            .await
            .map_err(ApiError::Internal)?
        else {
            continue;
        };
        let describe = |s: &super::db::PendingRow| {
            json!({
                "recall_id": s.recall_id,
                "step_id": s.recall_step_id,
                "patient_id": s.patient_id,
                "patient_name": s.patient_name,
                "service_id": s.service_id,
                "service_name": s.service_name,
                "title": s.title,
                "rule_id": s.rule_id,
                "rule_name": s.rule_name,
                "due_on": s.due_on,
            })
        };
        let mails: Vec<Value> = e
            .mails
            .iter()
            .map(|m| {
                let steps: Vec<&super::db::PendingRow> = m.steps.iter().collect();
                let mail = compose(&e.recipient, &letterhead, &m.text, &steps);
                json!({
                    "channel": "email",
                    "to": mail.to_address,
                    "subject": mail.subject,
                    "items": m.steps.iter().map(describe).collect::<Vec<_>>(),
                })
            })
            .collect();
        let suppressed: Vec<Value> = e
            .suppressed
            .iter()
            .map(|(s, reason)| {
                let mut v = describe(s);
                v["reason"] = json!(reason.as_str());
                v["channel"] = json!("email");
                v
            })
            .collect();
        out.push(json!({
            "send_at": e.send_at,
            "client_id": e.recipient.client_id,
            "client_name": e.recipient.name,
            "mails": mails,
            "suppressed": suppressed,
        }));
    }
    Ok(Json(json!({ "from": now, "to": to, "sendings": out })))
}
