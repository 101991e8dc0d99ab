//! Real-time plane: the WebSocket protocol, waiting rooms and consultations.
//!
//! Invariant: signalling knows nothing of SQL or JWT. Callers are authenticated through a
//! [`TokenVerifier`] supplied by the composing binary (the clinic service mints the tokens), and
//! media goes through the `sfu` crate's command API.

mod metrics;
pub mod protocol;
pub mod state;
pub mod ws;

pub use ws::{Hub, HubConfig};

use chrono::{DateTime, Utc};

/// Who is on the other end of a WebSocket, established from a verified join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A staff member (practitioner or admin). They own a waiting room keyed by `staff_id`.
    Staff {
        staff_id: String,
        organisation_id: String,
        display_name: String,
    },
    /// A patient joining through an appointment invitation.
    Patient {
        appointment_id: String,
        organisation_id: String,
        /// The waiting room (practitioner) they wait for.
        practitioner_id: String,
        display_name: String,
        appointment_starts_at: DateTime<Utc>,
    },
}

/// Checks a join token (audience, expiry, signature) and says who it belongs to.
pub trait TokenVerifier: Send + Sync + 'static {
    fn verify(&self, token: &str) -> Result<Identity, TokenError>;
}

/// Why a join token was refused. Deliberately coarse: the client only learns "invalid".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
}
