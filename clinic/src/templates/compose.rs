//! From "what happened" to a finished [`OutgoingMail`]: the input structs the appointment and
//! staff code fill in (they depend on nothing of those modules), the template lookup and the
//! rendering with dates and times in the organisation's time zone and the recipient's language.
//!
//! The appointment and staff code call, inside their handlers:
//!
//! ```ignore
//! let mail = templates::appointment_mail(&clinic, &AppointmentMail { … }).await?;
//! let stamp = clinic.mail_stamp();
//! dispatch!(clinic.store(), pool => {
//!     let mut tx = pool.begin().await?;
//!     /* the change */
//!     crate::mail::enqueue(&mut *tx, &mail, &stamp).await?;
//!     tx.commit().await?;
//! });
//! clinic.wake_jobs();
//! ```

use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use chrono_tz::Tz;

use super::calendar::{self, CalendarEvent};
use super::model::{Language, Template, TemplateKind, Values, one_line};
use crate::Clinic;
use crate::error::ApiError;
use crate::ids::{AppointmentId, ClientId, DepartmentId, OrganisationId, StaffId};
use crate::mail::{CalendarMethod, CalendarPart, MailKind, OutgoingMail, Related};

/// Minutes before the start at which the waiting room (the link's window) opens.
pub const WAITING_ROOM_OPENS_MINUTES: i64 = 60;

/// Which appointment mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppointmentMailKind {
    /// Booked (F69): `METHOD:REQUEST`.
    Invitation,
    /// Rescheduled or changed: `METHOD:REQUEST` with a higher sequence.
    Update,
    /// Cancelled: `METHOD:CANCEL` with a higher sequence.
    Cancellation,
    /// Reminder (F70): no calendar part.
    Reminder,
}

impl AppointmentMailKind {
    /// The template kind.
    pub fn template_kind(self) -> TemplateKind {
        match self {
            AppointmentMailKind::Invitation => TemplateKind::AppointmentInvitation,
            AppointmentMailKind::Update => TemplateKind::AppointmentUpdate,
            AppointmentMailKind::Cancellation => TemplateKind::AppointmentCancellation,
            AppointmentMailKind::Reminder => TemplateKind::AppointmentReminder,
        }
    }

    fn calendar_method(self) -> Option<CalendarMethod> {
        match self {
            AppointmentMailKind::Invitation | AppointmentMailKind::Update => {
                Some(CalendarMethod::Request)
            }
            AppointmentMailKind::Cancellation => Some(CalendarMethod::Cancel),
            AppointmentMailKind::Reminder => None,
        }
    }
}

/// One appointment mail to one participant (each participant gets their own, with their own
/// link).
#[derive(Clone, Debug)]
pub struct AppointmentMail {
    /// Which mail.
    pub kind: AppointmentMailKind,
    /// Organisation.
    pub organisation_id: OrganisationId,
    /// Organisation's name.
    pub organisation_name: String,
    /// Contact details shown to patients (phone, e-mail; may be empty).
    pub organisation_contact: String,
    /// The calendar's `ORGANIZER` address; `None`: `noreply@<public host>`.
    pub organiser_email: Option<String>,
    /// The appointment's department (chooses the template set; sees the mail's failures).
    pub department_id: Option<DepartmentId>,
    /// Department's name (may be empty).
    pub department_name: String,
    /// Practitioner's name.
    pub practitioner_name: String,
    /// The client the mail is about, if any (a guest's mail still names the client).
    pub client_id: Option<ClientId>,
    /// Recipient's name.
    pub recipient_name: String,
    /// Recipient's address.
    pub recipient_email: String,
    /// Recipient's language.
    pub language: Language,
    /// Start, UTC.
    pub starts_at: DateTime<Utc>,
    /// The organisation's time zone (IANA name, e.g. `Europe/Amsterdam`).
    pub time_zone: String,
    /// Length in minutes.
    pub duration_minutes: u32,
    /// The personal message (F68; may be empty).
    pub personal_message: String,
    /// This recipient's own waiting-room deep link.
    pub link: String,
    /// The appointment.
    pub appointment_id: AppointmentId,
    /// The calendar `SEQUENCE`: 0 for the invitation, raised on every change.
    pub sequence: u32,
    /// Staff member whose action caused it.
    pub created_by: Option<StaffId>,
}

/// Which staff mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaffMailKind {
    /// Invitation with a set-password link (F15).
    Invitation,
    /// Password reset.
    PasswordReset,
}

impl StaffMailKind {
    /// The template kind.
    pub fn template_kind(self) -> TemplateKind {
        match self {
            StaffMailKind::Invitation => TemplateKind::StaffInvitation,
            StaffMailKind::PasswordReset => TemplateKind::PasswordReset,
        }
    }
}

