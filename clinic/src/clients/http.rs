//! Routes of the client register: `GET/POST /clients`, `GET/PUT/DELETE /clients/{id}`.
//!
//! Who may do what: every staff member creates clients, and reads and edits the clients they
//! see ([`ClientScope`]); deleting is for organisation and department admins, and only while no
//! appointment or conversation refers to the client (their records are kept). Under F6 a
//! non-admin files clients in their own department only; under F9 a practitioner assigns
//! clients to themselves only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::db::ClientScope;
use super::db::{DeleteOutcome, Register, Search};
use super::model::{Language, NewClient, validate};
use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::ids::{ClientId, DepartmentId, StaffId};
use crate::org_settings::OrganisationSettings;
use crate::staff::Role;
use crate::{Clinic, Route};

/// Default page size of `GET /clients`.
const DEFAULT_LIMIT: i64 = 50;
/// Largest page size of `GET /clients`.
const MAX_LIMIT: i64 = 200;
/// Longest client number, in characters.
const MAX_CLIENT_NUMBER_CHARS: usize = 64;
/// Longest search text, in characters.
const MAX_QUERY_CHARS: usize = 200;

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/clients", get(list)),
        Route::new("POST", "/clients", post(create)),
        Route::new("GET", "/clients/{id}", get(read)),
        Route::new("PUT", "/clients/{id}", put(update)),
        Route::new("DELETE", "/clients/{id}", delete(remove)),
    ]
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    date_of_birth: Option<NaiveDate>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
}

async fn scope_of(clinic: &Clinic, current: &CurrentStaff) -> ApiResult<ClientScope> {
    let settings = clinic
        .organisation_settings(current.staff.organisation_id)
        .await?;
    Ok(ClientScope::new(&current.staff, &settings))
}

