//! Notes on a client or a patient (F189–F190): `POST /clients/{id}/notes`, `GET/PUT /notes/{id}`,
//! `POST /notes/{id}/archive` and `/unarchive`.
//!
//! Whoever sees the client reads its notes and writes new ones; a note is edited, archived and
//! unarchived by its author, department admins and organisation admins (who see the client).
//! Notes are never deleted: an archived note leaves the timeline unless asked for
//! (`archived=include|only`). An edit keeps the time the note was written (the timeline's
//! order) and records when and by whom it was edited.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::rules::{checked_text, visible_client};
use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::ids::{ClientId, NoteId, OrganisationId, PatientId, StaffId};
use crate::staff::{Role, Staff};
use crate::store::{Store, dispatch};
use crate::{Clinic, Route};

/// Longest note, in characters.
const MAX_TEXT_CHARS: usize = 10_000;

/// Routes of this module (relative to `/api/v1`).
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::new("POST", "/clients/{id}/notes", post(create)),
        Route::new("GET", "/notes/{id}", get(read)),
        Route::new("PUT", "/notes/{id}", put(edit)),
        Route::new("POST", "/notes/{id}/archive", post(archive)),
        Route::new("POST", "/notes/{id}/unarchive", post(unarchive)),
    ]
}

/// A note as the API shows it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub(crate) struct Note {
    #[sqlx(rename = "note_id")]
    pub(crate) id: NoteId,
    pub(crate) client_id: ClientId,
    /// The patient it is about (the client's own patient for a note about the client).
    pub(crate) patient_id: PatientId,
    pub(crate) text: String,
    pub(crate) author_id: Option<StaffId>,
    pub(crate) author_name: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) edited_at: Option<DateTime<Utc>>,
    pub(crate) edited_by: Option<StaffId>,
    pub(crate) archived_at: Option<DateTime<Utc>>,
    /// The caller may edit, archive and unarchive it.
    #[sqlx(skip)]
    pub(crate) editable: bool,
}

/// `select` columns of a [`Note`] (`n`) with its author (`a`).
macro_rules! note_columns {
    () => {
        "select n.note_id, n.client_id, n.patient_id, n.text, n.author_id, a.name as author_name, \
         n.created_at, n.edited_at, n.edited_by, n.archived_at \
         from note n left join staff a on a.staff_id = n.author_id "
    };
}
pub(super) use note_columns;

impl Note {
    /// Sets [`Note::editable`] for `staff`.
    pub(crate) fn for_caller(mut self, staff: &Staff) -> Self {
        self.editable = match staff.role {
            Role::OrganisationAdmin | Role::DepartmentAdmin => true,
            Role::Practitioner => self.author_id == Some(staff.id),
        };
        self
    }
}

impl Store {
    async fn insert_note(
        &self,
        organisation_id: OrganisationId,
        client_id: ClientId,
        patient_id: PatientId,
        text: &str,
        author: StaffId,
        now: DateTime<Utc>,
    ) -> Result<NoteId, sqlx::Error> {
        let id = NoteId::new();
        dispatch!(self, pool => {
            sqlx::query(
                "insert into note (note_id, organisation_id, client_id, patient_id, text, \
                 author_id, created_at) values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(organisation_id)
            .bind(client_id)
            .bind(patient_id)
            .bind(text)
            .bind(author)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(id)
    }

    pub(crate) async fn note_in_organisation(
        &self,
        organisation_id: OrganisationId,
        id: NoteId,
    ) -> Result<Option<Note>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, Note>(concat!(
                note_columns!(),
                "where n.organisation_id = $1 and n.note_id = $2"
            ))
            .bind(organisation_id)
            .bind(id)
            .fetch_optional(pool)
            .await
        })
    }

