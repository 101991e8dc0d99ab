//! E-mail template sets over HTTP (F169–F172):
//!
//! - `GET /mail-template-sets` — the organisation's sets with their departments and which
//!   kinds/languages they customise, the placeholders per mail family, kinds and languages;
//! - `POST /mail-template-sets` `{name, is_default}` — create;
//! - `GET /mail-template-sets/{id}` — one set with every kind × language (its own template or
//!   the text it falls back to, `customised` says which);
//! - `PUT /mail-template-sets/{id}` `{name, is_default}`; `DELETE /mail-template-sets/{id}`;
//! - `PUT /mail-template-sets/{id}/departments` `{department_ids}` — exactly these departments
//!   use the set;
//! - `PUT|DELETE /mail-template-sets/{id}/templates/{kind}/{language}` — save one template (an
//!   unknown placeholder is refused with its name) or go back to the fallback;
//! - `POST /mail-templates/preview` — a template rendered with sample data.
//!
//! Organisation admins change; department admins read and preview; practitioners get 403.
//! Another organisation's set or department is a 404.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use chrono::{TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::compose::{
    AppointmentMail, AppointmentMailKind, StaffMail, StaffMailKind, appointment_values,
    staff_values,
};
use super::db::{Assigned, SetRow};
use super::model::{
    APPOINTMENT_PLACEHOLDERS, Language, STAFF_PLACEHOLDERS, Template, TemplateKind, Values,
};
use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::ids::{AppointmentId, DepartmentId, MailTemplateSetId, OrganisationId};
use crate::staff::{Role, Staff};
use crate::{Clinic, Route};

/// Longest set name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Most departments in one assignment.
pub const MAX_DEPARTMENTS: usize = 500;

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/mail-template-sets", get(list)),
        Route::new("POST", "/mail-template-sets", post(create)),
        Route::new("GET", "/mail-template-sets/{id}", get(read)),
        Route::new("PUT", "/mail-template-sets/{id}", put(update)),
        Route::new(
            "DELETE",
            "/mail-template-sets/{id}",
            axum::routing::delete(remove),
        ),
        Route::new("PUT", "/mail-template-sets/{id}/departments", put(assign)),
        Route::new(
            "PUT",
            "/mail-template-sets/{id}/templates/{kind}/{language}",
            put(save_template),
        ),
        Route::new(
            "DELETE",
            "/mail-template-sets/{id}/templates/{kind}/{language}",
            axum::routing::delete(reset_template),
        ),
        Route::new("POST", "/mail-templates/preview", post(preview)),
    ]
}

/// Admins read (403 otherwise); returns the organisation.
fn reader(staff: &Staff) -> ApiResult<OrganisationId> {
    match staff.role {
        Role::OrganisationAdmin | Role::DepartmentAdmin => Ok(staff.organisation_id),
        _ => Err(ApiError::Forbidden(
            "only organisation and department admins see the e-mail templates",
        )),
    }
}

/// Organisation admins change (403 otherwise).
fn writer(staff: &Staff) -> ApiResult<OrganisationId> {
    if staff.role == Role::OrganisationAdmin {
        Ok(staff.organisation_id)
    } else {
        Err(ApiError::Forbidden(
            "only an organisation admin may change the e-mail templates",
        ))
    }
}

fn set_id(raw: &str) -> ApiResult<MailTemplateSetId> {
    raw.parse().map_err(|_| ApiError::NotFound("template set"))
}

fn kind_and_language(kind: &str, language: &str) -> ApiResult<(TemplateKind, Language)> {
    let kind = kind
        .parse::<TemplateKind>()
        .map_err(|_| ApiError::NotFound("mail kind"))?;
    let language = language
        .parse::<Language>()
        .map_err(|_| ApiError::NotFound("language"))?;
    Ok((kind, language))
}

fn set_summary(set: &SetRow, departments: Vec<DepartmentId>, customised: Vec<Value>) -> Value {
    json!({
        "id": set.set_id,
        "name": set.name,
        "is_default": set.is_default,
        "department_ids": departments,
        "customised": customised,
        "created_at": set.created_at,
        "updated_at": set.updated_at,
    })
}

