//! A client's patients: `GET/POST /clients/{id}/patients`, `GET/PUT /patients/{id}`,
//! `PUT/DELETE /patients/{id}/deceased`.
//!
//! A human organisation's client has its own patient only (listed, not created or edited here:
//! its name and date of birth are the client's, edited on the client). A veterinary client's
//! animals are created and edited by whoever sees the client; the own patient is not listed
//! there (it carries the client-level records). Marking a patient deceased records the date
//! ([`Store::mark_patient_deceased`], one transaction: the reminders part cancels the patient's
//! pending reminders inside it); undoing that is for admins (a mistake, not a resurrection).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::rules::{
    checked_text, earliest_date, is_veterinary, local_today, optional_text, visible_client,
};
use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::ids::{ClientId, OrganisationId, PatientId};
use crate::org_settings::OrganisationSettings;
use crate::recalls::engine::RecallConn;
use crate::staff::Role;
use crate::store::{Store, dispatch};
use crate::{Clinic, Route};

/// Longest patient name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Longest species or breed, in characters.
const MAX_SPECIES_CHARS: usize = 60;
/// Most patients one client may own (a breeder's kennel stays far below).
const MAX_PATIENTS_PER_CLIENT: i64 = 500;

/// Routes of this module (relative to `/api/v1`).
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/clients/{id}/patients", get(list)),
        Route::new("POST", "/clients/{id}/patients", post(create)),
        Route::new("GET", "/patients/{id}", get(read)),
        Route::new("PUT", "/patients/{id}", put(update)),
        Route::new("PUT", "/patients/{id}/deceased", put(mark_deceased)),
        Route::new("DELETE", "/patients/{id}/deceased", delete(unmark_deceased)),
    ]
}

/// A patient as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Patient {
    /// Patient id (the client's id for the client's own patient).
    #[sqlx(rename = "patient_id")]
    pub id: PatientId,
    /// The client the patient belongs to (its owner, or the client themself).
    pub client_id: ClientId,
    /// The client's own patient: the client themself (name and date of birth are the client's).
    pub is_client: bool,
    /// Name.
    pub name: String,
    /// Species (veterinary), e.g. "Dog".
    pub species: Option<String>,
    /// Breed (veterinary), if known.
    pub breed: Option<String>,
    /// Date of birth, if known.
    pub date_of_birth: Option<NaiveDate>,
    /// Date of death, once recorded.
    pub deceased_on: Option<NaiveDate>,
    /// When the record was made.
    pub created_at: DateTime<Utc>,
}

/// `select` columns of a [`Patient`]; the own patient takes the client's name and birth date.
macro_rules! patient_columns {
    () => {
        "select p.patient_id, p.client_id, p.is_client, \
         case when p.is_client then c.name else p.name end as name, \
         p.species, p.breed, \
         case when p.is_client then c.date_of_birth else p.date_of_birth end as date_of_birth, \
         p.deceased_on, p.created_at \
         from patient p join client c on c.client_id = p.client_id "
    };
}

/// An animal as typed in (`POST /clients/{id}/patients`, `PUT /patients/{id}`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatientInput {
    name: String,
    species: String,
    #[serde(default)]
    breed: Option<String>,
    #[serde(default)]
    date_of_birth: Option<NaiveDate>,
}

/// A checked [`PatientInput`].
struct Animal {
    name: String,
    species: String,
    breed: Option<String>,
    date_of_birth: Option<NaiveDate>,
}

fn check(input: PatientInput, today: NaiveDate) -> ApiResult<Animal> {
    let name = checked_text("name", &input.name, MAX_NAME_CHARS, false)?;
    let species = checked_text("species", &input.species, MAX_SPECIES_CHARS, false)?;
    let breed = optional_text("breed", input.breed.as_deref(), MAX_SPECIES_CHARS, false)?;
    if let Some(dob) = input.date_of_birth
        && (dob > today || dob < earliest_date())
    {
        return Err(ApiError::InvalidField {
            field: "date_of_birth",
            message: "date_of_birth must be between 1900-01-01 and today".to_owned(),
        });
    }
    Ok(Animal {
        name,
        species,
        breed,
        date_of_birth: input.date_of_birth,
    })
}

