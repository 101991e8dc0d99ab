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
}
