//! Walk-in widgets (F43–F51): configuration by organisation admins (the four wizard steps:
//! name and departments; texts and colours; intake fields; logo, background and custom CSS;
//! plus the origins allowed to frame it), and the public endpoints the widget page uses.
//!
//! Invariants: only organisation admins read or change widgets; another organisation's widget is a
//! 404. Everything is validated before it is written (see [`settings`], [`css`], [`image`]).

pub mod css;
mod db;
pub mod image;
mod limit;
mod lookup;
mod public;
pub mod settings;
mod streams;
pub mod visits;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{delete, get, post, put};
use serde_json::{Value, json};

pub(crate) use limit::Limits;

use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::ids::{OrganisationId, WidgetId};
use crate::staff::{Role, Staff};
use crate::{Clinic, Route};
use db::WidgetRow;
use image::ImageKind;
use lookup::parse_settings;
use settings::{Settings, WidgetInput};

/// In-memory state of the walk-in endpoints: rate limiters and the stream slots.
#[derive(Default)]
pub(crate) struct WalkInState {
    pub(crate) limits: Limits,
    pub(crate) streams: streams::StreamSlots,
}

/// Most widgets one organisation may have.
const MAX_WIDGETS: usize = 50;

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    let mut routes = vec![
        Route::new("GET", "/widgets", get(list)),
        Route::new("POST", "/widgets", post(create)),
        Route::new("GET", "/widgets/{id}", get(read)),
        Route::new("PUT", "/widgets/{id}", put(update)),
        Route::new("DELETE", "/widgets/{id}", delete(remove)),
        Route::new(
            "PUT",
            "/widgets/{id}/images/{kind}",
            put(put_image).layer(DefaultBodyLimit::max(image::MAX_IMAGE_BYTES)),
        ),
        Route::new(
            "DELETE",
            "/widgets/{id}/images/{kind}",
            delete(delete_image),
        ),
    ];
    routes.extend(public::routes());
    routes
}

fn require_admin(staff: &Staff) -> ApiResult<()> {
    if staff.role != Role::OrganisationAdmin {
        return Err(ApiError::Forbidden(
            "only organisation admins manage walk-in widgets",
        ));
    }
    Ok(())
}

fn parse_id(raw: &str) -> ApiResult<WidgetId> {
    raw.parse().map_err(|_| ApiError::NotFound("widget"))
}

fn widget_json(clinic: &Clinic, row: &WidgetRow) -> ApiResult<Value> {
    let s = parse_settings(row)?;
    Ok(json!({
        "id": row.widget_id,
        "name": row.name,
        "department_ids": s.department_ids,
        "texts": s.texts,
        "colours": s.colours,
        "intake": s.intake,
        "allowed_origins": s.allowed_origins,
        "custom_css": row.custom_css,
        "has_logo": row.has_logo,
        "has_background": row.has_background,
        "frame_url": format!("{}/widget/{}", clinic.config().public_url, row.widget_id),
    }))
}

async fn load(clinic: &Clinic, org: OrganisationId, id: WidgetId) -> ApiResult<WidgetRow> {
    clinic
        .store()
        .widget_by_id(id)
        .await?
        .filter(|w| w.organisation_id == org)
        .ok_or(ApiError::NotFound("widget"))
}

/// Validates `input` fully (departments of `org`, CSS) and returns what to store.
async fn validated(
    clinic: &Clinic,
    org: OrganisationId,
    input: WidgetInput,
) -> ApiResult<(String, String, String)> {
    let (name, settings, custom_css) = input.validate()?;
    css::check(&custom_css).map_err(|e| ApiError::invalid(e.to_string()))?;
    for d in &settings.department_ids {
        if !clinic.store().department_in_organisation(org, *d).await? {
            return Err(ApiError::invalid(format!(
                "department_ids: {d} is not a department of your organisation"
            )));
        }
    }
    let json = serde_json::to_string(&settings).map_err(anyhow::Error::from)?;
    Ok((name, json, custom_css))
}

async fn list(State(clinic): State<Clinic>, current: CurrentStaff) -> ApiResult<Json<Value>> {
    require_admin(&current.staff)?;
    let rows = clinic
        .store()
        .widgets_of(current.staff.organisation_id)
        .await?;
    let list = rows
        .iter()
        .map(|r| widget_json(&clinic, r))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(json!({ "widgets": list })))
}

async fn create(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(input): ApiJson<WidgetInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let staff = &current.staff;
    require_admin(staff)?;
    let org = staff.organisation_id;
    let (name, settings, custom_css) = validated(&clinic, org, input).await?;
    if clinic.store().widgets_of(org).await?.len() >= MAX_WIDGETS {
        return Err(ApiError::invalid(format!(
            "an organisation may have at most {MAX_WIDGETS} widgets"
        )));
    }
    let id = clinic
        .store()
        .insert_widget(org, &name, &settings, &custom_css, clinic.now())
        .await?;
    tracing::info!(widget_id = %id, staff_id = %staff.id, "widget created");
    let row = load(&clinic, org, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "widget": widget_json(&clinic, &row)? })),
    ))
}

