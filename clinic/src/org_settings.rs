//! Organisation settings: the organisation admin's switches that shape every consultation of the
//! organisation — screen and file sharing (F126), chat (F129–F133, F141), the arrival
//! notification (F93), the waiting-room text and disclaimer (F97, F102), the organisation's time
//! zone (issue #12: every local date and time of the staff app and the API is in it) and the
//! segregation switches (F6–F9) that narrow who sees which clients.
//!
//! This module is the settings *model*: types, defaults, validation, storage and the
//! [`JoinPermissions`] derivation that join tokens carry. [`Clinic::organisation_settings`] is
//! what other modules use (join tokens carry the permissions that the signalling hub enforces).
//! The HTTP handlers are in `org_settings_http` (`GET`/`PUT /organisation/settings`), so that
//! tokens and chat depend on the model alone (the handlers depend on chat, to close chats that a
//! change no longer allows).
//!
//! Invariants: an organisation without a stored row has [`OrganisationSettings::default`]; a
//! request is validated completely before anything is written; texts never reach the logs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Clinic;
use crate::error::{ApiError, ApiResult};
use crate::ids::{DepartmentId, OrganisationId, StaffId};
use crate::store::{Store, dispatch};

/// Longest waiting-room text or disclaimer, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

/// Placeholders a waiting-room text may contain; the patient page fills them in.
pub const TEXT_PLACEHOLDERS: &[&str] = &["{appointment_time}", "{opens_at}", "{practitioner}"];

/// What happens to a chat channel's messages after a consultation (F132, F133).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatAfterConsultation {
    /// Messages are kept and the channel stays open for follow-up questions (F132).
    #[default]
    Keep,
    /// Messages are deleted right after the consultation; the channel cannot stay open (F133).
    Delete,
}

/// The settings of one organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrganisationSettings {
    /// Participants may share their screen (F126).
    pub screen_sharing: bool,
    /// Participants may send files during a consultation (F126).
    pub file_sharing: bool,
    /// Continuous chat: patients and staff chat before, during and after consultations (F129).
    /// When off, chat exists only during a consultation and is deleted right after it (F130).
    pub continuous_chat: bool,
    /// With continuous chat: a patient chats between visits only once a department admin (or an
    /// organisation admin) granted it on their channel (F142). When off, every channel is open
    /// between visits unless an admin stopped it.
    pub continuous_chat_by_grant: bool,
    /// Waiting patients see and may send chat messages (F94, F131).
    pub chat_in_waiting_room: bool,
    /// Keep or delete messages after a consultation (F132, F133).
    pub chat_after_consultation: ChatAfterConsultation,
    /// Department admins and colleagues of the department may read and answer a practitioner's
    /// patient chats (F141).
    pub department_chat_access: bool,
    /// Staff get a browser notification (besides the doorbell) when a patient arrives (F93).
    pub arrival_notification: bool,
    /// Text shown to waiting patients; may hold [`TEXT_PLACEHOLDERS`] (F97). Empty = the
    /// product's default text.
    pub waiting_room_text: String,
    /// Per department, a text that replaces `waiting_room_text` for patients of that
    /// department's appointments (F97: texts per organisation/department). Same placeholders.
    pub department_waiting_room_texts: BTreeMap<DepartmentId, String>,
    /// Disclaimer a patient must accept before entering the waiting room (F102). Empty = none.
    pub disclaimer: String,
    /// What patients read after the consultation (F119), e.g. how results and prescriptions
    /// reach them. Empty = only "Your consultation has ended".
    pub after_consultation_text: String,
    /// Do not send e-mails (F80): the organisation's mails stay in the outbox, `held`.
    pub do_not_send_emails: bool,
    /// Appointment reminders by e-mail (F70) to the client and guests with an address, sent
    /// `reminder_days_before` days before the appointment's local date at `reminder_time`
    /// (local). A change applies to appointments booked or rescheduled afterwards.
    pub appointment_reminders: bool,
    /// 0 (on the day of the appointment) to [`MAX_REMINDER_DAYS_BEFORE`].
    pub reminder_days_before: u32,
    /// Local time of day of the reminder, `HH:MM`. When that is less than 30 minutes before the
    /// start, the reminder goes two hours before the start instead.
    pub reminder_time: String,
    /// The organisation's IANA time zone (e.g. `Europe/Amsterdam`): local dates and times of
    /// appointments are read and shown in it. Default [`DEFAULT_TIME_ZONE`].
    pub time_zone: String,
    /// "Strictly segregated departments" (F6, F8): practitioners and department admins see only
    /// the clients of their own department (and clients assigned to themselves); a client in no
    /// department is seen by organisation admins only.
    pub strict_department_segregation: bool,
    /// "Strictly segregated clients" (F9): a practitioner sees only their own clients — assigned
    /// to them, or with an appointment with them — and books only with those.
    pub strict_client_segregation: bool,
    /// Whom the organisation cares for ([`OrganisationKind`]): people (each client is their own
    /// patient) or animals (a client owns patients). Default human.
    pub organisation_kind: OrganisationKind,
}

