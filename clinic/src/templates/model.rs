//! The templates' model: kinds, languages, placeholders, a template and its rendering.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest template subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Largest template HTML or text body, in bytes (the request body limit is 64 KiB).
pub const MAX_TEMPLATE_BYTES: usize = 24 * 1024;

/// Language of a mail (the recipient's) and of a client (whose mails are written in it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English (the default).
    #[default]
    En,
    /// Dutch.
    Nl,
    /// German.
    De,
}

impl Language {
    /// All, in display order.
    pub const ALL: [Language; 3] = [Language::En, Language::Nl, Language::De];

    /// Stored and serialised code.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Nl => "nl",
            Language::De => "de",
        }
    }
}

impl TryFrom<String> for Language {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map_err(|()| format!("unknown language {s:?}"))
    }
}

impl FromStr for Language {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "en" => Ok(Language::En),
            "nl" => Ok(Language::Nl),
            "de" => Ok(Language::De),
            _ => Err(()),
        }
    }
}

/// Which mail a template is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// A new appointment (F69, F169 "confirmation").
    AppointmentInvitation,
    /// A rescheduled appointment.
    AppointmentUpdate,
    /// A cancelled appointment.
    AppointmentCancellation,
    /// The reminder (F70, F169).
    AppointmentReminder,
    /// A staff member's invitation with a set-password link (F15).
    StaffInvitation,
    /// A password-reset link.
    PasswordReset,
}

impl TemplateKind {
    /// All, in display order.
    pub const ALL: [TemplateKind; 6] = [
        TemplateKind::AppointmentInvitation,
        TemplateKind::AppointmentUpdate,
        TemplateKind::AppointmentCancellation,
        TemplateKind::AppointmentReminder,
        TemplateKind::StaffInvitation,
        TemplateKind::PasswordReset,
    ];

    /// Stored and serialised name (the same as the outbox's [`MailKind`](crate::mail::MailKind)).
    pub fn as_str(self) -> &'static str {
        self.mail_kind().as_str()
    }

    /// The outbox's kind of a mail made from this template.
    pub fn mail_kind(self) -> crate::mail::MailKind {
        use crate::mail::MailKind as M;
        match self {
            TemplateKind::AppointmentInvitation => M::AppointmentInvitation,
            TemplateKind::AppointmentUpdate => M::AppointmentUpdate,
            TemplateKind::AppointmentCancellation => M::AppointmentCancellation,
            TemplateKind::AppointmentReminder => M::AppointmentReminder,
            TemplateKind::StaffInvitation => M::StaffInvitation,
            TemplateKind::PasswordReset => M::PasswordReset,
        }
    }

    /// Whether it is about an appointment (else about a staff account).
    pub fn is_appointment(self) -> bool {
        !matches!(
            self,
            TemplateKind::StaffInvitation | TemplateKind::PasswordReset
        )
    }

    /// The placeholders a template of this kind may use.
    pub fn placeholders(self) -> &'static [Placeholder] {
        if self.is_appointment() {
            APPOINTMENT_PLACEHOLDERS
        } else {
            STAFF_PLACEHOLDERS
        }
    }
}

impl FromStr for TemplateKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        TemplateKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(())
    }
}

/// A `*|CODE|*` placeholder.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Placeholder {
    /// The code between `*|` and `|*`.
    pub code: &'static str,
    /// What it is replaced with.
    pub description: &'static str,
    /// An example value (the preview's sample data).
    pub example: &'static str,
}

const fn p(code: &'static str, description: &'static str, example: &'static str) -> Placeholder {
    Placeholder {
        code,
        description,
        example,
    }
}

/// Placeholders of the appointment mails.
pub const APPOINTMENT_PLACEHOLDERS: &[Placeholder] = &[
    p(
        "LINK",
        "the recipient's own link to the waiting room",
        "https://video.example.org/join#…",
    ),
    p("CLIENT_NAME", "the recipient's name", "Jan de Vries"),
    p("PRACTITIONER", "the practitioner's name", "Dr. Anna Jansen"),
    p("DEPARTMENT", "the department's name", "Cardiology"),
    p(
        "DATE",
        "the date, in the recipient's language",
        "Monday 30 March 2026",
    ),
    p("TIME", "the start time (organisation's time zone)", "09:00"),
    p(
        "OPENS_AT",
        "when the waiting room opens (60 minutes before)",
        "08:00",
    ),
    p("DURATION", "the length in minutes", "15"),
    p(
        "TIME_ZONE",
        "the organisation's time zone",
        "Europe/Amsterdam",
    ),
    p(
        "MESSAGE",
        "the personal message (may be empty)",
        "Please have your medication list at hand.",
    ),
    p("ORGANISATION", "the organisation's name", "Clinic A"),
    p(
        "CONTACT",
        "the organisation's contact details",
        "+31 20 123 4567",
    ),
];