impl Store {
    /// The patients of `client_id` (of `organisation_id`): its animals by name, and its own
    /// patient first when `with_own`.
    pub(crate) async fn patients_of_client(
        &self,
        organisation_id: OrganisationId,
        client_id: ClientId,
        with_own: bool,
    ) -> Result<Vec<Patient>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, Patient>(concat!(
                patient_columns!(),
                "where p.organisation_id = $1 and p.client_id = $2 and ($3 or not p.is_client) \
                 order by p.is_client desc, name, p.patient_id"
            ))
            .bind(organisation_id)
            .bind(client_id)
            .bind(with_own)
            .fetch_all(pool)
            .await
        })
    }

    /// A patient of `organisation_id`, whoever's client it is (callers then check the client's
    /// visibility).
    pub(crate) async fn patient_in_organisation(
        &self,
        organisation_id: OrganisationId,
        patient_id: PatientId,
    ) -> Result<Option<Patient>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, Patient>(concat!(
                patient_columns!(),
                "where p.organisation_id = $1 and p.patient_id = $2"
            ))
            .bind(organisation_id)
            .bind(patient_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Adds an animal to `client_id`, unless the client owns [`MAX_PATIENTS_PER_CLIENT`]
    /// already (`None`).
    async fn insert_animal(
        &self,
        organisation_id: OrganisationId,
        client_id: ClientId,
        animal: &Animal,
        now: DateTime<Utc>,
    ) -> Result<Option<PatientId>, sqlx::Error> {
        let id = PatientId::new();
        let n = dispatch!(self, pool => {
            sqlx::query(
                "insert into patient (patient_id, organisation_id, client_id, is_client, name, \
                 species, breed, date_of_birth, created_at, updated_at) \
                 select $1, $2, $3, $4, $5, $6, $7, $8, $9, $9 \
                 where (select count(*) from patient where client_id = $3) <= $10",
            )
            .bind(id)
            .bind(organisation_id)
            .bind(client_id)
            .bind(false)
            .bind(&animal.name)
            .bind(&animal.species)
            .bind(&animal.breed)
            .bind(animal.date_of_birth)
            .bind(now)
            .bind(MAX_PATIENTS_PER_CLIENT)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok((n > 0).then_some(id))
    }

    async fn update_animal(
        &self,
        organisation_id: OrganisationId,
        patient_id: PatientId,
        animal: &Animal,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "update patient set name = $3, species = $4, breed = $5, date_of_birth = $6, \
                 updated_at = $7 \
                 where organisation_id = $1 and patient_id = $2 and not is_client",
            )
            .bind(organisation_id)
            .bind(patient_id)
            .bind(&animal.name)
            .bind(&animal.species)
            .bind(&animal.breed)
            .bind(animal.date_of_birth)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Records (or corrects) the date of death of a patient, in one transaction.
    ///
    /// The patient's open recalls and their pending steps are cancelled in this transaction
    /// (`patient_deceased`), so a recall send job claimed after the commit finds them cancelled,
    /// and one that committed first sent before the death was recorded. Undoing the death
    /// (`None`) does not reopen them.
    pub(crate) async fn mark_patient_deceased(
        &self,
        organisation_id: OrganisationId,
        patient_id: PatientId,
        deceased_on: Option<NaiveDate>,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "update patient set deceased_on = $3, updated_at = $4 \
                 where organisation_id = $1 and patient_id = $2",
            )
            .bind(organisation_id)
            .bind(patient_id)
            .bind(deceased_on)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 && deceased_on.is_some() {
                tx.patient_died(organisation_id, patient_id, now).await?;
            }
            tx.commit().await?;
            Ok(n > 0)
        })
    }
}

fn parse_client(raw: &str) -> ApiResult<ClientId> {
    raw.parse().map_err(|_| ApiError::NotFound("client"))
}

/// The patient `raw` names if the caller sees its client, with the organisation's settings.
pub(crate) async fn visible_patient(
    clinic: &Clinic,
    current: &CurrentStaff,
    raw: &str,
) -> ApiResult<(Patient, OrganisationSettings)> {
    let id: PatientId = raw.parse().map_err(|_| ApiError::NotFound("patient"))?;
    let patient = clinic
        .store()
        .patient_in_organisation(current.staff.organisation_id, id)
        .await?
        .ok_or(ApiError::NotFound("patient"))?;
    let (_, settings) = visible_client(clinic, current, patient.client_id)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound("patient"),
            e => e,
        })?;
    Ok((patient, settings))
}

async fn list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let (client, settings) = visible_client(&clinic, &current, parse_client(&raw)?).await?;
    // A veterinary client's patients are its animals; a human client's is the client. (An
    // animal left from a veterinary past, which the settings change prevents, is still shown.)
    let patients = clinic
        .store()
        .patients_of_client(
            current.staff.organisation_id,
            client.id,
            !is_veterinary(&settings),
        )
        .await?;
    Ok(Json(json!({
        "patients": patients,
        "organisation_kind": settings.organisation_kind,
    })))
}

