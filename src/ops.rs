//! The admin listener: `/healthz` (process alive), `/readyz` (database reachable and not
//! draining) and Prometheus `/metrics`. Bound separately from the public listener so it can be
//! kept private, and served on its own thread (`serve::spawn_admin`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};

use consultroom_clinic::Store;

/// What the admin endpoints look at.
#[derive(Clone)]
pub struct OpsState {
    pub registry: Registry,
    pub store: Store,
    pub draining: Arc<AtomicBool>,
    /// The main runtime: the database pool's connections live there, so the readiness ping
    /// runs there too (a ping that cannot get through in time is a "not ready" anyway).
    pub db_runtime: tokio::runtime::Handle,
}

/// Routes of the admin listener.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(s): State<OpsState>) -> impl IntoResponse {
    if s.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    let store = s.store.clone();
    let mut ping = s.db_runtime.spawn(async move { store.ping().await });
    match tokio::time::timeout(std::time::Duration::from_secs(2), &mut ping).await {
        Ok(Ok(Ok(()))) => (StatusCode::OK, "ready"),
        _ => {
            ping.abort();
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

async fn metrics(State(s): State<OpsState>) -> impl IntoResponse {
    let mut buf = Vec::new();
    let families = s.registry.gather();
    if TextEncoder::new().encode(&families, &mut buf).is_err() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            Vec::new(),
        );
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        buf,
    )
}
