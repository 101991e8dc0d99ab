//! The services catalogue (`GET/POST /services`, `PUT/DELETE /services/{id}`) and service
//! records (`POST /patients/{id}/service-records`).
//!
//! The catalogue is the organisation's: every staff member reads it, organisation admins change
//! it. Names and codes are unique per organisation; a service that was ever recorded is not
//! deleted but deactivated (an inactive one can no longer be recorded). A service record says
//! that a service was performed on a patient on a date (never in the future, in the
//! organisation's time zone; not before the patient's birth nor after its death), by whom, with
//! an optional note; whoever sees the patient's client records one.
//!
//! The timeline sorts a record by `occurred_at`: the recording time when it was performed
//! today, else the last second of that local day (after that day's appointments and notes).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::patients::visible_patient;
use super::rules::{checked_text, earliest_date, is_veterinary, local_today, optional_text};
use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::ids::{ClientId, OrganisationId, PatientId, ServiceId, ServiceRecordId, StaffId};
use crate::org_settings::OrganisationSettings;
use crate::recalls::engine::{PlanContext, RecallConn, Recorded};
use crate::staff::Role;
use crate::store::{Store, dispatch, is_unique_violation};
use crate::{Clinic, Route};

/// Longest service name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Longest service code, in characters.
const MAX_CODE_CHARS: usize = 32;
/// Longest note of a service record, in characters.
pub(super) const MAX_RECORD_NOTE_CHARS: usize = 2000;
/// Most services in one organisation's catalogue.
const MAX_SERVICES: i64 = 2000;

/// Routes of this module (relative to `/api/v1`).
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/services", get(list)),
        Route::new("POST", "/services", post(create)),
        Route::new("PUT", "/services/{id}", put(update)),
        Route::new("DELETE", "/services/{id}", delete(remove)),
        Route::new(
            "POST",
            "/patients/{id}/service-records",
            post(record_service),
        ),
    ]
}

/// A service of the catalogue.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Service {
    /// Service id.
    #[sqlx(rename = "service_id")]
    pub id: ServiceId,
    /// Name, e.g. "Rabies vaccination" (unique in the organisation).
    pub name: String,
    /// The clinic's own code, if any (unique in the organisation).
    pub code: Option<String>,
    /// Whether it can be recorded.
    pub active: bool,
}

/// A service record as the API shows it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub(crate) struct ServiceRecord {
    #[sqlx(rename = "service_record_id")]
    pub(crate) id: ServiceRecordId,
    pub(crate) client_id: ClientId,
    pub(crate) patient_id: PatientId,
    pub(crate) service_id: ServiceId,
    pub(crate) service_name: String,
    pub(crate) service_code: Option<String>,
    pub(crate) performed_on: NaiveDate,
    pub(crate) performed_by: Option<StaffId>,
    pub(crate) performed_by_name: Option<String>,
    pub(crate) recorded_by: Option<StaffId>,
    pub(crate) note: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
}

