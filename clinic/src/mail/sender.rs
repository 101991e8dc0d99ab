//! The `mail.send` job: loads the mail, honours "do not send e-mails" (F80) and a missing mail
//! server, builds the message and hands it to the [`Mailer`](super::Mailer).
//!
//! Crash windows (see ARCHITECTURE.md, "E-mail outbox and job queue"): the mail row and its job
//! are committed together, so a mail is never lost or recorded without a job. A worker that
//! dies after the SMTP server accepted the message but before `sent` is recorded leaves the job
//! `running`; when its lease expires the mail is sent again, with the same Message-ID. That is
//! the only window that can duplicate a mail.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::SEND_JOB;
use super::model::MailStatus;
use super::smtp::SendError;
use crate::Clinic;
use crate::ids::MailId;
use crate::jobs::ClaimedJob;
use crate::jobs::worker::{JobHandler, JobOutcome};

/// Sends the outbox's mails (the handler of [`SEND_JOB`]).
pub struct MailSender {
    clinic: Clinic,
}

impl MailSender {
    /// A sender using the clinic's store, clock and mail configuration.
    pub fn new(clinic: Clinic) -> Self {
        Self { clinic }
    }

    /// The handler table entry for the job worker.
    pub fn handlers(clinic: &Clinic) -> HashMap<&'static str, Arc<dyn JobHandler>> {
        let mut map: HashMap<&'static str, Arc<dyn JobHandler>> = HashMap::new();
        map.insert(SEND_JOB, Arc::new(MailSender::new(clinic.clone())));
        map
    }

    async fn send(&self, job: ClaimedJob) -> JobOutcome {
        let id: MailId = match job
            .payload
            .get("mail_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok())
        {
            Some(id) => id,
            None => return JobOutcome::Fail("payload without mail_id".to_owned()),
        };
        let store = self.clinic.store();
        let mail = match store.mail_by_id(id).await {
            Ok(Some(m)) => m,
            // Deleted with its organisation: nothing left to do.
            Ok(None) => return JobOutcome::Done,
            Err(e) => return JobOutcome::Retry(format!("reading the mail: {e}")),
        };
        if mail.status() != MailStatus::Queued {
            return JobOutcome::Done;
        }
        let attempts = job.attempt;
        let record = |status: MailStatus, error: Option<String>| {
            let now = self.clinic.now();
            // Holding or keeping a mail for want of a server is no sending attempt.
            let attempts = match status {
                MailStatus::Held | MailStatus::NoServer => 0,
                _ => attempts,
            };
            async move {
                if let Err(e) = store
                    .record_mail_attempt(id, status, attempts, error.as_deref(), now)
                    .await
                {
                    tracing::warn!(mail_id = %id, error = %e, "recording a mail's status failed");
                }
            }
        };
        let settings = match self
            .clinic
            .organisation_settings(mail.organisation_id)
            .await
        {
            Ok(s) => s,
            Err(e) => return JobOutcome::Retry(format!("reading the settings: {e}")),
        };
        if settings.do_not_send_emails {
            record(MailStatus::Held, None).await;
            tracing::info!(mail_id = %id, "mail held: the organisation does not send e-mails");
            return JobOutcome::Done;
        }
        let config = &self.clinic.config().mail;
        let Some(mailer) = config.mailer.clone() else {
            record(MailStatus::NoServer, None).await;
            return JobOutcome::Done;
        };
        let message = match super::message::build(&mail, &config.from, self.clinic.now()) {
            Ok(m) => m,
            Err(reason) => {
                record(MailStatus::Failed, Some(reason.clone())).await;
                return JobOutcome::Fail(reason);
            }
        };
        match mailer.send(message).await {
            Ok(()) => {
                record(MailStatus::Sent, None).await;
                tracing::info!(mail_id = %id, attempt = attempts, "mail sent");
                JobOutcome::Done
            }
            Err(SendError::Permanent(reason)) => {
                record(MailStatus::Failed, Some(reason.clone())).await;
                tracing::warn!(mail_id = %id, "mail refused for good");
                JobOutcome::Fail(reason)
            }
            Err(SendError::Transient(reason)) => {
                let status = if job.is_last_attempt() {
                    MailStatus::Failed
                } else {
                    MailStatus::Queued
                };
                record(status, Some(reason.clone())).await;
                tracing::info!(mail_id = %id, attempt = attempts, "mail not sent yet; will retry");
                JobOutcome::Retry(reason)
            }
        }
    }
}

impl JobHandler for MailSender {
    fn run(&self, job: ClaimedJob) -> BoxFuture<'_, JobOutcome> {
        Box::pin(self.send(job))
    }
}
