//! One timeline per client and per patient: `GET /clients/{id}/timeline` and
//! `GET /patients/{id}/timeline`, newest first, paged with an opaque cursor.
//!
//! A client's timeline holds the notes and service records of all its patients, its appointments
//! and its communications (the mails of its history, F196). A patient's holds that patient's
//! notes and service records; the client's own patient's also the client's appointments and
//! communications (in a human organisation the two timelines are the same). Appointments are
//! not tied to a patient yet, so an animal's timeline has none. Care reminders (recalls) of the
//! client's patients (or the one patient) appear at the start of their due date.
//!
//! Order: by the item's instant (a note: when written; a service record: `occurred_at`, see
//! `services`; an appointment: its start, so future ones come first; a communication: when
//! recorded), then by id, both descending. The cursor is the last item's (instant, id): a page
//! starts strictly after it, so items added meanwhile at the top never shift a later page, and
//! paging never repeats or skips an item. One `union all` picks the page's (kind, id, instant);
//! each kind's details are then read by id.
//!
//! Who sees it: whoever sees the client ([`super::rules::visible_client`], F6–F9). Every item is shown;
//! `openable` (appointments) and `viewable` (communications) say whether the caller may open the
//! appointment's page or the mail itself, which keep their own rules.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::notes::{Note, note_columns};
use super::patients::visible_patient;
use super::rules::visible_client;
use super::services::{ServiceRecord, record_columns};
use crate::auth::CurrentStaff;
use crate::communications::Communication;
use crate::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use crate::ids::{
    AppointmentId, ClientId, DepartmentId, MailId, NoteId, OrganisationId, PatientId, RecallId,
    ServiceRecordId, StaffId,
};
use crate::recalls::model::Recall;
use crate::staff::Staff;
use crate::store::{Store, dispatch};
use crate::{Clinic, Route};

/// Default page size.
const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
const MAX_LIMIT: i64 = 100;
/// Longest cursor accepted, in bytes.
const MAX_CURSOR_LEN: usize = 128;

/// Routes of this module (relative to `/api/v1`).
pub(super) fn routes() -> Vec<Route> {
    vec![
        Route::new("GET", "/clients/{id}/timeline", get(client_timeline)),
        Route::new("GET", "/patients/{id}/timeline", get(patient_timeline)),
    ]
}

/// One item of a timeline: its instant and what it is.
#[derive(Serialize)]
pub(crate) struct TimelineEntry {
    /// The instant the timeline orders by.
    at: DateTime<Utc>,
    #[serde(flatten)]
    item: TimelineItem,
}

/// What a timeline item is (`type` in the JSON).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum TimelineItem {
    /// A staff note.
    Note(Note),
    /// A service performed on a patient.
    ServiceRecord(ServiceRecord),
    /// An appointment of the client.
    Appointment(AppointmentItem),
    /// A mail to the client.
    Communication(Communication),
    /// A care reminder (recall), at the start of its due date.
    Recall(Box<Recall>),
}

/// An appointment as its client's timeline shows it.
#[derive(Serialize, sqlx::FromRow)]
pub(crate) struct AppointmentItem {
    #[sqlx(rename = "appointment_id")]
    id: AppointmentId,
    starts_at: DateTime<Utc>,
    duration_minutes: i32,
    status: String,
    practitioner_id: StaffId,
    practitioner_name: String,
    department_id: Option<DepartmentId>,
    /// The caller may open the appointment (`GET /appointments/{id}`).
    #[sqlx(skip)]
    openable: bool,
}

/// Which notes a timeline holds (other items are never archived).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Archived {
    /// Archived notes are left out (the default).
    #[default]
    Exclude,
    /// Archived notes are shown too.
    Include,
    /// Only archived notes (F189's "Archived" filter).
    Only,
}

impl Archived {
    fn as_str(self) -> &'static str {
        match self {
            Archived::Exclude => "exclude",
            Archived::Include => "include",
            Archived::Only => "only",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    archived: Option<Archived>,
}

/// Where a page starts: strictly after this (instant, id).
#[derive(Debug, PartialEq, Eq)]
struct Cursor {
    at: DateTime<Utc>,
    id: String,
}

impl Cursor {
    fn encode(&self) -> String {
        let nanos = self.at.timestamp_nanos_opt().unwrap_or(i64::MAX);
        URL_SAFE_NO_PAD.encode(format!("{nanos}|{}", self.id))
    }