/// `select` columns of a [`ServiceRecord`] (`r`), with its service (`s`) and performer (`st`).
macro_rules! record_columns {
    () => {
        "select r.service_record_id, r.client_id, r.patient_id, r.service_id, \
         s.name as service_name, s.code as service_code, r.performed_on, r.performed_by, \
         st.name as performed_by_name, r.recorded_by, r.note, r.created_at \
         from service_record r join service s on s.service_id = r.service_id \
         left join staff st on st.staff_id = r.performed_by "
    };
}
pub(super) use record_columns;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceInput {
    name: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

struct CheckedService {
    name: String,
    code: Option<String>,
    active: bool,
}

fn check_service(input: ServiceInput) -> ApiResult<CheckedService> {
    Ok(CheckedService {
        name: checked_text("name", &input.name, MAX_NAME_CHARS, false)?,
        code: optional_text("code", input.code.as_deref(), MAX_CODE_CHARS, false)?,
        active: input.active.unwrap_or(true),
    })
}

impl Store {
    /// The catalogue of `organisation_id` by name (inactive services only when asked).
    pub(crate) async fn services(
        &self,
        organisation_id: OrganisationId,
        include_inactive: bool,
    ) -> Result<Vec<Service>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, Service>(
                "select service_id, name, code, active from service \
                 where organisation_id = $1 and ($2 or active) order by name, service_id",
            )
            .bind(organisation_id)
            .bind(include_inactive)
            .fetch_all(pool)
            .await
        })
    }

    pub(crate) async fn service_in_organisation(
        &self,
        organisation_id: OrganisationId,
        service_id: ServiceId,
    ) -> Result<Option<Service>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, Service>(
                "select service_id, name, code, active from service \
                 where organisation_id = $1 and service_id = $2",
            )
            .bind(organisation_id)
            .bind(service_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Adds a service unless the catalogue is full (`None`).
    async fn insert_service(
        &self,
        organisation_id: OrganisationId,
        s: &CheckedService,
        now: DateTime<Utc>,
    ) -> Result<Option<ServiceId>, sqlx::Error> {
        let id = ServiceId::new();
        let n = dispatch!(self, pool => {
            sqlx::query(
                "insert into service (service_id, organisation_id, name, code, active, \
                 created_at, updated_at) select $1, $2, $3, $4, $5, $6, $6 \
                 where (select count(*) from service where organisation_id = $2) < $7",
            )
            .bind(id)
            .bind(organisation_id)
            .bind(&s.name)
            .bind(&s.code)
            .bind(s.active)
            .bind(now)
            .bind(MAX_SERVICES)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok((n > 0).then_some(id))
    }

    async fn update_service(
        &self,
        organisation_id: OrganisationId,
        id: ServiceId,
        s: &CheckedService,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "update service set name = $3, code = $4, active = $5, updated_at = $6 \
                 where organisation_id = $1 and service_id = $2",
            )
            .bind(organisation_id)
            .bind(id)
            .bind(&s.name)
            .bind(&s.code)
            .bind(s.active)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Deletes a service no record refers to (one statement: a racing record either comes first
    /// and stops it, or fails on the foreign key). `None`: no such service.
    async fn delete_service(
        &self,
        organisation_id: OrganisationId,
        id: ServiceId,
    ) -> Result<Option<bool>, sqlx::Error> {
        dispatch!(self, pool => {
            let n = sqlx::query(
                "delete from service where organisation_id = $1 and service_id = $2 \
                 and not exists (select 1 from service_record r where r.service_id = $2) \
                 and not exists (select 1 from recall_rule rr \
                                 where rr.trigger_service_id = $2 or rr.due_service_id = $2) \
                 and not exists (select 1 from recall rc where rc.service_id = $2)",
            )
            .bind(organisation_id)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected();
            if n > 0 {
                return Ok(Some(true));
            }
            let exists: i64 = sqlx::query_scalar(
                "select count(*) from service where organisation_id = $1 and service_id = $2",
            )
            .bind(organisation_id)
            .bind(id)
            .fetch_one(pool)
            .await?;
            Ok((exists > 0).then_some(false))
        })
    }

    /// Stores a service record and, in the same transaction, runs the recall engine (F206: the
    /// open recall of the service completes, each rule plans the next). Returns whether a send
    /// job was enqueued.
    async fn insert_service_record(
        &self,
        r: &NewRecord,
        recalls: &Recorded<'_>,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "insert into service_record (service_record_id, organisation_id, client_id, \
                 patient_id, service_id, performed_on, occurred_at, performed_by, recorded_by, \
                 note, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(r.id)
            .bind(r.organisation_id)
            .bind(r.client_id)
            .bind(r.patient_id)
            .bind(r.service_id)
            .bind(r.performed_on)
            .bind(r.occurred_at)
            .bind(r.performed_by)
            .bind(r.recorded_by)
            .bind(&r.note)
            .bind(r.created_at)
            .execute(&mut *tx)
            .await?;
            let woke = tx.service_recorded(recalls).await?;
            tx.commit().await?;
            Ok(woke)
        })
    }

    pub(crate) async fn service_record(
        &self,
        organisation_id: OrganisationId,
        id: ServiceRecordId,
    ) -> Result<Option<ServiceRecord>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, ServiceRecord>(concat!(
                record_columns!(),
                "where r.organisation_id = $1 and r.service_record_id = $2"
            ))
            .bind(organisation_id)
            .bind(id)
            .fetch_optional(pool)
            .await
        })
    }
}

