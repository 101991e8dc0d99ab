//! Staff and department administration (F1, F2, F5, F15): list, invite (with a set-password
//! link), change role, move between departments, deactivate and reactivate staff; create, rename
//! and delete departments.
//!
//! Who may do what: an organisation admin everything in their organisation; a department admin
//! the practitioners and department admins of their own department (invite into it, change
//! between those two roles, deactivate, reactivate; not move, not touch organisation admins); a
//! practitioner nothing here. Staff outside the caller's reach are a 404, like another
//! organisation's. Nobody deactivates themself, and an organisation always keeps one active
//! organisation admin: the check and the change are one transaction that first writes the
//! organisation row, so two concurrent demotions cannot both pass (a row lock on PostgreSQL, the
//! write lock on SQLite).
//!
//! Deactivation ends every session of the staff member, which closes their WebSockets at once
//! ([`Clinic::end_staff_sessions`]); their login is refused from then on.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{CurrentStaff, SessionEndReason};
use crate::clients::is_valid_email;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::ids::{DepartmentId, OrganisationId, StaffId};
use crate::mail::{self, MailError, MailStamp, OutgoingMail, Queued};
use crate::password_links::{
    self, IssueError, IssuedLink, NewLink, Purpose, Recipient, insert_link,
};
use crate::staff::{NewStaff, Role, Staff};
use crate::store::{Store, dispatch, is_unique_violation};
use crate::{Clinic, Route};

/// Longest staff or department name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A staff member as the administration pages show them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StaffEntry {
    /// Staff id.
    #[sqlx(rename = "staff_id")]
    pub id: StaffId,
    /// Display name.
    pub name: String,
    /// Login e-mail.
    pub email: String,
    /// Role (`organisation_admin`, `department_admin`, `practitioner`).
    pub role: String,
    /// Department, if any.
    pub department_id: Option<DepartmentId>,
    /// Phone number ("" when none).
    pub phone: String,
    /// False once deactivated.
    pub active: bool,
    /// True until the staff member has set a password through their invitation.
    pub invitation_pending: bool,
    /// Whether a profile photo is stored.
    pub has_photo: bool,
}

/// A department with its number of staff members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DepartmentEntry {
    /// Department id.
    #[sqlx(rename = "department_id")]
    pub id: DepartmentId,
    /// Name.
    pub name: String,
    /// Staff members (active or not) placed in it.
    pub staff_count: i64,
}

macro_rules! entry_select {
    () => {
        "select s.staff_id, s.name, s.email, s.role, s.department_id, s.phone, s.active, \
         (s.password_hash = '') as invitation_pending, \
         exists (select 1 from staff_photo p where p.staff_id = s.staff_id) as has_photo \
         from staff s "
    };
}

/// What a guarded staff change does.
enum Change {
    Role(Role),
    Department(Option<DepartmentId>),
    Active(bool),
}

/// Result of a guarded change.
pub(crate) enum Changed {
    Done,
    /// It would leave the organisation without an active organisation admin.
    LastAdmin,
}

