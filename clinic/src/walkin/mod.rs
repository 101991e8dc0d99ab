//! Walk-in availability of practitioners (F49, F56–F59): a one-click switch, one-off ranges and
//! weekly recurring ranges in the practitioner's IANA time zone, and the "available now" rule the
//! widget uses.
//!
//! Invariants: a staff user edits only their own availability; time comes from the injected clock;
//! ranges are validated (end after start, never crossing midnight, known time zone) before anything
//! is written.

mod db;
pub mod schedule;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::CurrentStaff;
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::ids::{AvailabilityRangeId, DepartmentId, OrganisationId, StaffId};
use crate::{Clinic, Route};
use db::{NewRange, RangeRow};
use schedule::{Edge, Once, Weekly};

/// Time zone of a practitioner who never chose one.
pub const DEFAULT_TIME_ZONE: &str = "Europe/Amsterdam";
/// Most ranges one practitioner may keep.
const MAX_RANGES: i64 = 200;

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/walkin/me", get(read_me)),
        Route::new("PUT", "/walkin/me", axum::routing::put(update_me)),
        Route::new("POST", "/walkin/me/ranges", post(create_range)),
        Route::new("DELETE", "/walkin/me/ranges/{id}", delete(delete_range)),
    ]
}

/// A practitioner listed as available for walk-ins now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvailablePractitioner {
    /// Staff id.
    pub staff_id: StaffId,
    /// Display name.
    pub name: String,
    /// Their department.
    pub department_id: Option<DepartmentId>,
}

fn parse_tz(name: &str) -> Option<Tz> {
    if name.len() > 64 {
        return None;
    }
    name.parse().ok()
}

fn split_ranges(rows: &[RangeRow]) -> (Vec<Once>, Vec<Weekly>) {
    let mut once = Vec::new();
    let mut weekly = Vec::new();
    for r in rows {
        match r.kind.as_str() {
            "once" => {
                if let (Some(starts_at), Some(ends_at)) = (r.starts_at, r.ends_at) {
                    once.push(Once { starts_at, ends_at });
                }
            }
            _ => {
                if let Some(w) = weekly_of(r) {
                    weekly.push(w);
                }
            }
        }
    }
    (once, weekly)
}

fn weekly_of(r: &RangeRow) -> Option<Weekly> {
    Some(Weekly {
        weekday: schedule::weekday_from_number(r.weekday?)?,
        start_minute: u16::try_from(r.start_minute?).ok()?,
        end_minute: u16::try_from(r.end_minute?).ok()?,
    })
}