    fn decode(raw: &str) -> Option<Cursor> {
        if raw.len() > MAX_CURSOR_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (nanos, id) = text.split_once('|')?;
        let at = DateTime::from_timestamp_nanos(nanos.parse().ok()?);
        // Item ids are UUIDs in their hyphenated form (`ids`), which also orders them as text.
        let id = Uuid::parse_str(id).ok()?.hyphenated().to_string();
        Some(Cursor { at, id })
    }
}

/// Which timeline: a client's, or one patient's.
struct Filter {
    organisation_id: OrganisationId,
    client_id: ClientId,
    /// `None`: every patient of the client.
    patient_id: Option<PatientId>,
    /// Appointments and communications (the client's timeline, or its own patient's).
    client_items: bool,
    archived: Archived,
}

#[derive(sqlx::FromRow)]
struct Key {
    kind: String,
    item_id: String,
    at: DateTime<Utc>,
}

/// `$1..$n` from `first` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ids of one kind, parsed (an id that does not parse cannot be in the database).
fn ids_of<T: std::str::FromStr>(keys: &[Key], kind: &str) -> Vec<T> {
    keys.iter()
        .filter(|k| k.kind == kind)
        .filter_map(|k| k.item_id.parse().ok())
        .collect()
}

impl Store {
    /// The (kind, id, instant) of the page's items, `limit` of them, newest first.
    async fn timeline_keys(
        &self,
        f: &Filter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<Vec<Key>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, Key>(
                "select kind, item_id, at from ( \
                   select 'note' as kind, n.note_id as item_id, n.created_at as at from note n \
                   where n.organisation_id = $1 and n.client_id = $2 \
                   and ($3 is null or n.patient_id = $3) \
                   and ($4 = 'include' or ($4 = 'exclude' and n.archived_at is null) \
                        or ($4 = 'only' and n.archived_at is not null)) \
                 union all \
                   select 'service_record', r.service_record_id, r.occurred_at \
                   from service_record r \
                   where r.organisation_id = $1 and r.client_id = $2 \
                   and ($3 is null or r.patient_id = $3) and $4 <> 'only' \
                 union all \
                   select 'appointment', a.appointment_id, a.starts_at from appointment a \
                   where a.organisation_id = $1 and a.client_id = $2 and $5 and $4 <> 'only' \
                 union all \
                   select 'communication', m.mail_id, m.created_at from mail m \
                   where m.organisation_id = $1 and m.client_id = $2 and $5 and $4 <> 'only' \
                 union all \
                   select 'recall', rc.recall_id, rc.due_at from recall rc \
                   where rc.organisation_id = $1 and rc.client_id = $2 \
                   and ($3 is null or rc.patient_id = $3) and $4 <> 'only' \
                 ) t \
                 where ($6 is null or t.at < $6 or (t.at = $6 and t.item_id < $7)) \
                 order by t.at desc, t.item_id desc limit $8",
            )
            .bind(f.organisation_id)
            .bind(f.client_id)
            .bind(f.patient_id)
            .bind(f.archived.as_str())
            .bind(f.client_items)
            .bind(after.map(|c| c.at))
            .bind(after.map(|c| c.id.as_str()))
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    async fn notes_by_id(&self, f: &Filter, ids: &[NoteId]) -> Result<Vec<Note>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{}where n.organisation_id = $1 and n.client_id = $2 and n.note_id in ({})",
            note_columns!(),
            placeholders(3, ids.len())
        );
        dispatch!(self, pool => {
            let mut q = sqlx::query_as::<_, Note>(sqlx::AssertSqlSafe(sql))
                .bind(f.organisation_id)
                .bind(f.client_id);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await
        })
    }

    async fn service_records_by_id(
        &self,
        f: &Filter,
        ids: &[ServiceRecordId],
    ) -> Result<Vec<ServiceRecord>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{}where r.organisation_id = $1 and r.client_id = $2 \
             and r.service_record_id in ({})",
            record_columns!(),
            placeholders(3, ids.len())
        );
        dispatch!(self, pool => {
            let mut q = sqlx::query_as::<_, ServiceRecord>(sqlx::AssertSqlSafe(sql))
                .bind(f.organisation_id)
                .bind(f.client_id);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await
        })
    }

    async fn appointment_items_by_id(
        &self,
        f: &Filter,
        ids: &[AppointmentId],
    ) -> Result<Vec<AppointmentItem>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select a.appointment_id, a.starts_at, a.duration_minutes, a.status, \
             a.practitioner_id, p.name as practitioner_name, a.department_id \
             from appointment a join staff p on p.staff_id = a.practitioner_id \
             where a.organisation_id = $1 and a.client_id = $2 and a.appointment_id in ({})",
            placeholders(3, ids.len())
        );
        dispatch!(self, pool => {
            let mut q = sqlx::query_as::<_, AppointmentItem>(sqlx::AssertSqlSafe(sql))
                .bind(f.organisation_id)
                .bind(f.client_id);
            for id in ids {
                q = q.bind(*id);
            }
            q.fetch_all(pool).await
        })
    }
}

