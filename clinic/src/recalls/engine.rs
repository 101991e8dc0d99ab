//! The rule engine, run **inside the caller's transaction** on either backend ([`RecallConn`],
//! implemented for both connection types by one macro, like the job queue's `QueueConn`):
//!
//! - [`RecallConn::service_recorded`] — in the transaction that stores a service record (F206):
//!   the patient's open recall for that service is completed, and each active rule triggered by
//!   the service plans the next recall (its due date from the service date and the interval, its
//!   sending steps from the schedule, and one send job per client and sending instant).
//! - [`RecallConn::patient_died`] — in `Store::mark_patient_deceased`'s transaction: the
//!   patient's open recalls are cancelled with their pending steps, so a send job claimed after
//!   the commit finds nothing to send.
//! - [`RecallConn::replan_rule`] — when a rule is edited: the pending steps of its open recalls
//!   are planned again from the new schedule; a step already sent or suppressed is kept, and its
//!   offset is never planned twice (`recall_step_offset_idx`), so an edit never re-sends.
//!
//! Never two open recalls for one patient and service: `recall_open_idx` (a partial unique
//! index) guarantees it; the engine closes or keeps the open one before inserting.

use std::future::Future;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::model::{Reason, Rule, SEND_ATTEMPTS, SEND_JOB, send_job_key};
use super::plan::{day_start, plan_steps};
use crate::ids::{
    ClientId, OrganisationId, PatientId, RecallId, RecallRuleId, RecallStepId, ServiceId,
    ServiceRecordId, StaffId,
};
use crate::jobs::{NewJob, QueueConn, millis};

/// A service just recorded, and what planning needs (read before the transaction).
pub(crate) struct Recorded<'a> {
    pub(crate) organisation_id: OrganisationId,
    pub(crate) client_id: ClientId,
    pub(crate) patient_id: PatientId,
    pub(crate) service_id: ServiceId,
    pub(crate) record_id: ServiceRecordId,
    pub(crate) performed_on: NaiveDate,
    /// The patient's death is recorded: nothing new is planned.
    pub(crate) deceased: bool,
    /// The active rules triggered by the service that apply to the client's department.
    pub(crate) rules: &'a [Rule],
    pub(crate) plan: PlanContext,
    pub(crate) created_by: Option<StaffId>,
}

/// The organisation's zone and sending time, and now.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlanContext {
    pub(crate) tz: Tz,
    pub(crate) send_time: NaiveTime,
    pub(crate) now: DateTime<Utc>,
}

/// A new recall to insert (by the engine or a manual recall).
pub(crate) struct NewRecall<'a> {
    pub(crate) id: RecallId,
    pub(crate) organisation_id: OrganisationId,
    pub(crate) client_id: ClientId,
    pub(crate) patient_id: PatientId,
    pub(crate) service_id: Option<ServiceId>,
    pub(crate) rule_id: Option<RecallRuleId>,
    pub(crate) origin: &'static str,
    pub(crate) internal: bool,
    pub(crate) title: Option<&'a str>,
    pub(crate) subject: Option<&'a str>,
    pub(crate) body: Option<&'a str>,
    pub(crate) basis_record_id: Option<ServiceRecordId>,
    pub(crate) basis_on: Option<NaiveDate>,
    pub(crate) due_on: NaiveDate,
    pub(crate) due_at: DateTime<Utc>,
    pub(crate) created_by: Option<StaffId>,
    /// `(offset_days, send_at)` of each e-mail step.
    pub(crate) steps: Vec<(Option<i32>, DateTime<Utc>)>,
}

/// The recall store operations that must share the caller's transaction.
pub(crate) trait RecallConn: QueueConn {
    /// See the module docs. Returns whether a send job was enqueued (wake the worker).
    fn service_recorded<'a>(
        &'a mut self,
        r: &'a Recorded<'a>,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send + 'a;

    /// Cancels the open recalls of `patient` and their pending steps (`patient_deceased`).
    fn patient_died<'a>(
        &'a mut self,
        organisation_id: OrganisationId,
        patient: PatientId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'a;

    /// Re-plans the pending steps of `rule`'s open recalls (see the module docs). Returns
    /// whether a send job was enqueued.
    fn replan_rule<'a>(
        &'a mut self,
        organisation_id: OrganisationId,
        rule: &'a Rule,
        plan: PlanContext,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send + 'a;

    /// Inserts a recall, its steps and their send jobs. Returns whether a job was enqueued.
    fn insert_recall<'a>(
        &'a mut self,
        r: &'a NewRecall<'a>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send + 'a;

    /// Closes open recall `id` (`completed` or `cancelled`) with `reason`, cancelling its
    /// pending steps. False when it was not open.
    fn close_recall<'a>(
        &'a mut self,
        id: RecallId,
        status: &'static str,
        reason: Reason,
        by: (Option<StaffId>, Option<ServiceRecordId>),
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send + 'a;
}

