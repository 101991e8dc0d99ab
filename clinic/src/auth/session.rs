//! Staff sessions: a random id in an encrypted `cr_session` cookie, only its SHA-256 in the
//! `staff_session` table, with an absolute expiry, a sliding idle timeout and revocation.
//!
//! Invariant: the raw session id never touches the database or the logs.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::extract::PrivateCookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::{DateTime, Utc};

use crate::Clinic;
use crate::error::ApiError;
use crate::ids::{SessionId, StaffId};
use crate::staff::{Staff, StaffRow};
use crate::store::{Store, dispatch};
use crate::tokens::{random_token, sha256};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "cr_session";

/// The authenticated staff user of a request. Extracting it rejects with 401 `unauthenticated`.
#[derive(Clone, Debug)]
pub struct CurrentStaff {
    /// The staff user, freshly read from the database (role changes apply at once).
    pub staff: Staff,
    /// The session row this request authenticated with.
    pub session_id: SessionId,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    staff_session_id: SessionId,
    expires_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    revoked: bool,
    #[sqlx(flatten)]
    staff: StaffRow,
}

impl Store {
    async fn insert_session(
        &self,
        staff_id: StaffId,
        token_hash: &[u8],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<SessionId, sqlx::Error> {
        let id = SessionId::new();
        dispatch!(self, pool => {
            sqlx::query(
                "insert into staff_session (staff_session_id, staff_id, token_hash, expires_at, \
                 last_seen_at, revoked, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, false, $5, $5)",
            )
            .bind(id)
            .bind(staff_id)
            .bind(token_hash)
            .bind(expires_at)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(id)
    }

    async fn session_by_hash(&self, token_hash: &[u8]) -> Result<Option<SessionRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, SessionRow>(
                "select s.staff_session_id, s.expires_at, s.last_seen_at, s.revoked, \
                 st.staff_id, st.organisation_id, st.department_id, st.name, st.email, st.role, \
                 st.password_hash \
                 from staff_session s join staff st on st.staff_id = s.staff_id \
                 where s.token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await
        })
    }

    async fn touch_session(&self, id: SessionId, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "update staff_session set last_seen_at = $2, updated_at = $2 \
                 where staff_session_id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Marks a session revoked; later requests with its cookie get 401.
    pub async fn revoke_session(
        &self,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "update staff_session set revoked = true, updated_at = $2 where staff_session_id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }
}

/// Starts a session for `staff_id`; returns the cookie to set.
pub(crate) async fn start_session(
    clinic: &Clinic,
    staff_id: StaffId,
) -> Result<Cookie<'static>, ApiError> {
    let now = clinic.now();
    let token = random_token();
    let expires_at = now + clinic.config().session_absolute;
    clinic
        .store()
        .insert_session(staff_id, &sha256(&token), now, expires_at)
        .await?;
    Ok(session_cookie(clinic, token))
}

fn session_cookie(clinic: &Clinic, value: String) -> Cookie<'static> {
    // No Max-Age: a browser-session cookie; expiry is enforced server-side.
    Cookie::build((SESSION_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(clinic.config().is_https())
        .build()
}

/// A cookie that clears `cr_session` in the browser.
pub(crate) fn removal_cookie(clinic: &Clinic) -> Cookie<'static> {
    session_cookie(clinic, String::new())
}

/// Resolves the session cookie to a live session, sliding its idle timeout.
pub(crate) async fn authenticate(
    clinic: &Clinic,
    jar: &PrivateCookieJar,
) -> Result<CurrentStaff, ApiError> {
    let cookie = jar.get(SESSION_COOKIE).ok_or(ApiError::Unauthenticated)?;
    let row = clinic
        .store()
        .session_by_hash(&sha256(cookie.value()))
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let now = clinic.now();
    let idle_deadline = row.last_seen_at + clinic.config().session_idle;
    if row.revoked || now >= row.expires_at || now > idle_deadline {
        return Err(ApiError::Unauthenticated);
    }
    clinic
        .store()
        .touch_session(row.staff_session_id, now)
        .await?;
    Ok(CurrentStaff {
        staff: row.staff.into_staff()?,
        session_id: row.staff_session_id,
    })
}

impl FromRequestParts<Clinic> for CurrentStaff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, clinic: &Clinic) -> Result<Self, ApiError> {
        let jar =
            PrivateCookieJar::from_headers(&parts.headers, clinic.config().cookie_key.clone());
        authenticate(clinic, &jar).await
    }
}