struct NewRecord {
    id: ServiceRecordId,
    organisation_id: OrganisationId,
    client_id: ClientId,
    patient_id: PatientId,
    service_id: ServiceId,
    performed_on: NaiveDate,
    occurred_at: DateTime<Utc>,
    performed_by: Option<StaffId>,
    recorded_by: StaffId,
    note: Option<String>,
    created_at: DateTime<Utc>,
}

fn admin_only(current: &CurrentStaff) -> ApiResult<()> {
    if current.staff.role == Role::OrganisationAdmin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only an organisation admin may change the services catalogue",
        ))
    }
}

fn taken(e: sqlx::Error) -> ApiError {
    if is_unique_violation(&e) {
        ApiError::Conflict("another service of the organisation has this name or code")
    } else {
        e.into()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default)]
    include_inactive: Option<bool>,
}

async fn list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Value>> {
    let services = clinic
        .store()
        .services(
            current.staff.organisation_id,
            params.include_inactive.unwrap_or(false),
        )
        .await?;
    Ok(Json(json!({ "services": services })))
}

async fn create(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(input): ApiJson<ServiceInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    admin_only(&current)?;
    let service = check_service(input)?;
    let org = current.staff.organisation_id;
    let id = clinic
        .store()
        .insert_service(org, &service, clinic.now())
        .await
        .map_err(taken)?
        .ok_or(ApiError::Conflict("the services catalogue is full"))?;
    let service = clinic
        .store()
        .service_in_organisation(org, id)
        .await?
        .ok_or(ApiError::NotFound("service"))?;
    tracing::info!(service_id = %id, staff_id = %current.staff.id, "service created");
    Ok((StatusCode::CREATED, Json(json!({ "service": service }))))
}

fn parse_service(raw: &str) -> ApiResult<ServiceId> {
    raw.parse().map_err(|_| ApiError::NotFound("service"))
}

async fn update(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
    ApiJson(input): ApiJson<ServiceInput>,
) -> ApiResult<Json<Value>> {
    let id = parse_service(&raw)?;
    let org = current.staff.organisation_id;
    // Another organisation's service is a 404 for everyone, before the role says 403.
    clinic
        .store()
        .service_in_organisation(org, id)
        .await?
        .ok_or(ApiError::NotFound("service"))?;
    admin_only(&current)?;
    let service = check_service(input)?;
    if !clinic
        .store()
        .update_service(org, id, &service, clinic.now())
        .await
        .map_err(taken)?
    {
        return Err(ApiError::NotFound("service"));
    }
    let service = clinic
        .store()
        .service_in_organisation(org, id)
        .await?
        .ok_or(ApiError::NotFound("service"))?;
    tracing::info!(service_id = %id, staff_id = %current.staff.id, "service updated");
    Ok(Json(json!({ "service": service })))
}

