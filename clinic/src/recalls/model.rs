//! What a recall rule, a recall and a sending step are, their states and reasons, and the one
//! decision every sending makes: send, or suppress with a reason ([`suppression`]) — shared by
//! the send job and the forward preview, so the preview says what the job will do.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::plan::{Colour, Interval, IntervalUnit};
use super::text::RecallText;
use crate::ids::{
    ClientId, DepartmentId, MailId, PatientId, RecallId, RecallRuleId, RecallStepId, ServiceId,
    StaffId,
};

/// Job kind of a recall sending (payload `{"client_id", "send_at"}`: every pending step of that
/// client at that instant, bundled into one mail).
pub const SEND_JOB: &str = "recall.send";
/// Attempts of a send job (composing reads the database only).
pub const SEND_ATTEMPTS: u32 = 5;
/// A scheduled appointment of the client starting between now and this many days after the
/// due date counts as "already booked".
pub const BOOKED_GRACE_DAYS: i64 = 30;

/// The unique key of the send job of `client` at `send_at_ms`: at most one job, hence one
/// bundled mail, per client and sending instant.
pub fn send_job_key(client: ClientId, send_at_ms: i64) -> String {
    format!("recall:client:{client}:at:{send_at_ms}")
}

/// A channel a recall is sent on (`sms` later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// E-mail through the outbox.
    Email,
}

impl Channel {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
        }
    }
}

/// A rule as stored and shown.
#[derive(Clone, Debug, Serialize)]
pub struct Rule {
    /// Id.
    pub id: RecallRuleId,
    /// Name shown to staff.
    pub name: String,
    /// `None`: the whole organisation's; else that department's clients only.
    pub department_id: Option<DepartmentId>,
    /// Recording this service makes the next recall.
    pub service_id: ServiceId,
    /// The service that falls due (the same, or a follow-up).
    pub due_service_id: ServiceId,
    /// How long after the service.
    pub interval: Interval,
    /// Sending days relative to the due date, ascending.
    pub schedule: Vec<i32>,
    /// Channels (empty for an internal rule).
    pub channels: Vec<Channel>,
    /// A task for staff: no message to the client.
    pub internal: bool,
    /// Own text; `None`: the built-in reminder text.
    pub template: Option<RecallText>,
    /// Whether recording the service makes recalls.
    pub active: bool,
    /// When it was made and last changed.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct RuleRow {
    pub(crate) recall_rule_id: RecallRuleId,
    pub(crate) name: String,
    pub(crate) department_id: Option<DepartmentId>,
    pub(crate) trigger_service_id: ServiceId,
    pub(crate) due_service_id: ServiceId,
    pub(crate) interval_count: i32,
    pub(crate) interval_unit: String,
    pub(crate) offsets: String,
    pub(crate) channels: String,
    pub(crate) internal: bool,
    pub(crate) subject: Option<String>,
    pub(crate) body: Option<String>,
    pub(crate) active: bool,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

impl RuleRow {
    pub(crate) fn into_rule(self) -> Rule {
        Rule {
            id: self.recall_rule_id,
            name: self.name,
            department_id: self.department_id,
            service_id: self.trigger_service_id,
            due_service_id: self.due_service_id,
            interval: Interval {
                count: i64::from(self.interval_count),
                unit: IntervalUnit::parse(&self.interval_unit).unwrap_or(IntervalUnit::Days),
            },
            schedule: serde_json::from_str(&self.offsets).unwrap_or_default(),
            channels: serde_json::from_str(&self.channels).unwrap_or_default(),
            internal: self.internal,
            template: match (self.subject, self.body) {
                (Some(subject), Some(body)) => Some(RecallText { subject, body }),
                _ => None,
            },
            active: self.active,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Why a recall closed, or a step was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The service was recorded (recall completed; a step: done since the recall was made).
    ServiceDone,
    /// The patient's death was recorded.
    PatientDeceased,
    /// The client opted out of care reminders.
    ClientOptedOut,
    /// The client has a scheduled appointment before the due date (+ grace).
    AppointmentBooked,
    /// The client has no e-mail address.
    NoEmailAddress,
    /// A later record of the trigger service planned a newer recall.
    Superseded,
    /// The rule's schedule changed before this step was due.
    ScheduleChanged,
    /// Closed by staff.
    ClosedByStaff,
}

impl Reason {
    /// Stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ServiceDone => "service_done",
            Reason::PatientDeceased => "patient_deceased",
            Reason::ClientOptedOut => "client_opted_out",
            Reason::AppointmentBooked => "appointment_booked",
            Reason::NoEmailAddress => "no_email_address",
            Reason::Superseded => "superseded",
            Reason::ScheduleChanged => "schedule_changed",
            Reason::ClosedByStaff => "closed_by_staff",
        }
    }
}

/// What the send job knows about one pending step when it decides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The recall is still open.
    pub open: bool,
    /// The patient's death is recorded.
    pub deceased: bool,
    /// The client opted out.
    pub opted_out: bool,
    /// The service was recorded on the patient after the recall was made.
    pub done_since: bool,
    /// The client has a scheduled appointment between now and due date + grace.
    pub booked: bool,
    /// The client has an e-mail address (for the e-mail channel).
    pub has_address: bool,
}

