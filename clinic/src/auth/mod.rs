//! Staff authentication: login, logout and the caller's profile.
//!
//! Invariant: a wrong password and an unknown e-mail produce byte-identical 401 responses and cost
//! the same Argon2 work; e-mails and passwords are never logged.

mod password;
mod session;
mod throttle;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum_extra::extract::PrivateCookieJar;
use serde::Deserialize;
use serde_json::json;

pub use password::{hash_password, verify_password};
pub(crate) use session::SessionListeners;
pub use session::{
    CurrentStaff, SESSION_COOKIE, SESSION_COOKIE_HTTPS, SessionEndReason, SessionEndedListener,
    session_cookie_name,
};
pub(crate) use throttle::LoginThrottle;

use crate::client_ip::ClientIp;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::{Clinic, Route};

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("POST", "/auth/login", post(login)),
        Route::new("POST", "/auth/logout", post(logout)),
        Route::new("GET", "/me", get(me)),
    ]
}

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    password: String,
}

/// Longest accepted password; longer input is refused without hashing (Argon2 cost is per byte).
const MAX_PASSWORD_LEN: usize = 1024;

async fn login(
    State(clinic): State<Clinic>,
    ClientIp(ip): ClientIp,
    jar: PrivateCookieJar,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    if req.email.len() > 254 || req.password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::InvalidCredentials);
    }
    // Password guessing is slowed per address and per account (failures only).
    let throttle = clinic.login_throttle();
    if let Err(retry_after_secs) = throttle.check(ip, &req.email) {
        tracing::info!("staff login throttled");
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    let row = clinic.store().staff_by_email(req.email.trim()).await?;
    let phc = row.as_ref().map(|r| r.password_hash.clone());
    let ok = password::verify_or_dummy(req.password, phc).await;
    let row = match row {
        Some(row) if ok => row,
        _ => {
            throttle.failed(ip, &req.email);
            tracing::info!("staff login refused");
            return Err(ApiError::InvalidCredentials);
        }
    };
    let staff = row.into_staff()?;
    let cookie = session::start_session(&clinic, staff.id).await?;
    tracing::info!(staff_id = %staff.id, "staff login");
    Ok((jar.add(cookie), Json(json!({ "staff": staff }))))
}

async fn logout(
    State(clinic): State<Clinic>,
    jar: PrivateCookieJar,
) -> ApiResult<impl IntoResponse> {
    match session::authenticate(&clinic, &jar).await {
        Ok(current) => {
            // Revokes the row and closes the WebSockets opened with this session.
            clinic
                .end_session(current.session_id, session::SessionEndReason::Logout)
                .await?;
            tracing::info!(staff_id = %current.staff.id, "staff logout");
        }
        // Logging out without a live session is not an error: the outcome is the same.
        Err(ApiError::Unauthenticated) => {}
        Err(other) => return Err(other),
    }
    let jar = jar.remove(session::removal_cookie(&clinic));
    Ok((jar, StatusCode::NO_CONTENT))
}

async fn me(current: CurrentStaff) -> Json<serde_json::Value> {
    let s = current.staff;
    Json(json!({
        "id": s.id,
        "name": s.name,
        "email": s.email,
        "role": s.role,
        "organisation_id": s.organisation_id,
        "department_id": s.department_id,
    }))
}
