//! A staff member's own profile (F24): name, phone, the staff app's language (issue #14; `null`
//! = not chosen, the app follows the browser), photo (scaled server-side) and password change; department and role are shown, changed only by an admin (`staff_admin`). Colleagues'
//! photos are served to staff of the same organisation.
//!
//! Invariant: a password change needs the current password (checked on the password-check pool)
//! and ends the staff member's other sessions (their WebSockets close); the session that changed
//! it stays.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use crate::auth::{CurrentStaff, SessionEndReason, check_new_password};
use crate::clients::is_valid_phone;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::ids::{OrganisationId, StaffId};
use crate::images::{self, Purpose};
use crate::organisation_profile::image_response;
use crate::staff_admin::clean_name;
use crate::store::{Store, dispatch};
use crate::templates::Language;
use crate::{Clinic, Route};

impl Store {
    async fn update_own_profile(
        &self,
        staff_id: StaffId,
        name: &str,
        phone: &str,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query("update staff set name = $2, phone = $3, updated_at = $4 where staff_id = $1")
                .bind(staff_id)
                .bind(name)
                .bind(phone)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    /// The language staff member `staff_id` chose for the staff app; `None` when none is chosen.
    pub(crate) async fn staff_language(
        &self,
        staff_id: StaffId,
    ) -> Result<Option<Language>, sqlx::Error> {
        let code: Option<Option<String>> = dispatch!(self, pool => {
            sqlx::query_scalar("select language from staff where staff_id = $1")
                .bind(staff_id)
                .fetch_optional(pool)
                .await
        })?;
        // The column's check allows only our codes.
        Ok(code.flatten().and_then(|c| c.parse().ok()))
    }

    async fn update_staff_language(
        &self,
        staff_id: StaffId,
        language: Option<Language>,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query("update staff set language = $2, updated_at = $3 where staff_id = $1")
                .bind(staff_id)
                .bind(language.map(Language::as_str))
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    async fn update_password_hash(
        &self,
        staff_id: StaffId,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query("update staff set password_hash = $2, updated_at = $3 where staff_id = $1")
                .bind(staff_id)
                .bind(hash)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    async fn put_staff_photo(
        &self,
        staff_id: StaffId,
        content_type: &str,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "insert into staff_photo (staff_id, content_type, bytes, updated_at) \
                 values ($1, $2, $3, $4) on conflict (staff_id) do update set \
                 content_type = excluded.content_type, bytes = excluded.bytes, \
                 updated_at = excluded.updated_at",
            )
            .bind(staff_id)
            .bind(content_type)
            .bind(bytes)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    async fn delete_staff_photo(&self, staff_id: StaffId) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query("delete from staff_photo where staff_id = $1")
                .bind(staff_id)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    /// The photo of `staff_id` if they belong to `org`.
    async fn staff_photo(
        &self,
        org: OrganisationId,
        staff_id: StaffId,
    ) -> Result<Option<(String, Vec<u8>)>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, (String, Vec<u8>)>(
                "select p.content_type, p.bytes from staff_photo p \
                 join staff s on s.staff_id = p.staff_id \
                 where p.staff_id = $1 and s.organisation_id = $2",
            )
            .bind(staff_id)
            .bind(org)
            .fetch_optional(pool)
            .await
        })
    }
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/me/profile", get(get_profile)),
        Route::new("PUT", "/me/profile", put(put_profile)),
        Route::new(
            "PUT",
            "/me/photo",
            put(put_photo).layer(DefaultBodyLimit::max(images::MAX_UPLOAD_BYTES)),
        ),
        Route::new("DELETE", "/me/photo", delete(delete_photo)),
        Route::new("POST", "/me/password", post(change_password)),
        Route::new("GET", "/staff/{id}/photo", get(get_photo)),
    ]
}

