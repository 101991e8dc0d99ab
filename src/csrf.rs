//! Cross-origin request protection (CSRF) for the whole public listener, the algorithm of Go
//! 1.25's `http.CrossOriginProtection` (Filippo Valsorda, "CSRF"): browsers say where a request
//! comes from (`Sec-Fetch-Site`, else `Origin`), so a request another site makes with our
//! cookies is refused before any handler runs. Needed although the session cookie is
//! `SameSite=Strict`: another port of the same host is the same *site* (the cookie is sent) but
//! another *origin*.
//!
//! - `GET`, `HEAD`, `OPTIONS` pass (they change nothing).
//! - `Sec-Fetch-Site: same-origin` or `none` (typed by the user) passes; any other value is refused.
//! - Without `Sec-Fetch-Site` (older browsers), `Origin` decides: it passes when its host equals
//!   the request's `Host` (or `:authority`).
//! - The configured public URL's origin always passes (behind a proxy that rewrites `Host`).
//! - With neither header the request is not from a browser (API clients, curl): it passes.
//!
//! - A WebSocket upgrade (a `GET`) is checked like a state-changing request. `/ws` would be safe
//!   without it (it authenticates only by the join token in its first message, never by the
//!   cookie, so a cross-site socket gains nothing); the check keeps other sites' pages from
//!   holding sockets on our server at all.
//!
//! Invariant: a refusal is a 403 `cross_origin_request` in the JSON error shape, and nothing
//! downstream (handlers, body extraction, the upgrade) runs for it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use axum::middleware::Next;

/// The stable error code of a refused request.
pub const CODE: &str = "cross_origin_request";

/// The configuration of the check: the public URL's origin, trusted whatever `Host` says.
#[derive(Clone, Debug, Default)]
pub struct CrossOriginProtection {
    trusted: Option<String>,
}

/// Why a request was refused (for the log; the client sees one message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `Sec-Fetch-Site` was `same-site` or `cross-site` (or unknown).
    FetchSite,
    /// No `Sec-Fetch-Site`, and `Origin` names another host (or is `null`, or malformed).
    Origin,
}

impl CrossOriginProtection {
    /// Trusts the origin of `public_url` (`scheme://host[:port]`, default ports dropped).
    pub fn new(public_url: &str) -> Self {
        Self {
            trusted: crate::web::origin_of(public_url),
        }
    }

    /// Decides on the method and headers alone.
    pub fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), Refused> {
        // A WebSocket upgrade is a GET, but checked like a POST (defence in depth: `/ws` takes
        // no ambient authority anyway, see the module docs).
        let upgrade = headers
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) && !upgrade {
            return Ok(());
        }
        match headers.get("sec-fetch-site").map(HeaderValue::as_bytes) {
            None => {}
            Some(b"same-origin" | b"none") => return Ok(()),
            Some(_) => {
                return if self.is_trusted(headers) {
                    Ok(())
                } else {
                    Err(Refused::FetchSite)
                };
            }
        }
        let Some(origin) = headers.get(header::ORIGIN) else {
            // Neither header: not a browser (or a same-origin request of a very old one).
            return Ok(());
        };
        let host = uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()));
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.parse::<Uri>().ok())
            .filter(|u| u.scheme().is_some())
            .and_then(|u| u.authority().map(|a| a.as_str().to_owned()));
        // Host only, not scheme: an HTTP→HTTPS cross-origin request passes, as in Go (every
        // browser of the last years sends Sec-Fetch-Site; HSTS covers the rest).
        if let (Some(o), Some(h)) = (origin_host, host)
            && o.eq_ignore_ascii_case(h)
        {
            return Ok(());
        }
        if self.is_trusted(headers) {
            return Ok(());
        }
        Err(Refused::Origin)
    }

    fn is_trusted(&self, headers: &HeaderMap) -> bool {
        let (Some(trusted), Some(origin)) = (&self.trusted, headers.get(header::ORIGIN)) else {
            return false;
        };
        origin
            .to_str()
            .is_ok_and(|o| o.eq_ignore_ascii_case(trusted))
    }
}

