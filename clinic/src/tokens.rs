//! Signed tokens: one HS256 token type with two audiences — a *join* token (a seat in the
//! signalling hub: staff, patient, walk-in or guest) and a *chat-only* token (an appointment's
//! chat outside its window, F146, which never opens a waiting room). One issue path and one
//! verify path serve both; the audience decides which claims a token carries.
//!
//! Random opaque tokens and their digests live in [`crate::secrets`]; the staff-session check of
//! a staff join token in [`crate::auth`] ([`Clinic::verify_token_live`]).
//!
//! Invariants: tokens are HS256 only (no `none`, no algorithm confusion), carry `aud`, `iss`,
//! `iat`, `nbf` and `exp`, and are checked against the injected clock with at most 5 s leeway; a
//! token of one audience is never accepted where the other is expected; a staff token carries
//! its login session's row id (`sid`).

use chrono::{DateTime, TimeZone, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::Clinic;
use crate::ids::{
    AppointmentId, DepartmentId, GuestInvitationId, OrganisationId, SessionId, StaffId,
    WalkInVisitId,
};
use crate::org_settings::JoinPermissions;
use crate::waiting_room::WaitingRoomRef;

/// `aud` of every join token.
pub const JOIN_AUDIENCE: &str = "consultroom-signalling";
/// `aud` of chat-only tokens (distinct from join tokens: they never open a waiting room).
pub const CHAT_AUDIENCE: &str = "consultroom-chat";
/// `iss` of every token.
pub const JOIN_ISSUER: &str = "consultroom";
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const JOIN_LEEWAY_SECS: i64 = 5;
/// Tokens longer than this are refused before parsing.
const MAX_TOKEN_LEN: usize = 4096;

/// What a verified token grants: a seat (join audience) or an appointment's chat (chat audience).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// A join token's claims.
    Join(JoinClaims),
    /// A chat-only token's claims.
    Chat(ChatClaims),
}

/// Claims of a chat-only token: the appointment whose chat it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatClaims {
    /// The appointment's organisation.
    pub organisation_id: OrganisationId,
    /// The appointment.
    pub appointment_id: AppointmentId,
}

/// What a join token grants, by kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JoinClaims {
    /// A staff user (from `POST /signalling/token`).
    Staff(StaffJoin),
    /// A patient admitted through an invitation (from `POST /invitations/resolve`).
    Patient(PatientJoin),
    /// A walk-in visitor who completed a widget's intake (from `POST /invitations/resolve` with
    /// a `w.` visit token).
    WalkIn(WalkInJoin),
    /// A guest of one appointment (colleague, family, interpreter), from `POST
    /// /invitations/resolve` with a `g.` guest token.
    Guest(GuestJoin),
}

impl JoinClaims {
    /// The organisation the token is bound to.
    pub fn organisation_id(&self) -> OrganisationId {
        match self {
            JoinClaims::Staff(s) => s.organisation_id,
            JoinClaims::Patient(p) => p.organisation_id,
            JoinClaims::WalkIn(w) => w.organisation_id,
            JoinClaims::Guest(g) => g.organisation_id,
        }
    }

    /// The name to show to other participants.
    pub fn display_name(&self) -> &str {
        match self {
            JoinClaims::Staff(s) => &s.display_name,
            JoinClaims::Patient(p) => &p.display_name,
            JoinClaims::WalkIn(w) => &w.display_name,
            JoinClaims::Guest(g) => &g.display_name,
        }
    }
}

/// Claims of a staff join token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffJoin {
    /// The staff user.
    pub staff_id: StaffId,
    /// Their organisation.
    pub organisation_id: OrganisationId,
    /// Their display name.
    pub display_name: String,
    /// The departments whose shared waiting rooms they watch and admit from: their own
    /// department, if any. An organisation admin watches no department room unless they belong
    /// to that department (admins manage every room through the HTTP API, but are not meant to
    /// receive every department's arrivals). Absent in tokens minted before this field existed.
    #[serde(default)]
    pub department_ids: Vec<DepartmentId>,
    /// What the organisation's settings allowed when the token was minted.
    #[serde(default)]
    pub permissions: JoinPermissions,
    /// The login session the token was minted under (its row id, not the cookie's secret). A
    /// staff token without it (minted before this claim existed) is invalid.
    #[serde(rename = "sid")]
    pub session_id: SessionId,
}

