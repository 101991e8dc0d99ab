//! Sending recalls: the job handler of [`SEND_JOB`] and the decision it shares with the forward
//! preview ([`evaluate`]).
//!
//! One job per client and sending instant (unique key `recall:client:<id>:at:<ms>`) takes every
//! pending step of that client at that instant: each step is suppressed with its reason
//! ([`suppression`]: death, service done since, opt-out, an appointment already booked, no
//! address) or goes into **one** mail naming every patient and service due (three pets, one
//! mail); a manual recall with its own text goes in a mail of its own. The job records the
//! decisions, the mails (`mail::enqueue`) and its own completion in **one** transaction, each step
//! guarded by `status = 'pending'` and its recall still open: a step is sent at most once even
//! when a worker dies around it or a death is recorded at the same moment, and a mail exists
//! exactly when its steps are marked sent. The outbox then sends it (its own crash window).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Days, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;

use super::db::{Letterhead, PendingRow, Recipient};
use super::model::{BOOKED_GRACE_DAYS, Facts, Reason, SEND_JOB, suppression};
use super::plan::day_start;
use super::text::{Item, Letter, RecallText, render};
use crate::Clinic;
use crate::ids::{ClientId, RecallRuleId};
use crate::jobs::worker::{JobHandler, JobOutcome};
use crate::jobs::{ClaimedJob, QueueConn};
use crate::mail::{MailError, MailKind, MailStamp, OutgoingMail, Related, parse_address};
use crate::store::{Store, dispatch};
use crate::templates::one_line;

/// One mail to send: the steps it covers and its text.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    pub(crate) steps: Vec<PendingRow>,
    pub(crate) text: RecallText,
}

/// What one sending of one client will do.
#[derive(Clone, Debug)]
pub(crate) struct Evaluated {
    pub(crate) recipient: Recipient,
    pub(crate) send_at: DateTime<Utc>,
    pub(crate) mails: Vec<Planned>,
    pub(crate) suppressed: Vec<(PendingRow, Reason)>,
}

/// Decides the pending steps of `client` at `send_at_ms` as of `now` (reads only). `None`: the
/// client is gone.
pub(crate) async fn evaluate(
    clinic: &Clinic,
    client: ClientId,
    send_at_ms: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Evaluated>> {
    let store = clinic.store();
    let Some(recipient) = store.recall_recipient(client).await? else {
        return Ok(None);
    };
    let settings = clinic
        .organisation_settings(recipient.organisation_id)
        .await?;
    let tz = settings.tz();
    let steps = store.pending_recall_steps(client, send_at_ms).await?;
    let starts = if steps.is_empty() {
        Vec::new()
    } else {
        store.scheduled_starts(client, now).await?
    };
    let has_address = recipient
        .email
        .as_deref()
        .is_some_and(|a| !a.trim().is_empty() && parse_address(a).is_ok());
    let mut shared: Vec<PendingRow> = Vec::new();
    let mut mails = Vec::new();
    let mut suppressed = Vec::new();
    for step in steps {
        let limit = step
            .due_on
            .checked_add_days(Days::new(
                u64::try_from(BOOKED_GRACE_DAYS + 1).unwrap_or(31),
            ))
            .map(|d| day_start(tz, d));
        let facts = Facts {
            open: step.recall_status == "open",
            deceased: step.deceased,
            opted_out: recipient.recall_opt_out,
            done_since: step.done_since,
            booked: starts
                .iter()
                .any(|s| *s >= now && limit.is_none_or(|l| *s < l)),
            has_address,
        };
        match suppression(&facts) {
            Some(reason) => suppressed.push((step, reason)),
            None => match (&step.subject, &step.body, step.rule_id) {
                // A manual recall with its own text: a mail of its own.
                (Some(subject), Some(body), None) => mails.push(Planned {
                    text: RecallText {
                        subject: subject.clone(),
                        body: body.clone(),
                    },
                    steps: vec![step],
                }),
                _ => shared.push(step),
            },
        }
    }
    if !shared.is_empty() {
        // The rule's own text when every item comes from one rule that has one; otherwise
        // the built-in text, which names each item (never one rule's words for another's).
        let first_rule: Option<RecallRuleId> = shared[0].rule_id;
        let same_rule = first_rule.is_some() && shared.iter().all(|s| s.rule_id == first_rule);
        let text = match (&shared[0].subject, &shared[0].body) {
            (Some(subject), Some(body)) if same_rule => RecallText {
                subject: subject.clone(),
                body: body.clone(),
            },
            _ => RecallText::default_for(recipient.language),
        };
        mails.insert(
            0,
            Planned {
                steps: shared,
                text,
            },
        );
    }
    Ok(Some(Evaluated {
        recipient,
        send_at: DateTime::from_timestamp_millis(send_at_ms).unwrap_or(now),
        mails,
        suppressed,
    }))
}

/// The item a step contributes to a mail.
pub(crate) fn item(step: &PendingRow) -> Item {
    Item {
        patient: step.patient_name.clone(),
        service: step
            .service_name
            .clone()
            .or_else(|| step.title.clone())
            .unwrap_or_default(),
        due_on: step.due_on,
    }
}

/// The mail of `steps` with `text` to `r`.
pub(crate) fn compose(
    r: &Recipient,
    letterhead: &Letterhead,
    text: &RecallText,
    steps: &[&PendingRow],
) -> OutgoingMail {
    let items: Vec<Item> = steps.iter().map(|&s| item(s)).collect();
    let contact = letterhead.contact();
    let out = render(
        text,
        &Letter {
            client_name: &r.name,
            language: r.language,
            items: &items,
            organisation: &letterhead.name,
            contact: &contact,
        },
    );
    OutgoingMail {
        organisation_id: r.organisation_id,
        kind: MailKind::PatientRecall,
        to_name: one_line(&r.name),
        to_address: r.email.as_deref().unwrap_or("").trim().to_owned(),
        subject: out
            .subject
            .chars()
            .take(crate::mail::MAX_LINE_CHARS)
            .collect(),
        text_body: out.text,
        html_body: out.html,
        calendar: None,
        related: Related {
            department_id: r.department_id,
            client_id: Some(r.client_id),
            ..Related::default()
        },
        created_by: None,
    }
}

/// What the send transaction did.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Recorded {
    pub(crate) mails: usize,
    pub(crate) sent: usize,
    pub(crate) suppressed: usize,
}

