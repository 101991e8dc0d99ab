//! SQL of the client register and its visibility predicate.
//!
//! Invariant: every list and read of the register goes through [`ClientScope`]: the organisation
//! first, then the segregation settings (F6–F9) for everyone but organisation admins.

use chrono::{DateTime, NaiveDate, Utc};

use super::model::{Client, Language, NewClient};
use crate::ids::{ClientId, DepartmentId, OrganisationId, StaffId};
use crate::org_settings::OrganisationSettings;
use crate::staff::Staff;
use crate::store::{Store, dispatch};

/// Who may see which clients, bound as `$1..$6` of [`visible_clients!`].
pub(crate) struct ClientScope {
    pub(crate) organisation_id: OrganisationId,
    pub(crate) role: &'static str,
    /// F6 on (1) or off (0).
    pub(crate) departments: i32,
    /// F9 on (1) or off (0).
    pub(crate) clients: i32,
    pub(crate) staff_id: StaffId,
    pub(crate) department_id: Option<DepartmentId>,
}

impl ClientScope {
    /// The clients `staff` sees under `settings`:
    /// - organisation admins: every client of the organisation;
    /// - F6 ("strictly segregated departments"): others only clients of their own department or
    ///   assigned to themselves (a client in no department is the admins' alone, F8);
    /// - F9 ("strictly segregated clients"): practitioners only clients assigned to them or with
    ///   an appointment with them (department admins are governed by F6 alone);
    /// - neither: every client of the organisation.
    pub(crate) fn new(staff: &Staff, settings: &OrganisationSettings) -> Self {
        Self {
            organisation_id: staff.organisation_id,
            role: staff.role.as_str(),
            departments: i32::from(settings.strict_department_segregation),
            clients: i32::from(settings.strict_client_segregation),
            staff_id: staff.id,
            department_id: staff.department_id,
        }
    }
}

macro_rules! visible_clients {
    () => {
        "from client c where c.organisation_id = $1 \
         and ($2 = 'organisation_admin' or ( \
              ($3 = 0 or c.practitioner_id = $5 \
                      or (c.department_id is not null and c.department_id = $6)) \
              and ($4 = 0 or $2 <> 'practitioner' or c.practitioner_id = $5 \
                   or exists (select 1 from appointment a \
                              where a.client_id = c.client_id and a.practitioner_id = $5)))) "
    };
}

pub(crate) use visible_clients;

macro_rules! client_columns {
    () => {
        "select c.client_id, c.name, c.email, c.phone, c.date_of_birth, c.client_number, \
         c.language, c.department_id, c.practitioner_id "
    };
}

/// A search of the register: `q` matches the name or the name of one of the client's animals
/// (contains, case-insensitive for ASCII) or the client number (exactly); `date_of_birth`
/// narrows further.
pub(crate) struct Search<'a> {
    pub(crate) q: &'a str,
    pub(crate) date_of_birth: Option<NaiveDate>,
    pub(crate) limit: i64,
    pub(crate) offset: i64,
}

/// Inserts client `$id` with its register fields, and the client's own patient, on `$conn`
/// (`&mut *tx` of a transaction, so that a client never exists without its own patient: a
/// booking creates its new client in its own transaction). Gives `Result<(), sqlx::Error>`.
macro_rules! insert_client {
    ($conn:expr, $id:expr, $org:expr, $person:expr, $register:expr, $now:expr) => {{
        let client = sqlx::query(
            "insert into client (client_id, organisation_id, name, email, phone, date_of_birth, \
             client_number, language, department_id, practitioner_id, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind($id)
        .bind($org)
        .bind(&$person.name)
        .bind(&$person.email)
        .bind(&$person.phone)
        .bind($person.date_of_birth)
        .bind($register.client_number)
        .bind($register.language.as_str())
        .bind($register.department_id)
        .bind($register.practitioner_id)
        .bind($now)
        .execute($conn)
        .await;
        match client {
            Ok(_) => $crate::clients::insert_own_patient!($conn, $id, $org, $now),
            Err(e) => Err(e),
        }
    }};
}
pub(crate) use insert_client;

/// The register's fields of a client besides the person fields.
pub(crate) struct Register<'a> {
    pub(crate) client_number: Option<&'a str>,
    pub(crate) language: Language,
    pub(crate) department_id: Option<DepartmentId>,
    pub(crate) practitioner_id: Option<StaffId>,
}

/// Why a client could not be deleted.
pub(crate) enum DeleteOutcome {
    Deleted,
    NotFound,
    HasAppointments,
    HasConversations,
    /// Notes or service records refer to the client or its patients.
    HasRecords,
}