    async fn edit_note(
        &self,
        organisation_id: OrganisationId,
        id: NoteId,
        text: &str,
        by: StaffId,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "update note set text = $3, edited_at = $4, edited_by = $5 \
                 where organisation_id = $1 and note_id = $2",
            )
            .bind(organisation_id)
            .bind(id)
            .bind(text)
            .bind(now)
            .bind(by)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Archives (`Some(now)`) or unarchives (`None`) a note.
    async fn set_note_archived(
        &self,
        organisation_id: OrganisationId,
        id: NoteId,
        at: Option<DateTime<Utc>>,
        by: Option<StaffId>,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "update note set archived_at = $3, archived_by = $4 \
                 where organisation_id = $1 and note_id = $2",
            )
            .bind(organisation_id)
            .bind(id)
            .bind(at)
            .bind(by)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNote {
    text: String,
    /// The patient it is about; absent: the client (its own patient).
    #[serde(default)]
    patient_id: Option<PatientId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteEdit {
    text: String,
}

async fn create(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
    ApiJson(input): ApiJson<NewNote>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let client_id: ClientId = raw.parse().map_err(|_| ApiError::NotFound("client"))?;
    let (client, _) = visible_client(&clinic, &current, client_id).await?;
    let org = current.staff.organisation_id;
    let patient_id = match input.patient_id {
        None => PatientId(client.id.0),
        Some(p) => {
            let patient = clinic.store().patient_in_organisation(org, p).await?;
            match patient {
                Some(patient) if patient.client_id == client.id => patient.id,
                _ => {
                    return Err(ApiError::InvalidField {
                        field: "patient_id",
                        message: "not a patient of this client".to_owned(),
                    });
                }
            }
        }
    };
    let text = checked_text("text", &input.text, MAX_TEXT_CHARS, true)?;
    let id = clinic
        .store()
        .insert_note(
            org,
            client.id,
            patient_id,
            &text,
            current.staff.id,
            clinic.now(),
        )
        .await?;
    let note = read_back(&clinic, &current, id).await?;
    tracing::info!(note_id = %id, client_id = %client.id, staff_id = %current.staff.id, "note created");
    Ok((StatusCode::CREATED, Json(json!({ "note": note }))))
}

async fn read_back(clinic: &Clinic, current: &CurrentStaff, id: NoteId) -> ApiResult<Note> {
    Ok(clinic
        .store()
        .note_in_organisation(current.staff.organisation_id, id)
        .await?
        .ok_or(ApiError::NotFound("note"))?
        .for_caller(&current.staff))
}

/// The note `raw` names if the caller sees its client.
async fn visible_note(clinic: &Clinic, current: &CurrentStaff, raw: &str) -> ApiResult<Note> {
    let id: NoteId = raw.parse().map_err(|_| ApiError::NotFound("note"))?;
    let note = read_back(clinic, current, id).await?;
    visible_client(clinic, current, note.client_id)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::NotFound("note"),
            e => e,
        })?;
    Ok(note)
}

fn may_change(note: &Note) -> ApiResult<()> {
    if note.editable {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the note's author or an admin may change it",
        ))
    }
}

async fn read(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let note = visible_note(&clinic, &current, &raw).await?;
    Ok(Json(json!({ "note": note })))
}

async fn edit(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
    ApiJson(input): ApiJson<NoteEdit>,
) -> ApiResult<Json<Value>> {
    let note = visible_note(&clinic, &current, &raw).await?;
    may_change(&note)?;
    let text = checked_text("text", &input.text, MAX_TEXT_CHARS, true)?;
    let org = current.staff.organisation_id;
    if !clinic
        .store()
        .edit_note(org, note.id, &text, current.staff.id, clinic.now())
        .await?
    {
        return Err(ApiError::NotFound("note"));
    }
    tracing::info!(note_id = %note.id, staff_id = %current.staff.id, "note edited");
    let note = read_back(&clinic, &current, note.id).await?;
    Ok(Json(json!({ "note": note })))
}

async fn archive(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    set_archived(&clinic, &current, &raw, true).await
}

async fn unarchive(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    set_archived(&clinic, &current, &raw, false).await
}

/// Archives or unarchives; a repeat keeps the first archiving time.
async fn set_archived(
    clinic: &Clinic,
    current: &CurrentStaff,
    raw: &str,
    archived: bool,
) -> ApiResult<Json<Value>> {
    let note = visible_note(clinic, current, raw).await?;
    may_change(&note)?;
    if note.archived_at.is_some() != archived {
        let (at, by) = if archived {
            (Some(clinic.now()), Some(current.staff.id))
        } else {
            (None, None)
        };
        clinic
            .store()
            .set_note_archived(current.staff.organisation_id, note.id, at, by)
            .await?;
        tracing::info!(note_id = %note.id, staff_id = %current.staff.id, archived, "note archive state changed");
    }
    let note = read_back(clinic, current, note.id).await?;
    Ok(Json(json!({ "note": note })))
}
