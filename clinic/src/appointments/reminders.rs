//! Appointment reminders (F70): a job per (appointment, sequence, channel) — unique key
//! `appointment:<id>:reminder:email:<sequence>` — written in the booking's or reschedule's
//! transaction, due at the organisation's reminder time ([`reminder_at`]). A reschedule deletes
//! the pending one and writes the new time's; a cancellation deletes it.
//!
//! When the job runs ([`ReminderSender`]) it composes the reminder for the appointment as it is
//! then, and records the mails **and** its own completion in one transaction, so a reminder is
//! recorded exactly once even if the worker dies around it (the outbox's send job then has its
//! own, documented, crash window). A job whose appointment is no longer scheduled, or was
//! changed since (another sequence), or whose organisation turned reminders off, ends without
//! a mail.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, LocalResult, TimeZone, Utc};
use futures_util::future::BoxFuture;

use super::db::AppointmentStatus;
use super::links::client_link;
use super::mail::{Occasion, compose, guests_of};
use crate::Clinic;
use crate::error::ApiError;
use crate::ids::AppointmentId;
use crate::jobs::worker::{JobHandler, JobOutcome};
use crate::jobs::{ClaimedJob, NewJob, QueueConn};
use crate::mail::{MailStamp, OutgoingMail};
use crate::org_settings::OrganisationSettings;
use crate::store::{Store, dispatch};
use crate::templates::AppointmentMailKind;

/// Job kind of an appointment reminder (payload `{"appointment_id", "sequence"}`).
pub const REMINDER_JOB: &str = "appointment.reminder";
/// Attempts of a reminder job (composing reads the database only).
const REMINDER_ATTEMPTS: u32 = 5;
/// A reminder goes at least this long before the start…
const MIN_LEAD_MINUTES: i64 = 30;
/// …else this long before it.
const FALLBACK_LEAD_HOURS: i64 = 2;

/// When the reminder of an appointment starting at `starts_at` is due under `settings`, or
/// `None`: reminders off, or the time has passed (a booking made after it: the invitation has
/// just gone out). The local time is `reminder_days_before` days before the start's local date
/// at `reminder_time`; a time the clocks skip moves to the end of the gap, a repeated time is
/// its earlier instant; a time less than 30 minutes before the start becomes 2 hours before it.
pub(crate) fn reminder_at(
    settings: &OrganisationSettings,
    starts_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !settings.appointment_reminders {
        return None;
    }
    let tz = settings.tz();
    let day = starts_at.with_timezone(&tz).date_naive()
        - Duration::days(i64::from(settings.reminder_days_before));
    let mut local = day.and_time(settings.reminder_time_of_day()?);
    let mut at = None;
    for _ in 0..(24 * 60) {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                at = Some(t.with_timezone(&Utc));
                break;
            }
            LocalResult::None => local += Duration::minutes(1),
        }
    }
    let mut at = at?;
    if at > starts_at - Duration::minutes(MIN_LEAD_MINUTES) {
        at = starts_at - Duration::hours(FALLBACK_LEAD_HOURS);
    }
    (at > now).then_some(at)
}

/// The reminder job of appointment `id` at `sequence`, due at `run_at`.
pub(crate) fn reminder_job(id: AppointmentId, sequence: i32, run_at: DateTime<Utc>) -> NewJob {
    NewJob {
        kind: REMINDER_JOB,
        payload: serde_json::json!({ "appointment_id": id, "sequence": sequence }),
        run_at,
        max_attempts: REMINDER_ATTEMPTS,
        unique_key: Some(format!(
            "{}email:{sequence}",
            super::db::reminder_key_prefix(id)
        )),
    }
}

