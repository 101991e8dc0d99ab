//! The organisation's profile (F3, F10, F11): name, logo (scaled server-side), the contact
//! details shown to patients, and the practitioners' forms of address in English, Dutch and
//! German. Every staff member of the organisation reads it; only an organisation admin changes it.
//!
//! Invariant: a request is validated as a whole before anything is written; fields left out keep
//! their value.

use axum::Json;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::CurrentStaff;
use crate::clients::{is_valid_email, is_valid_phone};
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::ids::OrganisationId;
use crate::images::{self, Purpose};
use crate::staff::Role;
use crate::staff_admin::clean_name;
use crate::store::{Store, dispatch};
use crate::{Clinic, Route};

/// Longest free contact text (address, opening hours), in characters.
pub const MAX_CONTACT_TEXT_CHARS: usize = 1000;
/// Most forms of address.
pub const MAX_FORMS_OF_ADDRESS: usize = 20;
/// Longest form of address, in characters.
pub const MAX_FORM_CHARS: usize = 40;

/// One form of address in the three languages (e.g. Doctor / Dokter / Doktor).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormOfAddress {
    /// English.
    pub en: String,
    /// Dutch.
    pub nl: String,
    /// German.
    pub de: String,
}

/// The organisation's profile as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
struct ProfileRow {
    organisation_id: OrganisationId,
    name: String,
    contact_email: String,
    contact_phone: String,
    contact_website: String,
    contact_text: String,
    forms_of_address: String,
    has_logo: bool,
}

impl ProfileRow {
    fn to_json(&self) -> serde_json::Value {
        let forms: Vec<FormOfAddress> =
            serde_json::from_str(&self.forms_of_address).unwrap_or_default();
        json!({
            "id": self.organisation_id,
            "name": self.name,
            "contact": {
                "email": self.contact_email,
                "phone": self.contact_phone,
                "website": self.contact_website,
                "text": self.contact_text,
            },
            "forms_of_address": forms,
            "has_logo": self.has_logo,
        })
    }
}

impl Store {
    async fn organisation_profile(
        &self,
        org: OrganisationId,
    ) -> Result<Option<ProfileRow>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, ProfileRow>(
                "select o.organisation_id, o.name, o.contact_email, o.contact_phone, \
                 o.contact_website, o.contact_text, o.forms_of_address, \
                 exists (select 1 from organisation_logo l \
                 where l.organisation_id = o.organisation_id) as has_logo \
                 from organisation o where o.organisation_id = $1",
            )
            .bind(org)
            .fetch_optional(pool)
            .await
        })
    }

    async fn update_organisation_profile(
        &self,
        row: &ProfileRow,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "update organisation set name = $2, contact_email = $3, contact_phone = $4, \
                 contact_website = $5, contact_text = $6, forms_of_address = $7, updated_at = $8 \
                 where organisation_id = $1",
            )
            .bind(row.organisation_id)
            .bind(&row.name)
            .bind(&row.contact_email)
            .bind(&row.contact_phone)
            .bind(&row.contact_website)
            .bind(&row.contact_text)
            .bind(&row.forms_of_address)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    async fn put_organisation_logo(
        &self,
        org: OrganisationId,
        content_type: &str,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "insert into organisation_logo (organisation_id, content_type, bytes, updated_at) \
                 values ($1, $2, $3, $4) on conflict (organisation_id) do update set \
                 content_type = excluded.content_type, bytes = excluded.bytes, \
                 updated_at = excluded.updated_at",
            )
            .bind(org)
            .bind(content_type)
            .bind(bytes)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    async fn delete_organisation_logo(&self, org: OrganisationId) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query("delete from organisation_logo where organisation_id = $1")
                .bind(org)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    async fn organisation_logo(
        &self,
        org: OrganisationId,
    ) -> Result<Option<(String, Vec<u8>)>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, (String, Vec<u8>)>(
                "select content_type, bytes from organisation_logo where organisation_id = $1",
            )
            .bind(org)
            .fetch_optional(pool)
            .await
        })
    }
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/organisation/profile", get(get_profile)),
        Route::new("PUT", "/organisation/profile", put(put_profile)),
        Route::new("GET", "/organisation/logo", get(get_logo)),
        Route::new(
            "PUT",
            "/organisation/logo",
            put(put_logo).layer(DefaultBodyLimit::max(images::MAX_UPLOAD_BYTES)),
        ),
        Route::new("DELETE", "/organisation/logo", delete(delete_logo)),
        Route::new(
            "GET",
            "/public/organisations/{id}/logo",
            get(get_public_logo),
        ),
    ]
}

/// What a patient's page shows of the clinic (F11): its name, the URL of its logo (public, by
/// organisation id; `null` without one) and its contact details. In the answer of
/// `POST /invitations/resolve`.
pub(crate) async fn branding(clinic: &Clinic, org: OrganisationId) -> ApiResult<serde_json::Value> {
    let row = load(clinic, org).await?;
    Ok(json!({
        "name": row.name,
        "logo_url": row
            .has_logo
            .then(|| format!("/api/v1/public/organisations/{}/logo", row.organisation_id)),
        "contact": {
            "email": row.contact_email,
            "phone": row.contact_phone,
            "website": row.contact_website,
            "text": row.contact_text,
        },
    }))
}

fn require_admin(current: &CurrentStaff) -> ApiResult<()> {
    if current.staff.role == Role::OrganisationAdmin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only an organisation admin may change the organisation's profile",
        ))
    }
}

