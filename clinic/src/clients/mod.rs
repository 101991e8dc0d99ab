//! The client register (issue #12, F66–F88): the person records a clinic keeps, with the clinic's
//! own client number (F67, unique per organisation), the language mails are written in, and the
//! department and practitioner the client belongs to. `db` holds the SQL and the visibility
//! predicate (organisation, then the segregation settings F6–F9); `http` the routes (create, edit,
//! search with paging, read, delete while no appointment or conversation refers to the client).
//!
//! Invariant: clients are scoped to the caller's organisation and narrowed by the segregation
//! settings on every list and read (another organisation's client is a 404); their names,
//! e-mails and phone numbers are never logged.

mod db;
mod http;
mod model;

pub(crate) use db::{ClientScope, Register, insert_client, visible_clients};
pub(crate) use http::{ClientInput, check, number_taken, routes};
pub use model::{Client, Language, NewClient};
pub(crate) use model::{insert_own_patient, is_valid_email, is_valid_phone, validate};
