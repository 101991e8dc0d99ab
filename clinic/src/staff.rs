//! Organisations, departments and staff users: the tenant model and its roles.
//!
//! Invariant: every staff user belongs to exactly one organisation; nothing a staff user reads or
//! writes crosses that boundary.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DepartmentId, OrganisationId, StaffId};
use crate::store::{Store, dispatch};

/// What a staff user may see and do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in the organisation.
    OrganisationAdmin,
    /// Everything in their department.
    DepartmentAdmin,
    /// Their own appointments only.
    Practitioner,
}

impl Role {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::OrganisationAdmin => "organisation_admin",
            Role::DepartmentAdmin => "department_admin",
            Role::Practitioner => "practitioner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "organisation_admin" => Ok(Role::OrganisationAdmin),
            "department_admin" => Ok(Role::DepartmentAdmin),
            "practitioner" => Ok(Role::Practitioner),
            other => anyhow::bail!("unknown role {other:?}"),
        }
    }
}

/// A staff user as the API shows it (`GET /me`, login).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Staff {
    /// Staff id.
    pub id: StaffId,
    /// Display name.
    pub name: String,
    /// Login e-mail (lower case).
    pub email: String,
    /// Role.
    pub role: Role,
    /// Organisation the user belongs to.
    pub organisation_id: OrganisationId,
    /// Department, if any.
    pub department_id: Option<DepartmentId>,
}

/// A staff row including the password hash; never serialised.
#[derive(sqlx::FromRow)]
pub(crate) struct StaffRow {
    pub staff_id: StaffId,
    pub organisation_id: OrganisationId,
    pub department_id: Option<DepartmentId>,
    pub name: String,
    pub email: String,
    pub role: String,
    pub password_hash: String,
    /// False once deactivated: no login, no session, no set-password link.
    pub active: bool,
}

impl StaffRow {
    pub(crate) fn into_staff(self) -> anyhow::Result<Staff> {
        Ok(Staff {
            id: self.staff_id,
            name: self.name,
            email: self.email,
            role: self.role.parse()?,
            organisation_id: self.organisation_id,
            department_id: self.department_id,
        })
    }
}

/// Fields for creating a staff user.
#[derive(Clone, Debug)]
pub struct NewStaff<'a> {
    /// Organisation.
    pub organisation_id: OrganisationId,
    /// Department, if any.
    pub department_id: Option<DepartmentId>,
    /// Display name.
    pub name: &'a str,
    /// Login e-mail; stored lower-cased.
    pub email: &'a str,
    /// Role.
    pub role: Role,
    /// Argon2id PHC string (see [`crate::auth::hash_password`]).
    pub password_hash: &'a str,
}

macro_rules! staff_columns {
    () => {
        "staff_id, organisation_id, department_id, name, email, role, password_hash, active"
    };
}

impl Store {
    /// Creates an organisation.
    pub async fn insert_organisation(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<OrganisationId, sqlx::Error> {
        let id = OrganisationId::new();
        dispatch!(self, pool => {
            sqlx::query(
                "insert into organisation (organisation_id, name, created_at, updated_at) \
                 values ($1, $2, $3, $3)",
            )
            .bind(id)
            .bind(name)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(id)
    }

    /// Finds an organisation by exact name (used by the demo seed).
    pub async fn find_organisation_by_name(
        &self,
        name: &str,
    ) -> Result<Option<OrganisationId>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar(
                "select organisation_id from organisation where name = $1 \
                 order by created_at limit 1",
            )
            .bind(name)
            .fetch_optional(pool)
            .await
        })
    }

    /// Creates a department in an organisation.
    pub async fn insert_department(
        &self,
        organisation_id: OrganisationId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<DepartmentId, sqlx::Error> {
        let id = DepartmentId::new();
        dispatch!(self, pool => {
            sqlx::query(
                "insert into department (department_id, organisation_id, name, created_at, updated_at) \
                 values ($1, $2, $3, $4, $4)",
            )
            .bind(id)
            .bind(organisation_id)
            .bind(name)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(id)
    }

    /// Finds a department of `organisation_id` by name.
    pub async fn find_department_by_name(
        &self,
        organisation_id: OrganisationId,
        name: &str,
    ) -> Result<Option<DepartmentId>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar(
                "select department_id from department where organisation_id = $1 and name = $2",
            )
            .bind(organisation_id)
            .bind(name)
            .fetch_optional(pool)
            .await
        })
    }

    /// Whether `department_id` exists inside `organisation_id`.
    pub async fn department_in_organisation(
        &self,
        organisation_id: OrganisationId,
        department_id: DepartmentId,
    ) -> Result<bool, sqlx::Error> {
        let found: Option<DepartmentId> = dispatch!(self, pool => {
            sqlx::query_scalar(
                "select department_id from department where organisation_id = $1 and department_id = $2",
            )
            .bind(organisation_id)
            .bind(department_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(found.is_some())
    }

    /// Creates a staff user. A duplicate e-mail is a unique violation.
    pub async fn insert_staff(
        &self,
        new: &NewStaff<'_>,
        now: DateTime<Utc>,
    ) -> Result<StaffId, sqlx::Error> {
        let id = StaffId::new();
        dispatch!(self, pool => {
            sqlx::query(
                "insert into staff (staff_id, organisation_id, department_id, name, email, role, \
                 password_hash, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(id)
            .bind(new.organisation_id)
            .bind(new.department_id)
            .bind(new.name)
            .bind(new.email.to_lowercase())
            .bind(new.role.as_str())
            .bind(new.password_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(id)
    }

    /// Replaces a staff user's name, role, department and password hash (demo seed upsert).
    pub async fn update_staff(
        &self,
        staff_id: StaffId,
        new: &NewStaff<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "update staff set department_id = $2, name = $3, role = $4, password_hash = $5, \
                 updated_at = $6 where staff_id = $1",
            )
            .bind(staff_id)
            .bind(new.department_id)
            .bind(new.name)
            .bind(new.role.as_str())
            .bind(new.password_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    pub(crate) async fn staff_by_email(
        &self,
        email: &str,
    ) -> Result<Option<StaffRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, StaffRow>(concat!("select ", staff_columns!(), " from staff where email = $1"))
                .bind(email.to_lowercase())
                .fetch_optional(pool)
                .await
        })
    }

    pub(crate) async fn staff_by_id(
        &self,
        staff_id: StaffId,
    ) -> Result<Option<StaffRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, StaffRow>(concat!("select ", staff_columns!(), " from staff where staff_id = $1"))
                .bind(staff_id)
                .fetch_optional(pool)
                .await
        })
    }
}