async fn read(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    require_admin(&current.staff)?;
    let row = load(&clinic, current.staff.organisation_id, parse_id(&id)?).await?;
    Ok(Json(json!({ "widget": widget_json(&clinic, &row)? })))
}

async fn update(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<WidgetInput>,
) -> ApiResult<Json<Value>> {
    let staff = &current.staff;
    require_admin(staff)?;
    let org = staff.organisation_id;
    let id = parse_id(&id)?;
    load(&clinic, org, id).await?;
    let (name, settings, custom_css) = validated(&clinic, org, input).await?;
    clinic
        .store()
        .update_widget(org, id, &name, &settings, &custom_css, clinic.now())
        .await?;
    tracing::info!(widget_id = %id, staff_id = %staff.id, "widget updated");
    let row = load(&clinic, org, id).await?;
    Ok(Json(json!({ "widget": widget_json(&clinic, &row)? })))
}

async fn remove(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require_admin(&current.staff)?;
    let id = parse_id(&id)?;
    if !clinic
        .store()
        .delete_widget(current.staff.organisation_id, id)
        .await?
    {
        return Err(ApiError::NotFound("widget"));
    }
    tracing::info!(widget_id = %id, staff_id = %current.staff.id, "widget deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn put_image(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath((id, kind)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    require_admin(&current.staff)?;
    let org = current.staff.organisation_id;
    let id = parse_id(&id)?;
    let kind = ImageKind::parse(&kind).ok_or(ApiError::NotFound("image kind"))?;
    load(&clinic, org, id).await?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(image::allowed_type)
        .ok_or(ApiError::UnsupportedMediaType)?;
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("the image could not be read".into())
        }
    })?;
    if bytes.is_empty() {
        return Err(ApiError::invalid("the image is empty"));
    }
    if image::sniff(&bytes) != Some(declared) {
        return Err(ApiError::invalid(format!(
            "the file is not a valid {} image (only PNG, JPEG and WebP are accepted)",
            declared.trim_start_matches("image/").to_uppercase()
        )));
    }
    clinic
        .store()
        .put_widget_image(id, kind.as_str(), declared, &bytes, clinic.now())
        .await?;
    let row = load(&clinic, org, id).await?;
    Ok(Json(json!({ "widget": widget_json(&clinic, &row)? })))
}

async fn delete_image(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath((id, kind)): ApiPath<(String, String)>,
) -> ApiResult<Json<Value>> {
    require_admin(&current.staff)?;
    let org = current.staff.organisation_id;
    let id = parse_id(&id)?;
    let kind = ImageKind::parse(&kind).ok_or(ApiError::NotFound("image kind"))?;
    load(&clinic, org, id).await?;
    clinic
        .store()
        .delete_widget_image(id, kind.as_str())
        .await?;
    let row = load(&clinic, org, id).await?;
    Ok(Json(json!({ "widget": widget_json(&clinic, &row)? })))
}

impl Clinic {
    /// The origins allowed to frame widget `id` (for its CSP `frame-ancestors`), or `None` when
    /// there is no such widget. The strings were validated on write and are safe in a CSP.
    pub async fn widget_frame_origins(&self, id: &str) -> anyhow::Result<Option<Vec<String>>> {
        let Ok(id) = id.parse::<WidgetId>() else {
            return Ok(None);
        };
        let Some(row) = self.store().widget_by_id(id).await? else {
            return Ok(None);
        };
        let settings: Settings = serde_json::from_str(&row.settings)?;
        Ok(Some(settings.allowed_origins))
    }
}

/// Name of the demo organisation's widget.
pub const DEMO_WIDGET_NAME: &str = "Demo walk-in widget";

/// Ensures the demo organisation has one widget for `department`, frameable from any local port
/// (`http://127.0.0.1:*`, `http://localhost:*`). Idempotent (looked up by name).
pub(crate) async fn seed_demo_widget(
    store: &crate::Store,
    organisation_id: OrganisationId,
    department: crate::DepartmentId,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<WidgetId> {
    if let Some(w) = store
        .widgets_of(organisation_id)
        .await?
        .into_iter()
        .find(|w| w.name == DEMO_WIDGET_NAME)
    {
        return Ok(w.widget_id);
    }
    let settings = Settings {
        department_ids: vec![department],
        texts: settings::Texts {
            title: "Walk-in video consultation".into(),
            walk_in: "Choose a practitioner below to start a video consultation now.".into(),
            absent: "Nobody is available for walk-in consultations right now.".into(),
        },
        colours: settings::Colours::default(),
        intake: settings::Intake {
            accept_terms: true,
            terms_text: "I agree that my details are used for this consultation.".into(),
            ..settings::Intake::default()
        },
        allowed_origins: vec!["http://127.0.0.1:*".into(), "http://localhost:*".into()],
    };
    let json = serde_json::to_string(&settings)?;
    Ok(store
        .insert_widget(organisation_id, DEMO_WIDGET_NAME, &json, "", now)
        .await?)
}
