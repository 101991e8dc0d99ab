//! Public widget endpoints (no session; the widget page runs in visitors' browsers inside an
//! iframe, where third-party cookies are blocked): the public configuration, who is available now
//! (JSON and a Server-Sent Events stream), the stylesheet (colours + sanitised custom CSS), the
//! images, and walk-in visit creation (see [`super::visits`]).
//!
//! Invariants: nothing here reveals more than the widget shows (practitioner names and ids of the
//! widget's departments who are available now); streams are capped in number (over the server and
//! per source, see [`super::streams`]) and lifetime.

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, body::Body};
use serde_json::{Value, json};

use super::db::WidgetRow;
use super::image::ImageKind;
use super::lookup::{parse_settings, widget};
use super::settings::Settings;
use super::streams::StreamSlot;
use super::visits;
use crate::client_ip::ClientIp;
use crate::error::{ApiError, ApiPath, ApiResult};
use crate::ids::WidgetId;
use crate::{Clinic, Route};

/// How often a stream re-reads availability.
const STREAM_POLL: Duration = Duration::from_secs(3);
/// A stream ends after this long; `EventSource` reconnects by itself.
const STREAM_LIFETIME: Duration = Duration::from_secs(300);
/// `Retry-After` of a stream refused for want of a slot (the widget polls meanwhile).
const STREAM_RETRY_AFTER_SECS: u64 = 10;

/// Routes of the public widget API (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/public/widgets/{id}", get(config)),
        Route::new(
            "GET",
            "/public/widgets/{id}/availability",
            get(availability),
        ),
        Route::new(
            "GET",
            "/public/widgets/{id}/availability/stream",
            get(stream),
        ),
        Route::new("GET", "/public/widgets/{id}/style.css", get(stylesheet)),
        Route::new("GET", "/public/widgets/{id}/images/{kind}", get(image)),
        Route::new(
            "POST",
            "/public/widgets/{id}/visits",
            post(visits::create).layer(DefaultBodyLimit::max(visits::MAX_VISIT_BODY)),
        ),
    ]
}

async fn config(
    State(clinic): State<Clinic>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let (row, s) = widget(&clinic, &id).await?;
    let base = format!("/api/v1/public/widgets/{}", row.widget_id);
    Ok(Json(json!({
        "id": row.widget_id,
        "texts": s.texts,
        "colours": s.colours,
        "intake": s.intake,
        "allowed_origins": s.allowed_origins,
        "style_url": format!("{base}/style.css"),
        "logo_url": row.has_logo.then(|| format!("{base}/images/logo")),
        "background_url": row.has_background.then(|| format!("{base}/images/background")),
    })))
}

/// Who is available now, grouped by the widget's departments in the configured order.
pub(crate) async fn availability_json(
    clinic: &Clinic,
    row: &WidgetRow,
    settings: &Settings,
) -> ApiResult<Value> {
    let departments = clinic.store().departments_of(row.organisation_id).await?;
    let available = clinic.available_practitioners(row.organisation_id).await?;
    let mut any = false;
    let mut out = Vec::new();
    for id in &settings.department_ids {
        let Some(d) = departments.iter().find(|d| d.department_id == *id) else {
            continue; // deleted since the widget was saved
        };
        let practitioners: Vec<Value> = available
            .iter()
            .filter(|p| p.department_id == Some(*id))
            .map(|p| json!({ "id": p.staff_id, "name": p.name }))
            .collect();
        any |= !practitioners.is_empty();
        out.push(json!({ "id": d.department_id, "name": d.name, "practitioners": practitioners }));
    }
    Ok(json!({ "any_available": any, "departments": out }))
}

async fn availability(
    State(clinic): State<Clinic>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let (row, s) = widget(&clinic, &id).await?;
    Ok(Json(availability_json(&clinic, &row, &s).await?))
}

struct StreamState {
    clinic: Clinic,
    widget_id: WidgetId,
    last: Option<String>,
    started: Instant,
    _slot: StreamSlot,
}

/// One availability snapshot when it changed, `None` when the stream should end.
async fn next_event(
    mut st: StreamState,
) -> Option<(Result<Event, std::convert::Infallible>, StreamState)> {
    loop {
        if st.last.is_some() {
            tokio::time::sleep(STREAM_POLL).await;
        }
        if st.started.elapsed() > STREAM_LIFETIME {
            return None;
        }
        let row = st.clinic.store().widget_by_id(st.widget_id).await.ok()??;
        let settings = parse_settings(&row).ok()?;
        let data = match availability_json(&st.clinic, &row, &settings).await {
            Ok(v) => v.to_string(),
            Err(e) => {
                tracing::warn!(widget_id = %st.widget_id, error = %e, "availability stream failed");
                return None;
            }
        };
        if st.last.as_deref() != Some(data.as_str()) {
            let event = Event::default().event("availability").data(&data);
            st.last = Some(data);
            return Some((Ok(event), st));
        }
    }
}

async fn stream(
    State(clinic): State<Clinic>,
    ApiPath(id): ApiPath<String>,
    ClientIp(source): ClientIp,
) -> ApiResult<Response> {
    let (row, _) = widget(&clinic, &id).await?;
    // Per source first, then over the server: one client cannot take every slot.
    let slot = clinic
        .walkin_state()
        .streams
        .try_acquire(source)
        .map_err(|_| ApiError::RateLimited {
            retry_after_secs: STREAM_RETRY_AFTER_SECS,
        })?;
    let state = StreamState {
        clinic: clinic.clone(),
        widget_id: row.widget_id,
        last: None,
        started: Instant::now(),
        _slot: slot,
    };
    let events = futures_util::stream::unfold(state, next_event);
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // Tell proxies not to buffer the stream.
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

async fn stylesheet(
    State(clinic): State<Clinic>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let (row, s) = widget(&clinic, &id).await?;
    // Colours were validated as #rgb/#rrggbb and the custom CSS by the sanitiser on write.
    let css = format!(
        ":root {{ --cr-title-colour: {}; --cr-text-colour: {}; }}\n{}\n",
        s.colours.title, s.colours.text, row.custom_css
    );
    Ok(([(header::CONTENT_TYPE, "text/css; charset=utf-8")], css).into_response())
}

async fn image(
    State(clinic): State<Clinic>,
    ApiPath((id, kind)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let (row, _) = widget(&clinic, &id).await?;
    let kind = ImageKind::parse(&kind).ok_or(ApiError::NotFound("image"))?;
    let img = clinic
        .store()
        .widget_image(row.widget_id, kind.as_str())
        .await?
        .ok_or(ApiError::NotFound("image"))?;
    let mut resp = Response::new(Body::from(img.bytes));
    let ct = HeaderValue::from_str(&img.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    Ok(resp)
}
