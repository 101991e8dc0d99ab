//! A widget's configuration as the admin API accepts it (wizard steps 1–4) and its validation.
//!
//! Invariants: everything is validated before it is stored — lengths, colours (`#rgb`/`#rrggbb`
//! only, so they can be written into CSS), departments of the caller's organisation, intake
//! rules, and allowed origins in a strict `scheme://host[:port]` form that is safe inside a CSP
//! `frame-ancestors` directive (no spaces, quotes, semicolons or paths).

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::ids::DepartmentId;

/// Most departments one widget shows.
const MAX_DEPARTMENTS: usize = 50;
/// Most origins allowed to frame one widget.
pub const MAX_ORIGINS: usize = 20;

/// Whether an intake field is asked for, and whether it must be filled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldRule {
    /// Not shown.
    #[default]
    Hidden,
    /// Shown; may be left empty.
    Optional,
    /// Shown and must be filled.
    Required,
}

/// Texts shown in the widget (step 2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    /// Heading.
    #[serde(default)]
    pub title: String,
    /// Shown while someone is available ("walk-in hours" text).
    #[serde(default)]
    pub walk_in: String,
    /// Shown when nobody is available.
    #[serde(default)]
    pub absent: String,
}

/// Colours (step 2), `#rgb` or `#rrggbb`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Colours {
    /// Heading colour.
    #[serde(default = "default_title_colour")]
    pub title: String,
    /// Body text colour.
    #[serde(default = "default_text_colour")]
    pub text: String,
}

fn default_title_colour() -> String {
    "#1f3a5f".to_owned()
}
fn default_text_colour() -> String {
    "#222222".to_owned()
}

impl Default for Colours {
    fn default() -> Self {
        Self {
            title: default_title_colour(),
            text: default_text_colour(),
        }
    }
}

/// What a visitor must enter before entering the waiting room (step 3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intake {
    /// Full name.
    #[serde(default = "required")]
    pub name: FieldRule,
    /// Date of birth.
    #[serde(default)]
    pub date_of_birth: FieldRule,
    /// Phone number.
    #[serde(default)]
    pub phone: FieldRule,
    /// E-mail.
    #[serde(default)]
    pub email: FieldRule,
    /// Whether the visitor must accept the terms.
    #[serde(default)]
    pub accept_terms: bool,
    /// The terms shown next to the checkbox.
    #[serde(default)]
    pub terms_text: String,
}

fn required() -> FieldRule {
    FieldRule::Required
}

impl Default for Intake {
    fn default() -> Self {
        Self {
            name: FieldRule::Required,
            date_of_birth: FieldRule::Hidden,
            phone: FieldRule::Hidden,
            email: FieldRule::Hidden,
            accept_terms: false,
            terms_text: String::new(),
        }
    }
}

/// The stored settings (everything but the name, custom CSS and images).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Departments whose available practitioners are shown, in this order.
    pub department_ids: Vec<DepartmentId>,
    /// Texts.
    pub texts: Texts,
    /// Colours.
    pub colours: Colours,
    /// Intake rules.
    pub intake: Intake,
    /// Origins allowed to frame the widget (CSP `frame-ancestors`).
    pub allowed_origins: Vec<String>,
}

/// The body of `POST /widgets` and `PUT /widgets/{id}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetInput {
    /// Widget name (admin only).
    pub name: String,
    /// Departments.
    #[serde(default)]
    pub department_ids: Vec<DepartmentId>,
    /// Texts.
    #[serde(default)]
    pub texts: Texts,
    /// Colours.
    #[serde(default)]
    pub colours: Colours,
    /// Intake rules.
    #[serde(default)]
    pub intake: Intake,
    /// Allowed framing origins.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Custom CSS (sanitised).
    #[serde(default)]
    pub custom_css: String,
}

