//! The text of a recall mail: its placeholders, the built-in reminder text (en, nl, de), the
//! check of a rule's or a manual recall's own text, and the rendering of one bundled mail (one
//! mail per client and sending time, naming every patient and service due).
//!
//! Texts are a subject and a plain-text body with `*|CODE|*` placeholders (the mail templates'
//! syntax, `templates::Template`); the HTML part is the rendered text, escaped, with its line
//! breaks kept. An unknown placeholder is refused on save, with its name.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::templates::{Language, Placeholder, Template, TemplateError, escape_html, one_line};

/// Longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest body, in bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// The placeholders of a recall text.
pub const RECALL_PLACEHOLDERS: &[Placeholder] = &[
    Placeholder {
        code: "CLIENT_NAME",
        description: "the client's name",
        example: "Jan de Vries",
    },
    Placeholder {
        code: "PATIENTS",
        description: "the names of the patients due, joined",
        example: "Rex and Bella",
    },
    Placeholder {
        code: "SERVICES",
        description: "the services due, joined",
        example: "Rabies vaccination",
    },
    Placeholder {
        code: "DUE_DATE",
        description: "the earliest due date, in the client's language",
        example: "Monday 30 March 2026",
    },
    Placeholder {
        code: "ITEMS",
        description: "one line per patient and service due, with its due date",
        example: "- Rex: Rabies vaccination, due Monday 30 March 2026",
    },
    Placeholder {
        code: "ORGANISATION",
        description: "the organisation's name",
        example: "Clinic A",
    },
    Placeholder {
        code: "CONTACT",
        description: "the organisation's contact details",
        example: "+31 20 123 4567",
    },
];

/// A subject and body with placeholders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecallText {
    /// One line.
    pub subject: String,
    /// Plain text; the HTML part is made from it.
    pub body: String,
}

impl RecallText {
    /// Checks a text before it is saved: known placeholders only, a one-line subject, nothing
    /// empty or too long. The error names the field (`subject` or `body`).
    pub fn validate(&self) -> Result<(), TemplateError> {
        if self.subject.trim().is_empty() {
            return Err(TemplateError::Empty { field: "subject" });
        }
        if self.subject.chars().any(char::is_control) {
            return Err(TemplateError::MultiLineSubject);
        }
        if self.subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(TemplateError::TooLong { field: "subject" });
        }
        if self.body.trim().is_empty() {
            return Err(TemplateError::Empty { field: "body" });
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(TemplateError::TooLong { field: "body" });
        }
        // The templates' checker, with this text's placeholders: subject as the subject, the
        // body as both bodies (the HTML part is made from it).
        let as_template = Template {
            subject: self.subject.clone(),
            html_body: self.body.clone(),
            text_body: self.body.clone(),
        };
        check_codes(&as_template).map_err(|e| match e {
            TemplateError::UnknownPlaceholder { field, code } => {
                TemplateError::UnknownPlaceholder {
                    field: if field == "subject" {
                        "subject"
                    } else {
                        "body"
                    },
                    code,
                }
            }
            e => e,
        })
    }

    /// The built-in reminder text in `language`.
    pub fn default_for(language: Language) -> RecallText {
        let (subject, body) = match language {
            Language::En => (
                "Care reminder for *|PATIENTS|*",
                "Dear *|CLIENT_NAME|*,\n\nThis is a reminder from *|ORGANISATION|*. The \
                 following care is due:\n\n*|ITEMS|*\n\nPlease contact us to make an \
                 appointment.\n\n*|ORGANISATION|*\n*|CONTACT|*",
            ),
            Language::Nl => (
                "Herinnering voor *|PATIENTS|*",
                "Beste *|CLIENT_NAME|*,\n\nDit is een herinnering van *|ORGANISATION|*. De \
                 volgende zorg staat gepland:\n\n*|ITEMS|*\n\nNeem contact met ons op om een \
                 afspraak te maken.\n\n*|ORGANISATION|*\n*|CONTACT|*",
            ),
            Language::De => (
                "Erinnerung für *|PATIENTS|*",
                "Guten Tag *|CLIENT_NAME|*,\n\ndies ist eine Erinnerung von *|ORGANISATION|*. \
                 Folgendes ist fällig:\n\n*|ITEMS|*\n\nBitte vereinbaren Sie einen \
                 Termin.\n\n*|ORGANISATION|*\n*|CONTACT|*",
            ),
        };
        RecallText {
            subject: subject.to_owned(),
            body: body.to_owned(),
        }
    }
}

/// Unknown placeholders of `t` against [`RECALL_PLACEHOLDERS`].
fn check_codes(t: &Template) -> Result<(), TemplateError> {
    for (field, body) in [("subject", &t.subject), ("body", &t.text_body)] {
        let mut rest = body.as_str();
        while let Some(start) = rest.find("*|") {
            let after = &rest[start + 2..];
            let Some(end) = after.find("|*") else { break };
            let code = &after[..end];
            if code.contains(['\n', '\r']) {
                rest = after;
                continue;
            }
            if !RECALL_PLACEHOLDERS.iter().any(|p| p.code == code) {
                return Err(TemplateError::UnknownPlaceholder {
                    field,
                    code: code.chars().take(40).collect(),
                });
            }
            rest = &after[end + 2..];
        }
    }
    Ok(())
}

/// One patient and service in a bundled mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The patient's name.
    pub patient: String,
    /// The service due (or a manual recall's title).
    pub service: String,
    /// The due date.
    pub due_on: NaiveDate,
}

