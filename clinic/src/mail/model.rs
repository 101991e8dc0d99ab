//! The outbox's model: what a mail is ([`OutgoingMail`]), its kinds and statuses, and the checks
//! made before anything is stored.

use std::str::FromStr;

use lettre::Address;
use serde::{Deserialize, Serialize};

use crate::ids::{AppointmentId, ClientId, DepartmentId, OrganisationId, StaffId};

/// Longest recipient name or subject, in characters.
pub const MAX_LINE_CHARS: usize = 300;
/// Largest text body, HTML body or calendar, in bytes.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// What a mail is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// A new appointment (F69).
    AppointmentInvitation,
    /// A rescheduled appointment.
    AppointmentUpdate,
    /// A cancelled appointment.
    AppointmentCancellation,
    /// A reminder before the appointment (F70).
    AppointmentReminder,
    /// A staff member's invitation with a set-password link (F15).
    StaffInvitation,
    /// A password-reset link.
    PasswordReset,
    /// An admin's test of the mail set-up.
    Test,
    /// A care reminder (recall, F197): one client, one or more patients and services due.
    PatientRecall,
}

impl MailKind {
    /// Stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::AppointmentInvitation => "appointment_invitation",
            MailKind::AppointmentUpdate => "appointment_update",
            MailKind::AppointmentCancellation => "appointment_cancellation",
            MailKind::AppointmentReminder => "appointment_reminder",
            MailKind::StaffInvitation => "staff_invitation",
            MailKind::PasswordReset => "password_reset",
            MailKind::Test => "test",
            MailKind::PatientRecall => "patient_recall",
        }
    }
}

impl FromStr for MailKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| ())
    }
}

/// Where a mail is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailStatus {
    /// Waiting to be sent (also between retries).
    Queued,
    /// Accepted by the SMTP server.
    Sent,
    /// Refused for good (5xx, invalid address, or out of attempts); `last_error` says why.
    Failed,
    /// Not sent: the organisation does not send e-mails (F80).
    Held,
    /// Not sent: no mail server is configured.
    NoServer,
}

impl MailStatus {
    /// Stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Queued => "queued",
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
            MailStatus::Held => "held",
            MailStatus::NoServer => "no_server",
        }
    }

    /// What the status means, for people.
    pub fn label(self) -> &'static str {
        match self {
            MailStatus::Queued => "queued",
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
            MailStatus::Held => "held: this organisation does not send e-mails",
            MailStatus::NoServer => "not sent: no mail server configured",
        }
    }
}

impl FromStr for MailStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| ())
    }
}

/// `METHOD` of a calendar part (RFC 5546).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CalendarMethod {
    /// An invitation or an update.
    #[serde(rename = "REQUEST")]
    Request,
    /// A cancellation.
    #[serde(rename = "CANCEL")]
    Cancel,
}

impl CalendarMethod {
    /// As written in the calendar and the MIME type.
    pub fn as_str(self) -> &'static str {
        match self {
            CalendarMethod::Request => "REQUEST",
            CalendarMethod::Cancel => "CANCEL",
        }
    }
}

/// A calendar to send inline (`text/calendar; method=…`) and as `invite.ics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarPart {
    /// Must equal the calendar's `METHOD`.
    pub method: CalendarMethod,
    /// The iCalendar text.
    pub ics: String,
}

/// The records a mail is about (all optional; `department_id` decides which department admin
/// sees it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Related {
    /// Department.
    pub department_id: Option<DepartmentId>,
    /// Appointment.
    pub appointment_id: Option<AppointmentId>,
    /// Client.
    pub client_id: Option<ClientId>,
    /// Staff member (e.g. of a staff invitation).
    pub staff_id: Option<StaffId>,
}

/// One message to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Organisation it is sent for.
    pub organisation_id: OrganisationId,
    /// What it is.
    pub kind: MailKind,
    /// Recipient's name (may be empty).
    pub to_name: String,
    /// Recipient's address.
    pub to_address: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text_body: String,
    /// HTML body.
    pub html_body: String,
    /// Optional calendar.
    pub calendar: Option<CalendarPart>,
    /// Records it is about.
    pub related: Related,
    /// Staff member whose action caused it, if any.
    pub created_by: Option<StaffId>,
}

/// Why a mail was refused at enqueue.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The recipient address does not parse.
    #[error("not a valid e-mail address")]
    InvalidAddress,
    /// A field is too long.
    #[error("{field} is too long")]
    TooLong {
        /// Which field.
        field: &'static str,
    },
    /// A calendar whose `METHOD` differs from the part's method.
    #[error("the calendar's METHOD differs from the calendar part's method")]
    CalendarMethodMismatch,
    /// The database refused.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<MailError> for crate::ApiError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::InvalidAddress => crate::ApiError::InvalidField {
                field: "to",
                message: "not a valid e-mail address".to_owned(),
            },
            MailError::TooLong { field } => crate::ApiError::InvalidField {
                field,
                message: "too long".to_owned(),
            },
            MailError::CalendarMethodMismatch => crate::ApiError::invalid(e.to_string()),
            MailError::Database(e) => e.into(),
        }
    }
}

/// Parses and checks a recipient address (lettre's parser; what lettre will send to).
pub fn parse_address(address: &str) -> Result<Address, MailError> {
    let trimmed = address.trim();
    if trimmed.len() > 254 || trimmed.chars().any(char::is_control) {
        return Err(MailError::InvalidAddress);
    }
    Address::from_str(trimmed).map_err(|_| MailError::InvalidAddress)
}

impl OutgoingMail {
    /// Checks everything [`enqueue`] checks, without storing anything.
    pub fn validate(&self) -> Result<(), MailError> {
        parse_address(&self.to_address)?;
        if self.to_name.chars().count() > MAX_LINE_CHARS {
            return Err(MailError::TooLong { field: "to_name" });
        }
        if self.subject.chars().count() > MAX_LINE_CHARS {
            return Err(MailError::TooLong { field: "subject" });
        }
        if self.text_body.len() > MAX_BODY_BYTES {
            return Err(MailError::TooLong { field: "text_body" });
        }
        if self.html_body.len() > MAX_BODY_BYTES {
            return Err(MailError::TooLong { field: "html_body" });
        }
        if let Some(cal) = &self.calendar {
            if cal.ics.len() > MAX_BODY_BYTES {
                return Err(MailError::TooLong { field: "calendar" });
            }
            let wanted = format!("METHOD:{}", cal.method.as_str());
            if !cal.ics.lines().any(|l| l.trim_end() == wanted) {
                return Err(MailError::CalendarMethodMismatch);
            }
        }
        Ok(())
    }
}
