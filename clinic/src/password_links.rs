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
//! Mail: every link is issued together with its mail (a staff invitation or a password reset,
//! composed from the organisation's templates by [`prepare`] *before* the transaction) and the
//! link row and the outbox row are written in **one** transaction
//! (`Store::insert_invited_staff`, `Store::insert_organisation_with_admin`,
//! [`Store::replace_set_password_link`]): a link exists exactly when its mail was recorded. The
//! API callers then wake the job worker ([`Clinic::wake_jobs`]); the CLI (`consultroom admin …`)
//! writes into the server's database from another process, so the running server's worker sends
//! it at its next poll. The link is also still returned to the admin (API) and printed (CLI).
//!
//! A mail the outbox refuses (lettre cannot parse the stored address): a new invitation is
//! refused before anything is written (`422`, field `email`; the CLI says so); a new link for an
//! existing staff member (an admin's "new link", `admin reset-password`) is issued without a
//! mail, for the admin to hand over; "forgot password" issues nothing (the link would reach no
//! one, and issuing it would void the earlier ones). See [`reissue`] and
//! [`reissue_if_mailable`].
//!
//! Staff members have no language yet: their mails are composed in English
//! ([`Language::En`]) until they do.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use axum_extra::extract::PrivateCookieJar;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{SessionEndReason, check_new_password, staff_json, start_session};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::ids::{DepartmentId, MailId, OrganisationId, SetPasswordLinkId, StaffId};
use crate::mail::{self, MailError, MailStamp, OutgoingMail, Queued};
use crate::org_settings::{DEFAULT_TIME_ZONE, OrganisationSettings};
use crate::secrets::{random_token, sha256};
use crate::store::{Store, dispatch};
use crate::templates::{ComposeContext, ComposeError, Language, StaffMail, StaffMailKind};
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

/// A link made for a staff member: the URL to hand over (never logged), its expiry and the mail
/// that carries it.
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
    /// The mail recorded with the link; `None` when the address cannot be mailed (only for a new
    /// link of an existing staff member, see [`reissue`]).
    pub mail: Option<LinkMail>,
}

/// The outbox row of a link's mail.
#[derive(Clone, Debug)]
pub struct LinkMail {
    /// Mail id (`GET /mail/{id}`).
    pub id: MailId,
    /// The recipient address.
    pub to: String,
}

/// Whom a link and its mail are for.
#[derive(Clone, Copy, Debug)]
pub struct Recipient<'a> {
    /// Their organisation.
    pub organisation_id: OrganisationId,
    /// Their department (the template set; which department admin sees the mail).
    pub department_id: Option<DepartmentId>,
    /// The staff member (also for one not stored yet: ids are made before the transaction).
    pub staff_id: StaffId,
    /// Name.
    pub name: &'a str,
    /// Address.
    pub email: &'a str,
}

/// A link and its composed mail, ready to be stored together.
#[derive(Clone, Debug)]
pub struct PreparedLink {
    /// The row to store.
    pub row: NewLink,
    /// `<public url>/set-password#<token>`.
    pub url: String,
    /// The staff invitation or password-reset mail carrying [`url`](Self::url).
    pub mail: OutgoingMail,
}

impl PreparedLink {
    /// The issued link, once stored (with `mail` when its mail was recorded).
    pub fn issued(&self, staff_id: StaffId, mail: Option<Queued>) -> IssuedLink {
        IssuedLink {
            url: self.url.clone(),
            expires_at: self.row.expires_at,
            purpose: self.row.purpose,
            staff_id,
            mail: mail.map(|q| LinkMail {
                id: q.id,
                to: self.mail.to_address.clone(),
            }),
        }
    }
}

/// What to do when the outbox refuses a link's mail (lettre cannot parse the stored address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unmailable {
    /// Store the link without a mail and return it: an admin hands it over.
    IssueWithoutMail,
    /// Store nothing (`Ok(None)`): "forgot password", whose link would reach no one.
    IssueNothing,
}