/// What a bundled mail says, before rendering.
#[derive(Clone, Debug)]
pub struct Letter<'a> {
    /// Recipient.
    pub client_name: &'a str,
    /// In the client's language.
    pub language: Language,
    /// Every patient and service due (at least one), in order.
    pub items: &'a [Item],
    /// Organisation's name.
    pub organisation: &'a str,
    /// Organisation's contact line.
    pub contact: &'a str,
}

/// A rendered mail: subject, text, HTML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Subject (one line).
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML (the text escaped, paragraphs and line breaks kept).
    pub html: String,
}

fn joined(names: &[&str], language: Language) -> String {
    let and = match language {
        Language::En => "and",
        Language::Nl => "en",
        Language::De => "und",
    };
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} {and} {last}", init.join(", ")),
    }
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Renders `text` for `letter`.
pub fn render(text: &RecallText, letter: &Letter<'_>) -> Rendered {
    let date = |d: NaiveDate| crate::templates::compose::format_date(d, letter.language);
    let due_word = match letter.language {
        Language::En => "due",
        Language::Nl => "op",
        Language::De => "fällig am",
    };
    let items: Vec<String> = letter
        .items
        .iter()
        .map(|i| {
            format!(
                "- {}: {}, {due_word} {}",
                one_line(&i.patient),
                one_line(&i.service),
                date(i.due_on)
            )
        })
        .collect();
    let mut values = crate::templates::Values::default();
    values.set("CLIENT_NAME", one_line(letter.client_name));
    values.set(
        "PATIENTS",
        joined(
            &distinct(letter.items.iter().map(|i| i.patient.as_str())),
            letter.language,
        ),
    );
    values.set(
        "SERVICES",
        joined(
            &distinct(letter.items.iter().map(|i| i.service.as_str())),
            letter.language,
        ),
    );
    if let Some(first) = letter.items.iter().map(|i| i.due_on).min() {
        values.set("DUE_DATE", date(first));
    }
    values.set("ITEMS", items.join("\n"));
    values.set("ORGANISATION", one_line(letter.organisation));
    values.set("CONTACT", letter.contact.trim());
    let t = Template {
        subject: text.subject.clone(),
        html_body: String::new(),
        text_body: text.body.clone(),
    }
    .render(&values);
    let mut body = t.text_body.replace("\r\n", "\n");
    while body.contains("\n\n\n") {
        body = body.replace("\n\n\n", "\n\n");
    }
    let body = body.trim().to_owned();
    Rendered {
        subject: t.subject,
        html: text_to_html(&body),
        text: body,
    }
}

/// Paragraphs at blank lines, `<br>` at single line breaks, everything escaped.
fn text_to_html(text: &str) -> String {
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let lines: Vec<String> = p.lines().map(escape_html).collect();
            format!("<p>{}</p>", lines.join("<br>\n"))
        })
        .collect();
    format!(
        "<!doctype html>\n<html><body>\n{}\n</body></html>\n",
        paragraphs.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(subject: &str, body: &str) -> RecallText {
        RecallText {
            subject: subject.into(),
            body: body.into(),
        }
    }

    #[test]
    fn unknown_placeholders_are_refused_by_name_and_field() {
        assert_eq!(text("Hi *|CLIENT_NAME|*", "*|ITEMS|*").validate(), Ok(()));
        assert_eq!(
            text("Hi *|CLIENT|*", "x").validate(),
            Err(TemplateError::UnknownPlaceholder {
                field: "subject",
                code: "CLIENT".into()
            })
        );
        assert_eq!(
            text("Hi", "*|LINK|*").validate(),
            Err(TemplateError::UnknownPlaceholder {
                field: "body",
                code: "LINK".into()
            })
        );
        assert_eq!(
            text("a\nb", "x").validate(),
            Err(TemplateError::MultiLineSubject)
        );
        assert_eq!(
            text("a", "  ").validate(),
            Err(TemplateError::Empty { field: "body" })
        );
        for l in Language::ALL {
            assert_eq!(RecallText::default_for(l).validate(), Ok(()), "{l:?}");
        }
    }

    #[test]
    fn a_bundle_names_every_patient_once_and_is_escaped() {
        let items = [
            Item {
                patient: "Rex".into(),
                service: "Rabies vaccination".into(),
                due_on: "2030-04-01".parse().unwrap(),
            },
            Item {
                patient: "Bella <b>".into(),
                service: "Rabies vaccination".into(),
                due_on: "2030-03-30".parse().unwrap(),
            },
            Item {
                patient: "Max".into(),
                service: "Deworming".into(),
                due_on: "2030-04-02".parse().unwrap(),
            },
        ];
        let letter = Letter {
            client_name: "Jan",
            language: Language::En,
            items: &items,
            organisation: "Clinic A",
            contact: "",
        };
        let out = render(&RecallText::default_for(Language::En), &letter);
        assert_eq!(out.subject, "Care reminder for Rex, Bella <b> and Max");
        assert!(
            out.text
                .contains("- Bella <b>: Rabies vaccination, due Saturday 30 March 2030")
        );
        assert!(out.html.contains("Bella &lt;b&gt;"));
        assert!(!out.html.contains("<b>"));
        let custom = render(&text("*|SERVICES|* by *|DUE_DATE|*", "x"), &letter);
        assert_eq!(
            custom.subject,
            "Rabies vaccination and Deworming by Saturday 30 March 2030"
        );
    }
}
