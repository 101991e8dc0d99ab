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
//! // crate code: a Store method that changes an appointment and records its mail.
//! pub(crate) async fn reschedule(&self, id: AppointmentId, mail: &OutgoingMail,
//!                                stamp: &MailStamp) -> Result<Queued, MailError> {
//!     dispatch!(self, pool => {
//!         let mut tx = pool.begin().await?;
//!         sqlx::query("update appointment set starts_at = $2 where appointment_id = $1")
//!             .bind(id)
//!             .bind(stamp.now)
//!             .execute(&mut *tx)
//!             .await?;
//!         let queued = crate::mail::enqueue(&mut *tx, mail, stamp).await?;
//!         tx.commit().await?;
//!         Ok(queued)
//!     })
//! }
//! // the handler: `let stamp = clinic.mail_stamp();` before, `clinic.wake_jobs();` after the
//! // commit (the worker then sends at once instead of at its next poll).
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
pub mod model;
pub mod sender;
pub mod smtp;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lettre::Address;
use lettre::message::Mailbox;

use crate::ids::MailId;
use crate::jobs::NewJob;

pub use db::MailConn;
pub use model::{
    CalendarMethod, CalendarPart, MAX_BODY_BYTES, MAX_LINE_CHARS, MailError, MailKind, MailStatus,
    OutgoingMail, Related, parse_address,
};
pub use smtp::{Mailer, SendError, SmtpMailer};

/// Job kind of "send this mail" (payload `{"mail_id": …}`).
pub const SEND_JOB: &str = "mail.send";
/// Attempts before a mail that keeps meeting 4xx replies or connection errors fails
/// (with the default backoff: about 3½ hours).
pub const SEND_ATTEMPTS: u32 = 10;
/// What [`enqueue`] needs besides the mail: the clock's now and the domain of Message-IDs.
/// From [`Clinic::mail_stamp`](crate::Clinic::mail_stamp).
#[derive(Clone, Debug)]
pub struct MailStamp {
    /// Now, from the injected clock.
    pub now: DateTime<Utc>,
    /// Right-hand side of generated Message-IDs (the public URL's host).
    pub domain: String,
    /// When the mail's send job is due: `now`, or just before the due time of the job that made
    /// the mail ([`MailStamp::following`]).
    pub due: DateTime<Utc>,
}

impl MailStamp {
    /// The stamp of a mail made by a job that was due at `cause_due` (a reminder): its send job
    /// is due one millisecond before that, so the worker, which takes the earliest due job first,
    /// sends it before any other job that fell due with its cause. Without this a burst of
    /// reminders due at the same instant (every reminder of the day at 08:00) composed all of
    /// them before the first mail left.
    pub fn following(mut self, cause_due: DateTime<Utc>) -> Self {
        self.due = self.now.min(cause_due - chrono::Duration::milliseconds(1));
        self
    }
}

impl crate::Clinic {
    /// The clock's now and the Message-ID domain, for [`enqueue`].
    pub fn mail_stamp(&self) -> MailStamp {
        let now = self.now();
        MailStamp {
            now,
            domain: message_id_domain(&self.config().public_url),
            due: now,
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
        run_at: stamp.due,
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