fn like_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl Store {
    /// One page of the clients `scope` sees that match `search`, by name, and how many match.
    pub(crate) async fn search_clients(
        &self,
        scope: &ClientScope,
        search: &Search<'_>,
    ) -> Result<(Vec<Client>, i64), sqlx::Error> {
        let pattern = like_pattern(search.q);
        dispatch!(self, pool => {
            let rows = sqlx::query_as::<_, Client>(concat!(
                client_columns!(),
                visible_clients!(),
                "and ($7 = '' or lower(c.name) like $8 escape '\\' or c.client_number = $7 \
                      or exists (select 1 from patient p where p.client_id = c.client_id \
                                 and not p.is_client and lower(p.name) like $8 escape '\\')) \
                 and ($9 is null or c.date_of_birth = $9) \
                 order by c.name, c.client_id limit $10 offset $11"
            ))
            .bind(scope.organisation_id)
            .bind(scope.role)
            .bind(scope.departments)
            .bind(scope.clients)
            .bind(scope.staff_id)
            .bind(scope.department_id)
            .bind(search.q)
            .bind(&pattern)
            .bind(search.date_of_birth)
            .bind(search.limit)
            .bind(search.offset)
            .fetch_all(pool)
            .await?;
            let total: i64 = sqlx::query_scalar(concat!(
                "select count(*) ",
                visible_clients!(),
                "and ($7 = '' or lower(c.name) like $8 escape '\\' or c.client_number = $7 \
                      or exists (select 1 from patient p where p.client_id = c.client_id \
                                 and not p.is_client and lower(p.name) like $8 escape '\\')) \
                 and ($9 is null or c.date_of_birth = $9)"
            ))
            .bind(scope.organisation_id)
            .bind(scope.role)
            .bind(scope.departments)
            .bind(scope.clients)
            .bind(scope.staff_id)
            .bind(scope.department_id)
            .bind(search.q)
            .bind(&pattern)
            .bind(search.date_of_birth)
            .fetch_one(pool)
            .await?;
            Ok((rows, total))
        })
    }

    /// A client, if `scope` sees it.
    pub(crate) async fn visible_client(
        &self,
        scope: &ClientScope,
        client_id: ClientId,
    ) -> Result<Option<Client>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, Client>(concat!(
                client_columns!(),
                visible_clients!(),
                "and c.client_id = $7"
            ))
            .bind(scope.organisation_id)
            .bind(scope.role)
            .bind(scope.departments)
            .bind(scope.clients)
            .bind(scope.staff_id)
            .bind(scope.department_id)
            .bind(client_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// A client, only if it belongs to `organisation_id` (no segregation: chat has its own rules).
    pub async fn client_in_organisation(
        &self,
        organisation_id: OrganisationId,
        client_id: ClientId,
    ) -> Result<Option<Client>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, Client>(concat!(
                client_columns!(),
                "from client c where c.organisation_id = $1 and c.client_id = $2"
            ))
            .bind(organisation_id)
            .bind(client_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Creates a client with its register fields.
    pub(crate) async fn insert_register_client(
        &self,
        organisation_id: OrganisationId,
        person: &NewClient,
        register: &Register<'_>,
        now: DateTime<Utc>,
    ) -> Result<ClientId, sqlx::Error> {
        let id = ClientId::new();
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            insert_client!(&mut *tx, id, organisation_id, person, register, now)?;
            tx.commit().await
        })?;
        Ok(id)
    }

    /// Replaces a client's fields; `false` when there is no such client in the organisation.
    pub(crate) async fn update_register_client(
        &self,
        organisation_id: OrganisationId,
        client_id: ClientId,
        person: &NewClient,
        register: &Register<'_>,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "update client set name = $3, email = $4, phone = $5, date_of_birth = $6, \
                 client_number = $7, language = $8, department_id = $9, practitioner_id = $10, \
                 updated_at = $11 where organisation_id = $1 and client_id = $2",
            )
            .bind(organisation_id)
            .bind(client_id)
            .bind(&person.name)
            .bind(&person.email)
            .bind(&person.phone)
            .bind(person.date_of_birth)
            .bind(register.client_number)
            .bind(register.language.as_str())
            .bind(register.department_id)
            .bind(register.practitioner_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Deletes a client that no appointment and no conversation refers to (one statement, so a
    /// booking racing the delete either comes first and stops it, or fails on the foreign key).
    pub(crate) async fn delete_register_client(
        &self,
        organisation_id: OrganisationId,
        client_id: ClientId,
    ) -> Result<DeleteOutcome, sqlx::Error> {
        dispatch!(self, pool => {
            let n = sqlx::query(
                "delete from client where organisation_id = $1 and client_id = $2 \
                 and not exists (select 1 from appointment a where a.client_id = $2) \
                 and not exists (select 1 from chat_channel ch where ch.client_id = $2) \
                 and not exists (select 1 from note n where n.client_id = $2) \
                 and not exists (select 1 from service_record r where r.client_id = $2)",
            )
            .bind(organisation_id)
            .bind(client_id)
            .execute(pool)
            .await?
            .rows_affected();
            if n > 0 {
                return Ok(DeleteOutcome::Deleted);
            }
            let (appointments, channels, records): (i64, i64, i64) = sqlx::query_as(
                "select (select count(*) from appointment a where a.client_id = $1), \
                 (select count(*) from chat_channel ch where ch.client_id = $1), \
                 (select count(*) from note n where n.client_id = $1) \
                 + (select count(*) from service_record r where r.client_id = $1)",
            )
            .bind(client_id)
            .fetch_one(pool)
            .await?;
            Ok(if appointments > 0 {
                DeleteOutcome::HasAppointments
            } else if channels > 0 {
                DeleteOutcome::HasConversations
            } else if records > 0 {
                DeleteOutcome::HasRecords
            } else {
                DeleteOutcome::NotFound
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(super::like_pattern("Jan"), "%jan%");
        assert_eq!(super::like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
