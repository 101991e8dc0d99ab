//! External participants and their groups (issue #4; F16, F17, F74): people who take part in
//! appointments without being the client — family, home care, an interpreter — kept as records
//! with the same fields as a client, organised in named groups ("Family", "Home care"), and
//! invitable to an appointment as guests (`POST /appointments/{id}/guests` with
//! `external_participant_id` or `group_id`).
//!
//! Invariants: everything is scoped to the caller's organisation (another organisation's record
//! or group is a 404); any staff member may read, create and edit records, as with clients; only
//! organisation and department admins create, rename or delete groups and delete records; a
//! group name is unique per organisation whatever its case; names, e-mails and phone numbers are
//! never logged.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::CurrentStaff;
use crate::clients::NewClient;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::ids::{ExternalParticipantId, OrganisationId, ParticipantGroupId};
use crate::staff::Role;
use crate::store::{Store, dispatch};
use crate::{Clinic, Route};

/// Longest group name, in characters.
const MAX_GROUP_NAME_CHARS: usize = 60;
/// Most groups per organisation.
const MAX_GROUPS: i64 = 200;
/// Most groups one record can be in.
const MAX_GROUPS_PER_PARTICIPANT: usize = 20;

/// A group of external participants as the API shows it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct ParticipantGroup {
    /// Group id.
    #[sqlx(rename = "participant_group_id")]
    pub id: ParticipantGroupId,
    /// Name, e.g. "Family".
    pub name: String,
    /// Number of records in the group.
    pub member_count: i64,
}

/// An external participant as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ExternalParticipant {
    /// Record id.
    pub id: ExternalParticipantId,
    /// Full name.
    pub name: String,
    /// E-mail, if known.
    pub email: Option<String>,
    /// Phone number, if known.
    pub phone: Option<String>,
    /// Date of birth, if known.
    pub date_of_birth: Option<NaiveDate>,
    /// The groups the record is in.
    pub group_ids: Vec<ParticipantGroupId>,
}

#[derive(sqlx::FromRow)]
struct ParticipantRow {
    external_participant_id: ExternalParticipantId,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    date_of_birth: Option<NaiveDate>,
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    external_participant_id: ExternalParticipantId,
    participant_group_id: ParticipantGroupId,
}

/// Fields of a record (create and full update).
#[derive(Deserialize)]
struct ParticipantRequest {
    #[serde(flatten)]
    fields: NewClient,
    #[serde(default)]
    group_ids: Vec<String>,
}

#[derive(Deserialize)]
struct GroupRequest {
    name: String,
}

#[derive(Deserialize)]
struct ListQuery {
    group_id: Option<String>,
}