async fn create(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
    ApiJson(input): ApiJson<PatientInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (client, settings) = visible_client(&clinic, &current, parse_client(&raw)?).await?;
    if !is_veterinary(&settings) {
        return Err(ApiError::Conflict(
            "in a human organisation each client is their own patient and has no other",
        ));
    }
    let animal = check(input, local_today(&settings, clinic.now()))?;
    let org = current.staff.organisation_id;
    let id = clinic
        .store()
        .insert_animal(org, client.id, &animal, clinic.now())
        .await?
        .ok_or(ApiError::Conflict("the client owns too many patients"))?;
    let patient = clinic
        .store()
        .patient_in_organisation(org, id)
        .await?
        .ok_or(ApiError::NotFound("patient"))?;
    tracing::info!(patient_id = %id, client_id = %client.id, staff_id = %current.staff.id, "patient created");
    Ok((StatusCode::CREATED, Json(json!({ "patient": patient }))))
}

async fn read(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let (patient, _) = visible_patient(&clinic, &current, &raw).await?;
    Ok(Json(json!({ "patient": patient })))
}

async fn update(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
    ApiJson(input): ApiJson<PatientInput>,
) -> ApiResult<Json<Value>> {
    let (patient, settings) = visible_patient(&clinic, &current, &raw).await?;
    if patient.is_client {
        return Err(ApiError::Conflict(
            "this patient is the client: edit the client's name and date of birth instead",
        ));
    }
    let animal = check(input, local_today(&settings, clinic.now()))?;
    if let (Some(dob), Some(died)) = (animal.date_of_birth, patient.deceased_on)
        && dob > died
    {
        return Err(ApiError::InvalidField {
            field: "date_of_birth",
            message: "date_of_birth is after the recorded date of death".to_owned(),
        });
    }
    let org = current.staff.organisation_id;
    if !clinic
        .store()
        .update_animal(org, patient.id, &animal, clinic.now())
        .await?
    {
        return Err(ApiError::NotFound("patient"));
    }
    let patient = clinic
        .store()
        .patient_in_organisation(org, patient.id)
        .await?
        .ok_or(ApiError::NotFound("patient"))?;
    tracing::info!(patient_id = %patient.id, staff_id = %current.staff.id, "patient updated");
    Ok(Json(json!({ "patient": patient })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeceasedInput {
    deceased_on: NaiveDate,
}

async fn mark_deceased(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
    ApiJson(input): ApiJson<DeceasedInput>,
) -> ApiResult<Json<Value>> {
    let (patient, settings) = visible_patient(&clinic, &current, &raw).await?;
    let today = local_today(&settings, clinic.now());
    let day = input.deceased_on;
    if day > today || day < earliest_date() {
        return Err(ApiError::InvalidField {
            field: "deceased_on",
            message: "deceased_on must be between 1900-01-01 and today".to_owned(),
        });
    }
    if patient.date_of_birth.is_some_and(|dob| day < dob) {
        return Err(ApiError::InvalidField {
            field: "deceased_on",
            message: "deceased_on is before the date of birth".to_owned(),
        });
    }
    set_deceased(&clinic, &current, patient.id, Some(day)).await
}

async fn unmark_deceased(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let (patient, _) = visible_patient(&clinic, &current, &raw).await?;
    if current.staff.role == Role::Practitioner {
        return Err(ApiError::Forbidden(
            "only an organisation or department admin may undo a recorded death",
        ));
    }
    set_deceased(&clinic, &current, patient.id, None).await
}

async fn set_deceased(
    clinic: &Clinic,
    current: &CurrentStaff,
    id: PatientId,
    day: Option<NaiveDate>,
) -> ApiResult<Json<Value>> {
    let org = current.staff.organisation_id;
    if !clinic
        .store()
        .mark_patient_deceased(org, id, day, clinic.now())
        .await?
    {
        return Err(ApiError::NotFound("patient"));
    }
    let patient = clinic
        .store()
        .patient_in_organisation(org, id)
        .await?
        .ok_or(ApiError::NotFound("patient"))?;
    tracing::info!(patient_id = %id, staff_id = %current.staff.id, deceased = day.is_some(), "patient death recorded");
    Ok(Json(json!({ "patient": patient })))
}
