//! One-time set-password links (F15, F24): a new staff member's invitation (valid 72 h) and a
//! password reset (valid 1 h). The link is `<public url>/set-password#<token>`: the token travels
//! in the fragment, so it reaches neither server logs nor `Referer` headers, and only its SHA-256
//! is stored (`set_password_link`, migration 0012).
//!
//! Mail scanners (Safe Links and the like) open every link, some in a real browser: opening the
//! page, and even `POST /auth/set-password/check` (which the page calls to greet the person), never
//! changes or uses up anything. Only `POST /auth/set-password` with a password uses the link: once,
//! before its expiry, for an active staff member; it sets the password, voids the staff member's
//! other unused links, ends their sessions (so a reset locks out whoever had the old password) and
//! logs the person in.
//!
//! Mail: until the outbox exists, the link is returned to the admin (API) or printed (CLI).
//! [`queue_set_password_mail`] is the one place where the mail will be enqueued.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum_extra::extract::PrivateCookieJar;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{SessionEndReason, check_new_password, start_session};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::ids::{OrganisationId, SetPasswordLinkId, StaffId};
use crate::secrets::{random_token, sha256};
use crate::store::{Store, dispatch};
use crate::{Clinic, Route};

/// How long an invitation link is valid.
pub const INVITE_VALID_FOR: Duration = Duration::hours(72);
/// How long a password-reset link is valid.
pub const RESET_VALID_FOR: Duration = Duration::hours(1);
/// Longest accepted token (ours are 43 characters); longer input is refused unread.
const MAX_TOKEN_LEN: usize = 128;

/// Why a link was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A new staff member sets their first password.
    Invite,
    /// A staff member sets a new password.
    Reset,
}

impl Purpose {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Invite => "invite",
            Purpose::Reset => "reset",
        }
    }

    fn valid_for(self) -> Duration {
        match self {
            Purpose::Invite => INVITE_VALID_FOR,
            Purpose::Reset => RESET_VALID_FOR,
        }
    }
}