/// One page of the timeline `f` for `staff`, and the cursor of the next page, if any.
async fn page(
    clinic: &Clinic,
    staff: &Staff,
    f: &Filter,
    params: Params,
) -> ApiResult<(Vec<TimelineEntry>, Option<String>)> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidField {
            field: "limit",
            message: format!("limit must be 1 to {MAX_LIMIT}"),
        });
    }
    let after = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(Cursor::decode(raw).ok_or(ApiError::InvalidField {
            field: "cursor",
            message: "not a cursor of this timeline; start again without one".to_owned(),
        })?),
    };
    let store = clinic.store();
    let mut keys = store.timeline_keys(f, after.as_ref(), limit + 1).await?;
    let more = keys.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    keys.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = more.then(|| keys.last()).flatten().map(|k| {
        Cursor {
            at: k.at,
            id: k.item_id.clone(),
        }
        .encode()
    });

    let mut items: HashMap<String, TimelineItem> = HashMap::new();
    for n in store.notes_by_id(f, &ids_of(&keys, "note")).await? {
        items.insert(n.id.to_string(), TimelineItem::Note(n.for_caller(staff)));
    }
    for r in store
        .service_records_by_id(f, &ids_of(&keys, "service_record"))
        .await?
    {
        items.insert(r.id.to_string(), TimelineItem::ServiceRecord(r));
    }
    for mut a in store
        .appointment_items_by_id(f, &ids_of(&keys, "appointment"))
        .await?
    {
        a.openable =
            crate::appointments::sees_appointment(staff, a.department_id, a.practitioner_id);
        items.insert(a.id.to_string(), TimelineItem::Appointment(a));
    }
    let mail_ids: Vec<MailId> = ids_of(&keys, "communication");
    for m in store
        .client_mails_by_id(f.organisation_id, f.client_id, &mail_ids)
        .await?
    {
        let view = m.view(staff);
        items.insert(m.mail_id.to_string(), TimelineItem::Communication(view));
    }
    let recall_ids: Vec<RecallId> = ids_of(&keys, "recall");
    if !recall_ids.is_empty() {
        let settings = clinic.organisation_settings(f.organisation_id).await?;
        let today = super::rules::local_today(&settings, clinic.now());
        for r in store
            .recalls_by_id(f.organisation_id, f.client_id, &recall_ids)
            .await?
        {
            items.insert(
                r.id.to_string(),
                TimelineItem::Recall(Box::new(r.for_day(today))),
            );
        }
    }
    // In the keys' order; an item deleted between the two reads is left out.
    let entries = keys
        .iter()
        .filter_map(|k| {
            items
                .remove(&k.item_id)
                .map(|item| TimelineEntry { at: k.at, item })
        })
        .collect();
    Ok((entries, next))
}

#[derive(Serialize)]
struct TimelinePage {
    items: Vec<TimelineEntry>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    next_cursor: Option<String>,
}

async fn client_timeline(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(params): ApiQuery<Params>,
) -> ApiResult<Json<TimelinePage>> {
    let client_id: ClientId = raw.parse().map_err(|_| ApiError::NotFound("client"))?;
    let (client, _) = visible_client(&clinic, &current, client_id).await?;
    let filter = Filter {
        organisation_id: current.staff.organisation_id,
        client_id: client.id,
        patient_id: None,
        client_items: true,
        archived: params.archived.unwrap_or_default(),
    };
    let (items, next_cursor) = page(&clinic, &current.staff, &filter, params).await?;
    Ok(Json(TimelinePage { items, next_cursor }))
}

async fn patient_timeline(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(params): ApiQuery<Params>,
) -> ApiResult<Json<TimelinePage>> {
    let (patient, _) = visible_patient(&clinic, &current, &raw).await?;
    let filter = Filter {
        organisation_id: current.staff.organisation_id,
        client_id: patient.client_id,
        patient_id: Some(patient.id),
        client_items: patient.is_client,
        archived: params.archived.unwrap_or_default(),
    };
    let (items, next_cursor) = page(&clinic, &current.staff, &filter, params).await?;
    Ok(Json(TimelinePage { items, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor {
            at: "2030-03-04T09:00:00.123456789Z".parse().unwrap(),
            id: Uuid::now_v7().hyphenated().to_string(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("not a cursor"), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("1|x")), None);
        assert_eq!(Cursor::decode(&"A".repeat(200)), None);
    }
}
