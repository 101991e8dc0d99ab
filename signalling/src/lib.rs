//! Real-time plane: the WebSocket protocol, waiting rooms and consultations.
//!
//! Invariant: signalling knows nothing of SQL or JWT. Callers are authenticated through a
//! [`TokenVerifier`] supplied by the composing binary (the clinic service mints the tokens), and
//! media goes through the `sfu` crate's command API.

pub mod chat;
pub mod files;
mod metrics;
mod outbox;
pub mod protocol;
pub mod state;
pub mod ws;

pub use ws::{Hub, HubConfig};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

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
        permissions: Permissions,
        /// An opaque key of the login session the token was minted under (never the session's
        /// cookie). When that session ends, [`Hub::end_staff_session`] closes every connection
        /// joined with it.
        session: String,
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
    pub permissions: Permissions,
}

impl Identity {
    /// What this connection may do, as the organisation's settings allowed when its token was
    /// minted.
    pub fn permissions(&self) -> Permissions {
        match self {
            Identity::Staff { permissions, .. } => *permissions,
            Identity::Patient(p) => p.permissions,
        }
    }
}

/// Organisation-level permissions carried by a join token and enforced by the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permissions {
    /// May publish a screen-share track.
    pub screen_share: bool,
    /// May send files in a consultation.
    pub file_sharing: bool,
    /// Waiting patients may chat.
    pub chat_in_waiting_room: bool,
}

impl Default for Permissions {
    /// Everything allowed: the product's defaults when no organisation setting says otherwise.
    fn default() -> Self {
        Self {
            screen_share: true,
            file_sharing: true,
            chat_in_waiting_room: true,
        }
    }
}

impl PatientIdentity {
    /// The key that identifies the same visit across connections (reconnects, second tabs).
    pub fn visit_key(&self) -> &str {
        match &self.visit {
            Visit::Appointment { appointment_id, .. } => appointment_id,
            Visit::WalkIn { visit_id } => visit_id,
            Visit::Guest { guest_id, .. } => guest_id,
        }
    }

    /// The appointment this identity is a guest of, if it is a guest.
    pub fn guest_of(&self) -> Option<&str> {
        match &self.visit {
            Visit::Guest { appointment_id, .. } => Some(appointment_id),
            _ => None,
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
    /// A guest of an appointment (colleague, family, interpreter; issue #4): admitted into the
    /// consultation only while the appointment's client is in it, never in a waiting list.
    Guest {
        appointment_id: String,
        guest_id: String,
    },
}

/// A waiting room: a practitioner's own, or a department's shared one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueKey {
    Practitioner(String),
    Department(String),
}

/// What a verified token lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// A join token: waiting rooms and consultations as `identity`, until `expires_at`.
    Consultation {
        identity: Identity,
        expires_at: DateTime<Utc>,
    },
    /// A chat-only token (the invitation link outside its window, F146): chat and nothing else;
    /// it never enters a waiting room.
    ChatOnly(chat::ChatPrincipal),
}

/// Checks a token (audience, expiry, signature) once and says what it grants.
///
/// Asynchronous so that a verifier can look at its database: the clinic refuses a staff token
/// whose login session has ended (logout), which no signature check can see.
pub trait TokenVerifier: Send + Sync + 'static {
    fn verify<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Verified, TokenError>>;
}

/// Mints the successor of a join token the hub holds for a joined connection (the token it
/// joined with, or the last one pushed), so a participant who drops can resume with a valid
/// token (`token_refresh`). Opaque to the hub: it never looks inside a token.
pub trait TokenRefresher: Send + Sync + 'static {
    /// The new token and its expiry; `None` when the identity's seat is no longer valid (visit
    /// over, guest revoked, staff session ended) or the refresh failed: no more refreshes then.
    fn refresh<'a>(&'a self, held: &'a str) -> BoxFuture<'a, Option<(String, DateTime<Utc>)>>;
}

/// Why a join token was refused. Deliberately coarse: the client only learns "invalid".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
}
