//! `POST /appointments`: book an appointment for a client the caller sees, with a practitioner
//! or a department (F75), at an instant or a local time in the organisation's time zone, with a
//! personal message (F68) and guests or groups (F74), all in one transaction.
//!
//! `Idempotency-Key` (1–255 visible ASCII characters): per organisation, for
//! [`IDEMPOTENCY_HOURS`]. A repeat with the same key and the same request answers the booking it
//! made (201, `Idempotent-Replayed: true`; the mails go out once, since they are recorded in
//! the booking's transaction); the same key with another request is refused (422). Two
//! concurrent requests with one key: the second's transaction fails on the key and it answers as
//! a repeat. The invitation and the guests' links are derived from the server secret and the
//! row ids ([`crate::secrets::derived_token`]), so a repeat returns the same links.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::db::{Booking, GuestSeed, NewAppointment, NewClientRow};
use super::links::{GUEST_LABEL, INVITATION_LABEL, invitation_link};
use super::mail::{ClientContact, GuestAddressee, Occasion, compose};
use super::reminders::{reminder_at, reminder_job};
use super::view::{answer, check_duration};
use super::when;
use crate::Clinic;
use crate::auth::CurrentStaff;
use crate::clients::{ClientInput, ClientScope};
use crate::error::{ApiError, ApiJson, ApiResult};
use crate::ids::{AppointmentId, ClientId, DepartmentId, GuestInvitationId, InvitationId, StaffId};
use crate::invitees::{Invitee, invitees};
use crate::links::GUEST_PREFIX;
use crate::secrets::{digest_eq, sha256};
use crate::staff::Role;
use crate::templates::AppointmentMailKind;
use crate::waiting_room::WaitingRoomKind;

/// How long an `Idempotency-Key` is remembered.
pub(crate) const IDEMPOTENCY_HOURS: i64 = 24;
/// Longest personal message, in characters (a 10 KB message is refused).
pub(crate) const MAX_MESSAGE_CHARS: usize = 2000;
/// Most guests invited with a booking (as for `POST /appointments/{id}/guests`).
const MAX_GUESTS: usize = 20;

#[derive(Deserialize, Serialize)]
pub(super) struct CreateRequest {
    /// An existing client; or `new_client`, created in the booking's transaction (a refused
    /// booking leaves no client behind).
    #[serde(default)]
    client_id: Option<ClientId>,
    #[serde(default)]
    new_client: Option<ClientInput>,
    #[serde(default)]
    practitioner_id: Option<StaffId>,
    #[serde(default)]
    department_id: Option<DepartmentId>,
    #[serde(default)]
    starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    local_start: Option<String>,
    #[serde(deserialize_with = "crate::json_int::int")]
    duration_minutes: i32,
    #[serde(default)]
    waiting_room: Option<WaitingRoomKind>,
    #[serde(default)]
    personal_message: Option<String>,
    #[serde(default)]
    guests: Vec<Invitee>,
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("");
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::InvalidField {
            field: "Idempotency-Key",
            message: "the Idempotency-Key header must be 1 to 255 visible ASCII characters"
                .to_owned(),
        });
    }
    Ok(Some(key.to_owned()))
}

fn check_message(raw: Option<String>) -> ApiResult<String> {
    let message = raw.unwrap_or_default().trim().to_owned();
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ApiError::InvalidField {
            field: "personal_message",
            message: format!("personal_message may be at most {MAX_MESSAGE_CHARS} characters"),
        });
    }
    if message
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::InvalidField {
            field: "personal_message",
            message: "personal_message must not contain control characters".to_owned(),
        });
    }
    Ok(message)
}