impl Store {
    /// Records a reminder's mails and completes its job in one transaction; false (nothing
    /// written) when the job's lease was lost meanwhile. The mails are recorded only if the
    /// appointment is still scheduled at `sequence` *inside* the transaction (a guarded no-op
    /// update, which on PostgreSQL also locks the row: a cancel or reschedule racing with the
    /// reminder either comes first, and no reminder goes, or waits and follows it).
    async fn record_reminder(
        &self,
        job: &ClaimedJob,
        appointment: (AppointmentId, i32),
        mails: &[OutgoingMail],
        stamp: &MailStamp,
    ) -> Result<bool, crate::mail::MailError> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            if !tx.complete_claimed(job, stamp.now).await? {
                return Ok(false);
            }
            let still = sqlx::query(
                "update appointment set updated_at = updated_at \
                 where appointment_id = $1 and status = 'scheduled' and sequence = $2",
            )
            .bind(appointment.0)
            .bind(appointment.1)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if still > 0 {
                for m in mails {
                    crate::mail::enqueue(&mut *tx, m, stamp).await?;
                }
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}

/// Runs reminder jobs (the handler of [`REMINDER_JOB`]).
pub struct ReminderSender {
    clinic: Clinic,
}

impl ReminderSender {
    /// The handler table entry for the job worker.
    pub fn handlers(clinic: &Clinic) -> HashMap<&'static str, Arc<dyn JobHandler>> {
        let mut map: HashMap<&'static str, Arc<dyn JobHandler>> = HashMap::new();
        map.insert(
            REMINDER_JOB,
            Arc::new(ReminderSender {
                clinic: clinic.clone(),
            }),
        );
        map
    }

