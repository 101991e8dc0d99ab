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
    /// A staff member (practitioner or admin). They see their own waiting room (keyed by
    /// `staff_id`) and the waiting rooms of their departments.
    Staff {
        staff_id: String,
        organisation_id: String,
        display_name: String,
        department_ids: Vec<String>,
    },
    /// A patient (appointment invitation or walk-in visit).
    Patient(PatientIdentity),
}

/// A patient's identity: who, why, and which waiting room they go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientIdentity {
    pub organisation_id: String,
    pub display_name: String,
    pub visit: Visit,
    pub queue: QueueKey,
}

impl PatientIdentity {
    /// The key that identifies the same visit across connections (reconnects, second tabs).
    pub fn visit_key(&self) -> &str {
        match &self.visit {
            Visit::Appointment { appointment_id, .. } => appointment_id,
            Visit::WalkIn { visit_id } => visit_id,
        }
    }
}

/// Why a patient is here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visit {
    /// A booked appointment.
    Appointment {
        appointment_id: String,
        starts_at: DateTime<Utc>,
        duration_minutes: u32,
    },
    /// A walk-in visitor from the widget.
    WalkIn { visit_id: String },
}

/// A waiting room: a practitioner's own, or a department's shared one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueKey {
    Practitioner(String),
    Department(String),
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
