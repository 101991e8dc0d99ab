//! "Forgot your password?" (F24): `POST /auth/forgot-password {email}`, public.
//!
//! The answer is the same — `202` with the same body, at the same speed — for an active staff
//! member's address, an unknown one and a deactivated one: the handler only checks the address's
//! form and the rate limits, hands the address to a background task and answers. The task looks
//! the address up and, for an active staff member only, composes the mail and issues a
//! set-password link with it through
//! [`password_links::reissue_if_mailable`] (a reset, or a new invitation link when they never
//! set a password; earlier unused links are voided and the mail is recorded in the outbox, in one
//! transaction: `Store::replace_set_password_link`), then wakes the job worker. An unknown or
//! deactivated address does nothing, and so does an address the outbox refuses (the link would
//! reach no one).
//!
//! Why a task and not inline: the lookup, the template read and the transaction take time that
//! only a known address costs; done before the answer they would tell known from unknown
//! addresses by the response time (padding every answer to a fixed delay would have to guess a
//! bound). The task keeps the answer independent of the address by construction.
//!
//! Rate limits (in memory, the clinic's clock): per address (3 at once, one more per 10 min) and
//! per client address ([`ClientIp`], 10 at once, one more per minute). A refused request is `429`
//! with `Retry-After` — also the same for every kind of address, as the limit is keyed on what was
//! typed, not on whether it exists.
//!
//! At shutdown the server waits (up to 10 s, after HTTP has drained and before the job worker
//! stops) for the requests it answered ([`Clinic::finish_background`]); only a crash loses one
//! (the person asks again).
//!
//! Invariant: the address is never logged (the staff id of an issued link is).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::KeyedLimit;
use crate::client_ip::{ClientIp, source_key};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::password_links::{self, IssueError, Purpose, Recipient};
use crate::staff_admin::clean_email;
use crate::{Clinic, Route};

/// Requests per address at once.
pub const PER_ADDRESS_BURST: u32 = 3;
/// One more request per address after this long.
pub const PER_ADDRESS_PERIOD: Duration = Duration::from_secs(600);
/// Requests per client address at once.
pub const PER_SOURCE_BURST: u32 = 10;
/// One more request per client address after this long.
pub const PER_SOURCE_PERIOD: Duration = Duration::from_secs(60);

/// What every accepted request is told.
pub const ANSWER: &str = "If this address belongs to an active account, a link to set a new \
                          password is on its way. Check your e-mail.";

/// The limits and the count of requests the background task has finished.
pub(crate) struct ForgotPassword {
    by_address: KeyedLimit<String>,
    by_source: KeyedLimit<IpAddr>,
    handled: AtomicU64,
}

impl Default for ForgotPassword {
    fn default() -> Self {
        Self {
            by_address: KeyedLimit::new(PER_ADDRESS_BURST, PER_ADDRESS_PERIOD),
            by_source: KeyedLimit::new(PER_SOURCE_BURST, PER_SOURCE_PERIOD),
            handled: AtomicU64::new(0),
        }
    }
}

impl Clinic {
    /// How many accepted forgot-password requests the background task has finished (tests wait
    /// on it; a request that issued nothing counts too).
    pub fn forgot_password_handled(&self) -> u64 {
        self.inner.forgot_password.handled.load(Ordering::SeqCst)
    }
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![Route::new(
        "POST",
        "/auth/forgot-password",
        post(forgot_password),
    )]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForgotRequest {
    email: String,
}

async fn forgot_password(
    State(clinic): State<Clinic>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ForgotRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if req.email.len() > 254 {
        return Err(ApiError::InvalidField {
            field: "email",
            message: "email is not a valid address".into(),
        });
    }
    let email = clean_email(&req.email)?;
    let now = clinic.now();
    let state = &clinic.inner.forgot_password;
    let source = ip.map(source_key);
    let wait = state
        .by_address
        .wait(&email, now)
        .max(source.and_then(|s| state.by_source.wait(&s, now)));
    if let Some(retry_after_secs) = wait {
        tracing::info!("forgot-password request throttled");
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    state.by_address.take(&email, now);
    if let Some(s) = source {
        state.by_source.take(&s, now);
    }
    let background = clinic.clone();
    clinic.spawn_background(async move {
        if let Err(e) = handle(&background, &email).await {
            tracing::warn!(error = %e, "a forgot-password request failed");
        }
        background
            .inner
            .forgot_password
            .handled
            .fetch_add(1, Ordering::SeqCst);
    });
    Ok((StatusCode::ACCEPTED, Json(json!({ "message": ANSWER }))))
}

/// Issues a link for an active staff member with this address; nothing otherwise.
async fn handle(clinic: &Clinic, email: &str) -> Result<(), IssueError> {
    let Some(row) = clinic.store().staff_by_email(email).await? else {
        return Ok(());
    };
    if !row.active {
        return Ok(());
    }
    let purpose = if row.password_hash.is_empty() {
        Purpose::Invite
    } else {
        Purpose::Reset
    };
    let to = Recipient {
        organisation_id: row.organisation_id,
        department_id: row.department_id,
        staff_id: row.staff_id,
        name: &row.name,
        email: &row.email,
    };
    let issued = password_links::reissue_if_mailable(
        clinic.store(),
        &clinic.mail_stamp(),
        &clinic.config().public_url,
        purpose,
        &to,
    )
    .await?;
    if issued.is_some() {
        clinic.wake_jobs();
        tracing::info!(staff_id = %row.staff_id, "set-password link and mail issued on a forgot-password request");
    }
    Ok(())
}