/// Claims of a patient join token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "PatientJoinWire")]
pub struct PatientJoin {
    /// The appointment the patient was invited to.
    pub appointment_id: AppointmentId,
    /// The appointment's organisation.
    pub organisation_id: OrganisationId,
    /// The practitioner the patient will meet.
    pub practitioner_id: StaffId,
    /// The patient's display name.
    pub display_name: String,
    /// Scheduled start of the appointment.
    pub appointment_starts_at: DateTime<Utc>,
    /// Planned length of the appointment (0 in tokens minted before this field existed).
    #[serde(default)]
    pub duration_minutes: u32,
    /// The room the patient waits in: the practitioner's, or the department's shared room.
    /// Tokens minted before this field existed mean the practitioner's room.
    pub waiting_room: WaitingRoomRef,
    /// What the organisation's settings allowed when the token was minted.
    pub permissions: JoinPermissions,
}

/// The wire form of [`PatientJoin`], so that `waiting_room` can default to the practitioner's
/// room when absent.
#[derive(Deserialize)]
struct PatientJoinWire {
    appointment_id: AppointmentId,
    organisation_id: OrganisationId,
    practitioner_id: StaffId,
    display_name: String,
    appointment_starts_at: DateTime<Utc>,
    #[serde(default)]
    duration_minutes: u32,
    #[serde(default)]
    waiting_room: Option<WaitingRoomRef>,
    #[serde(default)]
    permissions: JoinPermissions,
}

impl From<PatientJoinWire> for PatientJoin {
    fn from(w: PatientJoinWire) -> Self {
        PatientJoin {
            appointment_id: w.appointment_id,
            organisation_id: w.organisation_id,
            practitioner_id: w.practitioner_id,
            display_name: w.display_name,
            appointment_starts_at: w.appointment_starts_at,
            duration_minutes: w.duration_minutes,
            waiting_room: w
                .waiting_room
                .unwrap_or(WaitingRoomRef::Practitioner(w.practitioner_id)),
            permissions: w.permissions,
        }
    }
}

/// Claims of a walk-in visitor's join token: they wait in the practitioner's own waiting room
/// and are shown as a walk-in (yellow).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalkInJoin {
    /// The walk-in visit.
    pub visit_id: WalkInVisitId,
    /// The organisation of the widget.
    pub organisation_id: OrganisationId,
    /// The practitioner the visitor chose.
    pub practitioner_id: StaffId,
    /// The visitor's display name (from the intake, or a neutral default).
    pub display_name: String,
    /// What the organisation's settings allowed when the token was minted.
    #[serde(default)]
    pub permissions: JoinPermissions,
}

/// Claims of a guest's join token: an extra participant of one appointment, who gets in only
/// while the appointment's client is in the consultation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestJoin {
    /// The appointment the guest was invited to.
    pub appointment_id: AppointmentId,
    /// The appointment's organisation.
    pub organisation_id: OrganisationId,
    /// The appointment's practitioner.
    pub practitioner_id: StaffId,
    /// The guest's display name (as the inviting staff member typed it).
    pub display_name: String,
    /// The guest invitation.
    pub guest_id: GuestInvitationId,
    /// What the organisation's settings allowed when the token was minted.
    #[serde(default)]
    pub permissions: JoinPermissions,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoinTokenError {
    /// Well-formed and correctly signed, but past `exp` (plus leeway).
    #[error("join token expired")]
    Expired,
    /// Anything else: bad signature, algorithm, audience, issuer, shape, or not yet valid.
    #[error("invalid join token")]
    Invalid,
}

