//! The walk-in widget page, embedded in the binary: `/widget/{id}` (the iframe page) and
//! `/widget/assets/{file}` (its script and stylesheet), from `widget/`.
//!
//! Invariants: this router sets every security header itself and is merged *after* the global
//! header layers, so the widget page gets `frame-ancestors 'self' <the widget's allowed
//! origins>` and no `X-Frame-Options`, while every other page keeps `frame-ancestors 'none'` and
//! `X-Frame-Options: DENY`. The origins were validated by the clinic on write (strict
//! `scheme://host[:port]`, no spaces, quotes or semicolons). An unknown widget is a 404 that may not
//! be framed.

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::routing::get;
use consultroom_clinic::Clinic;
use rust_embed::RustEmbed;
use tower_http::trace::TraceLayer;

use crate::web;

#[derive(RustEmbed)]
#[folder = "widget/"]
struct Assets;

/// CSP of the widget page, before `frame-ancestors`: it loads only our own script, styles and
/// images (plus inline `data:` images from custom CSS), and talks only to our own API.
const WIDGET_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'";

/// Routes serving the widget. Merge after the global security-header layers.
pub fn router(clinic: Clinic) -> Router {
    Router::new()
        .route("/widget/{id}", get(page))
        .route("/widget/assets/{file}", get(asset))
        .with_state(clinic)
        .layer(DefaultBodyLimit::max(1024))
        .layer(TraceLayer::new_for_http())
}

/// The `Content-Security-Policy` of widget `origins`.
pub fn page_csp(origins: &[String]) -> String {
    let mut csp = format!("{WIDGET_CSP}; frame-ancestors 'self'");
    for o in origins {
        csp.push(' ');
        csp.push_str(o);
    }
    csp
}

async fn page(State(clinic): State<Clinic>, Path(id): Path<String>) -> Response<Body> {
    let origins = match clinic.widget_frame_origins(&id).await {
        Ok(Some(origins)) => origins,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "loading widget origins failed");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                web::CSP,
            );
        }
    };
    let Some(file) = Assets::get("index.html") else {
        return not_found();
    };
    let mut resp = Response::new(Body::from(file.data.into_owned()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    match HeaderValue::from_str(&page_csp(&origins)) {
        Ok(v) => h.insert(header::CONTENT_SECURITY_POLICY, v),
        // Cannot happen with validated origins; refuse framing rather than fail open.
        Err(_) => h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(web::CSP),
        ),
    };
    common_headers(&mut resp);
    resp
}

async fn asset(Path(file): Path<String>) -> Response<Body> {
    // Only the page's script and stylesheets are assets (not the README, not the page itself).
    if !(file.ends_with(".js") || file.ends_with(".css")) {
        return not_found();
    }
    let Some(content) = Assets::get(&file) else {
        return not_found();
    };
    let mut resp = Response::new(Body::from(content.data.into_owned()));
    if let Ok(v) = HeaderValue::from_str(content.metadata.mimetype()) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    let etag = format!("\"{}\"", hex::encode(&content.metadata.sha256_hash()[..16]));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(web::CSP),
    );
    resp.headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    common_headers(&mut resp);
    resp
}

fn not_found() -> Response<Body> {
    plain(StatusCode::NOT_FOUND, "not found", web::CSP)
}

fn plain(status: StatusCode, text: &'static str, csp: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    common_headers(&mut resp);
    resp
}

/// The global security headers other than CSP and `X-Frame-Options`; the widget needs no camera,
/// microphone or other powerful features.
fn common_headers(resp: &mut Response<Body>) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), display-capture=(), geolocation=()"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_lists_self_and_the_origins() {
        let csp = page_csp(&[
            "https://www.clinic.test".into(),
            "http://127.0.0.1:*".into(),
        ]);
        assert!(csp.ends_with("frame-ancestors 'self' https://www.clinic.test http://127.0.0.1:*"));
        assert!(csp.contains("script-src 'self'"));
        assert_eq!(
            page_csp(&[]).rsplit("; ").next(),
            Some("frame-ancestors 'self'")
        );
        assert!(Assets::get("index.html").is_some());
        assert!(Assets::get("widget.js").is_some());
    }
}