impl Store {
    /// Records the decisions of `e`, its mails and the job's completion in one transaction
    /// (see the module docs). `None`: the job's lease was lost and nothing was written.
    async fn record_recall_sending(
        &self,
        job: &ClaimedJob,
        e: &Evaluated,
        letterhead: &Letterhead,
        stamp: &MailStamp,
    ) -> Result<Option<Recorded>, MailError> {
        let now = stamp.now;
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            if !tx.complete_claimed(job, now).await? {
                return Ok(None);
            }
            let mut done = Recorded::default();
            for (step, reason) in &e.suppressed {
                done.suppressed += usize::try_from(
                    sqlx::query(
                        "update recall_step set status = 'suppressed', reason = $2, \
                         decided_at = $3 where recall_step_id = $1 and status = 'pending'",
                    )
                    .bind(step.recall_step_id)
                    .bind(reason.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
                )
                .unwrap_or(0);
            }
            for planned in &e.mails {
                let mut kept: Vec<&PendingRow> = Vec::new();
                for step in &planned.steps {
                    let n = sqlx::query(
                        "update recall_step set status = 'sent', decided_at = $2 \
                         where recall_step_id = $1 and status = 'pending' \
                         and exists (select 1 from recall r where r.recall_id = recall_step.recall_id \
                                     and r.status = 'open')",
                    )
                    .bind(step.recall_step_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n > 0 {
                        kept.push(step);
                    }
                }
                if kept.is_empty() {
                    continue;
                }
                let mail = compose(&e.recipient, letterhead, &planned.text, &kept);
                let queued = crate::mail::enqueue(&mut *tx, &mail, stamp).await?;
                for step in &kept {
                    sqlx::query("update recall_step set mail_id = $2 where recall_step_id = $1")
                        .bind(step.recall_step_id)
                        .bind(queued.id)
                        .execute(&mut *tx)
                        .await?;
                }
                done.mails += 1;
                done.sent += kept.len();
            }
            tx.commit().await?;
            Ok(Some(done))
        })
    }
}

/// Runs recall send jobs (the handler of [`SEND_JOB`]).
pub struct RecallSender {
    clinic: Clinic,
}

impl RecallSender {
    /// The handler table entry for the job worker.
    pub fn handlers(clinic: &Clinic) -> HashMap<&'static str, Arc<dyn JobHandler>> {
        let mut map: HashMap<&'static str, Arc<dyn JobHandler>> = HashMap::new();
        map.insert(
            SEND_JOB,
            Arc::new(RecallSender {
                clinic: clinic.clone(),
            }),
        );
        map
    }

    async fn send(&self, job: ClaimedJob) -> JobOutcome {
        let clinic = &self.clinic;
        let client: Option<ClientId> = job
            .payload
            .get("client_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok());
        let at = job.payload.get("send_at").and_then(|v| v.as_i64());
        let (Some(client), Some(at)) = (client, at) else {
            return JobOutcome::Fail("payload without client_id and send_at".to_owned());
        };
        let stamp = clinic.mail_stamp();
        let evaluated = match evaluate(clinic, client, at, stamp.now).await {
            Ok(Some(e)) => e,
            // Deleted with its client.
            Ok(None) => return JobOutcome::Done,
            Err(e) => return JobOutcome::Retry(format!("reading the recalls: {e:#}")),
        };
        if evaluated.mails.is_empty() && evaluated.suppressed.is_empty() {
            return JobOutcome::Done;
        }
        let letterhead = match clinic
            .store()
            .recall_letterhead(evaluated.recipient.organisation_id)
            .await
        {
            Ok(Some(l)) => l,
            Ok(None) => return JobOutcome::Done,
            Err(e) => return JobOutcome::Retry(format!("reading the organisation: {e}")),
        };
        match clinic
            .store()
            .record_recall_sending(&job, &evaluated, &letterhead, &stamp)
            .await
        {
            Ok(Some(done)) => {
                tracing::info!(
                    client_id = %client,
                    mails = done.mails,
                    sent = done.sent,
                    suppressed = done.suppressed,
                    "recall sending recorded"
                );
                if done.mails > 0 {
                    clinic.wake_jobs();
                }
                JobOutcome::Recorded
            }
            Ok(None) => {
                tracing::warn!(client_id = %client, "a recall job's lease was lost; its new owner sends it");
                JobOutcome::Recorded
            }
            Err(MailError::Database(e)) => JobOutcome::Retry(format!("recording the recalls: {e}")),
            // A mail the outbox refuses (a field too long): retrying will not help.
            Err(e) => JobOutcome::Fail(format!("composing the recall mail: {e}")),
        }
    }
}

impl JobHandler for RecallSender {
    fn run(&self, job: ClaimedJob) -> BoxFuture<'_, JobOutcome> {
        Box::pin(self.send(job))
    }
}