/// A link about to be stored: everything but the token itself.
#[derive(Clone, Debug)]
pub struct NewLink {
    /// Row id.
    pub id: SetPasswordLinkId,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Invite or reset.
    pub purpose: Purpose,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A link made for a staff member: the URL to hand over (never logged) and its expiry.
#[derive(Clone, Debug)]
pub struct IssuedLink {
    /// `<public url>/set-password#<token>`.
    pub url: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Invite or reset.
    pub purpose: Purpose,
    /// Whom it is for.
    pub staff_id: StaffId,
}

/// A fresh token and the row that stores its digest.
pub fn new_link(purpose: Purpose, now: DateTime<Utc>) -> (String, NewLink) {
    let token = random_token();
    let link = NewLink {
        id: SetPasswordLinkId::new(),
        token_hash: sha256(&token),
        purpose,
        expires_at: now + purpose.valid_for(),
    };
    (token, link)
}

/// The URL of a link with `token` on the server at `public_url`.
pub fn link_url(public_url: &str, token: &str) -> String {
    format!("{}/set-password#{token}", public_url.trim_end_matches('/'))
}

/// Where the staff invitation or password-reset mail will be enqueued once the outbox exists
/// (issue #12, the e-mail slice): today it only records that a link was issued (no address, no
/// token) and the caller shows or prints `link.url`. The outbox insert belongs in the same
/// transaction as the link row (`Store::insert_invited_staff`, `Store::replace_set_password_link`,
/// `Store::insert_organisation_with_admin`).
pub fn queue_set_password_mail(link: &IssuedLink) {
    tracing::info!(
        staff_id = %link.staff_id,
        purpose = link.purpose.as_str(),
        "set-password link issued (no mail sent: the outbox does not exist yet)"
    );
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    set_password_link_id: SetPasswordLinkId,
    staff_id: StaffId,
    organisation_id: OrganisationId,
    purpose: String,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    active: bool,
    name: String,
    email: String,
}

/// Inserts `link` for `staff_id` on an open transaction (used by the staff inserts).
macro_rules! insert_link {
    ($tx:expr, $staff_id:expr, $link:expr, $now:expr) => {
        sqlx::query(
            "insert into set_password_link (set_password_link_id, staff_id, token_hash, purpose, \
             expires_at, used_at, created_at) values ($1, $2, $3, $4, $5, null, $6)",
        )
        .bind($link.id)
        .bind($staff_id)
        .bind(&$link.token_hash)
        .bind($link.purpose.as_str())
        .bind($link.expires_at)
        .bind($now)
        .execute(&mut *$tx)
        .await
    };
}
pub(crate) use insert_link;

impl Store {
    /// Stores `link` for `staff_id` and voids the staff member's earlier unused links, in one
    /// transaction (a new invitation or reset replaces the previous one).
    pub async fn replace_set_password_link(
        &self,
        staff_id: StaffId,
        link: &NewLink,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "update set_password_link set used_at = $2 where staff_id = $1 and used_at is null",
            )
            .bind(staff_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_link!(tx, staff_id, link, now)?;
            tx.commit().await
        })
    }

    async fn set_password_link(&self, hash: &[u8]) -> Result<Option<LinkRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, LinkRow>(
                "select l.set_password_link_id, l.staff_id, s.organisation_id, l.purpose, \
                 l.expires_at, l.used_at, s.active, s.name, s.email \
                 from set_password_link l join staff s on s.staff_id = l.staff_id \
                 where l.token_hash = $1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await
        })
    }

    /// Uses link `id` (unused, unexpired, staff active) and sets the staff member's password, in
    /// one transaction; the staff member's other unused links are voided. `false` when the link
    /// could not be used (another request used it first, or it expired meanwhile).
    async fn use_set_password_link(
        &self,
        id: SetPasswordLinkId,
        staff_id: StaffId,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let used = sqlx::query(
                "update set_password_link set used_at = $2 \
                 where set_password_link_id = $1 and used_at is null and expires_at > $2 \
                 and exists (select 1 from staff s where s.staff_id = set_password_link.staff_id \
                 and s.active)",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if used != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("update staff set password_hash = $2, updated_at = $3 where staff_id = $1")
                .bind(staff_id)
                .bind(password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "update set_password_link set used_at = $2 where staff_id = $1 and used_at is null",
            )
            .bind(staff_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("POST", "/auth/set-password/check", post(check)),
        Route::new("POST", "/auth/set-password", post(set_password)),
    ]
}

/// A link that may be used now.
struct UsableLink {
    row: LinkRow,
}

/// Looks a token up: unknown → 404 `not_found`; used, expired or for a deactivated account →
/// 410 `link_expired`.
async fn usable(clinic: &Clinic, token: &str) -> ApiResult<UsableLink> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(ApiError::NotFound("set-password link"));
    }
    let row = clinic
        .store()
        .set_password_link(&sha256(token))
        .await?
        .ok_or(ApiError::NotFound("set-password link"))?;
    if row.used_at.is_some() || row.expires_at <= clinic.now() || !row.active {
        return Err(ApiError::LinkExpired);
    }
    Ok(UsableLink { row })
}

#[derive(Deserialize)]
struct CheckRequest {
    token: String,
}

/// Whom a link is for, so the page can greet them; uses nothing up.
async fn check(
    State(clinic): State<Clinic>,
    ApiJson(req): ApiJson<CheckRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let link = usable(&clinic, &req.token).await?.row;
    Ok(Json(json!({
        "name": link.name,
        "email": link.email,
        "purpose": link.purpose,
        "expires_at": link.expires_at,
    })))
}

#[derive(Deserialize)]
struct SetPasswordRequest {
    token: String,
    password: String,
}

/// Uses a link: sets the password, ends the staff member's sessions, logs them in.
async fn set_password(
    State(clinic): State<Clinic>,
    jar: PrivateCookieJar,
    ApiJson(req): ApiJson<SetPasswordRequest>,
) -> ApiResult<impl IntoResponse> {
    check_new_password(&req.password).map_err(|message| ApiError::InvalidField {
        field: "password",
        message,
    })?;
    let link = usable(&clinic, &req.token).await?.row;
    let hash = clinic.hash_password(req.password).await?;
    if !clinic
        .store()
        .use_set_password_link(
            link.set_password_link_id,
            link.staff_id,
            &hash,
            clinic.now(),
        )
        .await?
    {
        return Err(ApiError::LinkExpired);
    }
    // Whoever held the old password (or a session) is out, and their WebSockets close.
    clinic
        .end_staff_sessions(link.staff_id, SessionEndReason::PasswordChanged)
        .await?;
    tracing::info!(staff_id = %link.staff_id, purpose = %link.purpose, "password set through a link");
    let staff = clinic
        .store()
        .staff_by_id(link.staff_id)
        .await?
        .filter(|s| s.organisation_id == link.organisation_id)
        .ok_or(ApiError::NotFound("staff member"))?
        .into_staff()?;
    let cookie = start_session(&clinic, staff.id).await?;
    Ok((jar.add(cookie), Json(json!({ "staff": staff }))))
}