async fn detail(clinic: &Clinic, org: OrganisationId, set: &SetRow) -> ApiResult<Value> {
    let store = clinic.store();
    let departments: Vec<DepartmentId> = store
        .template_set_assignments(org)
        .await?
        .into_iter()
        .filter(|(_, s)| *s == set.set_id)
        .map(|(d, _)| d)
        .collect();
    let own = store.templates_of_set(set.set_id).await?;
    let mut templates = Vec::new();
    let mut customised = Vec::new();
    for kind in TemplateKind::ALL {
        for language in Language::ALL {
            let mine = own
                .iter()
                .find(|t| t.kind == kind.as_str() && t.language == language.as_str());
            let template = match mine {
                Some(t) => t.template(),
                // What this set's mails get without their own template.
                None => store.effective_template(org, None, kind, language).await?,
            };
            if mine.is_some() {
                customised.push(json!({ "kind": kind, "language": language }));
            }
            templates.push(json!({
                "kind": kind,
                "language": language,
                "customised": mine.is_some(),
                "subject": template.subject,
                "html_body": template.html_body,
                "text_body": template.text_body,
            }));
        }
    }
    let mut body = set_summary(set, departments, customised);
    if let Value::Object(map) = &mut body {
        map.insert("templates".into(), Value::Array(templates));
    }
    Ok(body)
}

async fn list(State(clinic): State<Clinic>, current: CurrentStaff) -> ApiResult<Json<Value>> {
    let org = reader(&current.staff)?;
    let store = clinic.store();
    let sets = store.template_sets(org).await?;
    let assignments = store.template_set_assignments(org).await?;
    let mut out = Vec::with_capacity(sets.len());
    for set in &sets {
        let departments = assignments
            .iter()
            .filter(|(_, s)| *s == set.set_id)
            .map(|(d, _)| *d)
            .collect();
        let customised = store
            .templates_of_set(set.set_id)
            .await?
            .iter()
            .map(|t| json!({ "kind": t.kind, "language": t.language }))
            .collect();
        out.push(set_summary(set, departments, customised));
    }
    Ok(Json(json!({
        "sets": out,
        "kinds": TemplateKind::ALL,
        "languages": Language::ALL,
        "placeholders": {
            "appointment": APPOINTMENT_PLACEHOLDERS,
            "staff": STAFF_PLACEHOLDERS,
        },
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetRequest {
    name: String,
    #[serde(default)]
    is_default: bool,
}

fn checked_name(raw: &str) -> ApiResult<String> {
    // Blank as JSON Schema's `\s` sees it (which also counts U+FEFF).
    let name = raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if name.is_empty() {
        return Err(ApiError::InvalidField {
            field: "name",
            message: "a name is required".to_owned(),
        });
    }
    if raw.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::InvalidField {
            field: "name",
            message: format!("at most {MAX_NAME_CHARS} characters"),
        });
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::InvalidField {
            field: "name",
            message: "control characters are not allowed".to_owned(),
        });
    }
    Ok(name.to_owned())
}

fn name_taken(e: sqlx::Error) -> ApiError {
    if crate::store::is_unique_violation(&e) {
        ApiError::Conflict("a template set with this name already exists")
    } else {
        e.into()
    }
}

async fn load(clinic: &Clinic, org: OrganisationId, raw: &str) -> ApiResult<SetRow> {
    clinic
        .store()
        .template_set(org, set_id(raw)?)
        .await?
        .ok_or(ApiError::NotFound("template set"))
}

async fn create(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<SetRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = writer(&current.staff)?;
    let name = checked_name(&req.name)?;
    let id = clinic
        .store()
        .insert_template_set(org, &name, req.is_default, clinic.now())
        .await
        .map_err(name_taken)?;
    tracing::info!(set_id = %id, staff_id = %current.staff.id, "mail template set created");
    let set = load(&clinic, org, &id.to_string()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "set": detail(&clinic, org, &set).await? })),
    ))
}

async fn read(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let org = reader(&current.staff)?;
    let set = load(&clinic, org, &id).await?;
    Ok(Json(json!({ "set": detail(&clinic, org, &set).await? })))
}

async fn update(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SetRequest>,
) -> ApiResult<Json<Value>> {
    let org = writer(&current.staff)?;
    let id = set_id(&id)?;
    let name = checked_name(&req.name)?;
    let found = clinic
        .store()
        .update_template_set(org, id, &name, req.is_default, clinic.now())
        .await
        .map_err(name_taken)?;
    if !found {
        return Err(ApiError::NotFound("template set"));
    }
    let set = load(&clinic, org, &id.to_string()).await?;
    Ok(Json(json!({ "set": detail(&clinic, org, &set).await? })))
}

