//! First run (issue #12): what `consultroom admin create-organisation`, `admin invite-staff` and
//! `admin reset-password` do on the database, and `GET /setup/status`, which tells the login
//! screen that there is no organisation yet.
//!
//! Every command validates its input like the API does and writes in one transaction (nothing
//! half-created); each returns a one-time set-password link ([`crate::password_links`]) for the
//! caller to print, and records its mail (invitation or reset) in the outbox in the same
//! transaction. These functions run in the CLI process, not in the server: the running server's
//! job worker sends the mail at its next poll (no wake reaches it across processes), through its
//! `--smtp-url` if it has one. An address the outbox refuses is refused like bad input (nothing
//! written) for a new organisation or staff member; a reset of such an address still gets its
//! link, without a mail (`IssuedLink::mail` is `None`).

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::ids::{DepartmentId, OrganisationId, StaffId};
use crate::mail::{MailError, MailStamp, message_id_domain};
use crate::password_links::{self, IssueError, IssuedLink, Purpose, Recipient};
use crate::staff::{NewStaff, Role};
use crate::staff_admin::{clean_email, clean_name};
use crate::store::{Store, dispatch, is_unique_violation};
use crate::{Clinic, Route};

/// Why a first-run command failed, for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Bad input; nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<ApiError> for SetupError {
    fn from(e: ApiError) -> Self {
        SetupError::Invalid(e.to_string())
    }
}

impl From<IssueError> for SetupError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Database(e) => SetupError::Database(e),
            IssueError::Unmailable(MailError::InvalidAddress) => SetupError::Invalid(
                "no e-mail can be sent to this address (the mail library refuses it); nothing \
                 was written"
                    .into(),
            ),
            other => SetupError::Invalid(format!("{other}; nothing was written")),
        }
    }
}

/// A store error of a staff insert: a duplicate address, the database, or a refused mail.
fn insert_error(e: MailError) -> SetupError {
    match e {
        MailError::Database(e) if is_unique_violation(&e) => {
            SetupError::Invalid(DUPLICATE_EMAIL.into())
        }
        other => IssueError::from(other).into(),
    }
}

/// The outbox stamp of the CLI: its clock, and Message-IDs on the server's public host (what
/// the server's own [`Clinic::mail_stamp`](crate::Clinic::mail_stamp) gives).
fn stamp(now: DateTime<Utc>, public_url: &str) -> MailStamp {
    MailStamp {
        now,
        domain: message_id_domain(public_url),
        due: now,
    }
}

/// An organisation and its first admin, made by [`create_organisation`].
#[derive(Debug)]
pub struct CreatedOrganisation {
    /// The new organisation.
    pub organisation_id: OrganisationId,
    /// The admin's invitation link.
    pub link: IssuedLink,
}

impl Store {
    /// How many organisations exist.
    pub async fn organisation_count(&self) -> Result<i64, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar("select count(*) from organisation")
                .fetch_one(pool)
                .await
        })
    }

    /// The organisation with id or exact name `key` (a name shared by several is refused).
    async fn organisation_by_key(&self, key: &str) -> Result<Vec<OrganisationId>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar(
                "select organisation_id from organisation where organisation_id = $1 or name = $1 \
                 order by created_at limit 2",
            )
            .bind(key)
            .fetch_all(pool)
            .await
        })
    }
}

const DUPLICATE_EMAIL: &str = "a staff member with this e-mail address already exists";

/// Creates an organisation with one organisation admin (no password yet) and returns the admin's
/// set-password link. `admin_name` defaults to the e-mail's local part.
pub async fn create_organisation(
    store: &Store,
    now: DateTime<Utc>,
    public_url: &str,
    name: &str,
    admin_email: &str,
    admin_name: Option<&str>,
) -> Result<CreatedOrganisation, SetupError> {
    let name = clean_name("organisation name", name)?;
    let email = clean_email(admin_email)?;
    let admin_name = match admin_name {
        Some(n) => clean_name("admin name", n)?,
        None => email.split('@').next().unwrap_or("admin").to_owned(),
    };
    let organisation_id = OrganisationId::new();
    let staff_id = StaffId::new();
    let stamp = stamp(now, public_url);
    let to = Recipient {
        organisation_id,
        department_id: None,
        staff_id,
        name: &admin_name,
        email: &email,
    };
    let prepared = password_links::prepare(
        store,
        &stamp,
        public_url,
        Purpose::Invite,
        &to,
        Some(&name),
        None,
    )
    .await?;
    prepared.mail.validate().map_err(IssueError::from)?;
    let admin = NewStaff {
        organisation_id,
        department_id: None,
        name: &admin_name,
        email: &email,
        role: Role::OrganisationAdmin,
        password_hash: "",
    };
    let queued = store
        .insert_organisation_with_admin(
            &name,
            staff_id,
            &admin,
            &prepared.row,
            &prepared.mail,
            &stamp,
        )
        .await
        .map_err(insert_error)?;
    Ok(CreatedOrganisation {
        organisation_id,
        link: prepared.issued(staff_id, Some(queued)),
    })
}

