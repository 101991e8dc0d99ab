//! The WebSocket endpoint: one task per connection, translating frames to [`HubState`]
//! operations and SFU commands.
//!
//! Limits enforced here: a message over `max_message_bytes` closes the socket with 1009; a
//! connection that has not sent a valid `join` within `join_timeout` is closed with 1008; every
//! connection has a bounded outgoing queue, and a client that cannot keep up is disconnected
//! rather than buffered without bound. Malformed frames get an `error` reply and the connection
//! stays open.
//!
//! By concern: `hub` (the [`Hub`] handle, shared state, public operations, ticker, applying
//! effects), `session` (one connection and its dispatch), `join`, `media` (protocol ↔ SFU),
//! `files` (file sharing's WebSocket side), `probe` (connectivity probes). Chat is
//! [`crate::chat`]; frames leave through [`crate::outbox`].
//!
//! [`HubState`]: crate::state::HubState

mod files;
mod hub;
mod join;
mod media;
mod probe;
mod refresh;
mod session;

pub use crate::outbox::{CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TOO_BIG};
pub use hub::{Hub, HubConfig, REASON_SESSION_ENDED};

#[cfg(test)]
mod tests;
