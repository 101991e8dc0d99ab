//! The e-mail outbox: every mail is a row of `mail` written **in the caller's transaction**
//! together with its `mail.send` job ([`enqueue`]); the job worker sends it through a
//! [`Mailer`] ([`sender`]), retrying 4xx replies and connection errors with backoff and marking
//! 5xx replies and invalid addresses failed, with the reason, for the admins to see (`GET /mail`).
//!
//! - One message per recipient: a mail row has exactly one `To`.
//! - The `Message-ID` is made at enqueue, stored, and sent unchanged by every attempt, so a
//!   resend after a crash is recognisable as the same message.
//! - Addresses are checked with lettre's [`Address`] parser before anything is stored; names and
//!   subjects go through lettre's header encoder, so CR/LF in them cannot start a new header.
//! - An organisation with "do not send e-mails" (F80) keeps its mails with status `held`; with no
//!   SMTP server configured mails stay in the outbox with status `no_server` ("not sent: no mail
//!   server configured") and are still shown on the "Sent mail" page.
//!
//! # Recording a mail with the change that caused it
//!
//! [`enqueue`] takes any connection of either backend, so it runs inside the same
//! [`dispatch!`](crate::store::dispatch) block and transaction as the change:
//!
//! ```ignore
//! // inside `impl Store` (crate code):
//! let stamp = clinic.mail_stamp(); // the clock's now and the Message-ID domain
//! dispatch!(self, pool => {
//!     let mut tx = pool.begin().await?;
//!     sqlx::query("update appointment set … where appointment_id = $1")
//!         .bind(id)
//!         .execute(&mut *tx)
//!         .await?;
//!     crate::mail::enqueue(&mut *tx, &mail, &stamp).await?;
//!     tx.commit().await?;
//! });
//! clinic.wake_jobs(); // after the commit: send now rather than at the next poll
//! ```
//!
//! A refused mail (invalid address, oversized text) returns [`MailError`] before anything is
//! written, and the caller's transaction is dropped (rolled back) by the `?`. The test
//! `clinic/tests/api/mail.rs::enqueue_shares_the_callers_transaction` shows both outcomes.
//!
//! Invariant: addresses, names, subjects and bodies never reach the logs (mail ids do).

pub mod db;
pub mod http;
pub mod message;
pub mod sender;
pub mod smtp;

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lettre::Address;
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

use crate::ids::{AppointmentId, ClientId, DepartmentId, MailId, OrganisationId, StaffId};
use crate::jobs::NewJob;

pub use db::MailConn;
pub use smtp::{Mailer, SendError, SmtpMailer};

/// Job kind of "send this mail" (payload `{"mail_id": …}`).
pub const SEND_JOB: &str = "mail.send";
/// Attempts before a mail that keeps meeting 4xx replies or connection errors fails
/// (with the default backoff: about 3½ hours).
pub const SEND_ATTEMPTS: u32 = 10;
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

/// What [`enqueue`] needs besides the mail: the clock's now and the domain of Message-IDs.
/// From [`Clinic::mail_stamp`](crate::Clinic::mail_stamp).
#[derive(Clone, Debug)]
pub struct MailStamp {
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// Right-hand side of generated Message-IDs (the public URL's host).
    pub domain: String,
}

impl crate::Clinic {
    /// The clock's now and the Message-ID domain, for [`enqueue`].
    pub fn mail_stamp(&self) -> MailStamp {
        MailStamp {
            now: self.now(),
            domain: message_id_domain(&self.config().public_url),
        }
    }
}

/// A mail stored in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    /// Mail id.
    pub id: MailId,
    /// Its Message-ID header value, with angle brackets.
    pub message_id: String,
}

/// Stores `mail` and its send job on `conn` — the caller's transaction (`&mut *tx`) on either
/// backend. Validates first: a refused mail writes nothing. Call
/// [`Clinic::wake_jobs`](crate::Clinic::wake_jobs) after the commit.
pub async fn enqueue<C: MailConn + ?Sized>(
    conn: &mut C,
    mail: &OutgoingMail,
    stamp: &MailStamp,
) -> Result<Queued, MailError> {
    mail.validate()?;
    let id = MailId::new();
    let message_id = format!("<{}@{}>", id.0.simple(), stamp.domain);
    let job = NewJob {
        kind: SEND_JOB,
        payload: serde_json::json!({ "mail_id": id }),
        run_at: stamp.now,
        max_attempts: SEND_ATTEMPTS,
        unique_key: Some(format!("mail:{id}")),
    };
    let job_id = conn.insert_job(&job, stamp.now).await?;
    let row = db::MailInsert {
        id,
        mail,
        message_id: &message_id,
        job_id,
        now: stamp.now,
    };
    conn.insert_mail(&row).await?;
    Ok(Queued { id, message_id })
}

/// The outbox's sending set-up: the `From` of every mail and the mail server, if any.
#[derive(Clone)]
pub struct MailConfig {
    /// `From` of every mail (`--mail-from`).
    pub from: Mailbox,
    /// The SMTP adapter; `None`: mail stays in the outbox as `no_server`.
    pub mailer: Option<Arc<dyn Mailer>>,
}

impl MailConfig {
    /// No mail server, `From: Consultroom <noreply@HOST>` for the public URL's host.
    pub fn unconfigured(public_url: &str) -> Self {
        let host = message_id_domain(public_url);
        let from = format!("Consultroom <noreply@{host}>")
            .parse()
            .unwrap_or_else(|_| {
                Mailbox::new(
                    Some("Consultroom".to_owned()),
                    Address::new("noreply", "localhost").expect("a valid fallback address"),
                )
            });
        Self { from, mailer: None }
    }
}

/// The host of `public_url` (without port), for Message-IDs; `localhost` if there is none.
pub fn message_id_domain(public_url: &str) -> String {
    let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or("").to_owned()
    };
    if host.is_empty() || host.starts_with('[') {
        // An IPv6 literal is allowed by RFC 5322 only in a form many filters dislike.
        "localhost".to_owned()
    } else {
        host.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_domains() {
        assert_eq!(
            message_id_domain("https://video.example.org"),
            "video.example.org"
        );
        assert_eq!(message_id_domain("http://127.0.0.1:8080/x"), "127.0.0.1");
        assert_eq!(message_id_domain("http://[::1]:8080"), "localhost");
        assert_eq!(message_id_domain(""), "localhost");
    }

    #[test]
    fn addresses_are_checked() {
        assert!(parse_address("anna@example.org").is_ok());
        for bad in [
            "",
            "anna",
            "anna@",
            "@example.org",
            "anna@example.org\r\nBcc: x@y.z",
            "a b@example.org",
        ] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kinds_and_statuses_round_trip() {
        assert_eq!(
            "appointment_reminder".parse::<MailKind>(),
            Ok(MailKind::AppointmentReminder)
        );
        assert_eq!("no_server".parse::<MailStatus>(), Ok(MailStatus::NoServer));
        assert!("nope".parse::<MailStatus>().is_err());
    }
}