fn send_job(client: ClientId, send_at: DateTime<Utc>) -> NewJob {
    let at = millis(send_at);
    NewJob {
        kind: SEND_JOB,
        payload: serde_json::json!({ "client_id": client, "send_at": at }),
        run_at: send_at,
        max_attempts: SEND_ATTEMPTS,
        unique_key: Some(send_job_key(client, at)),
    }
}

#[derive(sqlx::FromRow)]
struct OpenRow {
    recall_id: RecallId,
    basis_on: Option<NaiveDate>,
}

macro_rules! impl_recall_conn {
    ($conn:ty) => {
        impl RecallConn for $conn {
            async fn service_recorded(&mut self, r: &Recorded<'_>) -> Result<bool, sqlx::Error> {
                let now = r.plan.now;
                // 1. The service is done: its open recall completes, unless that recall was
                //    planned from a record of this day or later (this one is a late entry of an
                //    older service), or it is a manual one made after that day.
                let next_day = r
                    .performed_on
                    .checked_add_days(Days::new(1))
                    .map(|d| day_start(r.plan.tz, d))
                    .unwrap_or(now);
                let done: Vec<RecallId> = sqlx::query_scalar(
                    "select recall_id from recall where patient_id = $1 and service_id = $2 \
                     and status = 'open' and organisation_id = $3 \
                     and ((basis_on is not null and basis_on < $4) \
                          or (basis_on is null and created_at < $5))",
                )
                .bind(r.patient_id)
                .bind(r.service_id)
                .bind(r.organisation_id)
                .bind(r.performed_on)
                .bind(next_day)
                .fetch_all(&mut *self)
                .await?;
                for id in done {
                    self.close_recall(
                        id,
                        "completed",
                        Reason::ServiceDone,
                        (r.created_by, Some(r.record_id)),
                        now,
                    )
                    .await?;
                }
                if r.deceased {
                    return Ok(false);
                }
                // 2. Each rule plans the next recall of its due service.
                let mut woke = false;
                for rule in r.rules {
                    let Some(due_on) = rule.interval.after(r.performed_on) else {
                        continue;
                    };
                    // A record of the due service on this day or later (other than this one)
                    // already governs: this record is history.
                    let later: i64 = sqlx::query_scalar(
                        "select count(*) from service_record where patient_id = $1 \
                         and service_id = $2 and performed_on >= $3 and service_record_id <> $4",
                    )
                    .bind(r.patient_id)
                    .bind(rule.due_service_id)
                    .bind(r.performed_on)
                    .bind(r.record_id)
                    .fetch_one(&mut *self)
                    .await?;
                    if later > 0 {
                        continue;
                    }
                    let open: Option<OpenRow> = sqlx::query_as(
                        "select recall_id, basis_on from recall where patient_id = $1 \
                         and service_id = $2 and status = 'open'",
                    )
                    .bind(r.patient_id)
                    .bind(rule.due_service_id)
                    .fetch_optional(&mut *self)
                    .await?;
                    if let Some(open) = open {
                        if open.basis_on.is_some_and(|b| b >= r.performed_on) {
                            continue;
                        }
                        self.close_recall(
                            open.recall_id,
                            "cancelled",
                            Reason::Superseded,
                            (r.created_by, Some(r.record_id)),
                            now,
                        )
                        .await?;
                    }
                    let steps = if rule.internal || rule.channels.is_empty() {
                        Vec::new()
                    } else {
                        plan_steps(
                            due_on,
                            &rule.schedule,
                            r.plan.tz,
                            r.plan.send_time,
                            now,
                        )
                        .into_iter()
                        .map(|s| (Some(s.offset_days), s.send_at))
                        .collect()
                    };
                    let new = NewRecall {
                        id: RecallId::new(),
                        organisation_id: r.organisation_id,
                        client_id: r.client_id,
                        patient_id: r.patient_id,
                        service_id: Some(rule.due_service_id),
                        rule_id: Some(rule.id),
                        origin: "rule",
                        internal: rule.internal,
                        title: None,
                        subject: None,
                        body: None,
                        basis_record_id: Some(r.record_id),
                        basis_on: Some(r.performed_on),
                        due_on,
                        due_at: day_start(r.plan.tz, due_on),
                        created_by: r.created_by,
                        steps,
                    };
                    woke |= self.insert_recall(&new, now).await?;
                }
                Ok(woke)
            }

            async fn patient_died(
                &mut self,
                organisation_id: OrganisationId,
                patient: PatientId,
                now: DateTime<Utc>,
            ) -> Result<u64, sqlx::Error> {
                let open: Vec<RecallId> = sqlx::query_scalar(
                    "select recall_id from recall where organisation_id = $1 \
                     and patient_id = $2 and status = 'open'",
                )
                .bind(organisation_id)
                .bind(patient)
                .fetch_all(&mut *self)
                .await?;
                let mut n = 0;
                for id in open {
                    if self
                        .close_recall(id, "cancelled", Reason::PatientDeceased, (None, None), now)
                        .await?
                    {
                        n += 1;
                    }
                }
                Ok(n)
            }

            async fn replan_rule(
                &mut self,
                organisation_id: OrganisationId,
                rule: &Rule,
                plan: PlanContext,
            ) -> Result<bool, sqlx::Error> {
                #[derive(sqlx::FromRow)]
                struct Open {
                    recall_id: RecallId,
                    client_id: ClientId,
                    due_on: NaiveDate,
                }
                let open: Vec<Open> = sqlx::query_as(
                    "select recall_id, client_id, due_on from recall \
                     where organisation_id = $1 and recall_rule_id = $2 and status = 'open'",
                )
                .bind(organisation_id)
                .bind(rule.id)
                .fetch_all(&mut *self)
                .await?;
                let mut woke = false;
                for o in open {
                    sqlx::query(
                        "delete from recall_step where recall_id = $1 and status = 'pending'",
                    )
                    .bind(o.recall_id)
                    .execute(&mut *self)
                    .await?;
                    sqlx::query("update recall set internal = $2, updated_at = $3 where recall_id = $1")
                        .bind(o.recall_id)
                        .bind(rule.internal)
                        .bind(plan.now)
                        .execute(&mut *self)
                        .await?;
                    if rule.internal || rule.channels.is_empty() {
                        continue;
                    }
                    for s in plan_steps(o.due_on, &rule.schedule, plan.tz, plan.send_time, plan.now)
                    {
                        let inserted = sqlx::query(
                            "insert into recall_step (recall_step_id, recall_id, organisation_id, \
                             client_id, offset_days, send_at, channel, status, created_at) \
                             values ($1, $2, $3, $4, $5, $6, 'email', 'pending', $7) \
                             on conflict do nothing",
                        )
                        .bind(RecallStepId::new())
                        .bind(o.recall_id)
                        .bind(organisation_id)
                        .bind(o.client_id)
                        .bind(s.offset_days)
                        .bind(millis(s.send_at))
                        .bind(plan.now)
                        .execute(&mut *self)
                        .await?
                        .rows_affected();
                        if inserted > 0 {
                            woke |= self
                                .insert_job(&send_job(o.client_id, s.send_at), plan.now)
                                .await?
                                .is_some();
                        }
                    }
                }
                Ok(woke)
            }

            async fn insert_recall(
                &mut self,
                r: &NewRecall<'_>,
                now: DateTime<Utc>,
            ) -> Result<bool, sqlx::Error> {
                sqlx::query(
                    "insert into recall (recall_id, organisation_id, client_id, patient_id, \
                     service_id, recall_rule_id, origin, internal, title, subject, body, \
                     basis_record_id, basis_on, due_on, due_at, status, created_by, created_at, \
                     updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                     $14, $15, 'open', $16, $17, $17)",
                )
                .bind(r.id)
                .bind(r.organisation_id)
                .bind(r.client_id)
                .bind(r.patient_id)
                .bind(r.service_id)
                .bind(r.rule_id)
                .bind(r.origin)
                .bind(r.internal)
                .bind(r.title)
                .bind(r.subject)
                .bind(r.body)
                .bind(r.basis_record_id)
                .bind(r.basis_on)
                .bind(r.due_on)
                .bind(r.due_at)
                .bind(r.created_by)
                .bind(now)
                .execute(&mut *self)
                .await?;
                let mut woke = false;
                for (offset, send_at) in &r.steps {
                    sqlx::query(
                        "insert into recall_step (recall_step_id, recall_id, organisation_id, \
                         client_id, offset_days, send_at, channel, status, created_at) \
                         values ($1, $2, $3, $4, $5, $6, 'email', 'pending', $7)",
                    )
                    .bind(RecallStepId::new())
                    .bind(r.id)
                    .bind(r.organisation_id)
                    .bind(r.client_id)
                    .bind(*offset)
                    .bind(millis(*send_at))
                    .bind(now)
                    .execute(&mut *self)
                    .await?;
                    woke |= self
                        .insert_job(&send_job(r.client_id, *send_at), now)
                        .await?
                        .is_some();
                }
                Ok(woke)
            }

            async fn close_recall(
                &mut self,
                id: RecallId,
                status: &'static str,
                reason: Reason,
                by: (Option<StaffId>, Option<ServiceRecordId>),
                now: DateTime<Utc>,
            ) -> Result<bool, sqlx::Error> {
                let n = sqlx::query(
                    "update recall set status = $2, closed_reason = $3, closed_at = $4, \
                     closed_by = $5, closed_by_record_id = $6, updated_at = $4 \
                     where recall_id = $1 and status = 'open'",
                )
                .bind(id)
                .bind(status)
                .bind(reason.as_str())
                .bind(now)
                .bind(by.0)
                .bind(by.1)
                .execute(&mut *self)
                .await?
                .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "update recall_step set status = 'cancelled', reason = $2, decided_at = $3 \
                     where recall_id = $1 and status = 'pending'",
                )
                .bind(id)
                .bind(reason.as_str())
                .bind(now)
                .execute(&mut *self)
                .await?;
                Ok(true)
            }
        }
    };
}

impl_recall_conn!(sqlx::SqliteConnection);
impl_recall_conn!(sqlx::PgConnection);