/// A repeat of a keyed request: the booking it made, or a refusal when the request differs.
async fn replay(
    clinic: &Clinic,
    current: &CurrentStaff,
    stored_hash: &[u8],
    request_hash: &[u8],
    id: AppointmentId,
) -> ApiResult<Response> {
    if !digest_eq(stored_hash, request_hash) {
        return Err(ApiError::InvalidField {
            field: "Idempotency-Key",
            message: "this Idempotency-Key was used for a different request; use a new key for \
                      a new appointment"
                .to_owned(),
        });
    }
    let mut response = (
        StatusCode::CREATED,
        Json(booked(clinic, current, id).await?),
    )
        .into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

/// The answer to a booking: the appointment, its invitation link, and the links of the guests
/// invited with it.
async fn booked(clinic: &Clinic, current: &CurrentStaff, id: AppointmentId) -> ApiResult<Value> {
    let mut body = answer(clinic, current, id).await?;
    let guests: Vec<Value> = clinic
        .store()
        .guest_links(id)
        .await?
        .into_iter()
        .filter_map(|g| {
            let token = clinic.link_token(GUEST_LABEL, &g.guest_invitation_id.to_string());
            digest_eq(&sha256(&token), &g.token_hash).then(|| {
                json!({
                    "guest": {
                        "id": g.guest_invitation_id,
                        "name": g.display_name,
                        "external_participant_id": g.external_participant_id,
                    },
                    "invitation_url": format!(
                        "{}/join#{GUEST_PREFIX}{token}",
                        clinic.config().public_url
                    ),
                })
            })
        })
        .collect();
    body["guests"] = Value::Array(guests);
    Ok(body)
}

pub(super) async fn create(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateRequest>,
) -> ApiResult<Response> {
    let caller = &current.staff;
    let org = caller.organisation_id;
    let store = clinic.store();
    let now = clinic.now();
    let key = idempotency_key(&headers)?;
    let request_hash =
        sha256(&serde_json::to_string(&req).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?);
    let keys_expire_before = now - Duration::hours(IDEMPOTENCY_HOURS);
    if let Some(key) = &key
        && let Some((stored, id)) = store
            .idempotent_booking(org, key, keys_expire_before)
            .await?
    {
        return replay(&clinic, &current, &stored, &request_hash, id).await;
    }

    let settings = clinic.organisation_settings(org).await?;
    let tz = settings.tz();
    check_duration(req.duration_minutes)?;
    let starts_at = when::start(tz, req.starts_at, req.local_start.as_deref(), now)?;
    let personal_message = check_message(req.personal_message)?;
    let practitioner_id = req.practitioner_id.unwrap_or(caller.id);
    if caller.role == Role::Practitioner && practitioner_id != caller.id {
        return Err(ApiError::Forbidden(
            "practitioners may only book appointments for themselves",
        ));
    }
    let practitioner = store
        .staff_by_id(practitioner_id)
        .await?
        // A deactivated staff member takes no appointments (issue #12).
        .filter(|p| p.organisation_id == org && p.active)
        .ok_or(ApiError::NotFound("practitioner"))?;
    let department_id = match req.department_id {
        Some(id) => {
            if !store.department_in_organisation(org, id).await? {
                return Err(ApiError::NotFound("department"));
            }
            Some(id)
        }
        None => practitioner.department_id,
    };
    if caller.role == Role::DepartmentAdmin
        && (department_id.is_none() || department_id != caller.department_id)
    {
        return Err(ApiError::Forbidden(
            "department admins may only book in their own department",
        ));
    }
    let waiting_room = req.waiting_room.unwrap_or_default();
    if waiting_room == WaitingRoomKind::Department && department_id.is_none() {
        return Err(ApiError::invalid(
            "waiting_room \"department\" needs a department: pass department_id, or book for a \
             practitioner who belongs to a department",
        ));
    }
    // The client: one the caller sees (F6–F9: under F9 a practitioner books only with their own
    // clients), or a new one, checked as the register checks it and created with the booking.
    let (client_id, new_client) = match (req.client_id, req.new_client) {
        (Some(id), None) => {
            store
                .visible_client(&ClientScope::new(caller, &settings), id)
                .await?
                .ok_or(ApiError::NotFound("client"))?;
            (id, None)
        }
        (None, Some(mut input)) => {
            // Filed with the booking's practitioner and department unless given.
            input.practitioner_id = input.practitioner_id.or(Some(practitioner_id));
            input.department_id = input.department_id.or(department_id);
            (
                ClientId::new(),
                Some(crate::clients::check(&clinic, &current, &settings, input, true).await?),
            )
        }
        _ => {
            return Err(ApiError::invalid(
                "give either client_id (an existing client) or new_client (a new one)",
            ));
        }
    };
    let mut people = Vec::new();
    for invitee in req.guests {
        people.extend(invitees(&clinic, org, invitee).await?);
    }
    people.dedup_by(|a, b| a.1.is_some() && a.1 == b.1);
    if people.len() > MAX_GUESTS {
        return Err(ApiError::InvalidField {
            field: "guests",
            message: format!("at most {MAX_GUESTS} guests per appointment"),
        });
    }

    let invitation_id = InvitationId::new();
    let invitation_hash = sha256(&clinic.link_token(INVITATION_LABEL, &invitation_id.to_string()));
    let guests: Vec<GuestSeed> = people
        .into_iter()
        .map(|(name, external_participant_id)| {
            let id = GuestInvitationId::new();
            GuestSeed {
                token_hash: sha256(&clinic.link_token(GUEST_LABEL, &id.to_string())),
                id,
                name,
                external_participant_id,
            }
        })
        .collect();
    // The invitation mails (client and guests with an address) and the reminder job, composed
    // before the transaction that records them with the booking.
    let id = AppointmentId::new();
    let mut addressees = Vec::new();
    for g in &guests {
        addressees
            .push(GuestAddressee::of(store, org, g.id, &g.name, g.external_participant_id).await?);
    }
    let occasion = Occasion {
        kind: AppointmentMailKind::Invitation,
        appointment_id: id,
        organisation_id: org,
        department_id,
        practitioner_name: &practitioner.name,
        client_id,
        starts_at,
        duration_minutes: req.duration_minutes,
        personal_message: &personal_message,
        sequence: 0,
        created_by: Some(caller.id),
        new_client: new_client.as_ref().map(|c| ClientContact {
            name: c.person.name.clone(),
            email: c.person.email.clone(),
            language: c.register().language,
        }),
    };
    let mails = compose(
        &clinic,
        &occasion,
        Some(invitation_link(&clinic, invitation_id)),
        &addressees,
    )
    .await?;
    let stamp = clinic.mail_stamp();
    let reminder = reminder_at(&settings, starts_at, now).map(|at| reminder_job(id, 0, at));
    let new = NewAppointment {
        organisation_id: org,
        practitioner_id,
        client_id,
        department_id,
        waiting_room,
        starts_at,
        duration_minutes: req.duration_minutes,
        personal_message,
    };
    let booking = Booking {
        id,
        new_client: new_client.as_ref().map(|c| NewClientRow {
            person: &c.person,
            register: c.register(),
        }),
        new: &new,
        invitation_id,
        invitation_hash: &invitation_hash,
        guests: &guests,
        created_by: Some(caller.id),
        idempotency: key.as_deref().map(|k| (k, request_hash.as_slice())),
        keys_expire_before,
        mails: &mails,
        stamp: Some(&stamp),
        reminder: reminder.as_ref(),
    };
    let id = match store.book_appointment(&booking, now).await {
        Ok(id) => id,
        // The same key, booked concurrently: answer as the repeat it is. Otherwise a unique
        // violation can only be the new client's number.
        Err(e) if crate::store::is_unique_violation(&e) => {
            let stored = match key.as_deref() {
                Some(key) => {
                    store
                        .idempotent_booking(org, key, keys_expire_before)
                        .await?
                }
                None => None,
            };
            return match stored {
                Some((stored, id)) => replay(&clinic, &current, &stored, &request_hash, id).await,
                None if new_client.is_some() => Err(crate::clients::number_taken(e)),
                None => Err(e.into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    clinic.wake_jobs();
    tracing::info!(appointment_id = %id, staff_id = %caller.id, guests = guests.len(), mails = mails.len(), "appointment booked");
    Ok((
        StatusCode::CREATED,
        Json(booked(&clinic, &current, id).await?),
    )
        .into_response())
}
