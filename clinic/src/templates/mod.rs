//! E-mail templates (F169–F172) and the calendar lifecycle (F73): turns "this appointment was
//! booked / rescheduled / cancelled / is due for a reminder" and "this staff member was invited /
//! asked for a password reset" into a finished [`OutgoingMail`](crate::mail::OutgoingMail).
//!
//! - [`compose`]: the plain input structs ([`AppointmentMail`], [`StaffMail`]) and the functions
//!   the appointment and staff code call ([`appointment_mail`], [`staff_mail`]; pure variants
//!   [`compose_appointment`], [`compose_staff`] take the template themselves).
//! - [`defaults`]: the built-in texts in English, Dutch and German.
//! - [`calendar`]: the iCalendar part (one `UID` per appointment, `SEQUENCE` from the caller,
//!   `METHOD:REQUEST` / `METHOD:CANCEL`, UTC times).
//! - [`db`], [`http`]: named template sets per organisation, assigned to departments.
//!
//! Placeholders are written `*|CODE|*`. Values put into HTML are escaped; values put into the
//! subject are flattened to one line; a template with an unknown placeholder is refused on save
//! with its name. Which template is used: the set assigned to the mail's department, else the
//! organisation's default set, else the built-in text — per (kind, language).

pub mod calendar;
pub mod compose;
pub mod db;
pub mod defaults;
pub mod http;
pub mod model;

pub use compose::{
    AppointmentMail, AppointmentMailKind, ComposeContext, ComposeError, StaffMail, StaffMailKind,
    appointment_mail, compose_appointment, compose_staff, staff_mail,
};
pub use model::{
    APPOINTMENT_PLACEHOLDERS, Language, MAX_SUBJECT_CHARS, MAX_TEMPLATE_BYTES, Placeholder,
    STAFF_PLACEHOLDERS, Template, TemplateError, TemplateKind, Values, escape_html, one_line,
};
