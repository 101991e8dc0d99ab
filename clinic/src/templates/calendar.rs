//! The calendar part of the appointment mails (F73, RFC 5545/5546), made with the `icalendar`
//! crate: a calendar invite is a lifecycle, not an attachment.
//!
//! - One `UID` per appointment for its whole life: `appointment-<id>@<host>`.
//! - `SEQUENCE` from the caller, raised on every change (reschedule, cancel).
//! - `METHOD:REQUEST` for the invitation and every update; `METHOD:CANCEL` with
//!   `STATUS:CANCELLED` for the cancellation (same UID, higher SEQUENCE).
//! - `DTSTART`/`DTEND` in UTC (`…Z`): unambiguous in every client, no VTIMEZONE to get wrong.
//! - `ORGANIZER` (the organisation) and one `ATTENDEE` (the recipient: one mail per recipient);
//!   the recipient's own deep link in `URL`, `LOCATION` and `DESCRIPTION`.

use chrono::{DateTime, Duration, Utc};
use icalendar::{
    Attendee, Calendar, Component, Event, EventLike, EventStatus, PartStat, Property, Role,
};

use crate::ids::AppointmentId;
use crate::mail::CalendarMethod;

/// What goes into one appointment's calendar.
#[derive(Clone, Debug)]
pub struct CalendarEvent<'a> {
    /// The appointment (its UID for ever).
    pub appointment_id: AppointmentId,
    /// Domain of the UID (the public URL's host).
    pub domain: &'a str,
    /// Raised by the caller on every change.
    pub sequence: u32,
    /// `REQUEST` (invitation, update) or `CANCEL`.
    pub method: CalendarMethod,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// Length.
    pub duration: Duration,
    /// When this version was made (`DTSTAMP`), from the injected clock.
    pub now: DateTime<Utc>,
    /// `SUMMARY`.
    pub summary: &'a str,
    /// `DESCRIPTION` (plain text).
    pub description: &'a str,
    /// The recipient's deep link.
    pub link: &'a str,
    /// Organiser's name and address.
    pub organiser_name: &'a str,
    /// Organiser's address.
    pub organiser_email: &'a str,
    /// The recipient's name and address.
    pub attendee_name: &'a str,
    /// The recipient's address.
    pub attendee_email: &'a str,
}

/// The appointment's `UID`: the same for its whole life.
pub fn uid(appointment_id: AppointmentId, domain: &str) -> String {
    format!("appointment-{}@{}", appointment_id.0.simple(), domain)
}

/// A text value for iCalendar: no CR or other control characters (the crate escapes `\`, `,`,
/// `;` and LF).
fn text(value: &str) -> String {
    value
        .replace("\r\n", "\n")
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect()
}

/// A `CN` parameter value: one line, no double quotes (the crate quotes values with `:;,`).
fn common_name(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() || c == '"' { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The iCalendar text (CRLF line ends, folded).
pub fn build(e: &CalendarEvent<'_>) -> String {
    let mut event = Event::new();
    event
        .uid(&uid(e.appointment_id, e.domain))
        .sequence(e.sequence)
        .timestamp(e.now)
        .starts(e.starts_at)
        .ends(e.starts_at + e.duration)
        .summary(&text(e.summary))
        .description(&text(e.description))
        .location(&text(e.link))
        .url(e.link)
        .add_property("TRANSP", "OPAQUE");
    let mut organiser = Property::new("ORGANIZER", format!("mailto:{}", e.organiser_email));
    let cn = common_name(e.organiser_name);
    if !cn.is_empty() {
        organiser.add_parameter("CN", &cn);
    }
    event.append_property(organiser);
    let mut attendee = Attendee::new(format!("mailto:{}", e.attendee_email))
        .role(Role::ReqParticipant)
        .partstat(PartStat::NeedsAction)
        .rsvp(false);
    let cn = common_name(e.attendee_name);
    if !cn.is_empty() {
        attendee = attendee.cn(cn);
    }
    event.attendee(attendee);
    event.status(match e.method {
        CalendarMethod::Request => EventStatus::Confirmed,
        CalendarMethod::Cancel => EventStatus::Cancelled,
    });
    let mut calendar = Calendar::empty();
    calendar
        .append_property(("VERSION", "2.0"))
        .append_property(("PRODID", "-//Consultroom//Consultroom//EN"))
        .append_property(("CALSCALE", "GREGORIAN"))
        .append_property(("METHOD", e.method.as_str()))
        .push(event.done());
    calendar.done().to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn event(method: CalendarMethod, sequence: u32) -> String {
        let id: AppointmentId = "0190f0e0-0000-7000-8000-000000000001".parse().unwrap();
        build(&CalendarEvent {
            appointment_id: id,
            domain: "video.example.org",
            sequence,
            method,
            starts_at: Utc.with_ymd_and_hms(2026, 3, 30, 7, 0, 0).unwrap(),
            duration: Duration::minutes(15),
            now: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            summary: "Video appointment; Dr. A, Jansen",
            description: "Line 1\r\nLink: https://x.test/join#abc",
            link: "https://x.test/join#abc",
            organiser_name: "Clinic \"A\": Amsterdam",
            organiser_email: "info@clinic.test",
            attendee_name: "Jan\r\nde Vries",
            attendee_email: "jan@example.org",
        })
    }

    #[test]
    fn the_calendar_parses_back_with_one_uid_and_the_method() {
        let request = event(CalendarMethod::Request, 0);
        assert!(request.contains("\r\nMETHOD:REQUEST\r\n"), "{request}");
        assert!(!request.replace("\r\n", "").contains('\r'), "{request}");
        let parsed: Calendar = request.parse().expect("parses");
        assert_eq!(parsed.property_value("METHOD"), Some("REQUEST"));
        let ev = parsed.events().next().expect("an event");
        assert_eq!(
            ev.get_uid(),
            Some("appointment-0190f0e0000070008000000000000001@video.example.org")
        );
        assert_eq!(ev.get_sequence(), Some(0));
        assert_eq!(ev.get_summary(), Some("Video appointment; Dr. A, Jansen"));
        assert_eq!(
            ev.get_description(),
            Some("Line 1\nLink: https://x.test/join#abc")
        );
        assert_eq!(ev.get_url(), Some("https://x.test/join#abc"));
        assert_eq!(ev.property_value("DTSTART"), Some("20260330T070000Z"));
        assert_eq!(ev.property_value("DTEND"), Some("20260330T071500Z"));
        assert_eq!(ev.get_status(), Some(EventStatus::Confirmed));
        let attendees = ev.get_attendees();
        assert_eq!(attendees.len(), 1);

        let cancel = event(CalendarMethod::Cancel, 2);
        let parsed: Calendar = cancel.parse().expect("parses");
        assert_eq!(parsed.property_value("METHOD"), Some("CANCEL"));
        let cev = parsed.events().next().expect("an event");
        assert_eq!(cev.get_uid(), ev.get_uid());
        assert_eq!(cev.get_sequence(), Some(2));
        assert_eq!(cev.get_status(), Some(EventStatus::Cancelled));
    }
}