/// Placeholders of the staff mails.
pub const STAFF_PLACEHOLDERS: &[Placeholder] = &[
    p(
        "LINK",
        "the set-password link",
        "https://video.example.org/set-password#…",
    ),
    p("NAME", "the staff member's name", "Dr. Anna Jansen"),
    p(
        "EXPIRES",
        "when the link expires (date and time)",
        "Tuesday 31 March 2026, 09:00",
    ),
    p("ORGANISATION", "the organisation's name", "Clinic A"),
];

/// Subject, HTML and text of one mail, with placeholders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// Subject (one line).
    pub subject: String,
    /// HTML body.
    pub html_body: String,
    /// Plain-text body.
    pub text_body: String,
}

/// Why a template was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A placeholder this kind of mail does not know.
    #[error("unknown placeholder *|{code}|* in the {field}")]
    UnknownPlaceholder {
        /// Which part (`subject`, `html_body`, `text_body`).
        field: &'static str,
        /// The code as written.
        code: String,
    },
    /// An empty subject or body.
    #[error("the {field} is empty")]
    Empty {
        /// Which part.
        field: &'static str,
    },
    /// Too long.
    #[error("the {field} is too long")]
    TooLong {
        /// Which part.
        field: &'static str,
    },
    /// A line break or control character in the subject.
    #[error("the subject must be one line")]
    MultiLineSubject,
}

impl From<TemplateError> for crate::ApiError {
    fn from(e: TemplateError) -> Self {
        let field = match &e {
            TemplateError::UnknownPlaceholder { field, .. }
            | TemplateError::Empty { field }
            | TemplateError::TooLong { field } => field,
            TemplateError::MultiLineSubject => "subject",
        };
        crate::ApiError::InvalidField {
            field,
            message: e.to_string(),
        }
    }
}

/// A piece of a template: literal text or a placeholder code.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Code(&'a str),
}

/// Splits `template` into text and `*|CODE|*` placeholders. A `*|` without a closing `|*` on
/// the same line is text.
fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("*|") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("|*") else { break };
        let code = &after[..end];
        if code.contains(['\n', '\r']) {
            out.push(Piece::Text(&rest[..start + 2]));
            rest = after;
            continue;
        }
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        out.push(Piece::Code(code));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