async fn load(clinic: &Clinic, org: OrganisationId) -> ApiResult<ProfileRow> {
    clinic
        .store()
        .organisation_profile(org)
        .await?
        .ok_or(ApiError::NotFound("organisation"))
}

async fn get_profile(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(
        load(&clinic, current.staff.organisation_id)
            .await?
            .to_json(),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ContactUpdate {
    email: Option<String>,
    phone: Option<String>,
    website: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileUpdate {
    name: Option<String>,
    contact: Option<ContactUpdate>,
    forms_of_address: Option<Vec<FormOfAddress>>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        field,
        message: message.into(),
    }
}

/// A single-line value: trimmed, at most `max` characters, no control characters.
fn line(field: &'static str, value: &str, max: usize) -> ApiResult<String> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(invalid(
            field,
            format!("{field} must have at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, format!("{field} must be one line")));
    }
    Ok(value.to_owned())
}

async fn put_profile(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<ProfileUpdate>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&current)?;
    let mut row = load(&clinic, current.staff.organisation_id).await?;
    if let Some(name) = &req.name {
        row.name = clean_name("name", name)?;
    }
    let contact = req.contact.unwrap_or_default();
    if let Some(email) = &contact.email {
        let email = line("contact.email", email, 254)?;
        if !email.is_empty() && !is_valid_email(&email) {
            return Err(invalid(
                "contact.email",
                "contact.email is not a valid address",
            ));
        }
        row.contact_email = email;
    }
    if let Some(phone) = &contact.phone {
        let phone = line("contact.phone", phone, 32)?;
        if !phone.is_empty() && !is_valid_phone(&phone) {
            return Err(invalid(
                "contact.phone",
                "contact.phone is not a valid phone number (digits, spaces, + - ( ) .)",
            ));
        }
        row.contact_phone = phone;
    }
    if let Some(website) = &contact.website {
        let website = line("contact.website", website, 200)?;
        let scheme_ok = website.starts_with("https://") || website.starts_with("http://");
        if !website.is_empty() && !scheme_ok {
            return Err(invalid(
                "contact.website",
                "contact.website must start with https:// or http://",
            ));
        }
        row.contact_website = website;
    }
    if let Some(text) = &contact.text {
        let text = text.trim();
        if text.chars().count() > MAX_CONTACT_TEXT_CHARS {
            return Err(invalid(
                "contact.text",
                format!("contact.text must have at most {MAX_CONTACT_TEXT_CHARS} characters"),
            ));
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(invalid(
                "contact.text",
                "contact.text holds control characters",
            ));
        }
        row.contact_text = text.to_owned();
    }
    if let Some(forms) = req.forms_of_address {
        if forms.len() > MAX_FORMS_OF_ADDRESS {
            return Err(invalid(
                "forms_of_address",
                format!("at most {MAX_FORMS_OF_ADDRESS} forms of address"),
            ));
        }
        let mut clean = Vec::with_capacity(forms.len());
        for form in &forms {
            let one = FormOfAddress {
                en: line("forms_of_address", &form.en, MAX_FORM_CHARS)?,
                nl: line("forms_of_address", &form.nl, MAX_FORM_CHARS)?,
                de: line("forms_of_address", &form.de, MAX_FORM_CHARS)?,
            };
            if one.en.is_empty() || one.nl.is_empty() || one.de.is_empty() {
                return Err(invalid(
                    "forms_of_address",
                    "each form of address needs its English, Dutch and German text",
                ));
            }
            clean.push(one);
        }
        row.forms_of_address =
            serde_json::to_string(&clean).map_err(|e| ApiError::Internal(e.into()))?;
    }
    clinic
        .store()
        .update_organisation_profile(&row, clinic.now())
        .await?;
    tracing::info!(by = %current.staff.id, "organisation profile changed");
    Ok(Json(load(&clinic, row.organisation_id).await?.to_json()))
}

/// An image response: its stored type, `nosniff` (set by the router), not cached.
pub(crate) fn image_response(content_type: String, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, "sandbox".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

async fn get_logo(State(clinic): State<Clinic>, current: CurrentStaff) -> ApiResult<Response> {
    let (content_type, bytes) = clinic
        .store()
        .organisation_logo(current.staff.organisation_id)
        .await?
        .ok_or(ApiError::NotFound("logo"))?;
    Ok(image_response(content_type, bytes))
}

/// The logo for patient pages (public: a logo is no secret, and organisation ids are random).
/// An unknown organisation and one without a logo are the same 404.
async fn get_public_logo(
    State(clinic): State<Clinic>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let org: OrganisationId = id.parse().map_err(|_| ApiError::NotFound("logo"))?;
    let (content_type, bytes) = clinic
        .store()
        .organisation_logo(org)
        .await?
        .ok_or(ApiError::NotFound("logo"))?;
    Ok(image_response(content_type, bytes))
}

async fn put_logo(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    require_admin(&current)?;
    let logo = images::process_upload(&headers, body, Purpose::Logo).await?;
    let org = current.staff.organisation_id;
    clinic
        .store()
        .put_organisation_logo(org, logo.content_type, &logo.bytes, clinic.now())
        .await?;
    Ok(Json(load(&clinic, org).await?.to_json()))
}

async fn delete_logo(State(clinic): State<Clinic>, current: CurrentStaff) -> ApiResult<StatusCode> {
    require_admin(&current)?;
    clinic
        .store()
        .delete_organisation_logo(current.staff.organisation_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
