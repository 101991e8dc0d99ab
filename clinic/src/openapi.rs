//! The OpenAPI 3.1 description of the clinic API, hand-written in `clinic/openapi.json` and
//! served at `GET /api/v1/openapi.json`. A test checks it lists exactly the routes the router serves.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Route;

/// The OpenAPI document.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![Route::new("GET", "/openapi.json", get(document))]
}

async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::OPENAPI_JSON;

    #[test]
    fn document_is_openapi_3_1() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("valid JSON");
        let paths = doc["paths"].as_object().expect("paths object");
        let mut documented = Vec::new();
        for (path, item) in paths {
            // Routes served by another part of the server (the signalling hub's file routes) are
            // checked by the composed server's tests (tests/it/files.rs).
            if item.get("x-served-by").is_some() {
                continue;
            }
            for method in item.as_object().expect("path item").keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    documented.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        let mut served: Vec<(String, String)> = crate::Clinic::routes()
            .into_iter()
            .map(|(m, p)| (m.to_string(), p))
            .collect();
        served.sort();
        documented.sort();
        assert_eq!(served, documented);
    }

    /// The responses every clinic route gives besides its own: `ApiJson` refuses a malformed body
    /// (400), an oversized one (413), a missing or non-JSON one (415) and a mistyped one (422); a
    /// route that needs a session answers 401 without one. The contract test
    /// (tests/contract/run.sh) checks the server against the document; this keeps a new route
    /// from leaving these out before that test runs.
    #[test]
    fn every_route_documents_the_errors_its_extractors_give() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("valid JSON");
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths object") {
            if item.get("x-served-by").is_some() {
                continue;
            }
            for (method, op) in item.as_object().expect("path item") {
                let Some(responses) = op.get("responses").and_then(|r| r.as_object()) else {
                    continue;
                };
                let mut need = Vec::new();
                if op["requestBody"]["content"]
                    .get("application/json")
                    .is_some()
                {
                    need.extend(["400", "413", "415", "422"]);
                }
                // Security requirements are alternatives; `{}` among them means none is needed.
                let security = op["security"].as_array();
                if security.is_some_and(|s| !s.is_empty() && s.iter().all(|r| r != &json!({}))) {
                    need.push("401");
                }
                for code in need {
                    if !responses.contains_key(code) {
                        missing.push(format!("{method} {path}: {code}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "undocumented responses: {missing:#?}");
    }
}