async fn profile_json(
    clinic: &Clinic,
    current: &CurrentStaff,
) -> ApiResult<Json<serde_json::Value>> {
    let staff = &current.staff;
    let entry = clinic
        .store()
        .staff_entry(staff.organisation_id, staff.id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let department = match staff.department_id {
        Some(d) => clinic
            .store()
            .department_entries(staff.organisation_id, Some(d))
            .await?
            .into_iter()
            .next()
            .map(|d| d.name),
        None => None,
    };
    let language = clinic.store().staff_language(staff.id).await?;
    Ok(Json(json!({
        "id": entry.id,
        "name": entry.name,
        "email": entry.email,
        "phone": entry.phone,
        "role": entry.role,
        "department_id": entry.department_id,
        "department_name": department,
        "has_photo": entry.has_photo,
        "language": language,
    })))
}

async fn get_profile(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
) -> ApiResult<Json<serde_json::Value>> {
    profile_json(&clinic, &current).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileUpdate {
    name: Option<String>,
    phone: Option<String>,
    /// Absent: unchanged; `null`: follow the browser; else one of our languages.
    #[serde(default, deserialize_with = "present")]
    language: Option<Option<Language>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`, through `default`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Language>>, D::Error> {
    Option::<Language>::deserialize(d).map(Some)
}

async fn put_profile(
    State(clinic): State<Clinic>,
    mut current: CurrentStaff,
    ApiJson(req): ApiJson<ProfileUpdate>,
) -> ApiResult<Json<serde_json::Value>> {
    let entry = clinic
        .store()
        .staff_entry(current.staff.organisation_id, current.staff.id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let name = match &req.name {
        Some(name) => clean_name("name", name)?,
        None => entry.name,
    };
    let phone = match &req.phone {
        Some(phone) => {
            let phone = phone.trim();
            if !phone.is_empty() && !is_valid_phone(phone) {
                return Err(ApiError::InvalidField {
                    field: "phone",
                    message: "phone is not a valid phone number: 6 to 20 digits, with spaces, \
                              + - ( ) . allowed"
                        .into(),
                });
            }
            phone.to_owned()
        }
        None => entry.phone,
    };
    clinic
        .store()
        .update_own_profile(current.staff.id, &name, &phone, clinic.now())
        .await?;
    if let Some(language) = req.language {
        clinic
            .store()
            .update_staff_language(current.staff.id, language, clinic.now())
            .await?;
    }
    current.staff.name = name;
    profile_json(&clinic, &current).await
}

async fn put_photo(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let photo = images::process_upload(&headers, body, Purpose::Photo).await?;
    clinic
        .store()
        .put_staff_photo(
            current.staff.id,
            photo.content_type,
            &photo.bytes,
            clinic.now(),
        )
        .await?;
    profile_json(&clinic, &current).await
}

async fn delete_photo(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
) -> ApiResult<StatusCode> {
    clinic.store().delete_staff_photo(current.staff.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_photo(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let id: StaffId = id.parse().map_err(|_| ApiError::NotFound("photo"))?;
    let (content_type, bytes) = clinic
        .store()
        .staff_photo(current.staff.organisation_id, id)
        .await?
        .ok_or(ApiError::NotFound("photo"))?;
    Ok(image_response(content_type, bytes))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    check_new_password(&req.new_password).map_err(|message| ApiError::InvalidField {
        field: "new_password",
        message,
    })?;
    let wrong = || ApiError::InvalidField {
        field: "current_password",
        message: "the current password is not correct".into(),
    };
    if req.current_password.len() > crate::auth::MAX_PASSWORD_BYTES {
        return Err(wrong());
    }
    let row = clinic
        .store()
        .staff_by_id(current.staff.id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let ok = clinic
        .password_pool()
        .verify_or_dummy(req.current_password, Some(row.password_hash))
        .await
        .map_err(|_busy| ApiError::RateLimited {
            retry_after_secs: 1,
        })?;
    if !ok {
        tracing::info!(staff_id = %current.staff.id, "password change refused: wrong current password");
        return Err(wrong());
    }
    let hash = clinic.hash_password(req.new_password).await?;
    clinic
        .store()
        .update_password_hash(current.staff.id, &hash, clinic.now())
        .await?;
    let ended = clinic
        .end_other_staff_sessions(
            current.staff.id,
            current.session_id,
            SessionEndReason::PasswordChanged,
        )
        .await?;
    tracing::info!(staff_id = %current.staff.id, other_sessions_ended = ended, "password changed");
    Ok(StatusCode::NO_CONTENT)
}
