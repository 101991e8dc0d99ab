//! The organisation's directory for staff: practitioners and departments, so that the staff
//! app can offer transfer targets and label department waiting rooms. Names and ids only; no
//! e-mail addresses or roles of colleagues.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;
use serde_json::json;

use crate::auth::CurrentStaff;
use crate::error::ApiResult;
use crate::ids::{DepartmentId, OrganisationId, StaffId};
use crate::store::{Store, dispatch};
use crate::{Clinic, Route};

/// A colleague as listed in the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DirectoryStaff {
    /// Staff id.
    #[sqlx(rename = "staff_id")]
    pub id: StaffId,
    /// Display name.
    pub name: String,
    /// Their department, if any.
    pub department_id: Option<DepartmentId>,
}

/// A department as listed in the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DirectoryDepartment {
    /// Department id.
    #[sqlx(rename = "department_id")]
    pub id: DepartmentId,
    /// Name.
    pub name: String,
}

impl Store {
    /// Practitioners and department admins of `organisation_id` (the people who can have a
    /// waiting room), by name.
    pub async fn directory_staff(
        &self,
        organisation_id: OrganisationId,
    ) -> Result<Vec<DirectoryStaff>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, DirectoryStaff>(
                "select staff_id, name, department_id from staff \
                 where organisation_id = $1 and active and role in ('practitioner', 'department_admin') \
                 order by name, staff_id",
            )
            .bind(organisation_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Departments of `organisation_id`, by name.
    pub async fn directory_departments(
        &self,
        organisation_id: OrganisationId,
    ) -> Result<Vec<DirectoryDepartment>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, DirectoryDepartment>(
                "select department_id, name from department \
                 where organisation_id = $1 order by name, department_id",
            )
            .bind(organisation_id)
            .fetch_all(pool)
            .await
        })
    }
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![Route::new("GET", "/directory", get(directory))]
}

async fn directory(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
) -> ApiResult<Json<serde_json::Value>> {
    let org = current.staff.organisation_id;
    let practitioners = clinic.store().directory_staff(org).await?;
    let departments = clinic.store().directory_departments(org).await?;
    Ok(Json(json!({
        "practitioners": practitioners,
        "departments": departments,
    })))
}