impl Store {
    /// Staff of `organisation_id` (of one department when `department` is given), by name.
    pub async fn staff_entries(
        &self,
        organisation_id: OrganisationId,
        department: Option<DepartmentId>,
    ) -> Result<Vec<StaffEntry>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, StaffEntry>(concat!(
                entry_select!(),
                "where s.organisation_id = $1 and ($2 = '' or s.department_id = $2) \
                 order by s.name, s.staff_id"
            ))
            .bind(organisation_id)
            .bind(department.map(|d| d.to_string()).unwrap_or_default())
            .fetch_all(pool)
            .await
        })
    }

    /// One staff member of `organisation_id`.
    pub async fn staff_entry(
        &self,
        organisation_id: OrganisationId,
        staff_id: StaffId,
    ) -> Result<Option<StaffEntry>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, StaffEntry>(concat!(
                entry_select!(),
                "where s.organisation_id = $1 and s.staff_id = $2"
            ))
            .bind(organisation_id)
            .bind(staff_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Creates staff member `id` without a password, their invitation link and the invitation
    /// `mail` in the outbox, in one transaction. A duplicate e-mail is a unique violation and a
    /// refused mail a [`MailError`]: either creates nothing.
    pub async fn insert_invited_staff(
        &self,
        id: StaffId,
        new: &NewStaff<'_>,
        link: &NewLink,
        mail: &OutgoingMail,
        stamp: &MailStamp,
    ) -> Result<Queued, MailError> {
        let now = stamp.now;
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "insert into staff (staff_id, organisation_id, department_id, name, email, role, \
                 password_hash, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, '', $7, $7)",
            )
            .bind(id)
            .bind(new.organisation_id)
            .bind(new.department_id)
            .bind(new.name)
            .bind(new.email.to_lowercase())
            .bind(new.role.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_link!(tx, id, link, now)?;
            let queued = mail::enqueue(&mut *tx, mail, stamp).await?;
            tx.commit().await?;
            Ok(queued)
        })
    }

    /// Creates organisation `admin.organisation_id` named `name` and its first organisation
    /// admin `admin_id` (no password yet) with their invitation link and the invitation `mail`
    /// in the outbox, in one transaction (a refused mail creates nothing).
    pub async fn insert_organisation_with_admin(
        &self,
        name: &str,
        admin_id: StaffId,
        admin: &NewStaff<'_>,
        link: &NewLink,
        mail: &OutgoingMail,
        stamp: &MailStamp,
    ) -> Result<Queued, MailError> {
        let org = admin.organisation_id;
        let now = stamp.now;
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "insert into organisation (organisation_id, name, created_at, updated_at) \
                 values ($1, $2, $3, $3)",
            )
            .bind(org)
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "insert into staff (staff_id, organisation_id, department_id, name, email, role, \
                 password_hash, created_at, updated_at) \
                 values ($1, $2, null, $3, $4, 'organisation_admin', '', $5, $5)",
            )
            .bind(admin_id)
            .bind(org)
            .bind(admin.name)
            .bind(admin.email.to_lowercase())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_link!(tx, admin_id, link, now)?;
            let queued = mail::enqueue(&mut *tx, mail, stamp).await?;
            tx.commit().await?;
            Ok(queued)
        })
    }

    /// Applies `change` to `staff_id` unless it leaves `organisation_id` without an active
    /// organisation admin; check and change in one transaction that writes the organisation row
    /// first (serialising concurrent changes of one organisation on both backends).
    async fn change_staff_guarded(
        &self,
        organisation_id: OrganisationId,
        staff_id: StaffId,
        change: Change,
        now: DateTime<Utc>,
    ) -> Result<Changed, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("update organisation set updated_at = updated_at where organisation_id = $1")
                .bind(organisation_id)
                .execute(&mut *tx)
                .await?;
            match change {
                Change::Role(role) => {
                    sqlx::query("update staff set role = $2, updated_at = $3 where staff_id = $1")
                        .bind(staff_id)
                        .bind(role.as_str())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                Change::Department(department) => {
                    sqlx::query(
                        "update staff set department_id = $2, updated_at = $3 where staff_id = $1",
                    )
                    .bind(staff_id)
                    .bind(department)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                Change::Active(active) => {
                    sqlx::query("update staff set active = $2, updated_at = $3 where staff_id = $1")
                        .bind(staff_id)
                        .bind(active)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let admins: i64 = sqlx::query_scalar(
                "select count(*) from staff where organisation_id = $1 \
                 and role = 'organisation_admin' and active",
            )
            .bind(organisation_id)
            .fetch_one(&mut *tx)
            .await?;
            if admins == 0 {
                tx.rollback().await?;
                return Ok(Changed::LastAdmin);
            }
            tx.commit().await?;
            Ok(Changed::Done)
        })
    }

    /// Departments of `organisation_id` (only `only` when given) with their staff counts.
    pub async fn department_entries(
        &self,
        organisation_id: OrganisationId,
        only: Option<DepartmentId>,
    ) -> Result<Vec<DepartmentEntry>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, DepartmentEntry>(
                "select d.department_id, d.name, \
                 (select count(*) from staff s where s.department_id = d.department_id) \
                 as staff_count \
                 from department d where d.organisation_id = $1 \
                 and ($2 = '' or d.department_id = $2) order by d.name, d.department_id",
            )
            .bind(organisation_id)
            .bind(only.map(|d| d.to_string()).unwrap_or_default())
            .fetch_all(pool)
            .await
        })
    }

    /// Renames a department of `organisation_id`; `false` when there is no such department.
    async fn rename_department(
        &self,
        organisation_id: OrganisationId,
        id: DepartmentId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "update department set name = $3, updated_at = $4 \
                 where organisation_id = $1 and department_id = $2",
            )
            .bind(organisation_id)
            .bind(id)
            .bind(name)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
        })
    }

    /// Deletes a department of `organisation_id` if it has no staff and no scheduled
    /// appointments (checked and deleted in one statement). `None`: no such department;
    /// `Some(false)`: not empty.
    async fn delete_empty_department(
        &self,
        organisation_id: OrganisationId,
        id: DepartmentId,
    ) -> Result<Option<bool>, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let found: Option<DepartmentId> = sqlx::query_scalar(
                "select department_id from department where organisation_id = $1 and department_id = $2",
            )
            .bind(organisation_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if found.is_none() {
                return Ok(None);
            }
            let deleted = sqlx::query(
                "delete from department where department_id = $1 \
                 and not exists (select 1 from staff s where s.department_id = $1) \
                 and not exists (select 1 from appointment a where a.department_id = $1 \
                 and a.status = 'scheduled')",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(Some(deleted == 1))
        })
    }
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/staff", get(list_staff)),
        Route::new("POST", "/staff", post(invite)),
        Route::new("PUT", "/staff/{id}/role", put(change_role)),
        Route::new("PUT", "/staff/{id}/department", put(move_department)),
        Route::new("POST", "/staff/{id}/deactivate", post(deactivate)),
        Route::new("POST", "/staff/{id}/reactivate", post(reactivate)),
        Route::new("POST", "/staff/{id}/set-password-link", post(new_link)),
        Route::new("GET", "/departments", get(list_departments)),
        Route::new("POST", "/departments", post(create_department)),
        Route::new("PUT", "/departments/{id}", put(rename)),
        Route::new("DELETE", "/departments/{id}", delete(delete_department)),
    ]
}

