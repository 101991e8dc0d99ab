//! The checks every records module shares: who sees a record's client ([`visible_client`], the
//! register's segregation predicate), the organisation's "today", and text fields.
//!
//! A leaf of `records`: it names none of its siblings, so the module graph stays a DAG.

use chrono::{DateTime, NaiveDate, Utc};

use crate::Clinic;
use crate::auth::CurrentStaff;
use crate::clients::{Client, ClientScope};
use crate::error::{ApiError, ApiResult};
use crate::ids::ClientId;
use crate::org_settings::{OrganisationKind, OrganisationSettings};

/// The client `client_id` if the caller sees it (organisation, then F6–F9), with the
/// organisation's settings; otherwise 404 `client`.
pub(crate) async fn visible_client(
    clinic: &Clinic,
    current: &CurrentStaff,
    client_id: ClientId,
) -> ApiResult<(Client, OrganisationSettings)> {
    let settings = clinic
        .organisation_settings(current.staff.organisation_id)
        .await?;
    let scope = ClientScope::new(&current.staff, &settings);
    let client = clinic
        .store()
        .visible_client(&scope, client_id)
        .await?
        .ok_or(ApiError::NotFound("client"))?;
    Ok((client, settings))
}

/// Today's date in the organisation's time zone.
pub(crate) fn local_today(settings: &OrganisationSettings, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&settings.tz()).date_naive()
}

/// The earliest date a patient's birth, death or service may have.
pub(super) fn earliest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN)
}

pub(super) fn is_veterinary(settings: &OrganisationSettings) -> bool {
    settings.organisation_kind == OrganisationKind::Veterinary
}

/// Trims `value` and checks it is 1..=`max` characters without control characters
/// (`multiline` allows line breaks and tabs).
pub(super) fn checked_text(
    field: &'static str,
    value: &str,
    max: usize,
    multiline: bool,
) -> ApiResult<String> {
    let value = value.trim();
    let len = value.chars().count();
    if len == 0 || len > max {
        return Err(ApiError::InvalidField {
            field,
            message: format!("{field} must be 1 to {max} characters"),
        });
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r')))
    {
        return Err(ApiError::InvalidField {
            field,
            message: format!("{field} contains control characters"),
        });
    }
    Ok(value.to_owned())
}

/// Like [`checked_text`] for an optional field: absent or blank is `None`.
pub(super) fn optional_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
    multiline: bool,
) -> ApiResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => checked_text(field, v, max, multiline).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(checked_text("name", "  Rex ", 10, false).unwrap(), "Rex");
        assert!(checked_text("name", "   ", 10, false).is_err());
        assert!(checked_text("name", "12345678901", 10, false).is_err());
        assert!(checked_text("name", "a\nb", 10, false).is_err());
        assert_eq!(checked_text("text", "a\nb", 10, true).unwrap(), "a\nb");
        assert!(checked_text("text", "a\u{7}b", 10, true).is_err());
        assert_eq!(optional_text("breed", Some("  "), 10, false).unwrap(), None);
    }
}