/// Invites a staff member into the organisation with id or name `organisation` (and the
/// department with id or name `department`, if given); returns their set-password link.
#[allow(clippy::too_many_arguments)]
pub async fn invite_staff(
    store: &Store,
    now: DateTime<Utc>,
    public_url: &str,
    organisation: &str,
    email: &str,
    name: Option<&str>,
    role: &str,
    department: Option<&str>,
) -> Result<IssuedLink, SetupError> {
    let org = match store
        .organisation_by_key(organisation.trim())
        .await?
        .as_slice()
    {
        [one] => *one,
        [] => return Err(SetupError::Invalid("no such organisation".into())),
        _ => {
            return Err(SetupError::Invalid(
                "several organisations have this name: give its id".into(),
            ));
        }
    };
    let role: Role = role.parse().map_err(|_| {
        SetupError::Invalid(
            "--role must be organisation_admin, department_admin or practitioner".into(),
        )
    })?;
    let email = clean_email(email)?;
    let name = match name {
        Some(n) => clean_name("name", n)?,
        None => email.split('@').next().unwrap_or("staff").to_owned(),
    };
    let department_id = match department {
        None => None,
        Some(key) => {
            let key = key.trim();
            let by_id = match key.parse::<DepartmentId>() {
                Ok(id) if store.department_in_organisation(org, id).await? => Some(id),
                _ => None,
            };
            match by_id {
                Some(id) => Some(id),
                None => Some(
                    store
                        .find_department_by_name(org, key)
                        .await?
                        .ok_or_else(|| SetupError::Invalid("no such department".into()))?,
                ),
            }
        }
    };
    if role == Role::DepartmentAdmin && department_id.is_none() {
        return Err(SetupError::Invalid(
            "a department admin needs --department".into(),
        ));
    }
    let staff_id = StaffId::new();
    let stamp = stamp(now, public_url);
    let to = Recipient {
        organisation_id: org,
        department_id,
        staff_id,
        name: &name,
        email: &email,
    };
    let prepared =
        password_links::prepare(store, &stamp, public_url, Purpose::Invite, &to, None, None)
            .await?;
    prepared.mail.validate().map_err(IssueError::from)?;
    let new = NewStaff {
        organisation_id: org,
        department_id,
        name: &name,
        email: &email,
        role,
        password_hash: "",
    };
    let queued = store
        .insert_invited_staff(staff_id, &new, &prepared.row, &prepared.mail, &stamp)
        .await
        .map_err(insert_error)?;
    Ok(prepared.issued(staff_id, Some(queued)))
}

/// A password-reset link for the active staff member with `email` (an invitation link while
/// they have not set a password yet), with its mail; their earlier unused links stop working.
pub async fn reset_password(
    store: &Store,
    now: DateTime<Utc>,
    public_url: &str,
    email: &str,
) -> Result<IssuedLink, SetupError> {
    let email = clean_email(email)?;
    let row = store
        .staff_by_email(&email)
        .await?
        .ok_or_else(|| SetupError::Invalid("no staff member has this e-mail address".into()))?;
    if !row.active {
        return Err(SetupError::Invalid(
            "this staff member is deactivated: an admin must reactivate them first".into(),
        ));
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
    let link = password_links::reissue(
        store,
        &stamp(now, public_url),
        public_url,
        purpose,
        &to,
        None,
    )
    .await?;
    Ok(link)
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![Route::new("GET", "/setup/status", get(status))]
}

/// Whether the server has an organisation yet (no login is possible before); public.
async fn status(State(clinic): State<Clinic>) -> ApiResult<Json<serde_json::Value>> {
    let count = clinic.store().organisation_count().await?;
    Ok(Json(json!({ "organisation_exists": count > 0 })))
}