/// The department a department admin administers; organisation admins administer everything
/// (`Ok(None)`); practitioners nothing (403).
fn scope(caller: &Staff) -> ApiResult<Option<DepartmentId>> {
    match caller.role {
        Role::OrganisationAdmin => Ok(None),
        Role::DepartmentAdmin => caller.department_id.map(Some).ok_or(ApiError::Forbidden(
            "a department admin without a department administers no one",
        )),
        Role::Practitioner => Err(ApiError::Forbidden(
            "only organisation and department admins manage staff",
        )),
    }
}

fn require_org_admin(caller: &Staff) -> ApiResult<()> {
    if caller.role == Role::OrganisationAdmin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only an organisation admin may do this",
        ))
    }
}

fn parse_staff_id(id: &str) -> ApiResult<StaffId> {
    id.parse().map_err(|_| ApiError::NotFound("staff member"))
}

fn parse_department_id(id: &str) -> ApiResult<DepartmentId> {
    id.parse().map_err(|_| ApiError::NotFound("department"))
}

/// A staff member the caller may administer (404 otherwise; organisation admins are out of a
/// department admin's reach: 403).
async fn target(clinic: &Clinic, caller: &Staff, id: &str) -> ApiResult<StaffEntry> {
    let dept = scope(caller)?;
    let id = parse_staff_id(id)?;
    let entry = clinic
        .store()
        .staff_entry(caller.organisation_id, id)
        .await?
        .ok_or(ApiError::NotFound("staff member"))?;
    if let Some(dept) = dept {
        if entry.department_id != Some(dept) {
            return Err(ApiError::NotFound("staff member"));
        }
        if entry.role == Role::OrganisationAdmin.as_str() {
            return Err(ApiError::Forbidden(
                "only an organisation admin may change an organisation admin",
            ));
        }
    }
    Ok(entry)
}