async fn remove(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let org = writer(&current.staff)?;
    if clinic
        .store()
        .delete_template_set(org, set_id(&id)?)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("template set"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignRequest {
    department_ids: Vec<String>,
}

async fn assign(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> ApiResult<Json<Value>> {
    let org = writer(&current.staff)?;
    let id = set_id(&id)?;
    if req.department_ids.len() > MAX_DEPARTMENTS {
        return Err(ApiError::InvalidField {
            field: "department_ids",
            message: format!("at most {MAX_DEPARTMENTS}"),
        });
    }
    let mut departments = Vec::with_capacity(req.department_ids.len());
    for raw in &req.department_ids {
        let d: DepartmentId = raw.parse().map_err(|_| ApiError::InvalidField {
            field: "department_ids",
            message: "unknown department".to_owned(),
        })?;
        if !departments.contains(&d) {
            departments.push(d);
        }
    }
    match clinic
        .store()
        .assign_template_set(org, id, &departments)
        .await?
    {
        Assigned::Ok => {}
        Assigned::NoSet => return Err(ApiError::NotFound("template set")),
        Assigned::NoDepartment => {
            return Err(ApiError::InvalidField {
                field: "department_ids",
                message: "unknown department".to_owned(),
            });
        }
    }
    let set = load(&clinic, org, &id.to_string()).await?;
    Ok(Json(json!({ "set": detail(&clinic, org, &set).await? })))
}

async fn save_template(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath((id, kind, language)): ApiPath<(String, String, String)>,
    ApiJson(template): ApiJson<Template>,
) -> ApiResult<Json<Value>> {
    let org = writer(&current.staff)?;
    let id = set_id(&id)?;
    let (kind, language) = kind_and_language(&kind, &language)?;
    template.validate(kind)?;
    if !clinic
        .store()
        .put_template(org, id, kind, language, &template, clinic.now())
        .await?
    {
        return Err(ApiError::NotFound("template set"));
    }
    tracing::info!(set_id = %id, kind = kind.as_str(), language = language.as_str(),
                   staff_id = %current.staff.id, "mail template saved");
    let set = load(&clinic, org, &id.to_string()).await?;
    Ok(Json(json!({ "set": detail(&clinic, org, &set).await? })))
}

async fn reset_template(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath((id, kind, language)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let org = writer(&current.staff)?;
    let id = set_id(&id)?;
    let (kind, language) = kind_and_language(&kind, &language)?;
    if !clinic
        .store()
        .delete_template(org, id, kind, language)
        .await?
    {
        return Err(ApiError::NotFound("template set"));
    }
    let set = load(&clinic, org, &id.to_string()).await?;
    Ok(Json(json!({ "set": detail(&clinic, org, &set).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    kind: TemplateKind,
    language: Language,
    subject: String,
    html_body: String,
    text_body: String,
}

/// The sample data of the preview, through the same code as a real mail (dates in the
/// language, the waiting room's opening time).
fn sample_values(kind: TemplateKind, language: Language, organisation: &str) -> Values {
    if !kind.is_appointment() {
        let sample = StaffMail {
            kind: StaffMailKind::Invitation,
            organisation_id: OrganisationId::new(),
            organisation_name: organisation.to_owned(),
            department_id: None,
            staff_id: None,
            name: "Dr. Anna Jansen".to_owned(),
            email: "anna@example.org".to_owned(),
            language,
            link: "https://video.example.org/set-password#sample".to_owned(),
            expires_at: Utc.with_ymd_and_hms(2026, 3, 31, 7, 0, 0).unwrap(),
            time_zone: "Europe/Amsterdam".to_owned(),
            created_by: None,
        };
        return staff_values(&sample).unwrap_or_else(|_| Values::examples(kind));
    }
    let sample = AppointmentMail {
        kind: AppointmentMailKind::Invitation,
        organisation_id: OrganisationId::new(),
        organisation_name: organisation.to_owned(),
        organisation_contact: "+31 20 123 4567".to_owned(),
        organiser_email: None,
        department_id: None,
        department_name: "Cardiology".to_owned(),
        practitioner_name: "Dr. Anna Jansen".to_owned(),
        client_id: None,
        recipient_name: "Jan de Vries".to_owned(),
        recipient_email: "jan@example.org".to_owned(),
        language,
        starts_at: Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap(),
        time_zone: "Europe/Amsterdam".to_owned(),
        duration_minutes: 15,
        personal_message: "Please have your medication list at hand.".to_owned(),
        link: "https://video.example.org/join#sample".to_owned(),
        appointment_id: AppointmentId::new(),
        sequence: 0,
        created_by: None,
    };
    appointment_values(&sample).unwrap_or_else(|_| Values::examples(kind))
}

async fn preview(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> ApiResult<Json<Value>> {
    let org = reader(&current.staff)?;
    let template = Template {
        subject: req.subject,
        html_body: req.html_body,
        text_body: req.text_body,
    };
    template.validate(req.kind)?;
    let organisation = clinic
        .store()
        .organisation_name(org)
        .await?
        .unwrap_or_default();
    let rendered = template.render(&sample_values(req.kind, req.language, &organisation));
    Ok(Json(json!({
        "subject": rendered.subject,
        "html_body": rendered.html_body,
        "text_body": rendered.text_body,
    })))
}