impl Clinic {
    /// Everyone in `organisation_id` who is available for walk-ins at the clinic's current time.
    pub async fn available_practitioners(
        &self,
        organisation_id: OrganisationId,
    ) -> anyhow::Result<Vec<AvailablePractitioner>> {
        let now = self.now();
        let store = self.store();
        let candidates = store.walkin_candidates(organisation_id).await?;
        let ranges = store
            .live_ranges_of_organisation(organisation_id, now)
            .await?;
        let mut out = Vec::new();
        for c in candidates {
            let own: Vec<RangeRow> = ranges
                .iter()
                .filter(|r| r.staff_id == c.staff_id)
                .cloned()
                .collect();
            let tz = c
                .time_zone
                .as_deref()
                .and_then(parse_tz)
                .unwrap_or(chrono_tz::Europe::Amsterdam);
            let (once, weekly) = split_ranges(&own);
            if schedule::available_now(now, tz, c.switch_on.unwrap_or(false), &once, &weekly) {
                out.push(AvailablePractitioner {
                    staff_id: c.staff_id,
                    name: c.name,
                    department_id: c.department_id,
                });
            }
        }
        Ok(out)
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn range_json(r: &RangeRow, tz: Tz) -> Value {
    match r.kind.as_str() {
        "once" => {
            let (Some(s), Some(e)) = (r.starts_at, r.ends_at) else {
                return Value::Null;
            };
            let (ls, le) = (s.with_timezone(&tz), e.with_timezone(&tz));
            json!({
                "id": r.availability_range_id,
                "kind": "once",
                "date": ls.date_naive().to_string(),
                "start": ls.format("%H:%M").to_string(),
                "end": if le.date_naive() > ls.date_naive() { "24:00".to_owned() } else { le.format("%H:%M").to_string() },
                "starts_at": ts(s),
                "ends_at": ts(e),
            })
        }
        _ => match weekly_of(r) {
            Some(w) => json!({
                "id": r.availability_range_id,
                "kind": "weekly",
                "weekday": schedule::weekday_number(w.weekday),
                "start": schedule::format_hhmm(w.start_minute),
                "end": schedule::format_hhmm(w.end_minute),
            }),
            None => Value::Null,
        },
    }
}

async fn state_json(clinic: &Clinic, staff_id: StaffId) -> ApiResult<Value> {
    let store = clinic.store();
    let now = clinic.now();
    let settings = store.walkin_settings(staff_id).await?;
    let (switch_on, tz_name) = match settings {
        Some(s) => (s.switch_on, s.time_zone),
        None => (false, DEFAULT_TIME_ZONE.to_owned()),
    };
    let tz = parse_tz(&tz_name).unwrap_or(chrono_tz::Europe::Amsterdam);
    let rows = store.ranges_of_staff(staff_id, now).await?;
    let (once, weekly) = split_ranges(&rows);
    let scheduled = schedule::scheduled_now(now, tz, &once, &weekly);
    let ranges: Vec<Value> = rows.iter().map(|r| range_json(r, tz)).collect();
    Ok(json!({
        "switch_on": switch_on,
        "time_zone": tz_name,
        "scheduled_now": scheduled,
        "available_now": switch_on || scheduled,
        "ranges": ranges,
    }))
}

async fn read_me(State(clinic): State<Clinic>, current: CurrentStaff) -> ApiResult<Json<Value>> {
    Ok(Json(state_json(&clinic, current.staff.id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRequest {
    #[serde(default)]
    switch_on: Option<bool>,
    #[serde(default)]
    time_zone: Option<String>,
}

async fn update_me(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<UpdateRequest>,
) -> ApiResult<Json<Value>> {
    let staff = &current.staff;
    if let Some(tz) = &req.time_zone
        && parse_tz(tz).is_none()
    {
        return Err(ApiError::invalid(
            "time_zone must be an IANA time zone name such as Europe/Amsterdam",
        ));
    }
    let existing = clinic.store().walkin_settings(staff.id).await?;
    let (switch_on, time_zone) = match existing {
        Some(s) => (s.switch_on, s.time_zone),
        None => (false, DEFAULT_TIME_ZONE.to_owned()),
    };
    let switch_on = req.switch_on.unwrap_or(switch_on);
    let time_zone = req.time_zone.unwrap_or(time_zone);
    clinic
        .store()
        .upsert_walkin_settings(
            staff.organisation_id,
            staff.id,
            switch_on,
            &time_zone,
            clinic.now(),
        )
        .await?;
    tracing::info!(staff_id = %staff.id, switch_on, "walk-in settings changed");
    Ok(Json(state_json(&clinic, staff.id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeRequest {
    kind: String,
    #[serde(default, deserialize_with = "crate::json_int::opt_int")]
    weekday: Option<i32>,
    #[serde(default)]
    date: Option<String>,
    start: String,
    end: String,
}

async fn create_range(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiJson(req): ApiJson<RangeRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let staff = &current.staff;
    let hhmm = |name: &str, v: &str| {
        schedule::parse_hhmm(v)
            .ok_or_else(|| ApiError::invalid(format!("{name} must be a time HH:MM (00:00–24:00)")))
    };
    let start = hhmm("start", &req.start)?;
    let end = hhmm("end", &req.end)?;
    if end <= start {
        return Err(ApiError::invalid("end must be after start on the same day"));
    }
    if start >= schedule::DAY_MINUTES {
        return Err(ApiError::invalid("start must be before 24:00"));
    }
    let store = clinic.store();
    let tz_name = store
        .walkin_settings(staff.id)
        .await?
        .map(|s| s.time_zone)
        .unwrap_or_else(|| DEFAULT_TIME_ZONE.to_owned());
    let tz = parse_tz(&tz_name).unwrap_or(chrono_tz::Europe::Amsterdam);
    let range = match req.kind.as_str() {
        "weekly" => {
            if req.date.is_some() {
                return Err(ApiError::invalid(
                    "a weekly range has a weekday, not a date",
                ));
            }
            let weekday = req
                .weekday
                .filter(|d| (1..=7).contains(d))
                .ok_or_else(|| ApiError::invalid("weekday must be 1 (Monday) to 7 (Sunday)"))?;
            NewRange::Weekly {
                weekday,
                start_minute: i32::from(start),
                end_minute: i32::from(end),
            }
        }
        "once" => {
            if req.weekday.is_some() {
                return Err(ApiError::invalid(
                    "a one-off range has a date, not a weekday",
                ));
            }
            let date: NaiveDate = req
                .date
                .as_deref()
                .filter(|d| d.len() == 10)
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| ApiError::invalid("date must be a date YYYY-MM-DD"))?;
            if !(2000..=2200).contains(&date.year()) {
                return Err(ApiError::invalid("date is out of range"));
            }
            let starts_at =
                schedule::resolve_local(tz, schedule::local_at(date, start), Edge::Start);
            let ends_at = schedule::resolve_local(tz, schedule::local_at(date, end), Edge::End);
            if ends_at <= clinic.now() {
                return Err(ApiError::invalid("this range is already over"));
            }
            if ends_at <= starts_at {
                return Err(ApiError::invalid("end must be after start on the same day"));
            }
            NewRange::Once { starts_at, ends_at }
        }
        _ => return Err(ApiError::invalid("kind must be \"once\" or \"weekly\"")),
    };
    if store.count_ranges_of_staff(staff.id).await? >= MAX_RANGES {
        return Err(ApiError::invalid(format!(
            "at most {MAX_RANGES} availability ranges are allowed; delete old ones first"
        )));
    }
    let id = store
        .insert_range(staff.organisation_id, staff.id, &range, clinic.now())
        .await?;
    tracing::info!(staff_id = %staff.id, range_id = %id, "availability range added");
    Ok((
        StatusCode::CREATED,
        Json(state_json(&clinic, staff.id).await?),
    ))
}

async fn delete_range(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let id: AvailabilityRangeId = id
        .parse()
        .map_err(|_| ApiError::NotFound("availability range"))?;
    if !clinic.store().delete_range(current.staff.id, id).await? {
        return Err(ApiError::NotFound("availability range"));
    }
    Ok(Json(state_json(&clinic, current.staff.id).await?))
}
