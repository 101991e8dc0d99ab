//! The browser side, embedded in the binary: the staff app at `/`, the patient page at `/join`,
//! and every other file of `web-client/` by its path. Security headers are set on every page:
//! nothing here may be framed, and only the room may use camera, microphone and screen capture.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, Uri, header};
use axum::routing::get;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web-client/"]
struct Assets;

/// Routes serving the embedded web client.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { serve("index.html") }))
        .route("/join", get(|| async { serve("join.html") }))
        // A set-password link (token in the fragment): only a page with a form.
        .route(
            "/set-password",
            get(|| async { serve("set-password.html") }),
        )
        .fallback(get(|uri: Uri| async move {
            serve(uri.path().trim_start_matches('/'))
        }))
}

/// Content-Security-Policy of every page we serve, as far as it is fixed: it may connect only to
/// our own origin. In CSP Level 3 `'self'` also matches `ws:`/`wss:` to the same host and port
/// (Chromium, Firefox, Safari 16+); [`csp`] adds that WebSocket origin explicitly for older
/// Safari.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; \
object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// [`CSP`] with the WebSocket origin of `public_url` (`ws://` for `http://`, `wss://` for
/// `https://`) added to `connect-src`. A URL without a plain host gets [`CSP`] unchanged.
pub fn csp(public_url: &str) -> String {
    match ws_origin(public_url) {
        Some(ws) => CSP.replacen(
            "connect-src 'self';",
            &format!("connect-src 'self' {ws};"),
            1,
        ),
        None => CSP.to_owned(),
    }
}

/// `scheme://host[:port]` of `url`, lower-case, without a default port.
pub fn origin_of(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = match (scheme.as_str(), uri.port_u16()) {
        ("http", Some(80)) | ("https", Some(443)) | (_, None) => String::new(),
        (_, Some(p)) => format!(":{p}"),
    };
    Some(format!("{scheme}://{host}{port}"))
}

fn ws_origin(public_url: &str) -> Option<String> {
    let origin = origin_of(public_url)?;
    let (scheme, rest) = origin.split_once("://")?;
    // Only a plain host may go into the header (no `;`, quotes or spaces from a bad flag).
    let plain = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
    if !rest.chars().all(plain) {
        return None;
    }
    match scheme {
        "http" => Some(format!("ws://{rest}")),
        "https" => Some(format!("wss://{rest}")),
        _ => None,
    }
}

fn serve(path: &str) -> Response<Body> {
    // Embedded names never contain "..", so a traversal attempt simply finds nothing.
    let Some(file) = Assets::get(path) else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from("not found"))
            .unwrap_or_default();
    };
    let mime = file.metadata.mimetype();
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let mut resp = Response::new(Body::from(file.data.into_owned()));
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // Names are not content-hashed (no build step), so browsers revalidate with the ETag.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// Headers added to every response of the HTTP listener served at `public_url`.
pub fn security_headers(public_url: &str) -> [(header::HeaderName, HeaderValue); 6] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&csp(public_url)).unwrap_or(HeaderValue::from_static(CSP)),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(
                "camera=(self), microphone=(self), display-capture=(self), geolocation=()",
            ),
        ),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_src_is_our_own_origin_only() {
        assert!(CSP.contains("connect-src 'self';"));
        assert_eq!(
            csp("https://Clinic.Example/"),
            CSP.replace(
                "connect-src 'self';",
                "connect-src 'self' wss://clinic.example;"
            )
        );
        assert!(csp("http://127.0.0.1:8080").contains("connect-src 'self' ws://127.0.0.1:8080;"));
        assert!(csp("https://clinic.example:8443").contains("wss://clinic.example:8443;"));
        assert!(csp("https://[::1]:8443").contains("wss://[::1]:8443;"));
        // Nothing but our own: no bare scheme, no wildcard.
        for url in [
            "https://clinic.example",
            "http://127.0.0.1:8080",
            "not a url",
        ] {
            let c = csp(url);
            let connect = c
                .split("; ")
                .find(|d| d.starts_with("connect-src"))
                .unwrap();
            assert!(
                !connect.contains("ws: ") && !connect.ends_with("ws:"),
                "{c}"
            );
            assert!(
                !connect.contains("wss: ") && !connect.ends_with("wss:"),
                "{c}"
            );
            assert!(!connect.contains('*'), "{c}");
        }
        assert_eq!(csp("not a url"), CSP);
        assert_eq!(csp("ftp://clinic.example"), CSP);
    }
}