/// The registered claims every token carries.
#[derive(Serialize, Deserialize)]
struct Registered {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

/// A token on the wire: registered claims and the audience's own claims, side by side.
#[derive(Serialize, Deserialize)]
struct Wire<C> {
    #[serde(flatten)]
    registered: Registered,
    #[serde(flatten)]
    claims: C,
}

/// HMAC keys for tokens, derived once from the configured secret.
pub(crate) struct JoinKeys {
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
}

impl JoinKeys {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

/// Whether [`Clinic::decode_token`] checks `nbf`/`exp` against the clock.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeCheck {
    /// Requests: the token must be valid now.
    Now,
    /// A token the hub verified at join and kept (never one from the network): only its
    /// signature, audience and issuer, for minting its successor ([`crate::links`]).
    Ignore,
}

impl Clinic {
    /// Signs a token for `grant`, valid from now for the configured TTL (120 s by default), with
    /// the grant's audience. Returns the token and its expiry.
    pub fn issue_token(&self, grant: &Grant) -> anyhow::Result<(String, DateTime<Utc>)> {
        let now = self.now();
        let expires_at = now + self.config().join_token_ttl;
        let registered = |aud: &str| Registered {
            aud: aud.to_owned(),
            iss: JOIN_ISSUER.to_owned(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let header = Header::new(Algorithm::HS256);
        let key = &self.join_keys().encoding;
        let token = match grant {
            Grant::Join(claims) => jsonwebtoken::encode(
                &header,
                &Wire {
                    registered: registered(JOIN_AUDIENCE),
                    claims,
                },
                key,
            )?,
            Grant::Chat(claims) => jsonwebtoken::encode(
                &header,
                &Wire {
                    registered: registered(CHAT_AUDIENCE),
                    claims,
                },
                key,
            )?,
        };
        Ok((token, expires_at))
    }

    /// Signs a join token for `claims` ([`Clinic::issue_token`] with the join audience).
    pub fn issue_join_token(&self, claims: JoinClaims) -> anyhow::Result<(String, DateTime<Utc>)> {
        self.issue_token(&Grant::Join(claims))
    }

    /// Verifies a token of either audience (HS256 only; `aud`, `iss`, `exp`, `nbf` checked
    /// against the clinic's clock with ≤ 5 s leeway) and returns what it grants and its expiry.
    /// It does not look at a staff token's session: whoever admits with a token uses
    /// [`Clinic::verify_token_live`].
    pub fn verify_token(&self, token: &str) -> Result<(Grant, DateTime<Utc>), JoinTokenError> {
        self.decode_token(token, TimeCheck::Now)
    }

    /// [`Clinic::verify_token`] for a join token only (a chat-only token is `Invalid`).
    pub fn verify_join_token(&self, token: &str) -> Result<JoinClaims, JoinTokenError> {
        match self.verify_token(token)? {
            (Grant::Join(claims), _) => Ok(claims),
            (Grant::Chat(_), _) => Err(JoinTokenError::Invalid),
        }
    }

    /// [`Clinic::verify_token`] for a chat-only token only: the organisation and appointment it
    /// grants chat for.
    pub fn verify_chat_token(&self, token: &str) -> Option<(OrganisationId, AppointmentId)> {
        match self.verify_token(token) {
            Ok((Grant::Chat(c), _)) => Some((c.organisation_id, c.appointment_id)),
            _ => None,
        }
    }

    pub(crate) fn decode_token(
        &self,
        token: &str,
        time: TimeCheck,
    ) -> Result<(Grant, DateTime<Utc>), JoinTokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JoinTokenError::Invalid);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_audience(&[JOIN_AUDIENCE, CHAT_AUDIENCE]);
        validation.set_issuer(&[JOIN_ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
        // Time is checked below against the injected clock instead of the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<serde_json::Value>(
            token,
            &self.join_keys().decoding,
            &validation,
        )
        .map_err(|_| JoinTokenError::Invalid)?;
        let value = data.claims;
        let registered = Registered::deserialize(&value).map_err(|_| JoinTokenError::Invalid)?;
        let grant = match registered.aud.as_str() {
            JOIN_AUDIENCE => {
                Grant::Join(JoinClaims::deserialize(&value).map_err(|_| JoinTokenError::Invalid)?)
            }
            CHAT_AUDIENCE => {
                Grant::Chat(ChatClaims::deserialize(&value).map_err(|_| JoinTokenError::Invalid)?)
            }
            _ => return Err(JoinTokenError::Invalid),
        };
        let expires_at = Utc
            .timestamp_opt(registered.exp, 0)
            .single()
            .ok_or(JoinTokenError::Invalid)?;
        if time == TimeCheck::Now {
            let now = self.now().timestamp();
            if registered.nbf > now + JOIN_LEEWAY_SECS || registered.iat > now + JOIN_LEEWAY_SECS {
                return Err(JoinTokenError::Invalid);
            }
            if registered.exp < now - JOIN_LEEWAY_SECS {
                return Err(JoinTokenError::Expired);
            }
        }
        Ok((grant, expires_at))
    }
}