/// Whom an organisation cares for; decides what a client's patients are (`records`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrganisationKind {
    /// A clinic for people: each client is their own patient, and has no other.
    #[default]
    Human,
    /// A veterinary clinic: a client owns patients (animals) with a name, species, breed, date
    /// of birth and, once it died, the date of death.
    Veterinary,
}

/// Most days before an appointment a reminder may go.
pub const MAX_REMINDER_DAYS_BEFORE: u32 = 14;
/// The reminder's time of day when never chosen: on the day, at eight.
pub const DEFAULT_REMINDER_TIME: &str = "08:00";

/// The time zone of an organisation that never chose one. UTC rather than a guess: every time
/// the staff app shows carries the zone's name, so a clinic notices and sets its own (`demo`
/// sets Europe/Amsterdam).
pub const DEFAULT_TIME_ZONE: &str = "UTC";

impl Default for OrganisationSettings {
    fn default() -> Self {
        Self {
            screen_sharing: true,
            file_sharing: true,
            continuous_chat: true,
            continuous_chat_by_grant: false,
            chat_in_waiting_room: true,
            chat_after_consultation: ChatAfterConsultation::Keep,
            department_chat_access: false,
            arrival_notification: true,
            waiting_room_text: String::new(),
            department_waiting_room_texts: BTreeMap::new(),
            disclaimer: String::new(),
            after_consultation_text: String::new(),
            do_not_send_emails: false,
            appointment_reminders: true,
            reminder_days_before: 0,
            reminder_time: DEFAULT_REMINDER_TIME.to_owned(),
            time_zone: DEFAULT_TIME_ZONE.to_owned(),
            strict_department_segregation: false,
            strict_client_segregation: false,
            organisation_kind: OrganisationKind::Human,
        }
    }
}

impl OrganisationSettings {
    /// What a join token of this organisation grants its holder.
    pub fn permissions(&self) -> JoinPermissions {
        JoinPermissions {
            screen_share: self.screen_sharing,
            file_sharing: self.file_sharing,
            chat_in_waiting_room: self.chat_in_waiting_room,
        }
    }

    /// The part of the settings a patient's page needs (returned when an invitation or walk-in
    /// visit is resolved), with the waiting-room text of `department` when it has its own. Holds
    /// nothing about other patients or staff.
    pub fn patient_view(&self, department: Option<DepartmentId>) -> serde_json::Value {
        let text = department
            .and_then(|d| self.department_waiting_room_texts.get(&d))
            .filter(|t| !t.is_empty())
            .unwrap_or(&self.waiting_room_text);
        serde_json::json!({
            "screen_sharing": self.screen_sharing,
            "file_sharing": self.file_sharing,
            "chat_in_waiting_room": self.chat_in_waiting_room,
            "waiting_room_text": text,
            "disclaimer": self.disclaimer,
            "after_consultation_text": self.after_consultation_text,
        })
    }

    /// The organisation's time zone ([`DEFAULT_TIME_ZONE`] if the stored name is unknown, which
    /// validation prevents).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// The reminder's local time of day (`None` if the stored text is not `HH:MM`, which
    /// validation prevents).
    pub fn reminder_time_of_day(&self) -> Option<chrono::NaiveTime> {
        let t = self.reminder_time.trim();
        (t.len() == 5)
            .then(|| chrono::NaiveTime::parse_from_str(t, "%H:%M").ok())
            .flatten()
    }

    pub(crate) fn validate(&self) -> ApiResult<()> {
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ApiError::InvalidField {
                field: "time_zone",
                message: "must be an IANA time zone name such as Europe/Amsterdam".to_owned(),
            });
        }
        if self.reminder_days_before > MAX_REMINDER_DAYS_BEFORE {
            return Err(ApiError::InvalidField {
                field: "reminder_days_before",
                message: format!("must be 0 (on the day) to {MAX_REMINDER_DAYS_BEFORE}"),
            });
        }
        if self.reminder_time_of_day().is_none() {
            return Err(ApiError::InvalidField {
                field: "reminder_time",
                message: "must be a time of day, HH:MM (e.g. 08:00)".to_owned(),
            });
        }
        validate_text("waiting_room_text", &self.waiting_room_text)?;
        validate_text("disclaimer", &self.disclaimer)?;
        validate_text("after_consultation_text", &self.after_consultation_text)?;
        validate_placeholders("waiting_room_text", &self.waiting_room_text)?;
        for text in self.department_waiting_room_texts.values() {
            validate_text("department_waiting_room_texts", text)?;
            validate_placeholders("department_waiting_room_texts", text)?;
        }
        if !self.continuous_chat && self.chat_after_consultation == ChatAfterConsultation::Keep {
            // Without continuous chat, messages exist only during the consultation (F130).
            return Err(ApiError::InvalidField {
                field: "chat_after_consultation",
                message: "without continuous chat, messages are deleted after the consultation; \
                          set chat_after_consultation to \"delete\""
                    .to_owned(),
            });
        }
        Ok(())
    }
}