fn check_text(field: &str, value: &str, max: usize, multiline: bool) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::invalid(format!(
            "{field} must be at most {max} characters"
        )));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t')))
    {
        return Err(ApiError::invalid(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

/// Whether `s` is `#rgb` or `#rrggbb`.
pub fn valid_colour(s: &str) -> bool {
    let Some(hex) = s.strip_prefix('#') else {
        return false;
    };
    (hex.len() == 3 || hex.len() == 6) && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// Normalises and checks one allowed origin: `http(s)://host[:port]`, where host may start with
/// `*.` and port may be `*`. Returns the lower-cased origin.
pub fn normalise_origin(raw: &str) -> Option<String> {
    let s = raw.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = s.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    if let Some(p) = port
        && p != "*"
        && !p.parse::<u16>().is_ok_and(|n| n > 0)
    {
        return None;
    }
    let bare = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if bare.is_empty() || bare.len() > 253 || !bare.split('.').all(label_ok) {
        return None;
    }
    Some(s)
}

impl WidgetInput {
    /// Validates everything except department membership (checked against the database) and the
    /// custom CSS (see [`super::css`]); normalises origins and trims texts.
    pub fn validate(mut self) -> Result<(String, Settings, String), ApiError> {
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            return Err(ApiError::invalid("name must not be empty"));
        }
        check_text("name", &name, 100, false)?;
        check_text("texts.title", &self.texts.title, 200, false)?;
        check_text("texts.walk_in", &self.texts.walk_in, 2000, true)?;
        check_text("texts.absent", &self.texts.absent, 2000, true)?;
        check_text("intake.terms_text", &self.intake.terms_text, 5000, true)?;
        if self.intake.accept_terms && self.intake.terms_text.trim().is_empty() {
            return Err(ApiError::invalid(
                "intake.terms_text must be set when visitors must accept the terms",
            ));
        }
        for (field, value) in [
            ("colours.title", &self.colours.title),
            ("colours.text", &self.colours.text),
        ] {
            if !valid_colour(value) {
                return Err(ApiError::invalid(format!(
                    "{field} must be a colour like #1f3a5f"
                )));
            }
        }
        if self.department_ids.is_empty() {
            return Err(ApiError::invalid("choose at least one department"));
        }
        let mut departments = Vec::new();
        for d in self.department_ids {
            if !departments.contains(&d) {
                departments.push(d);
            }
        }
        if departments.len() > MAX_DEPARTMENTS {
            return Err(ApiError::invalid(format!(
                "at most {MAX_DEPARTMENTS} departments"
            )));
        }
        if self.allowed_origins.len() > MAX_ORIGINS {
            return Err(ApiError::invalid(format!(
                "at most {MAX_ORIGINS} allowed origins"
            )));
        }
        let mut origins = Vec::new();
        for raw in &self.allowed_origins {
            let o = normalise_origin(raw).ok_or_else(|| {
                ApiError::invalid(format!(
                    "allowed_origins: {:?} is not an origin like https://www.example-clinic.nl",
                    raw.chars().take(80).collect::<String>()
                ))
            })?;
            if !origins.contains(&o) {
                origins.push(o);
            }
        }
        self.texts.title = self.texts.title.trim().to_owned();
        let settings = Settings {
            department_ids: departments,
            texts: self.texts,
            colours: self.colours,
            intake: self.intake,
            allowed_origins: origins,
        };
        Ok((name, settings, self.custom_css))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let ok = [
            ("https://www.example.nl", "https://www.example.nl"),
            ("HTTPS://Example.NL/", "https://example.nl"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.0.0.1:*", "http://127.0.0.1:*"),
            ("https://*.example.nl", "https://*.example.nl"),
            ("http://localhost:3000", "http://localhost:3000"),
        ];
        for (raw, want) in ok {
            assert_eq!(normalise_origin(raw).as_deref(), Some(want), "{raw}");
        }
        let bad = [
            "example.nl",
            "ftp://example.nl",
            "https://example.nl/path",
            "https://exa mple.nl",
            "https://example.nl; script-src *",
            "https://'self'",
            "https://example.nl:0",
            "https://example.nl:99999",
            "*",
            "https://*",
            "https://a.*.nl",
            "javascript://x",
        ];
        for raw in bad {
            assert_eq!(normalise_origin(raw), None, "{raw}");
        }
    }

    #[test]
    fn colours() {
        assert!(valid_colour("#fff"));
        assert!(valid_colour("#1f3A5f"));
        assert!(!valid_colour("red"));
        assert!(!valid_colour("#12345"));
        assert!(!valid_colour("#fff;}body{"));
    }
}