/// Why a link (and its mail) could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The outbox refuses the mail (e.g. lettre cannot parse the address); nothing was written.
    #[error("no e-mail can be sent to this address: {0}")]
    Unmailable(MailError),
    /// The mail could not be composed (an unknown stored time zone, or the template lookup).
    #[error(transparent)]
    Compose(ComposeError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<ComposeError> for IssueError {
    fn from(e: ComposeError) -> Self {
        match e {
            ComposeError::Database(e) => IssueError::Database(e),
            other => IssueError::Compose(other),
        }
    }
}

impl From<MailError> for IssueError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::Database(e) => IssueError::Database(e),
            other => IssueError::Unmailable(other),
        }
    }
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Unmailable(MailError::InvalidAddress) => ApiError::InvalidField {
                field: "email",
                message: "no e-mail can be sent to this address".into(),
            },
            IssueError::Unmailable(e) => e.into(),
            IssueError::Compose(e) => e.into(),
            IssueError::Database(e) => e.into(),
        }
    }
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

/// The time zone of `organisation_id` (its settings; the default for one never saved, or whose
/// stored settings do not parse — a set-password mail should not fail over them).
async fn organisation_time_zone(
    store: &Store,
    organisation_id: OrganisationId,
) -> Result<String, sqlx::Error> {
    let text = store.organisation_settings_json(organisation_id).await?;
    Ok(
        match text.map(|t| serde_json::from_str::<OrganisationSettings>(&t)) {
            None => DEFAULT_TIME_ZONE.to_owned(),
            Some(Ok(settings)) => settings.time_zone,
            Some(Err(e)) => {
                tracing::warn!(%organisation_id, error = %e, "stored organisation settings do not parse: the set-password mail uses the default time zone");
                DEFAULT_TIME_ZONE.to_owned()
            }
        },
    )
}

/// Makes a fresh link of `purpose` for `to` and composes its mail (staff invitation or password
/// reset) in the recipient's own language (`staff.language`, issue #14), else in the language of
/// the staff member making the link (an admin inviting someone new), else English. Read-only (the template, the organisation's
/// name and time zone): call it before the transaction that stores both. `new_organisation`: the
/// name of an organisation that is not stored yet (its time zone is the default).
///
/// This is [`templates::staff_mail`](crate::templates::staff_mail) on a [`Store`], so that the
/// CLI, which has no [`Clinic`], composes exactly like the API.
pub async fn prepare(
    store: &Store,
    stamp: &MailStamp,
    public_url: &str,
    purpose: Purpose,
    to: &Recipient<'_>,
    new_organisation: Option<&str>,
    created_by: Option<StaffId>,
) -> Result<PreparedLink, IssueError> {
    let (token, row) = new_link(purpose, stamp.now);
    let url = link_url(public_url, &token);
    let (organisation_name, time_zone) = match new_organisation {
        Some(name) => (name.to_owned(), DEFAULT_TIME_ZONE.to_owned()),
        None => (
            store
                .organisation_name(to.organisation_id)
                .await?
                .unwrap_or_default(),
            organisation_time_zone(store, to.organisation_id).await?,
        ),
    };
    let input = StaffMail {
        kind: match purpose {
            Purpose::Invite => StaffMailKind::Invitation,
            Purpose::Reset => StaffMailKind::PasswordReset,
        },
        organisation_id: to.organisation_id,
        organisation_name,
        department_id: to.department_id,
        staff_id: Some(to.staff_id),
        name: to.name.to_owned(),
        email: to.email.to_owned(),
        language: mail_language(store, to.staff_id, created_by).await?,
        link: url.clone(),
        expires_at: row.expires_at,
        time_zone,
        created_by,
    };
    let template = store
        .effective_template(
            to.organisation_id,
            to.department_id,
            input.kind.template_kind(),
            input.language,
        )
        .await?;
    let ctx = ComposeContext {
        now: stamp.now,
        domain: stamp.domain.clone(),
    };
    let mail = crate::templates::compose_staff(&input, &template, &ctx)?;
    Ok(PreparedLink { row, url, mail })
}