/// Send (`None`), or why not. The order is the order of the checks: a closed recall, a death,
/// the service done, the client's wish, an appointment, then the address.
pub fn suppression(f: &Facts) -> Option<Reason> {
    if f.deceased {
        Some(Reason::PatientDeceased)
    } else if f.done_since || !f.open {
        Some(Reason::ServiceDone)
    } else if f.opted_out {
        Some(Reason::ClientOptedOut)
    } else if f.booked {
        Some(Reason::AppointmentBooked)
    } else if !f.has_address {
        Some(Reason::NoEmailAddress)
    } else {
        None
    }
}

/// One sending of a recall, as the views show it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Step {
    /// Id.
    #[sqlx(rename = "recall_step_id")]
    pub id: RecallStepId,
    #[serde(skip)]
    pub(crate) recall_id: RecallId,
    /// Days relative to the due date (a rule's step).
    pub offset_days: Option<i32>,
    /// When it goes (ms since the epoch; the JSON has the instant).
    #[serde(skip)]
    pub(crate) send_at: i64,
    /// `email`.
    pub channel: String,
    /// `pending`, `sent`, `suppressed` or `cancelled`.
    pub status: String,
    /// Why it was suppressed or cancelled.
    pub reason: Option<String>,
    /// The mail, once sent.
    pub mail_id: Option<MailId>,
    /// When it was sent, suppressed or cancelled.
    pub decided_at: Option<DateTime<Utc>>,
}

/// A recall as the views show it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Recall {
    /// Id.
    #[sqlx(rename = "recall_id")]
    pub id: RecallId,
    /// Client.
    pub client_id: ClientId,
    /// Client's name.
    pub client_name: String,
    /// Patient (the client's own patient for client-level recalls).
    pub patient_id: PatientId,
    /// Patient's name.
    pub patient_name: String,
    /// The service due, if any.
    pub service_id: Option<ServiceId>,
    /// Its name.
    pub service_name: Option<String>,
    /// The rule that made it.
    pub rule_id: Option<RecallRuleId>,
    /// Its name.
    pub rule_name: Option<String>,
    /// `rule` or `manual`.
    pub origin: String,
    /// A task for staff (no message).
    pub internal: bool,
    /// A manual recall's title.
    pub title: Option<String>,
    /// A manual recall's own text.
    #[sqlx(skip)]
    pub text: Option<RecallText>,
    #[serde(skip)]
    pub(crate) subject: Option<String>,
    #[serde(skip)]
    pub(crate) body: Option<String>,
    /// The date the service falls due.
    pub due_on: NaiveDate,
    /// Its colour today (F200).
    #[sqlx(skip)]
    pub colour: Option<Colour>,
    /// The service date it was planned from.
    pub basis_on: Option<NaiveDate>,
    /// `open`, `completed` or `cancelled`.
    pub status: String,
    /// Why it closed.
    pub closed_reason: Option<String>,
    /// When.
    pub closed_at: Option<DateTime<Utc>>,
    /// The client's department (views filter by it).
    pub department_id: Option<DepartmentId>,
    /// The client's practitioner.
    pub practitioner_id: Option<StaffId>,
    /// Made by.
    pub created_by: Option<StaffId>,
    /// Made at.
    pub created_at: DateTime<Utc>,
    /// Its sendings.
    #[sqlx(skip)]
    pub steps: Vec<StepView>,
}

impl Recall {
    /// Sets the colour for local day `today` and moves a manual text into `text`.
    pub fn for_day(mut self, today: NaiveDate) -> Self {
        self.colour = Some(super::plan::colour(self.due_on, today));
        if let (Some(subject), Some(body)) = (self.subject.take(), self.body.take()) {
            self.text = Some(RecallText { subject, body });
        }
        self
    }
}

/// A step with its instant, for JSON.
#[derive(Clone, Debug, Serialize)]
pub struct StepView {
    /// The step.
    #[serde(flatten)]
    pub step: Step,
    /// When it goes.
    pub send_at: DateTime<Utc>,
}

impl From<Step> for StepView {
    fn from(step: Step) -> Self {
        let send_at = DateTime::from_timestamp_millis(step.send_at).unwrap_or_default();
        StepView { step, send_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppression_reasons_in_order() {
        let ok = Facts {
            open: true,
            has_address: true,
            ..Facts::default()
        };
        assert_eq!(suppression(&ok), None);
        let table = [
            (
                Facts {
                    deceased: true,
                    opted_out: true,
                    ..ok.clone()
                },
                Reason::PatientDeceased,
            ),
            (
                Facts {
                    done_since: true,
                    booked: true,
                    ..ok.clone()
                },
                Reason::ServiceDone,
            ),
            (
                Facts {
                    open: false,
                    ..ok.clone()
                },
                Reason::ServiceDone,
            ),
            (
                Facts {
                    opted_out: true,
                    booked: true,
                    ..ok.clone()
                },
                Reason::ClientOptedOut,
            ),
            (
                Facts {
                    booked: true,
                    has_address: false,
                    ..ok.clone()
                },
                Reason::AppointmentBooked,
            ),
            (
                Facts {
                    has_address: false,
                    ..ok.clone()
                },
                Reason::NoEmailAddress,
            ),
        ];
        for (facts, reason) in table {
            assert_eq!(suppression(&facts), Some(reason), "{facts:?}");
        }
    }

    #[test]
    fn job_keys_name_client_and_instant() {
        let c = ClientId::new();
        assert_eq!(send_job_key(c, 42), format!("recall:client:{c}:at:42"));
    }
}