impl Template {
    /// Checks a template of `kind` before it is saved: known placeholders only, a one-line
    /// subject, nothing empty or too long.
    pub fn validate(&self, kind: TemplateKind) -> Result<(), TemplateError> {
        let known = kind.placeholders();
        if self.subject.trim().is_empty() {
            return Err(TemplateError::Empty { field: "subject" });
        }
        if self.subject.chars().any(char::is_control) {
            return Err(TemplateError::MultiLineSubject);
        }
        if self.subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(TemplateError::TooLong { field: "subject" });
        }
        for (field, body) in [
            ("subject", &self.subject),
            ("html_body", &self.html_body),
            ("text_body", &self.text_body),
        ] {
            if field != "subject" {
                if body.trim().is_empty() {
                    return Err(TemplateError::Empty { field });
                }
                if body.len() > MAX_TEMPLATE_BYTES {
                    return Err(TemplateError::TooLong { field });
                }
            }
            for piece in pieces(body) {
                if let Piece::Code(code) = piece
                    && !known.iter().any(|p| p.code == code)
                {
                    return Err(TemplateError::UnknownPlaceholder {
                        field,
                        code: code.chars().take(40).collect(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Fills in the placeholders: the subject flattened to one line, the HTML escaped (the
    /// `MESSAGE` keeps its line breaks as `<br>`), the text as is. Unknown codes are left as
    /// written (a saved template has none).
    pub fn render(&self, values: &Values) -> Template {
        let fill = |body: &str, encode: &dyn Fn(&str, &str) -> String| {
            let mut out = String::with_capacity(body.len() + 256);
            for piece in pieces(body) {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Code(code) => match values.get(code) {
                        Some(v) => out.push_str(&encode(code, v)),
                        None => {
                            out.push_str("*|");
                            out.push_str(code);
                            out.push_str("|*");
                        }
                    },
                }
            }
            out
        };
        let subject = fill(&self.subject, &|_, v| one_line(v));
        Template {
            subject: one_line(&subject),
            html_body: fill(&self.html_body, &|code, v| {
                let escaped = escape_html(v);
                if code == "MESSAGE" {
                    escaped.replace("\r\n", "\n").replace('\n', "<br>\n")
                } else {
                    escaped
                }
            }),
            text_body: fill(&self.text_body, &|_, v| v.to_owned()),
        }
    }
}

/// Placeholder values, by code.
#[derive(Clone, Debug, Default)]
pub struct Values(Vec<(&'static str, String)>);

impl Values {
    /// Sets `code` to `value`.
    pub fn set(&mut self, code: &'static str, value: impl Into<String>) {
        self.0.retain(|(c, _)| *c != code);
        self.0.push((code, value.into()));
    }

    /// The value of `code`.
    pub fn get(&self, code: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_str())
    }

    /// The example values of `kind`'s placeholders (the preview's sample data).
    pub fn examples(kind: TemplateKind) -> Self {
        let mut v = Values::default();
        for p in kind.placeholders() {
            v.set(p.code, p.example);
        }
        v
    }
}

/// Control characters (CR, LF, tab, …) become spaces: the value can never start a header line.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(subject: &str, html: &str, text: &str) -> Template {
        Template {
            subject: subject.into(),
            html_body: html.into(),
            text_body: text.into(),
        }
    }

    #[test]
    fn placeholders_are_split_out() {
        assert_eq!(
            pieces("a *|LINK|* b *|X"),
            [
                Piece::Text("a "),
                Piece::Code("LINK"),
                Piece::Text(" b *|X")
            ]
        );
        assert_eq!(pieces("*|A|**|B|*"), [Piece::Code("A"), Piece::Code("B")]);
        assert_eq!(
            pieces("*| \n |* x"),
            [Piece::Text("*|"), Piece::Text(" \n |* x")]
        );
    }

    #[test]
    fn an_unknown_placeholder_is_refused_with_its_name() {
        let kind = TemplateKind::AppointmentInvitation;
        assert_eq!(
            t("Hi *|CLIENT_NAME|*", "<p>*|LINK|*</p>", "*|LINK|*").validate(kind),
            Ok(())
        );
        assert_eq!(
            t("Hi", "<p>*|LNIK|*</p>", "x").validate(kind),
            Err(TemplateError::UnknownPlaceholder {
                field: "html_body",
                code: "LNIK".into()
            })
        );
        // A staff placeholder is unknown in an appointment mail and vice versa.
        assert!(matches!(
            t("*|EXPIRES|*", "x", "x").validate(kind),
            Err(TemplateError::UnknownPlaceholder {
                field: "subject",
                ..
            })
        ));
        assert!(matches!(
            t("x", "x", "*|CLIENT_NAME|*").validate(TemplateKind::PasswordReset),
            Err(TemplateError::UnknownPlaceholder {
                field: "text_body",
                ..
            })
        ));
        assert_eq!(
            t("a\r\nBcc: x", "x", "x").validate(kind),
            Err(TemplateError::MultiLineSubject)
        );
        assert_eq!(
            t("a", " ", "x").validate(kind),
            Err(TemplateError::Empty { field: "html_body" })
        );
    }

    #[test]
    fn values_are_escaped_in_html_and_flattened_in_the_subject() {
        let mut v = Values::default();
        v.set("CLIENT_NAME", "<script>alert(1)</script>\r\nBcc: a@b");
        v.set("MESSAGE", "line 1\nline <2>");
        let out = t(
            "For *|CLIENT_NAME|*",
            "<p title=\"*|CLIENT_NAME|*\">*|CLIENT_NAME|*</p><p>*|MESSAGE|*</p>",
            "*|CLIENT_NAME|*\n*|MESSAGE|*",
        )
        .render(&v);
        assert_eq!(out.subject, "For <script>alert(1)</script>  Bcc: a@b");
        assert!(!out.subject.contains(['\r', '\n']));
        assert_eq!(
            out.html_body,
            "<p title=\"&lt;script&gt;alert(1)&lt;/script&gt;\r\nBcc: a@b\">\
             &lt;script&gt;alert(1)&lt;/script&gt;\r\nBcc: a@b</p><p>line 1<br>\nline &lt;2&gt;</p>"
        );
        assert_eq!(
            out.text_body,
            "<script>alert(1)</script>\r\nBcc: a@b\nline 1\nline <2>"
        );
    }
}