/// A staff invitation or password reset.
#[derive(Clone, Debug)]
pub struct StaffMail {
    /// Which mail.
    pub kind: StaffMailKind,
    /// Organisation.
    pub organisation_id: OrganisationId,
    /// Organisation's name.
    pub organisation_name: String,
    /// The staff member's department (template set; who sees failures).
    pub department_id: Option<DepartmentId>,
    /// The staff member.
    pub staff_id: Option<StaffId>,
    /// Name.
    pub name: String,
    /// Address.
    pub email: String,
    /// Language.
    pub language: Language,
    /// The one-time link.
    pub link: String,
    /// When the link expires.
    pub expires_at: DateTime<Utc>,
    /// The organisation's time zone (IANA name).
    pub time_zone: String,
    /// Staff member whose action caused it (`None`: the CLI or "forgot password").
    pub created_by: Option<StaffId>,
}

/// What the composer needs from the server.
#[derive(Clone, Debug)]
pub struct ComposeContext {
    /// Now, from the injected clock (`DTSTAMP`).
    pub now: DateTime<Utc>,
    /// The public URL's host (calendar `UID`, default organiser address).
    pub domain: String,
}

impl ComposeContext {
    /// From the clinic's clock and public URL.
    pub fn of(clinic: &Clinic) -> Self {
        let stamp = clinic.mail_stamp();
        Self {
            now: stamp.now,
            domain: stamp.domain,
        }
    }
}

/// Why a mail could not be composed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// Not an IANA time zone name.
    #[error("unknown time zone")]
    UnknownTimeZone,
    /// The template lookup failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<ComposeError> for ApiError {
    fn from(e: ComposeError) -> Self {
        match e {
            ComposeError::UnknownTimeZone => ApiError::InvalidField {
                field: "time_zone",
                message: "not a known time zone (an IANA name such as Europe/Amsterdam)".to_owned(),
            },
            ComposeError::Database(e) => e.into(),
        }
    }
}

/// Looks up the template (the department's set, the organisation's default set, the built-in
/// text) and composes the appointment mail. Read-only: call it before the transaction that
/// changes the appointment and enqueues the mail.
pub async fn appointment_mail(
    clinic: &Clinic,
    mail: &AppointmentMail,
) -> Result<OutgoingMail, ComposeError> {
    let kind = mail.kind.template_kind();
    let template = clinic
        .store()
        .effective_template(
            mail.organisation_id,
            mail.department_id,
            kind,
            mail.language,
        )
        .await?;
    compose_appointment(mail, &template, &ComposeContext::of(clinic))
}

/// Looks up the template and composes the staff mail (see [`appointment_mail`]).
pub async fn staff_mail(clinic: &Clinic, mail: &StaffMail) -> Result<OutgoingMail, ComposeError> {
    let kind = mail.kind.template_kind();
    let template = clinic
        .store()
        .effective_template(
            mail.organisation_id,
            mail.department_id,
            kind,
            mail.language,
        )
        .await?;
    compose_staff(mail, &template, &ComposeContext::of(clinic))
}

fn time_zone(name: &str) -> Result<Tz, ComposeError> {
    Tz::from_str(name.trim()).map_err(|_| ComposeError::UnknownTimeZone)
}

/// The placeholder values of an appointment mail.
pub fn appointment_values(mail: &AppointmentMail) -> Result<Values, ComposeError> {
    let tz = time_zone(&mail.time_zone)?;
    let local = mail.starts_at.with_timezone(&tz);
    let opens = (mail.starts_at - Duration::minutes(WAITING_ROOM_OPENS_MINUTES)).with_timezone(&tz);
    let mut v = Values::default();
    v.set("LINK", mail.link.as_str());
    v.set("CLIENT_NAME", mail.recipient_name.as_str());
    v.set("PRACTITIONER", mail.practitioner_name.as_str());
    v.set("DEPARTMENT", mail.department_name.as_str());
    v.set("DATE", format_date(local.date_naive(), mail.language));
    v.set("TIME", local.format("%H:%M").to_string());
    v.set("OPENS_AT", opens.format("%H:%M").to_string());
    v.set("DURATION", mail.duration_minutes.to_string());
    v.set("TIME_ZONE", tz.name());
    v.set("MESSAGE", mail.personal_message.trim());
    v.set("ORGANISATION", mail.organisation_name.as_str());
    v.set("CONTACT", mail.organisation_contact.as_str());
    Ok(v)
}

