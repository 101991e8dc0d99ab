//! Staff authentication: login, logout, the caller's profile and staff join tokens
//! (`join.rs`: `POST /signalling/token`, the session check of a staff token).
//!
//! Invariant: a wrong password and an unknown e-mail produce byte-identical 401 responses and cost
//! the same Argon2 work; every Argon2 run of a request goes through the bounded password-check
//! pool (`hasher.rs`), after the attempt has taken its throttle cells (`throttle.rs`); e-mails and
//! passwords are never logged.

mod device;
mod hasher;
mod join;
mod password;
mod session;
mod throttle;

pub(crate) use session::start_session;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum_extra::extract::PrivateCookieJar;
use serde::Deserialize;
use serde_json::json;

pub use device::{DEVICE_COOKIE, DEVICE_COOKIE_HTTPS};
pub use hasher::PasswordCheckStats;
pub(crate) use hasher::PasswordPool;
pub use password::{
    MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, check_new_password, hash_password, verify_password,
};
pub use session::{
    CurrentStaff, SESSION_COOKIE, SESSION_COOKIE_HTTPS, SessionEndReason, session_cookie_name,
};
pub(crate) use throttle::{KeyedLimit, LoginThrottle};

use crate::client_ip::ClientIp;
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::staff::Staff;
use crate::{Clinic, Route};
use throttle::Client;

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("POST", "/auth/login", post(login)),
        Route::new("POST", "/auth/logout", post(logout)),
        Route::new("GET", "/me", get(me)),
        Route::new("GET", "/auth/session", get(session_state)),
        Route::new("POST", "/signalling/token", post(join::signalling_token)),
    ]
}

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    password: String,
}

/// Longest accepted password; longer input is refused without hashing (Argon2 cost is per byte).
const MAX_PASSWORD_LEN: usize = MAX_PASSWORD_BYTES;

/// Seconds a login refused because every password-check slot is taken should wait.
const BUSY_RETRY_SECS: u64 = 1;

async fn login(
    State(clinic): State<Clinic>,
    ClientIp(ip): ClientIp,
    jar: PrivateCookieJar,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    if req.email.len() > 254 || req.password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::InvalidCredentials);
    }
    let now = clinic.now();
    let throttle = clinic.login_throttle();
    let untrusted = Client::Untrusted {
        ip,
        email: &req.email,
    };
    let throttled = |retry_after_secs| {
        tracing::info!("staff login throttled");
        ApiError::RateLimited { retry_after_secs }
    };
    // Each attempt takes its failure cells before anything else: without a device cookie even
    // before the lookup, so a blocked client costs nothing.
    let devices = device::read(&jar, &clinic, now);
    let early = if devices.is_empty() {
        Some(throttle.reserve(untrusted, now).map_err(throttled)?)
    } else {
        None
    };
    // A deactivated account, or an invited one whose password is not set yet, is refused exactly
    // like an unknown e-mail (the dummy hash is checked).
    let row = clinic
        .store()
        .staff_by_email(req.email.trim())
        .await?
        .filter(|r| r.active && !r.password_hash.is_empty());
    let attempt = match early {
        Some(attempt) => attempt,
        None => {
            let trusted = row
                .as_ref()
                .and_then(|r| devices.iter().find(|d| d.staff_id == r.staff_id));
            let client = match trusted {
                Some(d) => Client::Device(d.nonce),
                None => Client::Untrusted {
                    ip,
                    email: &req.email,
                },
            };
            throttle.reserve(client, now).map_err(throttled)?
        }
    };
    let phc = row.as_ref().map(|r| r.password_hash.clone());
    let ok = match clinic
        .password_pool()
        .verify_or_dummy(req.password, phc)
        .await
    {
        Ok(ok) => ok,
        Err(hasher::Busy) => {
            // Nothing was checked: the attempt does not count.
            attempt.give_back(clinic.now());
            tracing::info!("staff login refused: password checks busy");
            return Err(ApiError::RateLimited {
                retry_after_secs: BUSY_RETRY_SECS,
            });
        }
    };
    let row = match row {
        Some(row) if ok => row,
        _ => {
            // The attempt's cells stay taken.
            drop(attempt);
            tracing::info!("staff login refused");
            return Err(ApiError::InvalidCredentials);
        }
    };
    attempt.give_back(clinic.now());
    let staff = row.into_staff()?;
    let cookie = session::start_session(&clinic, staff.id).await?;
    let device_cookie = device::issue(&clinic, devices, staff.id, now);
    tracing::info!(staff_id = %staff.id, "staff login");
    let staff = staff_json(&clinic, &staff).await?;
    Ok((
        jar.add(cookie).add(device_cookie),
        Json(json!({ "staff": staff })),
    ))
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

/// `GET /auth/session`: whether this browser is signed in (and as whom), always 200 — the staff
/// app asks this on load, so a signed-out visitor's console shows no failed request (issue #14).
async fn session_state(
    State(clinic): State<Clinic>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Json<serde_json::Value>> {
    let jar = PrivateCookieJar::from_headers(&headers, clinic.config().cookie_key.clone());
    match session::authenticate(&clinic, &jar).await {
        Ok(current) => {
            let Json(me) = me(State(clinic), current).await?;
            Ok(Json(json!({ "signed_in": true, "me": me })))
        }
        Err(ApiError::Unauthenticated) => Ok(Json(json!({ "signed_in": false }))),
        Err(e) => Err(e),
    }
}

/// `GET /me`: who is signed in, with the language they chose for the staff app (`null`: none
/// chosen, the app follows the browser).
async fn me(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(staff_json(&clinic, &current.staff).await?))
}

/// The signed-in staff member as `GET /me`, the login and a set-password link answer it
/// (`Staff` in the OpenAPI document), with the language they chose for the staff app.
pub(crate) async fn staff_json(clinic: &Clinic, s: &Staff) -> ApiResult<serde_json::Value> {
    let language = clinic.store().staff_language(s.id).await?;
    Ok(json!({
        "id": s.id,
        "name": s.name,
        "email": s.email,
        "role": s.role,
        "organisation_id": s.organisation_id,
        "department_id": s.department_id,
        "language": language,
    }))
}