async fn remove(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = parse_service(&raw)?;
    let org = current.staff.organisation_id;
    clinic
        .store()
        .service_in_organisation(org, id)
        .await?
        .ok_or(ApiError::NotFound("service"))?;
    admin_only(&current)?;
    match clinic.store().delete_service(org, id).await? {
        Some(true) => {
            tracing::info!(service_id = %id, staff_id = %current.staff.id, "service deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        Some(false) => Err(ApiError::Conflict(
            "the service was recorded on patients or is named by care reminders; deactivate it \
             instead (active: false)",
        )),
        None => Err(ApiError::NotFound("service")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordInput {
    service_id: ServiceId,
    performed_on: NaiveDate,
    #[serde(default)]
    performed_by: Option<StaffId>,
    #[serde(default)]
    note: Option<String>,
}

/// The instant the timeline sorts a record performed on `day` by (see the module docs).
fn occurred_at(
    settings: &OrganisationSettings,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    if day >= local_today(settings, now) {
        return now;
    }
    let last_second = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN);
    day.and_time(last_second)
        .and_local_timezone(settings.tz())
        .latest()
        .map(|t| t.with_timezone(&Utc))
        // 23:59:59 never falls in a gap in practice; fall back to UTC rather than fail.
        .unwrap_or_else(|| day.and_time(last_second).and_utc())
}

async fn record_service(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
    ApiJson(input): ApiJson<RecordInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (patient, settings) = visible_patient(&clinic, &current, &raw).await?;
    let org = current.staff.organisation_id;
    let now = clinic.now();
    if patient.is_client && is_veterinary(&settings) {
        return Err(ApiError::InvalidField {
            field: "patient_id",
            message: "in a veterinary organisation services are recorded on the client's \
                      animals"
                .to_owned(),
        });
    }
    let service = clinic
        .store()
        .service_in_organisation(org, input.service_id)
        .await?
        .ok_or(ApiError::InvalidField {
            field: "service_id",
            message: "no such service in the catalogue".to_owned(),
        })?;
    if !service.active {
        return Err(ApiError::InvalidField {
            field: "service_id",
            message: "the service is inactive and can no longer be recorded".to_owned(),
        });
    }
    let day = input.performed_on;
    if day > local_today(&settings, now) {
        return Err(ApiError::InvalidField {
            field: "performed_on",
            message: "performed_on is in the future; record a service once it was done".to_owned(),
        });
    }
    if day < earliest_date() || patient.date_of_birth.is_some_and(|dob| day < dob) {
        return Err(ApiError::InvalidField {
            field: "performed_on",
            message: "performed_on is before the patient's date of birth".to_owned(),
        });
    }
    if patient.deceased_on.is_some_and(|died| day > died) {
        return Err(ApiError::InvalidField {
            field: "performed_on",
            message: "performed_on is after the patient's recorded date of death".to_owned(),
        });
    }
    let performed_by = match input.performed_by {
        Some(p) => {
            clinic
                .store()
                .staff_by_id(p)
                .await?
                .filter(|s| s.organisation_id == org)
                .ok_or(ApiError::InvalidField {
                    field: "performed_by",
                    message: "no such staff member in the organisation".to_owned(),
                })?;
            p
        }
        None => current.staff.id,
    };
    let note = optional_text("note", input.note.as_deref(), MAX_RECORD_NOTE_CHARS, true)?;
    let new = NewRecord {
        id: ServiceRecordId::new(),
        organisation_id: org,
        client_id: patient.client_id,
        patient_id: patient.id,
        service_id: service.id,
        performed_on: day,
        occurred_at: occurred_at(&settings, day, now),
        performed_by: Some(performed_by),
        recorded_by: current.staff.id,
        note,
        created_at: now,
    };
    let client = clinic
        .store()
        .client_in_organisation(org, patient.client_id)
        .await?
        .ok_or(ApiError::NotFound("patient"))?;
    let rules = clinic
        .store()
        .rules_triggered_by(org, service.id, client.department_id)
        .await?;
    let recorded = Recorded {
        organisation_id: org,
        client_id: patient.client_id,
        patient_id: patient.id,
        service_id: service.id,
        record_id: new.id,
        performed_on: day,
        deceased: patient.deceased_on.is_some(),
        rules: &rules,
        plan: PlanContext {
            tz: settings.tz(),
            send_time: settings
                .reminder_time_of_day()
                .unwrap_or(NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN)),
            now,
        },
        created_by: Some(current.staff.id),
    };
    if clinic
        .store()
        .insert_service_record(&new, &recorded)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                ApiError::Conflict("the service was recorded at the same moment; try again")
            } else {
                e.into()
            }
        })?
    {
        clinic.wake_jobs();
    }
    let record = clinic
        .store()
        .service_record(org, new.id)
        .await?
        .ok_or(ApiError::NotFound("service record"))?;
    tracing::info!(service_record_id = %new.id, patient_id = %patient.id, staff_id = %current.staff.id, "service recorded");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "service_record": record })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_past_day_sorts_at_its_last_local_second() {
        let settings = OrganisationSettings {
            time_zone: "Europe/Amsterdam".to_owned(),
            ..OrganisationSettings::default()
        };
        let now: DateTime<Utc> = "2030-03-04T09:00:00Z".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2030, 3, 1).unwrap();
        assert_eq!(
            occurred_at(&settings, day, now),
            "2030-03-01T22:59:59Z".parse::<DateTime<Utc>>().unwrap()
        );
        let today = NaiveDate::from_ymd_opt(2030, 3, 4).unwrap();
        assert_eq!(occurred_at(&settings, today, now), now);
    }
}
