//! Service announcements (F95–F96): short plain-text messages to everyone waiting in one waiting
//! room (a practitioner's or a department's), with an optional expiry.
//!
//! - `POST /announcements`, `GET /announcements?include_expired=`, `DELETE /announcements/{id}`,
//!   `DELETE /announcements?scope_kind=&scope_id=` (delete all of one room).
//! - Who may manage which room: [`may_manage`]. The room must exist in the caller's organisation
//!   (otherwise 404); a room of the organisation the caller may not manage is a 403 for posting
//!   and "delete all", and its announcements are invisible (404) to list and delete one by one.
//! - An expired announcement is hidden (from patients and from the default list) but kept; a
//!   deleted one is kept too (soft delete, with who and when), but never shown again.
//! - [`Clinic::active_announcements`] is what the signalling hub shows to waiting patients; the
//!   composing binary reloads it after every change, learnt through
//!   [`ClinicEvent::AnnouncementsChanged`].
//!
//! Invariant: announcement texts never reach the logs.

mod db;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::appointments::PersonRef;
use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::events::ClinicEvent;
use crate::ids::{DepartmentId, StaffId};
use crate::staff::Staff;
use crate::waiting_room::{WaitingRoomRef, may_manage};
use crate::{Clinic, Route};

/// Longest announcement text, in characters after trimming.
pub const MAX_TEXT_CHARS: usize = 500;

/// An announcement as the staff API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Announcement {
    /// Announcement id (UUID v7).
    pub id: String,
    /// The text, plain (clients render it as text, never as HTML).
    pub text: String,
    /// The waiting room it is shown in.
    pub scope: WaitingRoomRef,
    /// When it stops being shown, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// Who posted it.
    pub created_by: PersonRef<StaffId>,
}

/// A live announcement of any organisation, as the signalling hub needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActiveAnnouncement {
    /// Announcement id.
    pub id: String,
    /// Its organisation.
    pub organisation_id: String,
    /// The waiting room it is shown in.
    pub scope: WaitingRoomRef,
    /// The text.
    pub text: String,
    /// When it stops being shown, if ever (the hub hides it then without a reload).
    pub expires_at: Option<DateTime<Utc>>,
}

impl Clinic {
    /// Every non-deleted, non-expired announcement of all organisations, newest first.
    pub async fn active_announcements(&self) -> anyhow::Result<Vec<ActiveAnnouncement>> {
        self.store()
            .active_announcements(self.now())
            .await?
            .into_iter()
            .map(|row| {
                Ok(ActiveAnnouncement {
                    scope: WaitingRoomRef::parse(&row.scope_kind, &row.scope_id)?,
                    id: row.announcement_id,
                    organisation_id: row.organisation_id.to_string(),
                    text: row.text,
                    expires_at: row.expires_at,
                })
            })
            .collect()
    }
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/announcements", get(list)),
        Route::new("POST", "/announcements", post(create)),
        Route::new("DELETE", "/announcements", delete(delete_room)),
        Route::new("DELETE", "/announcements/{id}", delete(delete_one)),
    ]
}

impl db::AnnouncementRow {
    fn into_announcement(self) -> anyhow::Result<Announcement> {
        Ok(Announcement {
            scope: WaitingRoomRef::parse(&self.scope_kind, &self.scope_id)?,
            id: self.announcement_id,
            text: self.text,
            expires_at: self.expires_at,
            created_at: self.created_at,
            created_by: PersonRef {
                id: self.created_by,
                name: self.created_by_name,
            },
        })
    }
}

/// Checks that `room` exists in the caller's organisation (404 otherwise) and returns its
/// department: the practitioner's for a practitioner room, the department itself otherwise.
async fn room_department(
    clinic: &Clinic,
    caller: &Staff,
    room: &WaitingRoomRef,
) -> ApiResult<Option<DepartmentId>> {
    match room {
        WaitingRoomRef::Practitioner(id) => Ok(clinic
            .store()
            .staff_by_id(*id)
            .await?
            .filter(|s| s.organisation_id == caller.organisation_id)
            .ok_or(ApiError::NotFound("waiting room"))?
            .department_id),
        WaitingRoomRef::Department(id) => {
            if clinic
                .store()
                .department_in_organisation(caller.organisation_id, *id)
                .await?
            {
                Ok(Some(*id))
            } else {
                Err(ApiError::NotFound("waiting room"))
            }
        }
    }
}

/// Whether `caller` may manage `room`, which must exist in their organisation: `Ok(false)` when
/// it exists but is not theirs to manage.
async fn check_room(clinic: &Clinic, caller: &Staff, room: &WaitingRoomRef) -> ApiResult<bool> {
    let department = room_department(clinic, caller, room).await?;
    Ok(may_manage(caller, room, department))
}

/// Trims and validates a text: 1 to [`MAX_TEXT_CHARS`] characters, no control characters
/// except line breaks and tabs.
fn validate_text(raw: &str) -> ApiResult<&str> {
    let text = raw.trim();
    let chars = text.chars().count();
    if chars == 0 {
        return Err(ApiError::invalid("text must not be empty"));
    }
    if chars > MAX_TEXT_CHARS {
        return Err(ApiError::invalid(format!(
            "text may be at most {MAX_TEXT_CHARS} characters"
        )));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::invalid("text may not contain control characters"));
    }
    Ok(text)
}