/// Composes an appointment mail from `template` (pure: no database).
pub fn compose_appointment(
    mail: &AppointmentMail,
    template: &Template,
    ctx: &ComposeContext,
) -> Result<OutgoingMail, ComposeError> {
    let values = appointment_values(mail)?;
    let rendered = tidy(template.render(&values));
    let calendar = mail.kind.calendar_method().map(|method| {
        let organiser = mail
            .organiser_email
            .clone()
            .filter(|a| crate::mail::parse_address(a).is_ok())
            .unwrap_or_else(|| format!("noreply@{}", ctx.domain));
        let ics = calendar::build(&CalendarEvent {
            appointment_id: mail.appointment_id,
            domain: &ctx.domain,
            sequence: mail.sequence,
            method,
            starts_at: mail.starts_at,
            duration: Duration::minutes(i64::from(mail.duration_minutes)),
            now: ctx.now,
            summary: &calendar_summary(mail),
            description: &rendered.text_body,
            link: &mail.link,
            organiser_name: &mail.organisation_name,
            organiser_email: &organiser,
            attendee_name: &mail.recipient_name,
            attendee_email: mail.recipient_email.trim(),
        });
        CalendarPart { method, ics }
    });
    Ok(OutgoingMail {
        organisation_id: mail.organisation_id,
        kind: mail.kind.template_kind().mail_kind(),
        to_name: one_line(&mail.recipient_name),
        to_address: mail.recipient_email.trim().to_owned(),
        subject: rendered.subject,
        text_body: rendered.text_body,
        html_body: rendered.html_body,
        calendar,
        related: Related {
            department_id: mail.department_id,
            appointment_id: Some(mail.appointment_id),
            client_id: mail.client_id,
            staff_id: None,
        },
        created_by: mail.created_by,
    })
}

fn calendar_summary(mail: &AppointmentMail) -> String {
    let what = match mail.language {
        Language::En => "Video appointment",
        Language::Nl => "Video-afspraak",
        Language::De => "Videotermin",
    };
    let with = one_line(&mail.practitioner_name);
    if with.is_empty() {
        format!("{what} – {}", one_line(&mail.organisation_name))
    } else {
        format!("{what} – {with}")
    }
}

/// The placeholder values of a staff mail.
pub fn staff_values(mail: &StaffMail) -> Result<Values, ComposeError> {
    let tz = time_zone(&mail.time_zone)?;
    let expires = mail.expires_at.with_timezone(&tz);
    let mut v = Values::default();
    v.set("LINK", mail.link.as_str());
    v.set("NAME", mail.name.as_str());
    v.set(
        "EXPIRES",
        format!(
            "{}, {}{}",
            format_date(expires.date_naive(), mail.language),
            expires.format("%H:%M"),
            if mail.language == Language::De {
                " Uhr"
            } else {
                ""
            }
        ),
    );
    v.set("ORGANISATION", mail.organisation_name.as_str());
    Ok(v)
}

/// Composes a staff mail from `template` (pure: no database).
pub fn compose_staff(
    mail: &StaffMail,
    template: &Template,
    _ctx: &ComposeContext,
) -> Result<OutgoingMail, ComposeError> {
    let v = staff_values(mail)?;
    let rendered = tidy(template.render(&v));
    Ok(OutgoingMail {
        organisation_id: mail.organisation_id,
        kind: match mail.kind {
            StaffMailKind::Invitation => MailKind::StaffInvitation,
            StaffMailKind::PasswordReset => MailKind::PasswordReset,
        },
        to_name: one_line(&mail.name),
        to_address: mail.email.trim().to_owned(),
        subject: rendered.subject,
        text_body: rendered.text_body,
        html_body: rendered.html_body,
        calendar: None,
        related: Related {
            department_id: mail.department_id,
            staff_id: mail.staff_id,
            ..Related::default()
        },
        created_by: mail.created_by,
    })
}

/// Drops what an empty placeholder (e.g. no personal message) leaves behind: empty paragraphs
/// and runs of blank lines.
fn tidy(mut t: Template) -> Template {
    t.html_body = t.html_body.replace("<p></p>\n", "").replace("<p></p>", "");
    while t.text_body.contains("\n\n\n") {
        t.text_body = t.text_body.replace("\n\n\n", "\n\n");
    }
    t
}

/// A date written out for `language`: "Monday 30 March 2026", "maandag 30 maart 2026",
/// "Montag, 30. März 2026".
pub fn format_date(date: chrono::NaiveDate, language: Language) -> String {
    let m = date.month0() as usize;
    let d = date.day();
    let y = date.year();
    let w = date.weekday();
    match language {
        Language::En => format!("{} {d} {} {y}", weekday(w, EN_DAYS), EN_MONTHS[m]),
        Language::Nl => format!("{} {d} {} {y}", weekday(w, NL_DAYS), NL_MONTHS[m]),
        Language::De => format!("{}, {d}. {} {y}", weekday(w, DE_DAYS), DE_MONTHS[m]),
    }
}