fn validate_placeholders(field: &'static str, text: &str) -> ApiResult<()> {
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let tail = &rest[start..];
        let end = tail.find('}').map(|e| e + 1).unwrap_or(tail.len());
        let placeholder = &tail[..end];
        if !TEXT_PLACEHOLDERS.contains(&placeholder) {
            return Err(ApiError::InvalidField {
                field,
                message: format!(
                    "unknown placeholder; allowed are {}",
                    TEXT_PLACEHOLDERS.join(", ")
                ),
            });
        }
        rest = &tail[end..];
    }
    Ok(())
}

fn validate_text(field: &'static str, text: &str) -> ApiResult<()> {
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::InvalidField {
            field,
            message: format!("at most {MAX_TEXT_CHARS} characters"),
        });
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::InvalidField {
            field,
            message: "control characters are not allowed".to_owned(),
        });
    }
    Ok(())
}

/// The permissions a join token carries, fixed when the token is minted from the organisation's
/// settings; the signalling hub enforces them for that connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JoinPermissions {
    /// May publish a screen-share track.
    pub screen_share: bool,
    /// May send files in a consultation.
    pub file_sharing: bool,
    /// Patients: may chat while waiting. Staff: waiting patients may chat with them.
    pub chat_in_waiting_room: bool,
}

impl Default for JoinPermissions {
    fn default() -> Self {
        OrganisationSettings::default().permissions()
    }
}

impl Store {
    pub(crate) async fn organisation_settings_json(
        &self,
        organisation_id: OrganisationId,
    ) -> Result<Option<String>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar::<_, String>(
                "select settings from organisation_settings where organisation_id = $1",
            )
            .bind(organisation_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Stores the first settings of `organisation_id` (the demo seed); an existing row is kept.
    pub(crate) async fn insert_organisation_settings(
        &self,
        organisation_id: OrganisationId,
        settings: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "insert into organisation_settings (organisation_id, settings, updated_at) \
                 values ($1, $2, $3) on conflict (organisation_id) do nothing",
            )
            .bind(organisation_id)
            .bind(settings)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    pub(crate) async fn upsert_organisation_settings(
        &self,
        organisation_id: OrganisationId,
        settings: &str,
        updated_by: StaffId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query(
                "insert into organisation_settings (organisation_id, settings, updated_by, \
                 updated_at) values ($1, $2, $3, $4) \
                 on conflict (organisation_id) do update set settings = excluded.settings, \
                 updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            )
            .bind(organisation_id)
            .bind(settings)
            .bind(updated_by)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }
}

impl Clinic {
    /// The settings of `organisation_id` (defaults when never saved).
    pub async fn organisation_settings(
        &self,
        organisation_id: OrganisationId,
    ) -> ApiResult<OrganisationSettings> {
        match self
            .store()
            .organisation_settings_json(organisation_id)
            .await?
        {
            None => Ok(OrganisationSettings::default()),
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored settings: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_checked() {
        let mut s = OrganisationSettings {
            waiting_room_text: "Welcome from {opens_at}; {practitioner} sees you at \
                                {appointment_time}."
                .into(),
            ..Default::default()
        };
        assert!(s.validate().is_ok());
        s.waiting_room_text = "Hi {name}".into();
        assert!(s.validate().is_err());
        s.waiting_room_text = "unclosed {opens_at".into();
        assert!(s.validate().is_err());
        s.waiting_room_text = "braces } alone are fine".into();
        assert!(s.validate().is_ok());
    }

    #[test]
    fn texts_are_bounded_and_plain() {
        let mut s = OrganisationSettings {
            disclaimer: "x".repeat(MAX_TEXT_CHARS + 1),
            ..Default::default()
        };
        assert!(s.validate().is_err());
        s.disclaimer = "line one\nline two\tend".into();
        assert!(s.validate().is_ok());
        s.disclaimer = "bell\u{7}".into();
        assert!(s.validate().is_err());
    }

    #[test]
    fn chat_without_continuity_must_delete() {
        let mut s = OrganisationSettings {
            continuous_chat: false,
            ..Default::default()
        };
        assert!(s.validate().is_err());
        s.chat_after_consultation = ChatAfterConsultation::Delete;
        assert!(s.validate().is_ok());
    }

    #[test]
    fn old_tokens_without_permissions_get_the_defaults() {
        let p: JoinPermissions = serde_json::from_str("{}").unwrap();
        assert_eq!(p, OrganisationSettings::default().permissions());
    }
}
