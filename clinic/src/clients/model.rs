//! The client record: its fields, the language of its mails, validation of the person fields,
//! and the unscoped inserts the demo seed and tests use.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::ids::{ClientId, DepartmentId, OrganisationId, StaffId};
use crate::store::{Store, dispatch};

/// A client (patient) as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Client {
    /// Client id.
    #[sqlx(rename = "client_id")]
    pub id: ClientId,
    /// Full name.
    pub name: String,
    /// E-mail, if known.
    pub email: Option<String>,
    /// Phone number, if known.
    pub phone: Option<String>,
    /// Date of birth, if known.
    pub date_of_birth: Option<NaiveDate>,
    /// The client's number in the clinic's own system (F67), unique in the organisation.
    pub client_number: Option<String>,
    /// Language of the mails to this client.
    #[sqlx(try_from = "String")]
    pub language: Language,
    /// Department the client belongs to (decides visibility under F6).
    pub department_id: Option<DepartmentId>,
    /// Practitioner the client belongs to (decides visibility under F9).
    pub practitioner_id: Option<StaffId>,
}

/// Language of a client's mails: the templates' language (one type for the concept).
pub use crate::templates::Language;

/// The person fields of a client (and of an external participant).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct NewClient {
    /// Full name (1–200 characters).
    pub name: String,
    /// Optional e-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// Optional phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// Optional date of birth (`YYYY-MM-DD`).
    #[serde(default)]
    pub date_of_birth: Option<NaiveDate>,
}

/// Inserts the client's own patient (`is_client`: the patient whose id is the client's id; its
/// name and date of birth are the client's) on `$conn`. Every client has exactly one
/// (`patient_own_idx`); `records` reads it. Gives `Result<(), sqlx::Error>`.
macro_rules! insert_own_patient {
    ($conn:expr, $id:expr, $org:expr, $now:expr) => {
        sqlx::query(
            "insert into patient (patient_id, organisation_id, client_id, is_client, created_at, \
             updated_at) values ($1, $2, $1, $3, $4, $4)",
        )
        .bind($id)
        .bind($org)
        .bind(true)
        .bind($now)
        .execute($conn)
        .await
        .map(|_| ())
    };
}
pub(crate) use insert_own_patient;

impl Store {
    /// Creates a client in `organisation_id`, with its own patient.
    pub async fn insert_client(
        &self,
        organisation_id: OrganisationId,
        new: &NewClient,
        now: DateTime<Utc>,
    ) -> Result<Client, sqlx::Error> {
        let id = ClientId::new();
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "insert into client (client_id, organisation_id, name, email, phone, date_of_birth, \
                 created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(id)
            .bind(organisation_id)
            .bind(&new.name)
            .bind(&new.email)
            .bind(&new.phone)
            .bind(new.date_of_birth)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_own_patient!(&mut *tx, id, organisation_id, now)?;
            tx.commit().await
        })?;
        Ok(Client {
            id,
            name: new.name.clone(),
            email: new.email.clone(),
            phone: new.phone.clone(),
            date_of_birth: new.date_of_birth,
            client_number: None,
            language: Language::En,
            department_id: None,
            practitioner_id: None,
        })
    }

    /// Finds a client of `organisation_id` by exact name (used by the demo seed).
    pub async fn find_client_by_name(
        &self,
        organisation_id: OrganisationId,
        name: &str,
    ) -> Result<Option<ClientId>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar(
                "select client_id from client where organisation_id = $1 and name = $2 \
                 order by created_at limit 1",
            )
            .bind(organisation_id)
            .bind(name)
            .fetch_optional(pool)
            .await
        })
    }
}

/// Trims and checks a new client; empty optional strings become `None`.
pub(crate) fn validate(mut new: NewClient, now: DateTime<Utc>) -> ApiResult<NewClient> {
    new.name = new.name.trim().to_owned();
    let len = new.name.chars().count();
    if len == 0 || len > 200 {
        return Err(ApiError::invalid("name must be 1 to 200 characters"));
    }
    if new.name.chars().any(char::is_control) {
        return Err(ApiError::invalid("name contains control characters"));
    }
    new.email = non_empty(new.email);
    if let Some(email) = &new.email
        && !is_valid_email(email)
    {
        return Err(ApiError::InvalidField {
            field: "email",
            message: "email is not a valid address (expected name@domain.tld, no spaces)"
                .to_owned(),
        });
    }
    new.phone = non_empty(new.phone);
    if let Some(phone) = &new.phone
        && !is_valid_phone(phone)
    {
        return Err(ApiError::InvalidField {
            field: "phone",
            message: "phone is not a valid number (6 to 20 digits; +, spaces, -, ( ) and . \
                      allowed)"
                .to_owned(),
        });
    }
    if let Some(dob) = new.date_of_birth {
        let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
        if dob > now.date_naive() || dob < earliest {
            return Err(ApiError::InvalidField {
                field: "date_of_birth",
                message: "date_of_birth must be between 1900-01-01 and today".to_owned(),
            });
        }
    }
    Ok(new)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A deliberately simple shape check: `local@domain.tld`, no spaces, ≤ 254 characters.
pub(crate) fn is_valid_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

pub(crate) fn is_valid_phone(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    phone.len() <= 32
        && (6..=20).contains(&digits)
        && phone
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shapes() {
        assert!(is_valid_email("jan@example.nl"));
        assert!(!is_valid_email("jan@example"));
        assert!(!is_valid_email("jan example@x.nl"));
        assert!(!is_valid_email("@x.nl"));
        assert!(!is_valid_email("a@b@c.nl"));
    }

    #[test]
    fn phone_shapes() {
        assert!(is_valid_phone("+31 6 1234 5678"));
        assert!(!is_valid_phone("call me"));
        assert!(!is_valid_phone("12"));
    }
}
