//! Patient records (issue #15, first part): a client's patients, the organisation's services
//! catalogue, service records, notes, and one timeline per client and per patient.
//!
//! **One model for both kinds of organisation** ([`OrganisationKind`]): every client has exactly
//! one *own patient* — the patient whose id is the client's id (`is_client`), written with the
//! client (`clients::insert_own_patient!`) and showing the client's name and date of birth. In a
//! human organisation it is the client's only patient; in a veterinary one the client's animals
//! are further patients, and the own patient carries the client-level records (a note about the
//! owner). So every note and service record names a patient, and a client's timeline is the
//! records of all its patients plus its appointments and communications.
//!
//! Layers: `http` modules per resource (`patients`, `services`, `notes`, `timeline`) over the SQL
//! in the same files, over the leaf `rules` (shared checks); who sees what is decided once, by
//! `rules::visible_client`: the caller's
//! organisation, then the register's segregation predicate (`clients::ClientScope`, F6–F9) for
//! the record's client. Another organisation's record, or one of a client the caller does not
//! see, is a 404.
//!
//! Invariants: every read and write starts from a client the caller sees; names, species, note
//! texts and service notes never reach the logs (ids do).

mod notes;
mod patients;
mod rules;
mod services;
mod timeline;

use crate::Route;
use crate::ids::OrganisationId;
use crate::store::{Store, dispatch};

pub use patients::Patient;
pub(crate) use patients::visible_patient;
pub(crate) use rules::{local_today, visible_client};

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    let mut routes = patients::routes();
    routes.extend(services::routes());
    routes.extend(notes::routes());
    routes.extend(timeline::routes());
    routes
}

impl Store {
    /// Whether any client of `organisation_id` owns a patient besides its own (an animal): then
    /// the organisation cannot become a human one.
    pub(crate) async fn organisation_has_animals(
        &self,
        organisation_id: OrganisationId,
    ) -> Result<bool, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from patient where organisation_id = $1 and not is_client",
            )
            .bind(organisation_id)
            .fetch_one(pool)
            .await
            .map(|n| n > 0)
        })
    }
}