impl Store {
    async fn list_participant_groups(
        &self,
        org: OrganisationId,
    ) -> Result<Vec<ParticipantGroup>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, ParticipantGroup>(
                "select g.participant_group_id, g.name, \
                 (select count(*) from external_participant_group m \
                  where m.participant_group_id = g.participant_group_id) as member_count \
                 from participant_group g where g.organisation_id = $1 \
                 order by g.name_key, g.participant_group_id",
            )
            .bind(org)
            .fetch_all(pool)
            .await
        })
    }

    async fn count_participant_groups(&self, org: OrganisationId) -> Result<i64, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from participant_group where organisation_id = $1",
            )
            .bind(org)
            .fetch_one(pool)
            .await
        })
    }

    async fn insert_participant_group(
        &self,
        org: OrganisationId,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<ParticipantGroupId, sqlx::Error> {
        let id = ParticipantGroupId::new();
        dispatch!(self, pool => {
            sqlx::query(
                "insert into participant_group (participant_group_id, organisation_id, name, \
                 name_key, created_at) values ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(org)
            .bind(name)
            .bind(name.to_lowercase())
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(id)
    }

    async fn rename_participant_group(
        &self,
        org: OrganisationId,
        id: ParticipantGroupId,
        name: &str,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "update participant_group set name = $3, name_key = $4 \
                 where organisation_id = $1 and participant_group_id = $2",
            )
            .bind(org)
            .bind(id)
            .bind(name)
            .bind(name.to_lowercase())
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    async fn delete_participant_group(
        &self,
        org: OrganisationId,
        id: ParticipantGroupId,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "delete from participant_group where organisation_id = $1 and participant_group_id = $2",
            )
            .bind(org)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// How many of `ids` are groups of `org` (the rest do not exist there). Reads only the
    /// organisation's group ids (at most [`MAX_GROUPS`]).
    pub(crate) async fn existing_groups(
        &self,
        org: OrganisationId,
        ids: &[ParticipantGroupId],
    ) -> Result<usize, sqlx::Error> {
        let all: Vec<ParticipantGroupId> = dispatch!(self, pool => {
            sqlx::query_scalar(
                "select participant_group_id from participant_group where organisation_id = $1",
            )
            .bind(org)
            .fetch_all(pool)
            .await
        })?;
        Ok(ids.iter().filter(|id| all.contains(id)).count())
    }

    async fn participant_rows(
        &self,
        org: OrganisationId,
        only: Option<ExternalParticipantId>,
    ) -> Result<(Vec<ParticipantRow>, Vec<MembershipRow>), sqlx::Error> {
        // Two fixed statements each (sqlx takes only static SQL).
        let (rows_sql, members_sql) = if only.is_some() {
            (
                "select external_participant_id, name, email, phone, date_of_birth \
                 from external_participant where organisation_id = $1 \
                 and external_participant_id = $2",
                "select m.external_participant_id, m.participant_group_id \
                 from external_participant_group m \
                 join external_participant p on p.external_participant_id = m.external_participant_id \
                 where p.organisation_id = $1 and p.external_participant_id = $2 \
                 order by m.participant_group_id",
            )
        } else {
            (
                "select external_participant_id, name, email, phone, date_of_birth \
                 from external_participant where organisation_id = $1 \
                 order by name, external_participant_id",
                "select m.external_participant_id, m.participant_group_id \
                 from external_participant_group m \
                 join external_participant p on p.external_participant_id = m.external_participant_id \
                 where p.organisation_id = $1 order by m.participant_group_id",
            )
        };
        dispatch!(self, pool => {
            let mut q = sqlx::query_as::<_, ParticipantRow>(rows_sql).bind(org);
            let mut m = sqlx::query_as::<_, MembershipRow>(members_sql).bind(org);
            if let Some(id) = only {
                q = q.bind(id);
                m = m.bind(id);
            }
            Ok((q.fetch_all(pool).await?, m.fetch_all(pool).await?))
        })
    }

    /// The records of `org` (optionally only members of `group`), by name, with their groups.
    pub(crate) async fn list_external_participants(
        &self,
        org: OrganisationId,
        group: Option<ParticipantGroupId>,
    ) -> Result<Vec<ExternalParticipant>, sqlx::Error> {
        let (rows, members) = self.participant_rows(org, None).await?;
        let list = assemble(rows, members);
        Ok(match group {
            Some(g) => list
                .into_iter()
                .filter(|p| p.group_ids.contains(&g))
                .collect(),
            None => list,
        })
    }

    /// One record of `org`.
    pub(crate) async fn external_participant(
        &self,
        org: OrganisationId,
        id: ExternalParticipantId,
    ) -> Result<Option<ExternalParticipant>, sqlx::Error> {
        let (rows, members) = self.participant_rows(org, Some(id)).await?;
        Ok(assemble(rows, members).into_iter().next())
    }

    /// Creates (`id` new) or replaces a record and its group memberships in one transaction.
    /// Returns false when an update finds no such record in `org`.
    async fn save_external_participant(
        &self,
        org: OrganisationId,
        id: ExternalParticipantId,
        create: bool,
        fields: &NewClient,
        groups: &[ParticipantGroupId],
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let n = if create {
                sqlx::query(
                    "insert into external_participant (external_participant_id, organisation_id, \
                     name, email, phone, date_of_birth, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(id)
                .bind(org)
                .bind(&fields.name)
                .bind(&fields.email)
                .bind(&fields.phone)
                .bind(fields.date_of_birth)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query(
                    "update external_participant set name = $3, email = $4, phone = $5, \
                     date_of_birth = $6, updated_at = $7 \
                     where organisation_id = $1 and external_participant_id = $2",
                )
                .bind(org)
                .bind(id)
                .bind(&fields.name)
                .bind(&fields.email)
                .bind(&fields.phone)
                .bind(fields.date_of_birth)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            };
            if n == 0 {
                return Ok(false);
            }
            sqlx::query("delete from external_participant_group where external_participant_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for g in groups {
                sqlx::query(
                    "insert into external_participant_group (external_participant_id, \
                     participant_group_id) values ($1, $2)",
                )
                .bind(id)
                .bind(*g)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn delete_external_participant(
        &self,
        org: OrganisationId,
        id: ExternalParticipantId,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "delete from external_participant where organisation_id = $1 \
                 and external_participant_id = $2",
            )
            .bind(org)
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }
}

fn assemble(rows: Vec<ParticipantRow>, members: Vec<MembershipRow>) -> Vec<ExternalParticipant> {
    rows.into_iter()
        .map(|r| ExternalParticipant {
            id: r.external_participant_id,
            group_ids: members
                .iter()
                .filter(|m| m.external_participant_id == r.external_participant_id)
                .map(|m| m.participant_group_id)
                .collect(),
            name: r.name,
            email: r.email,
            phone: r.phone,
            date_of_birth: r.date_of_birth,
        })
        .collect()
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/participant-groups", get(list_groups)),
        Route::new("POST", "/participant-groups", post(create_group)),
        Route::new("PUT", "/participant-groups/{id}", put(rename_group)),
        Route::new("DELETE", "/participant-groups/{id}", delete(delete_group)),
        Route::new("GET", "/external-participants", get(list)),
        Route::new("POST", "/external-participants", post(create)),
        Route::new("GET", "/external-participants/{id}", get(show)),
        Route::new("PUT", "/external-participants/{id}", put(update)),
        Route::new("DELETE", "/external-participants/{id}", delete(remove)),
    ]
}

/// Groups are managed by organisation and department admins.
fn require_admin(current: &CurrentStaff) -> ApiResult<()> {
    match current.staff.role {
        Role::OrganisationAdmin | Role::DepartmentAdmin => Ok(()),
        Role::Practitioner => Err(ApiError::Forbidden(
            "only organisation and department admins manage groups and delete records",
        )),
    }
}

fn valid_group_name(raw: &str) -> ApiResult<String> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_GROUP_NAME_CHARS {
        return Err(ApiError::invalid(format!(
            "name must be 1 to {MAX_GROUP_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

fn group_id(raw: &str) -> ApiResult<ParticipantGroupId> {
    raw.parse().map_err(|_| ApiError::NotFound("group"))
}

fn participant_id(raw: &str) -> ApiResult<ExternalParticipantId> {
    raw.parse()
        .map_err(|_| ApiError::NotFound("external participant"))
}

async fn list_groups(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
) -> ApiResult<Json<Value>> {
    let groups = clinic
        .store()
        .list_participant_groups(current.staff.organisation_id)
        .await?;
    Ok(Json(json!({ "groups": groups })))
}

async fn create_group(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<GroupRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    require_admin(&current)?;
    let name = valid_group_name(&req.name)?;
    let org = current.staff.organisation_id;
    let store = clinic.store();
    if store.count_participant_groups(org).await? >= MAX_GROUPS {
        return Err(ApiError::Conflict("this organisation has too many groups"));
    }
    let id = store
        .insert_participant_group(org, &name, clinic.now())
        .await
        .map_err(group_conflict)?;
    tracing::info!(group_id = %id, staff_id = %current.staff.id, "participant group created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "group": { "id": id, "name": name, "member_count": 0 } })),
    ))
}

fn group_conflict(e: sqlx::Error) -> ApiError {
    if crate::store::is_unique_violation(&e) {
        ApiError::Conflict("a group with this name already exists")
    } else {
        e.into()
    }
}

async fn rename_group(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<GroupRequest>,
) -> ApiResult<StatusCode> {
    require_admin(&current)?;
    let id = group_id(&id)?;
    let name = valid_group_name(&req.name)?;
    if !clinic
        .store()
        .rename_participant_group(current.staff.organisation_id, id, &name)
        .await
        .map_err(group_conflict)?
    {
        return Err(ApiError::NotFound("group"));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_group(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require_admin(&current)?;
    let id = group_id(&id)?;
    if !clinic
        .store()
        .delete_participant_group(current.staff.organisation_id, id)
        .await?
    {
        return Err(ApiError::NotFound("group"));
    }
    tracing::info!(group_id = %id, staff_id = %current.staff.id, "participant group deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let group = q.group_id.as_deref().map(group_id).transpose()?;
    let list = clinic
        .store()
        .list_external_participants(current.staff.organisation_id, group)
        .await?;
    Ok(Json(json!({ "external_participants": list })))
}

async fn show(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let id = participant_id(&id)?;
    let p = clinic
        .store()
        .external_participant(current.staff.organisation_id, id)
        .await?
        .ok_or(ApiError::NotFound("external participant"))?;
    Ok(Json(json!({ "external_participant": p })))
}

/// Validates the fields (as for a client) and the groups (each one of the organisation's).
async fn validated(
    clinic: &Clinic,
    org: OrganisationId,
    req: ParticipantRequest,
) -> ApiResult<(NewClient, Vec<ParticipantGroupId>)> {
    let fields = crate::clients::validate(req.fields, clinic.now())?;
    if req.group_ids.len() > MAX_GROUPS_PER_PARTICIPANT {
        return Err(ApiError::invalid(format!(
            "at most {MAX_GROUPS_PER_PARTICIPANT} groups"
        )));
    }
    let mut groups = Vec::with_capacity(req.group_ids.len());
    for raw in &req.group_ids {
        let id: ParticipantGroupId = raw
            .parse()
            .map_err(|_| ApiError::invalid("group_ids contains an unknown group"))?;
        if !groups.contains(&id) {
            groups.push(id);
        }
    }
    if clinic.store().existing_groups(org, &groups).await? != groups.len() {
        return Err(ApiError::invalid("group_ids contains an unknown group"));
    }
    Ok((fields, groups))
}

async fn create(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<ParticipantRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = current.staff.organisation_id;
    let (fields, groups) = validated(&clinic, org, req).await?;
    let id = ExternalParticipantId::new();
    let store = clinic.store();
    store
        .save_external_participant(org, id, true, &fields, &groups, clinic.now())
        .await?;
    tracing::info!(external_participant_id = %id, staff_id = %current.staff.id, "external participant created");
    let p = store
        .external_participant(org, id)
        .await?
        .ok_or(ApiError::NotFound("external participant"))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "external_participant": p })),
    ))
}

async fn update(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ParticipantRequest>,
) -> ApiResult<Json<Value>> {
    let id = participant_id(&id)?;
    let org = current.staff.organisation_id;
    let store = clinic.store();
    if store.external_participant(org, id).await?.is_none() {
        return Err(ApiError::NotFound("external participant"));
    }
    let (fields, groups) = validated(&clinic, org, req).await?;
    if !store
        .save_external_participant(org, id, false, &fields, &groups, clinic.now())
        .await?
    {
        return Err(ApiError::NotFound("external participant"));
    }
    tracing::info!(external_participant_id = %id, staff_id = %current.staff.id, "external participant updated");
    let p = store
        .external_participant(org, id)
        .await?
        .ok_or(ApiError::NotFound("external participant"))?;
    Ok(Json(json!({ "external_participant": p })))
}

async fn remove(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    require_admin(&current)?;
    let id = participant_id(&id)?;
    if !clinic
        .store()
        .delete_external_participant(current.staff.organisation_id, id)
        .await?
    {
        return Err(ApiError::NotFound("external participant"));
    }
    tracing::info!(external_participant_id = %id, staff_id = %current.staff.id, "external participant deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names() {
        assert_eq!(valid_group_name("  Family ").unwrap(), "Family");
        assert!(valid_group_name("").is_err());
        assert!(valid_group_name(&"x".repeat(61)).is_err());
        assert!(valid_group_name("a\tb").is_err());
    }
}