async fn list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Value>> {
    let q = params.q.as_deref().unwrap_or("").trim();
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::InvalidField {
            field: "q",
            message: format!("at most {MAX_QUERY_CHARS} characters"),
        });
    }
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidField {
            field: "limit",
            message: format!("limit must be 1 to {MAX_LIMIT}"),
        });
    }
    let offset = params.offset.unwrap_or(0);
    if !(0..=1_000_000).contains(&offset) {
        return Err(ApiError::InvalidField {
            field: "offset",
            message: "offset must be 0 to 1000000".to_owned(),
        });
    }
    let scope = scope_of(&clinic, &current).await?;
    let search = Search {
        q,
        date_of_birth: params.date_of_birth,
        limit,
        offset,
    };
    let (clients, total) = clinic.store().search_clients(&scope, &search).await?;
    Ok(Json(json!({
        "clients": clients,
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}

/// A client as typed in the register: the person fields and the register's own (also
/// `new_client` of `POST /appointments`, created in the booking's transaction).
#[derive(Deserialize, Serialize)]
pub(crate) struct ClientInput {
    #[serde(flatten)]
    person: NewClient,
    #[serde(default)]
    client_number: Option<String>,
    #[serde(default)]
    language: Option<Language>,
    #[serde(default)]
    pub(crate) department_id: Option<DepartmentId>,
    #[serde(default)]
    pub(crate) practitioner_id: Option<StaffId>,
}

/// The validated input, with the register fields decided.
pub(crate) struct Checked {
    pub(crate) person: NewClient,
    client_number: Option<String>,
    language: Language,
    department_id: Option<DepartmentId>,
    practitioner_id: Option<StaffId>,
}

/// Validates `input` completely (nothing is written before). On create, `department_id` defaults
/// to the caller's department and `practitioner_id` to a practitioner caller.
pub(crate) async fn check(
    clinic: &Clinic,
    current: &CurrentStaff,
    settings: &OrganisationSettings,
    input: ClientInput,
    creating: bool,
) -> ApiResult<Checked> {
    let staff = &current.staff;
    let person = validate(input.person, clinic.now())?;
    let client_number = match input.client_number.map(|n| n.trim().to_owned()) {
        Some(n) if n.is_empty() => None,
        Some(n) => {
            if n.chars().count() > MAX_CLIENT_NUMBER_CHARS || n.chars().any(char::is_control) {
                return Err(ApiError::InvalidField {
                    field: "client_number",
                    message: format!(
                        "client_number must be at most {MAX_CLIENT_NUMBER_CHARS} characters \
                         without control characters"
                    ),
                });
            }
            Some(n)
        }
        None => None,
    };
    let store = clinic.store();
    let department_id = match input.department_id {
        Some(d) => {
            if !store
                .department_in_organisation(staff.organisation_id, d)
                .await?
            {
                return Err(ApiError::NotFound("department"));
            }
            Some(d)
        }
        None if creating => staff.department_id,
        None => None,
    };
    if settings.strict_department_segregation
        && staff.role != Role::OrganisationAdmin
        && department_id.is_some()
        && department_id != staff.department_id
    {
        return Err(ApiError::Forbidden(
            "with strictly segregated departments, clients go into your own department only",
        ));
    }
    let practitioner_id = match input.practitioner_id {
        Some(p) => {
            store
                .staff_by_id(p)
                .await?
                .filter(|s| s.organisation_id == staff.organisation_id)
                .ok_or(ApiError::NotFound("practitioner"))?;
            Some(p)
        }
        None if creating && staff.role == Role::Practitioner => Some(staff.id),
        None => None,
    };
    if settings.strict_client_segregation
        && staff.role == Role::Practitioner
        && practitioner_id != Some(staff.id)
    {
        return Err(ApiError::Forbidden(
            "with strictly segregated clients, a practitioner's clients are their own: \
             leave practitioner_id out or give your own",
        ));
    }
    Ok(Checked {
        person,
        client_number,
        language: input.language.unwrap_or_default(),
        department_id,
        practitioner_id,
    })
}

impl Checked {
    pub(crate) fn register(&self) -> Register<'_> {
        Register {
            client_number: self.client_number.as_deref(),
            language: self.language,
            department_id: self.department_id,
            practitioner_id: self.practitioner_id,
        }
    }
}

/// A unique violation here can only be the client number.
pub(crate) fn number_taken(e: sqlx::Error) -> ApiError {
    if crate::store::is_unique_violation(&e) {
        ApiError::Conflict("another client of the organisation already has this client_number")
    } else {
        e.into()
    }
}

async fn create(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(input): ApiJson<ClientInput>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let org = current.staff.organisation_id;
    let settings = clinic.organisation_settings(org).await?;
    let checked = check(&clinic, &current, &settings, input, true).await?;
    let id = clinic
        .store()
        .insert_register_client(org, &checked.person, &checked.register(), clinic.now())
        .await
        .map_err(number_taken)?;
    // The creator files the client, so they see it unless they filed it away from themselves
    // (an admin's choice); read it back unscoped.
    let client = clinic
        .store()
        .client_in_organisation(org, id)
        .await?
        .ok_or(ApiError::NotFound("client"))?;
    tracing::info!(client_id = %id, staff_id = %current.staff.id, "client created");
    Ok((StatusCode::CREATED, Json(json!({ "client": client }))))
}

fn parse_id(raw: &str) -> ApiResult<ClientId> {
    raw.parse().map_err(|_| ApiError::NotFound("client"))
}

async fn read(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let scope = scope_of(&clinic, &current).await?;
    let client = clinic
        .store()
        .visible_client(&scope, parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("client"))?;
    Ok(Json(json!({ "client": client })))
}

async fn update(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<ClientInput>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(&id)?;
    let org = current.staff.organisation_id;
    let settings = clinic.organisation_settings(org).await?;
    let scope = ClientScope::new(&current.staff, &settings);
    let store = clinic.store();
    store
        .visible_client(&scope, id)
        .await?
        .ok_or(ApiError::NotFound("client"))?;
    let checked = check(&clinic, &current, &settings, input, false).await?;
    if !store
        .update_register_client(org, id, &checked.person, &checked.register(), clinic.now())
        .await
        .map_err(number_taken)?
    {
        return Err(ApiError::NotFound("client"));
    }
    let client = store
        .client_in_organisation(org, id)
        .await?
        .ok_or(ApiError::NotFound("client"))?;
    tracing::info!(client_id = %id, staff_id = %current.staff.id, "client updated");
    Ok(Json(json!({ "client": client })))
}

async fn remove(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let scope = scope_of(&clinic, &current).await?;
    let store = clinic.store();
    store
        .visible_client(&scope, id)
        .await?
        .ok_or(ApiError::NotFound("client"))?;
    if current.staff.role == Role::Practitioner {
        return Err(ApiError::Forbidden(
            "only an organisation or department admin may delete a client",
        ));
    }
    match store
        .delete_register_client(current.staff.organisation_id, id)
        .await?
    {
        DeleteOutcome::Deleted => {
            tracing::info!(client_id = %id, staff_id = %current.staff.id, "client deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        DeleteOutcome::NotFound => Err(ApiError::NotFound("client")),
        DeleteOutcome::HasAppointments => Err(ApiError::Conflict(
            "the client has appointments (also past or cancelled ones); a client with \
             appointments is kept for the record",
        )),
        DeleteOutcome::HasRecords => Err(ApiError::Conflict(
            "the client has notes or service records; a client with records is kept for the \
             record",
        )),
        DeleteOutcome::HasConversations => Err(ApiError::Conflict(
            "the client has chat conversations; a client with conversations is kept for the \
             record",
        )),
    }
}
