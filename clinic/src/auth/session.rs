//! Staff sessions: a random id in an encrypted `cr_session` cookie (`__Host-cr_session` under
//! https), only its SHA-256 in the `staff_session` table, with an absolute expiry, a sliding idle
//! timeout and revocation.
//!
//! Ending a session ([`Clinic::end_session`], [`Clinic::end_staff_sessions`]) revokes its row and
//! emits [`ClinicEvent::StaffSessionEnded`], so that the signalling hub closes the WebSockets
//! opened with it; staff join tokens carry the session's row id (`sid`) and are refused once it
//! has ended ([`Clinic::verify_join_token_live`](crate::Clinic::verify_join_token_live)).
//!
//! Invariant: the raw session id (the cookie's secret) never touches the database or the logs.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_extra::extract::PrivateCookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::{DateTime, Utc};

use crate::Clinic;
use crate::error::ApiError;
use crate::events::ClinicEvent;
use crate::ids::{SessionId, StaffId};
use crate::secrets::{random_token, sha256};
use crate::staff::{Staff, StaffRow};
use crate::store::{Store, dispatch};

/// Name of the session cookie on plain http (local development).
pub const SESSION_COOKIE: &str = "cr_session";
/// Name of the session cookie when the public URL is https: the `__Host-` prefix makes browsers
/// accept it only with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain cannot set or
/// shadow it.
pub const SESSION_COOKIE_HTTPS: &str = "__Host-cr_session";

/// The session cookie's name for this configuration (only that name is read).
pub fn session_cookie_name(config: &crate::ClinicConfig) -> &'static str {
    if config.is_https() {
        SESSION_COOKIE_HTTPS
    } else {
        SESSION_COOKIE
    }
}

/// Why staff sessions end. Logged; the signalling hub closes the sessions' connections the same
/// way whatever the reason (1008 `session_ended`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEndReason {
    /// The staff member logged out (that session only).
    Logout,
    /// The account was deactivated (every session).
    Deactivated,
    /// The password was changed (the other sessions) or set through a link (every session).
    PasswordChanged,
}

impl SessionEndReason {
    fn as_str(self) -> &'static str {
        match self {
            SessionEndReason::Logout => "logout",
            SessionEndReason::Deactivated => "deactivated",
            SessionEndReason::PasswordChanged => "password_changed",
        }
    }
}

/// The authenticated staff user of a request. Extracting it rejects with 401 `unauthenticated`.
#[derive(Clone, Debug)]
pub struct CurrentStaff {
    /// The staff user, freshly read from the database (role changes apply at once).
    pub staff: Staff,
    /// The session row this request authenticated with.
    pub session_id: SessionId,
}

#[derive(sqlx::FromRow)]
struct SessionState {
    expires_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    revoked: bool,
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
                 st.password_hash, st.active \
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

    async fn session_state(&self, id: SessionId) -> Result<Option<SessionState>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, SessionState>(
                "select expires_at, last_seen_at, revoked from staff_session \
                 where staff_session_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Revokes every unrevoked session of `staff_id` but `keep`; returns their ids.
    async fn revoke_staff_sessions(
        &self,
        staff_id: StaffId,
        keep: Option<SessionId>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar::<_, SessionId>(
                "update staff_session set revoked = true, updated_at = $2 \
                 where staff_id = $1 and revoked = false and staff_session_id <> $3 \
                 returning staff_session_id",
            )
            .bind(staff_id)
            .bind(now)
            .bind(keep.map(|k| k.to_string()).unwrap_or_default())
            .fetch_all(pool)
            .await
        })
    }

    /// Marks a session revoked; later requests with its cookie get 401. This alone does not
    /// close its WebSockets: end sessions with [`Clinic::end_session`].
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

/// Whether a session with these timestamps is live at `now`.
fn is_live(
    clinic: &Clinic,
    revoked: bool,
    expires_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    !revoked && now < expires_at && now <= last_seen_at + clinic.config().session_idle
}

impl Clinic {
    /// Ends one staff session (logout): its row is revoked, so its cookie and the join tokens
    /// minted with it are refused from now on, and the event subscriber is told, so that its
    /// WebSockets close. Ending an ended session again is harmless.
    pub async fn end_session(
        &self,
        session: SessionId,
        reason: SessionEndReason,
    ) -> Result<(), sqlx::Error> {
        self.store().revoke_session(session, self.now()).await?;
        tracing::info!(reason = reason.as_str(), "staff session ended");
        self.emit(ClinicEvent::StaffSessionEnded {
            session_id: session,
        });
        Ok(())
    }

    /// Ends every session of `staff_id` (deactivation, password change): each is revoked and
    /// its WebSockets close, as with [`Clinic::end_session`]. Returns how many were live.
    pub async fn end_staff_sessions(
        &self,
        staff_id: StaffId,
        reason: SessionEndReason,
    ) -> Result<usize, sqlx::Error> {
        self.end_sessions_but(staff_id, None, reason).await
    }

    /// Ends every session of `staff_id` except `keep` (a password change ends the others), as
    /// [`Clinic::end_staff_sessions`]. Returns how many were live.
    pub async fn end_other_staff_sessions(
        &self,
        staff_id: StaffId,
        keep: SessionId,
        reason: SessionEndReason,
    ) -> Result<usize, sqlx::Error> {
        self.end_sessions_but(staff_id, Some(keep), reason).await
    }

    async fn end_sessions_but(
        &self,
        staff_id: StaffId,
        keep: Option<SessionId>,
        reason: SessionEndReason,
    ) -> Result<usize, sqlx::Error> {
        let ended = self
            .store()
            .revoke_staff_sessions(staff_id, keep, self.now())
            .await?;
        tracing::info!(
            %staff_id,
            reason = reason.as_str(),
            sessions = ended.len(),
            "staff sessions ended"
        );
        for session in &ended {
            self.emit(ClinicEvent::StaffSessionEnded {
                session_id: *session,
            });
        }
        Ok(ended.len())
    }

    /// Whether staff session `session` is live now (not revoked, not past its absolute or idle
    /// limit). Does not slide the idle timeout.
    pub async fn staff_session_live(&self, session: SessionId) -> Result<bool, sqlx::Error> {
        let now = self.now();
        Ok(self
            .store()
            .session_state(session)
            .await?
            .is_some_and(|s| is_live(self, s.revoked, s.expires_at, s.last_seen_at, now)))
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
    Cookie::build((session_cookie_name(clinic.config()), value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(clinic.config().is_https())
        .build()
}

/// A cookie that clears the session cookie in the browser.
pub(crate) fn removal_cookie(clinic: &Clinic) -> Cookie<'static> {
    session_cookie(clinic, String::new())
}

/// Resolves the session cookie to a live session, sliding its idle timeout.
pub(crate) async fn authenticate(
    clinic: &Clinic,
    jar: &PrivateCookieJar,
) -> Result<CurrentStaff, ApiError> {
    let cookie = jar
        .get(session_cookie_name(clinic.config()))
        .ok_or(ApiError::Unauthenticated)?;
    let row = clinic
        .store()
        .session_by_hash(&sha256(cookie.value()))
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let now = clinic.now();
    if !row.staff.active || !is_live(clinic, row.revoked, row.expires_at, row.last_seen_at, now) {
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
