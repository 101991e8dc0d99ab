//! Care reminders — **recalls** (issue #15, F197–F206): "patient P is due for service S on a
//! date", made by rules when a service is recorded or by staff by hand, shown with a due-date
//! colour, and sent to the client on a schedule through the job queue and the outbox. (The word
//! *recall* keeps them apart from appointment reminders, `appointments::reminders`.)
//!
//! - [`plan`]: the pure arithmetic (due dates, colours, sending instants across DST).
//! - [`text`]: placeholders, the built-in text, rendering one bundled mail.
//! - [`model`]: rules, recalls, steps, reasons, and [`model::suppression`].
//! - [`engine`]: what runs inside other transactions — a service recorded (complete the open
//!   recall, plan the next from each rule), a death recorded (cancel), a rule edited (re-plan
//!   pending steps, never re-send).
//! - `db`: rules, views, what sending reads; `send`: the job handler and the evaluation the
//!   forward preview shares; `http`: the routes.
//!
//! Invariants: never two open recalls for one patient and service (a partial unique index); a
//! step is sent at most once (its status changes from `pending` in the transaction that records
//! its mail and completes its job); every suppression is recorded with its reason; names,
//! addresses and texts never reach the logs (ids do); every query is scoped to the caller's
//! organisation and the register's segregation.

mod db;
pub(crate) mod engine;
mod http;
pub mod model;
pub mod plan;
mod send;
pub mod text;

pub use send::RecallSender;

pub(crate) use http::routes;