    async fn remind(&self, job: ClaimedJob) -> JobOutcome {
        let clinic = &self.clinic;
        let id: Option<AppointmentId> = job
            .payload
            .get("appointment_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok());
        let sequence = job.payload.get("sequence").and_then(|v| v.as_i64());
        let (Some(id), Some(sequence)) = (id, sequence) else {
            return JobOutcome::Fail("payload without appointment_id and sequence".to_owned());
        };
        let appointment = match clinic.store().appointment_by_id(id).await {
            Ok(Some(row)) => match row.into_appointment() {
                Ok(a) => a,
                Err(e) => return JobOutcome::Fail(format!("reading the appointment: {e}")),
            },
            // Deleted with its organisation.
            Ok(None) => return JobOutcome::Done,
            Err(e) => return JobOutcome::Retry(format!("reading the appointment: {e}")),
        };
        if appointment.status != AppointmentStatus::Scheduled
            || i64::from(appointment.sequence) != sequence
        {
            return JobOutcome::Done;
        }
        match clinic
            .organisation_settings(appointment.organisation_id)
            .await
        {
            Ok(s) if !s.appointment_reminders => return JobOutcome::Done,
            Ok(_) => {}
            Err(e) => return JobOutcome::Retry(format!("reading the settings: {e}")),
        }
        let composed = async {
            let link = client_link(clinic, id).await?;
            let guests = guests_of(clinic, id).await?;
            let occasion = Occasion {
                kind: AppointmentMailKind::Reminder,
                appointment_id: id,
                organisation_id: appointment.organisation_id,
                department_id: appointment.department_id,
                practitioner_name: &appointment.practitioner.name,
                client_id: appointment.client.id,
                starts_at: appointment.starts_at,
                duration_minutes: appointment.duration_minutes,
                personal_message: &appointment.personal_message,
                sequence: appointment.sequence,
                created_by: None,
                new_client: None,
            };
            compose(clinic, &occasion, link, &guests).await
        }
        .await;
        let mails = match composed {
            Ok(m) => m,
            // An address that cannot be used: retrying will not help (the client's record must
            // be corrected); the failed job shows why.
            Err(ApiError::InvalidField { message, .. }) => return JobOutcome::Fail(message),
            Err(e) => return JobOutcome::Retry(format!("composing the reminder: {e}")),
        };
        match clinic
            .store()
            .record_reminder(
                &job,
                (id, appointment.sequence),
                &mails,
                &clinic.mail_stamp().following(job.due),
            )
            .await
        {
            Ok(true) => {
                tracing::info!(appointment_id = %id, mails = mails.len(), "appointment reminder recorded");
                clinic.wake_jobs();
                JobOutcome::Recorded
            }
            Ok(false) => {
                tracing::warn!(appointment_id = %id, "a reminder job's lease was lost; its new owner sends it");
                JobOutcome::Recorded
            }
            Err(e) => JobOutcome::Retry(format!("recording the reminder: {e}")),
        }
    }
}

impl JobHandler for ReminderSender {
    fn run(&self, job: ClaimedJob) -> BoxFuture<'_, JobOutcome> {
        Box::pin(self.remind(job))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(tz: &str, days: u32, time: &str) -> OrganisationSettings {
        OrganisationSettings {
            time_zone: tz.to_owned(),
            reminder_days_before: days,
            reminder_time: time.to_owned(),
            ..OrganisationSettings::default()
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn on_the_day_at_eight_local() {
        let s = settings("Europe/Amsterdam", 0, "08:00");
        // 14:00 in Amsterdam (summer time, UTC+2) → 08:00 local = 06:00 UTC.
        assert_eq!(
            reminder_at(&s, utc("2030-06-12T12:00:00Z"), utc("2030-06-01T00:00:00Z")),
            Some(utc("2030-06-12T06:00:00Z"))
        );
        // Winter time (UTC+1).
        assert_eq!(
            reminder_at(&s, utc("2030-01-15T12:00:00Z"), utc("2030-01-01T00:00:00Z")),
            Some(utc("2030-01-15T07:00:00Z"))
        );
    }

    #[test]
    fn the_day_before_across_the_spring_change() {
        // Clocks go forward on Sunday 2030-03-31 in Amsterdam: a Monday 09:00 appointment
        // (07:00 UTC) is reminded on Sunday at 18:00 summer time = 16:00 UTC.
        let s = settings("Europe/Amsterdam", 1, "18:00");
        assert_eq!(
            reminder_at(&s, utc("2030-04-01T07:00:00Z"), utc("2030-03-01T00:00:00Z")),
            Some(utc("2030-03-31T16:00:00Z"))
        );
        // A reminder time inside the gap (02:30 that Sunday) moves to its end, 03:00 CEST.
        let s = settings("Europe/Amsterdam", 0, "02:30");
        assert_eq!(
            reminder_at(&s, utc("2030-03-31T10:00:00Z"), utc("2030-03-01T00:00:00Z")),
            Some(utc("2030-03-31T01:00:00Z"))
        );
    }

    #[test]
    fn too_close_to_the_start_goes_two_hours_before_and_past_times_none() {
        let s = settings("UTC", 0, "08:00");
        // An 08:15 appointment: 08:00 is within 30 minutes, so 06:15.
        assert_eq!(
            reminder_at(&s, utc("2030-06-12T08:15:00Z"), utc("2030-06-01T00:00:00Z")),
            Some(utc("2030-06-12T06:15:00Z"))
        );
        // Booked at 09:00 for 15:00 the same day: 08:00 has passed — no reminder.
        assert_eq!(
            reminder_at(&s, utc("2030-06-12T15:00:00Z"), utc("2030-06-12T09:00:00Z")),
            None
        );
        let off = OrganisationSettings {
            appointment_reminders: false,
            ..s
        };
        assert_eq!(
            reminder_at(
                &off,
                utc("2030-06-12T15:00:00Z"),
                utc("2030-06-01T00:00:00Z")
            ),
            None
        );
    }

    #[test]
    fn the_job_key_names_appointment_channel_and_sequence() {
        let id = AppointmentId::new();
        let job = reminder_job(id, 3, utc("2030-06-12T06:00:00Z"));
        assert_eq!(
            job.unique_key.as_deref(),
            Some(format!("appointment:{id}:reminder:email:3").as_str())
        );
        assert_eq!(job.kind, REMINDER_JOB);
    }
}