/// The language of a set-password mail to `staff_id` (see [`prepare`]).
async fn mail_language(
    store: &Store,
    staff_id: StaffId,
    created_by: Option<StaffId>,
) -> Result<Language, sqlx::Error> {
    if let Some(own) = store.staff_language(staff_id).await? {
        return Ok(own);
    }
    Ok(match created_by {
        Some(maker) => store.staff_language(maker).await?.unwrap_or(Language::En),
        None => Language::En,
    })
}

/// A new link of `purpose` for the existing staff member `to`, with its mail, voiding their
/// earlier unused links — all in one transaction. When the outbox refuses the mail (an address
/// lettre cannot parse), the link is stored without one (`mail: None`) for an admin to hand
/// over. Call [`Clinic::wake_jobs`] after it when running in the server.
pub async fn reissue(
    store: &Store,
    stamp: &MailStamp,
    public_url: &str,
    purpose: Purpose,
    to: &Recipient<'_>,
    created_by: Option<StaffId>,
) -> Result<IssuedLink, IssueError> {
    let issued = reissue_with(
        store,
        stamp,
        public_url,
        purpose,
        to,
        created_by,
        Unmailable::IssueWithoutMail,
    )
    .await?;
    Ok(issued.expect("IssueWithoutMail always stores the link"))
}

/// Like [`reissue`], but when the outbox refuses the mail nothing is stored (`Ok(None)`): for
/// "forgot password", whose link would reach no one (and would void the earlier ones).
pub async fn reissue_if_mailable(
    store: &Store,
    stamp: &MailStamp,
    public_url: &str,
    purpose: Purpose,
    to: &Recipient<'_>,
) -> Result<Option<IssuedLink>, IssueError> {
    reissue_with(
        store,
        stamp,
        public_url,
        purpose,
        to,
        None,
        Unmailable::IssueNothing,
    )
    .await
}

async fn reissue_with(
    store: &Store,
    stamp: &MailStamp,
    public_url: &str,
    purpose: Purpose,
    to: &Recipient<'_>,
    created_by: Option<StaffId>,
    unmailable: Unmailable,
) -> Result<Option<IssuedLink>, IssueError> {
    let prepared = prepare(store, stamp, public_url, purpose, to, None, created_by).await?;
    let mail = match prepared.mail.validate() {
        Ok(()) => Some(&prepared.mail),
        Err(MailError::Database(e)) => return Err(e.into()),
        Err(_) if unmailable == Unmailable::IssueNothing => {
            tracing::info!(staff_id = %to.staff_id, purpose = purpose.as_str(), "no set-password link issued: the stored address cannot be mailed");
            return Ok(None);
        }
        Err(_) => {
            tracing::info!(staff_id = %to.staff_id, purpose = purpose.as_str(), "set-password link issued without a mail: the stored address cannot be mailed");
            None
        }
    };
    let queued = store
        .replace_set_password_link(to.staff_id, &prepared.row, mail, stamp)
        .await?;
    Ok(Some(prepared.issued(to.staff_id, queued)))
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
    /// Stores `link` for `staff_id`, voids the staff member's earlier unused links and records
    /// `mail` (when given) in the outbox, in one transaction (a new invitation or reset replaces
    /// the previous one). A refused mail writes nothing.
    pub async fn replace_set_password_link(
        &self,
        staff_id: StaffId,
        link: &NewLink,
        mail: Option<&OutgoingMail>,
        stamp: &MailStamp,
    ) -> Result<Option<Queued>, MailError> {
        let now = stamp.now;
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
            let queued = match mail {
                Some(mail) => Some(mail::enqueue(&mut *tx, mail, stamp).await?),
                None => None,
            };
            tx.commit().await?;
            Ok(queued)
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
    let staff = staff_json(&clinic, &staff).await?;
    Ok((jar.add(cookie), Json(json!({ "staff": staff }))))
}