#[derive(Deserialize)]
struct CreateRequest {
    text: String,
    scope: WaitingRoomRef,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

async fn create(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<CreateRequest>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let caller = &current.staff;
    let text = validate_text(&req.text)?;
    let now = clinic.now();
    // Whole seconds: sub-second expiries mean nothing here and differ between backends.
    let expires_at = req.expires_at.map(|t| t.trunc_subsecs(0));
    if expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::invalid("expires_at must be in the future"));
    }
    if !check_room(&clinic, caller, &req.scope).await? {
        return Err(ApiError::Forbidden(
            "you may not post announcements to this waiting room",
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    // Microseconds: what PostgreSQL keeps, so the answer equals what a later list shows.
    let created_at = now.trunc_subsecs(6);
    clinic
        .store()
        .insert_announcement(&db::NewAnnouncement {
            id: &id,
            organisation_id: caller.organisation_id,
            room: req.scope,
            text,
            expires_at,
            created_by: caller.id,
            created_at,
        })
        .await?;
    tracing::info!(announcement_id = %id, staff_id = %caller.id, scope_kind = req.scope.kind().as_str(), "announcement created");
    clinic.emit(ClinicEvent::AnnouncementsChanged);
    let announcement = Announcement {
        id,
        text: text.to_owned(),
        scope: req.scope,
        expires_at,
        created_at,
        created_by: PersonRef {
            id: caller.id,
            name: caller.name.clone(),
        },
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({ "announcement": announcement })),
    ))
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(default)]
    include_expired: bool,
}

async fn list(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let announcements = clinic
        .store()
        .list_announcements(&current.staff, params.include_expired, clinic.now())
        .await?
        .into_iter()
        .map(db::AnnouncementRow::into_announcement)
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Json(json!({ "announcements": announcements })))
}

async fn delete_one(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let caller = &current.staff;
    // Ids that are not UUIDs are simply not found; stored ids are lower-case hyphenated.
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::NotFound("announcement"))?
        .to_string();
    let row = clinic
        .store()
        .get_announcement(caller.organisation_id, &id)
        .await?
        .ok_or(ApiError::NotFound("announcement"))?;
    let room = WaitingRoomRef::parse(&row.scope_kind, &row.scope_id)?;
    // A room of the organisation that the caller may not manage hides its announcements; a room
    // whose practitioner or department is gone leaves them to organisation admins.
    let visible = match room_department(&clinic, caller, &room).await {
        Ok(department) => may_manage(caller, &room, department),
        Err(ApiError::NotFound(_)) => may_manage(caller, &room, None),
        Err(other) => return Err(other),
    };
    if !visible {
        return Err(ApiError::NotFound("announcement"));
    }
    if !clinic
        .store()
        .delete_announcement(caller.organisation_id, &id, caller.id, clinic.now())
        .await?
    {
        return Err(ApiError::NotFound("announcement"));
    }
    tracing::info!(announcement_id = %id, staff_id = %caller.id, "announcement deleted");
    clinic.emit(ClinicEvent::AnnouncementsChanged);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct RoomParams {
    scope_kind: Option<String>,
    scope_id: Option<String>,
}

async fn delete_room(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    params: Result<Query<RoomParams>, QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let caller = &current.staff;
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let (Some(kind), Some(scope_id)) = (params.scope_kind, params.scope_id) else {
        return Err(ApiError::invalid(
            "scope_kind and scope_id are required to delete the announcements of a room",
        ));
    };
    if !matches!(kind.as_str(), "practitioner" | "department") {
        return Err(ApiError::invalid(
            "scope_kind must be \"practitioner\" or \"department\"",
        ));
    }
    // A scope_id that is not a UUID names no room.
    let room =
        WaitingRoomRef::parse(&kind, &scope_id).map_err(|_| ApiError::NotFound("waiting room"))?;
    if !check_room(&clinic, caller, &room).await? {
        return Err(ApiError::Forbidden(
            "you may not delete announcements of this waiting room",
        ));
    }
    let deleted = clinic
        .store()
        .delete_room_announcements(caller.organisation_id, &room, caller.id, clinic.now())
        .await?;
    tracing::info!(staff_id = %caller.id, scope_kind = room.kind().as_str(), deleted, "announcements of a room deleted");
    if deleted > 0 {
        clinic.emit(ClinicEvent::AnnouncementsChanged);
    }
    Ok(Json(json!({ "deleted": deleted })))
}

#[cfg(test)]
mod tests {
    use super::{MAX_TEXT_CHARS, validate_text};

    #[test]
    fn text_rules() {
        assert_eq!(validate_text("  Running late \n").unwrap(), "Running late");
        assert_eq!(validate_text("a\r\nb\tc").unwrap(), "a\r\nb\tc");
        assert!(validate_text(" \n\t ").is_err());
        assert!(validate_text("bell\u{7}").is_err());
        assert!(
            validate_text(&"é".repeat(MAX_TEXT_CHARS)).is_ok(),
            "characters, not bytes"
        );
        assert!(validate_text(&"x".repeat(MAX_TEXT_CHARS + 1)).is_err());
    }
}