fn weekday(w: Weekday, names: [&'static str; 7]) -> &'static str {
    names[w.num_days_from_monday() as usize]
}

const EN_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const NL_DAYS: [&str; 7] = [
    "maandag",
    "dinsdag",
    "woensdag",
    "donderdag",
    "vrijdag",
    "zaterdag",
    "zondag",
];
const DE_DAYS: [&str; 7] = [
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
    "Sonntag",
];
const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const NL_MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];
const DE_MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};
    use icalendar::{Calendar, Component};

    use super::*;
    use crate::templates::defaults::builtin;

    fn ctx() -> ComposeContext {
        ComposeContext {
            now: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            domain: "video.example.org".into(),
        }
    }

    fn appointment(kind: AppointmentMailKind, starts_at: DateTime<Utc>) -> AppointmentMail {
        AppointmentMail {
            kind,
            organisation_id: OrganisationId::new(),
            organisation_name: "Clinic A".into(),
            organisation_contact: "+31 20 123 4567".into(),
            organiser_email: Some("info@clinic-a.test".into()),
            department_id: None,
            department_name: "Cardiology".into(),
            practitioner_name: "Dr. Anna Jansen".into(),
            client_id: None,
            recipient_name: "Jan de Vries".into(),
            recipient_email: "jan@example.org".into(),
            language: Language::En,
            starts_at,
            time_zone: "Europe/Amsterdam".into(),
            duration_minutes: 15,
            personal_message: String::new(),
            link: "https://video.example.org/join#tok".into(),
            appointment_id: "0190f0e0-0000-7000-8000-000000000002".parse().unwrap(),
            sequence: 0,
            created_by: None,
        }
    }

    fn compose(mail: &AppointmentMail) -> OutgoingMail {
        let template = builtin(mail.kind.template_kind(), mail.language);
        let out = compose_appointment(mail, &template, &ctx()).unwrap();
        out.validate().unwrap();
        out
    }

    fn dtstart(out: &OutgoingMail) -> String {
        let cal: Calendar = out.calendar.as_ref().unwrap().ics.parse().unwrap();
        let ev = cal.events().next().unwrap();
        ev.property_value("DTSTART").unwrap().to_owned()
    }

    #[test]
    fn nine_o_clock_in_amsterdam_around_both_dst_changes() {
        // Spring forward: Sunday 29 March 2026; fall back: Sunday 25 October 2026.
        let tz: Tz = "Europe/Amsterdam".parse().unwrap();
        for (day, utc, lang, date_text) in [
            (
                NaiveDate::from_ymd_opt(2026, 3, 30).unwrap(),
                "20260330T070000Z",
                Language::En,
                "Monday 30 March 2026",
            ),
            (
                NaiveDate::from_ymd_opt(2026, 10, 26).unwrap(),
                "20261026T080000Z",
                Language::Nl,
                "maandag 26 oktober 2026",
            ),
            (
                NaiveDate::from_ymd_opt(2026, 3, 28).unwrap(),
                "20260328T080000Z",
                Language::De,
                "Samstag, 28. März 2026",
            ),
        ] {
            let local = tz
                .from_local_datetime(&day.and_hms_opt(9, 0, 0).unwrap())
                .single()
                .unwrap();
            let mut mail = appointment(AppointmentMailKind::Invitation, local.to_utc());
            mail.language = lang;
            let out = compose(&mail);
            assert_eq!(dtstart(&out), utc);
            for body in [&out.text_body, &out.html_body] {
                assert!(body.contains(date_text), "{body}");
                assert!(body.contains("09:00"), "{body}");
                // The waiting room opens an hour before, in local time.
                assert!(body.contains("08:00"), "{body}");
            }
            assert!(out.subject.contains("09:00"), "{}", out.subject);
        }
    }

    #[test]
    fn the_lifecycle_keeps_the_uid_and_raises_the_sequence() {
        let start = Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap();
        let invitation = compose(&appointment(AppointmentMailKind::Invitation, start));
        let mut update = appointment(AppointmentMailKind::Update, start + Duration::hours(2));
        update.sequence = 1;
        let update = compose(&update);
        let mut cancel = appointment(AppointmentMailKind::Cancellation, start);
        cancel.sequence = 2;
        let cancel = compose(&cancel);
        let reminder = compose(&appointment(AppointmentMailKind::Reminder, start));
        assert!(reminder.calendar.is_none());
        let parse = |m: &OutgoingMail| -> (String, String, u32, String) {
            let part = m.calendar.as_ref().unwrap();
            let cal: Calendar = part.ics.parse().unwrap();
            let ev = cal.events().next().unwrap();
            assert_eq!(cal.property_value("METHOD"), Some(part.method.as_str()));
            (
                cal.property_value("METHOD").unwrap().to_owned(),
                ev.get_uid().unwrap().to_owned(),
                ev.get_sequence().unwrap(),
                ev.property_value("STATUS").unwrap().to_owned(),
            )
        };
        let (m1, uid1, s1, st1) = parse(&invitation);
        let (m2, uid2, s2, _) = parse(&update);
        let (m3, uid3, s3, st3) = parse(&cancel);
        assert_eq!(
            (m1.as_str(), m2.as_str(), m3.as_str()),
            ("REQUEST", "REQUEST", "CANCEL")
        );
        assert_eq!(uid1, uid2);
        assert_eq!(uid1, uid3);
        assert!(s1 < s2 && s2 < s3);
        assert_eq!((st1.as_str(), st3.as_str()), ("CONFIRMED", "CANCELLED"));
        assert_eq!(invitation.kind, MailKind::AppointmentInvitation);
        assert_eq!(cancel.kind, MailKind::AppointmentCancellation);
        assert!(cancel.text_body.contains("cancelled"));
    }

    #[test]
    fn a_hostile_name_stays_text() {
        let start = Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap();
        let mut mail = appointment(AppointmentMailKind::Invitation, start);
        mail.recipient_name = "<script>alert(1)</script>\r\nBcc: spy@evil.test".into();
        mail.personal_message = "Bring <b>this</b>\nand that".into();
        let out = compose(&mail);
        assert!(!out.html_body.contains("<script>"), "{}", out.html_body);
        assert!(out.html_body.contains("&lt;script&gt;"));
        assert!(out.html_body.contains("Bring &lt;b&gt;this&lt;/b&gt;<br>"));
        assert!(!out.to_name.contains(['\r', '\n']));
        let ics = &out.calendar.unwrap().ics;
        assert!(!ics.contains("\nBcc"), "{ics}");
        let _: Calendar = ics.parse().unwrap();
    }

    #[test]
    fn no_personal_message_leaves_no_gap_and_a_message_is_shown() {
        let start = Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap();
        let out = compose(&appointment(AppointmentMailKind::Invitation, start));
        assert!(!out.text_body.contains("\n\n\n"));
        assert!(!out.html_body.contains("<p></p>"));
        assert!(!out.text_body.contains("*|"), "{}", out.text_body);
        let mut mail = appointment(AppointmentMailKind::Invitation, start);
        mail.personal_message = "Please fast from midnight.".into();
        assert!(
            compose(&mail)
                .text_body
                .contains("Please fast from midnight.")
        );
    }

    #[test]
    fn an_unknown_time_zone_is_refused() {
        let start = Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap();
        let mut mail = appointment(AppointmentMailKind::Invitation, start);
        mail.time_zone = "Mars/Olympus".into();
        let template = builtin(TemplateKind::AppointmentInvitation, Language::En);
        assert!(matches!(
            compose_appointment(&mail, &template, &ctx()),
            Err(ComposeError::UnknownTimeZone)
        ));
    }

    #[test]
    fn staff_mails_show_the_expiry_in_local_time() {
        let mail = StaffMail {
            kind: StaffMailKind::Invitation,
            organisation_id: OrganisationId::new(),
            organisation_name: "Clinic A".into(),
            department_id: None,
            staff_id: None,
            name: "Anna".into(),
            email: "anna@clinic-a.test".into(),
            language: Language::De,
            link: "https://video.example.org/set-password#x".into(),
            expires_at: Utc.with_ymd_and_hms(2026, 10, 26, 8, 0, 0).unwrap(),
            time_zone: "Europe/Berlin".into(),
            created_by: None,
        };
        let out = compose_staff(
            &mail,
            &builtin(TemplateKind::StaffInvitation, Language::De),
            &ctx(),
        )
        .unwrap();
        out.validate().unwrap();
        assert!(
            out.text_body
                .contains("Montag, 26. Oktober 2026, 09:00 Uhr"),
            "{}",
            out.text_body
        );
        assert!(
            out.text_body
                .contains("https://video.example.org/set-password#x")
        );
        assert!(out.calendar.is_none());
        assert_eq!(out.kind, MailKind::StaffInvitation);
    }
}