/// The middleware: `axum::middleware::from_fn_with_state(Arc::new(protection), protect)`.
pub async fn protect(
    State(protection): State<Arc<CrossOriginProtection>>,
    req: Request,
    next: Next,
) -> Response<Body> {
    match protection.check(req.method(), req.uri(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(why) => {
            // No path, origin or address: the path may carry ids, the rest identifies people.
            tracing::info!(method = %req.method(), reason = ?why, "cross-origin request refused");
            refusal()
        }
    }
}

fn refusal() -> Response<Body> {
    let body = serde_json::json!({
        "error": {
            "code": CODE,
            "message": "cross-origin request refused",
        }
    });
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::FORBIDDEN;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "clinic.test:8080";

    fn headers(site: Option<&str>, origin: Option<&str>, host: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(s) = site {
            h.insert("sec-fetch-site", HeaderValue::from_str(s).unwrap());
        }
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        if let Some(host) = host {
            h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        }
        h
    }

    /// (method or `WS`, Sec-Fetch-Site, Origin, Host, allowed)
    type Row = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        bool,
    );

    /// method × Sec-Fetch-Site × Origin × Host → allowed?
    #[test]
    fn the_table() {
        let p = CrossOriginProtection::new("https://public.example/");
        let path: Uri = "/api/v1/auth/logout".parse().unwrap();
        let same = "http://clinic.test:8080";
        let evil = "http://evil.test";
        let sibling = "http://clinic.test:9999"; // same site, another origin
        #[rustfmt::skip]
        let table: &[Row] = &[
            // Safe methods pass whatever the headers say.
            ("GET", Some("cross-site"), Some(evil), Some(HOST), true),
            ("HEAD", Some("cross-site"), Some(evil), Some(HOST), true),
            ("OPTIONS", Some("cross-site"), Some(evil), Some(HOST), true),
            // Sec-Fetch-Site decides when present.
            ("POST", Some("same-origin"), None, Some(HOST), true),
            ("POST", Some("none"), None, Some(HOST), true),
            ("POST", Some("same-site"), Some(sibling), Some(HOST), false),
            ("POST", Some("cross-site"), Some(evil), Some(HOST), false),
            ("POST", Some("cross-site"), None, Some(HOST), false),
            ("POST", Some("bogus"), Some(same), Some(HOST), false),
            // ... even when Origin would match the host.
            ("PUT", Some("cross-site"), Some(same), Some(HOST), false),
            ("POST", Some("same-origin"), Some(evil), Some(HOST), true),
            // Without it, Origin against Host.
            ("POST", None, Some(same), Some(HOST), true),
            ("POST", None, Some("HTTP://Clinic.Test:8080"), Some(HOST), true),
            ("DELETE", None, Some(evil), Some(HOST), false),
            ("PATCH", None, Some(sibling), Some(HOST), false),
            ("POST", None, Some("null"), Some(HOST), false),
            ("POST", None, Some("not a url"), Some(HOST), false),
            ("POST", None, Some(same), None, false),
            ("POST", None, Some("http://clinic.test"), Some(HOST), false),
            // Other unsafe methods are checked too.
            ("PROPFIND", None, Some(evil), Some(HOST), false),
            // The public URL's origin is trusted whatever the Host (a proxy may rewrite it).
            ("POST", None, Some("https://public.example"), Some("127.0.0.1:8080"), true),
            ("POST", Some("cross-site"), Some("https://public.example"), Some(HOST), true),
            ("POST", None, Some("http://public.example"), Some(HOST), false),
            // Neither header: not a browser.
            ("POST", None, None, Some(HOST), true),
            ("DELETE", None, None, None, true),
            // WebSocket upgrades (GET + Upgrade: websocket) are checked.
            ("WS", Some("same-origin"), Some(same), Some(HOST), true),
            ("WS", None, Some(same), Some(HOST), true),
            ("WS", Some("cross-site"), Some(evil), Some(HOST), false),
            ("WS", Some("same-site"), Some(sibling), Some(HOST), false),
            ("WS", None, Some(evil), Some(HOST), false),
            ("WS", None, None, Some(HOST), true),
        ];
        for (method, site, origin, host, allowed) in table {
            let mut h = headers(*site, *origin, *host);
            let m = if *method == "WS" {
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                Method::GET
            } else {
                Method::from_bytes(method.as_bytes()).unwrap()
            };
            let got = p.check(&m, &path, &h);
            assert_eq!(
                got.is_ok(),
                *allowed,
                "{method} site={site:?} origin={origin:?} host={host:?}: {got:?}"
            );
        }
    }

    #[test]
    fn http2_authority_counts_as_the_host() {
        let p = CrossOriginProtection::default();
        let uri: Uri = "https://clinic.test/api/v1/x".parse().unwrap();
        let h = headers(None, Some("https://clinic.test"), None);
        assert_eq!(p.check(&Method::POST, &uri, &h), Ok(()));
        let h = headers(None, Some("https://evil.test"), None);
        assert_eq!(p.check(&Method::POST, &uri, &h), Err(Refused::Origin));
    }

    #[test]
    fn public_origin_normalised() {
        use crate::web::origin_of;
        assert_eq!(
            origin_of("https://Clinic.Example:443/base/").as_deref(),
            Some("https://clinic.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("not a url"), None);
    }

    #[tokio::test]
    async fn a_refusal_is_the_json_error() {
        let resp = refusal();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], CODE);
    }
}