/// A name as typed: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no control characters (so no
/// CR/LF can reach a mail header later).
pub fn clean_name(field: &'static str, name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::InvalidField {
            field,
            message: format!("{field} must have 1 to {MAX_NAME_CHARS} characters"),
        });
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::InvalidField {
            field,
            message: format!("{field} must not contain line breaks or control characters"),
        });
    }
    Ok(name.to_owned())
}

/// An e-mail as typed: trimmed, lower-cased, a plausible address.
pub fn clean_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_lowercase();
    if !is_valid_email(&email) {
        return Err(ApiError::InvalidField {
            field: "email",
            message: "email is not a valid address".into(),
        });
    }
    Ok(email)
}

async fn list_staff(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
) -> ApiResult<Json<serde_json::Value>> {
    let dept = scope(&current.staff)?;
    let staff = clinic
        .store()
        .staff_entries(current.staff.organisation_id, dept)
        .await?;
    Ok(Json(json!({ "staff": staff })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteRequest {
    email: String,
    name: String,
    role: Role,
    #[serde(default)]
    department_id: Option<DepartmentId>,
}

fn link_json(link: &IssuedLink) -> serde_json::Value {
    json!({
        "set_password_url": link.url,
        "expires_at": link.expires_at,
        "purpose": link.purpose.as_str(),
        "mail_id": link.mail.as_ref().map(|m| m.id),
    })
}

async fn invite(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<InviteRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let caller = &current.staff;
    let dept = scope(caller)?;
    let email = clean_email(&req.email)?;
    let name = clean_name("name", &req.name)?;
    let department_id = match dept {
        Some(own) => {
            if req.role == Role::OrganisationAdmin {
                return Err(ApiError::Forbidden(
                    "only an organisation admin may invite an organisation admin",
                ));
            }
            if req.department_id.is_some_and(|d| d != own) {
                return Err(ApiError::NotFound("department"));
            }
            Some(own)
        }
        None => req.department_id,
    };
    check_department(&clinic, caller.organisation_id, req.role, department_id).await?;
    // Composed before the transaction (read-only); an address the outbox refuses is refused
    // here, before anything is written.
    let stamp = clinic.mail_stamp();
    let staff_id = StaffId::new();
    let to = Recipient {
        organisation_id: caller.organisation_id,
        department_id,
        staff_id,
        name: &name,
        email: &email,
    };
    let prepared = password_links::prepare(
        clinic.store(),
        &stamp,
        &clinic.config().public_url,
        Purpose::Invite,
        &to,
        None,
        Some(caller.id),
    )
    .await?;
    prepared.mail.validate().map_err(IssueError::from)?;
    let new = NewStaff {
        organisation_id: caller.organisation_id,
        department_id,
        name: &name,
        email: &email,
        role: req.role,
        password_hash: "",
    };
    let queued = match clinic
        .store()
        .insert_invited_staff(staff_id, &new, &prepared.row, &prepared.mail, &stamp)
        .await
    {
        Ok(queued) => queued,
        Err(MailError::Database(e)) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(
                "a staff member with this e-mail address already exists",
            ));
        }
        Err(e) => return Err(IssueError::from(e).into()),
    };
    clinic.wake_jobs();
    let issued = prepared.issued(staff_id, Some(queued));
    tracing::info!(by = %caller.id, %staff_id, role = %req.role, "staff member invited");
    let entry = clinic
        .store()
        .staff_entry(caller.organisation_id, staff_id)
        .await?
        .ok_or(ApiError::NotFound("staff member"))?;
    let mut body = link_json(&issued);
    body["staff"] = json!(entry);
    Ok((StatusCode::CREATED, Json(body)))
}

/// The department must be in the organisation; a department admin needs one.
async fn check_department(
    clinic: &Clinic,
    org: OrganisationId,
    role: Role,
    department_id: Option<DepartmentId>,
) -> ApiResult<()> {
    match department_id {
        Some(d) if !clinic.store().department_in_organisation(org, d).await? => {
            return Err(ApiError::NotFound("department"));
        }
        None if role == Role::DepartmentAdmin => {
            return Err(ApiError::InvalidField {
                field: "department_id",
                message: "a department admin needs a department".into(),
            });
        }
        _ => {}
    }
    Ok(())
}

async fn reply(clinic: &Clinic, caller: &Staff, id: StaffId) -> ApiResult<Json<serde_json::Value>> {
    let entry = clinic
        .store()
        .staff_entry(caller.organisation_id, id)
        .await?
        .ok_or(ApiError::NotFound("staff member"))?;
    Ok(Json(json!({ "staff": entry })))
}

async fn guarded(clinic: &Clinic, caller: &Staff, id: StaffId, change: Change) -> ApiResult<()> {
    match clinic
        .store()
        .change_staff_guarded(caller.organisation_id, id, change, clinic.now())
        .await?
    {
        Changed::Done => Ok(()),
        Changed::LastAdmin => Err(ApiError::Conflict(
            "the organisation must keep at least one active organisation admin",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleRequest {
    role: Role,
}

async fn change_role(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<RoleRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = &current.staff;
    let entry = target(&clinic, caller, &id).await?;
    if caller.role != Role::OrganisationAdmin && req.role == Role::OrganisationAdmin {
        return Err(ApiError::Forbidden(
            "only an organisation admin may make someone an organisation admin",
        ));
    }
    if req.role == Role::DepartmentAdmin && entry.department_id.is_none() {
        return Err(ApiError::InvalidField {
            field: "role",
            message: "a department admin needs a department: place them in one first".into(),
        });
    }
    guarded(&clinic, caller, entry.id, Change::Role(req.role)).await?;
    tracing::info!(by = %caller.id, staff_id = %entry.id, role = %req.role, "staff role changed");
    reply(&clinic, caller, entry.id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DepartmentRequest {
    /// Required: a department id, or `null` for none (a missing field is refused, not read as
    /// "no department").
    department_id: serde_json::Value,
}

impl DepartmentRequest {
    fn department(&self) -> ApiResult<Option<DepartmentId>> {
        match &self.department_id {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(s) => s
                .parse()
                .map(Some)
                .map_err(|_| ApiError::NotFound("department")),
            _ => Err(ApiError::InvalidField {
                field: "department_id",
                message: "department_id must be a department id or null".into(),
            }),
        }
    }
}

async fn move_department(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<DepartmentRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = &current.staff;
    let entry = target(&clinic, caller, &id).await?;
    require_org_admin(caller)?;
    let department = req.department()?;
    let role: Role = entry.role.parse().map_err(ApiError::Internal)?;
    check_department(&clinic, caller.organisation_id, role, department).await?;
    guarded(&clinic, caller, entry.id, Change::Department(department)).await?;
    tracing::info!(by = %caller.id, staff_id = %entry.id, "staff member moved");
    reply(&clinic, caller, entry.id).await
}

async fn deactivate(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = &current.staff;
    let entry = target(&clinic, caller, &id).await?;
    if entry.id == caller.id {
        return Err(ApiError::Conflict("you cannot deactivate your own account"));
    }
    guarded(&clinic, caller, entry.id, Change::Active(false)).await?;
    // After the commit: their sessions end and their WebSockets close at once.
    clinic
        .end_staff_sessions(entry.id, SessionEndReason::Deactivated)
        .await?;
    tracing::info!(by = %caller.id, staff_id = %entry.id, "staff member deactivated");
    reply(&clinic, caller, entry.id).await
}

async fn reactivate(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = &current.staff;
    let entry = target(&clinic, caller, &id).await?;
    guarded(&clinic, caller, entry.id, Change::Active(true)).await?;
    tracing::info!(by = %caller.id, staff_id = %entry.id, "staff member reactivated");
    reply(&clinic, caller, entry.id).await
}

/// A new set-password link for a staff member (an invitation while they have no password, else
/// a reset); earlier unused links stop working.
async fn new_link(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = &current.staff;
    let entry = target(&clinic, caller, &id).await?;
    if !entry.active {
        return Err(ApiError::Conflict(
            "the account is deactivated: reactivate it first",
        ));
    }
    let purpose = if entry.invitation_pending {
        Purpose::Invite
    } else {
        Purpose::Reset
    };
    let to = Recipient {
        organisation_id: caller.organisation_id,
        department_id: entry.department_id,
        staff_id: entry.id,
        name: &entry.name,
        email: &entry.email,
    };
    // An address the outbox refuses still gets its link (`mail_id: null`): the admin hands it
    // over, as they cannot change the address.
    let issued = password_links::reissue(
        clinic.store(),
        &clinic.mail_stamp(),
        &clinic.config().public_url,
        purpose,
        &to,
        Some(caller.id),
    )
    .await?;
    clinic.wake_jobs();
    tracing::info!(by = %caller.id, staff_id = %entry.id, "set-password link issued");
    let mut body = link_json(&issued);
    body["staff"] = json!(entry);
    Ok(Json(body))
}

async fn list_departments(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
) -> ApiResult<Json<serde_json::Value>> {
    let dept = scope(&current.staff)?;
    let departments = clinic
        .store()
        .department_entries(current.staff.organisation_id, dept)
        .await?;
    Ok(Json(json!({ "departments": departments })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DepartmentName {
    name: String,
}

async fn department_reply(
    clinic: &Clinic,
    org: OrganisationId,
    id: DepartmentId,
) -> ApiResult<Json<serde_json::Value>> {
    let entry = clinic
        .store()
        .department_entries(org, Some(id))
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound("department"))?;
    Ok(Json(json!({ "department": entry })))
}

const DUPLICATE_DEPARTMENT: &str = "a department with this name already exists";

async fn create_department(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<DepartmentName>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let caller = &current.staff;
    require_org_admin(caller)?;
    let name = clean_name("name", &req.name)?;
    let id = match clinic
        .store()
        .insert_department(caller.organisation_id, &name, clinic.now())
        .await
    {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => return Err(ApiError::Conflict(DUPLICATE_DEPARTMENT)),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(by = %caller.id, department_id = %id, "department created");
    let body = department_reply(&clinic, caller.organisation_id, id).await?;
    Ok((StatusCode::CREATED, body))
}

async fn rename(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<DepartmentName>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = &current.staff;
    require_org_admin(caller)?;
    let id = parse_department_id(&id)?;
    let name = clean_name("name", &req.name)?;
    match clinic
        .store()
        .rename_department(caller.organisation_id, id, &name, clinic.now())
        .await
    {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::NotFound("department")),
        Err(e) if is_unique_violation(&e) => return Err(ApiError::Conflict(DUPLICATE_DEPARTMENT)),
        Err(e) => return Err(e.into()),
    }
    department_reply(&clinic, caller.organisation_id, id).await
}

async fn delete_department(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let caller = &current.staff;
    require_org_admin(caller)?;
    let id = parse_department_id(&id)?;
    match clinic
        .store()
        .delete_empty_department(caller.organisation_id, id)
        .await?
    {
        None => Err(ApiError::NotFound("department")),
        Some(false) => Err(ApiError::Conflict(
            "the department still has staff members or scheduled appointments: move them to \
             another department first",
        )),
        Some(true) => {
            tracing::info!(by = %caller.id, department_id = %id, "department deleted");
            Ok(StatusCode::NO_CONTENT)
        }
    }
}
