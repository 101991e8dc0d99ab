//! Secrets and tokens: random opaque tokens (sessions, invitations), their SHA-256 digests, and
//! the short-lived HS256 join tokens the signalling server accepts.
//!
//! Invariants: join tokens are HS256 only (no `none`, no algorithm confusion), carry `aud`, `iss`,
//! `iat`, `nbf` and `exp`, and are checked against the injected clock with at most 5 s leeway; a
//! staff token carries its login session's row id (`sid`) and is refused at join once that
//! session has ended ([`Clinic::verify_join_token_live`]).

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::auth::CurrentStaff;
use crate::error::ApiResult;
use crate::ids::{
    AppointmentId, DepartmentId, GuestInvitationId, OrganisationId, SessionId, StaffId,
    WalkInVisitId,
};
use crate::org_settings::JoinPermissions;
use crate::waiting_room::WaitingRoomRef;
use crate::{Clinic, Route};

/// `aud` of every join token.
pub const JOIN_AUDIENCE: &str = "consultroom-signalling";
/// `iss` of every join token.
pub const JOIN_ISSUER: &str = "consultroom";
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const JOIN_LEEWAY_SECS: i64 = 5;
/// Join tokens longer than this are refused before parsing.
const MAX_TOKEN_LEN: usize = 4096;

/// 256 random bits, base64url without padding.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes[..]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a token, as stored in the database.
pub(crate) fn sha256(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
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

/// Why a join token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoinTokenError {
    /// Well-formed and correctly signed, but past `exp` (plus leeway).
    #[error("join token expired")]
    Expired,
    /// Anything else: bad signature, algorithm, audience, issuer, shape, or not yet valid.
    #[error("invalid join token")]
    Invalid,
}

#[derive(Serialize, Deserialize)]
struct WireClaims {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    #[serde(flatten)]
    claims: JoinClaims,
}

/// HMAC keys for join tokens, derived once from the configured secret.
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

impl Clinic {
    /// Signs a join token for `claims`, valid from now for the configured TTL (120 s by default).
    /// Returns the token and its expiry.
    pub fn issue_join_token(&self, claims: JoinClaims) -> anyhow::Result<(String, DateTime<Utc>)> {
        let now = self.now();
        let expires_at = now + self.config().join_token_ttl;
        let wire = WireClaims {
            aud: JOIN_AUDIENCE.to_owned(),
            iss: JOIN_ISSUER.to_owned(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
            claims,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &wire,
            &self.join_keys().encoding,
        )?;
        Ok((token, expires_at))
    }

    /// Verifies a join token (HS256 only; `aud`, `iss`, `exp`, `nbf` checked against the clinic's
    /// clock with ≤ 5 s leeway) and returns its claims. It does not look at a staff token's
    /// session: whoever admits with a token uses [`Clinic::verify_join_token_live`].
    pub fn verify_join_token(&self, token: &str) -> Result<JoinClaims, JoinTokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JoinTokenError::Invalid);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_audience(&[JOIN_AUDIENCE]);
        validation.set_issuer(&[JOIN_ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
        // Time is checked below against the injected clock instead of the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let data =
            jsonwebtoken::decode::<WireClaims>(token, &self.join_keys().decoding, &validation)
                .map_err(|_| JoinTokenError::Invalid)?;
        let now = self.now().timestamp();
        let wire = data.claims;
        if wire.nbf > now + JOIN_LEEWAY_SECS || wire.iat > now + JOIN_LEEWAY_SECS {
            return Err(JoinTokenError::Invalid);
        }
        if wire.exp < now - JOIN_LEEWAY_SECS {
            return Err(JoinTokenError::Expired);
        }
        Ok(wire.claims)
    }

    /// [`Clinic::verify_join_token`], and for a staff token also that the login session it was
    /// minted under is still live: a database read, so it holds on every node. A token whose
    /// session has ended (logout) is `Invalid`; so is one whose session cannot be read (fail
    /// closed; the failure is logged).
    pub async fn verify_join_token_live(&self, token: &str) -> Result<JoinClaims, JoinTokenError> {
        let claims = self.verify_join_token(token)?;
        if let JoinClaims::Staff(s) = &claims {
            match self.staff_session_live(s.session_id).await {
                Ok(true) => {}
                Ok(false) => return Err(JoinTokenError::Invalid),
                Err(e) => {
                    tracing::error!(error = %e, "reading a join token's session failed");
                    return Err(JoinTokenError::Invalid);
                }
            }
        }
        Ok(claims)
    }
}

/// Routes of this module (relative to `/api/v1`).
pub(crate) fn routes() -> Vec<Route> {
    vec![Route::new(
        "POST",
        "/signalling/token",
        post(signalling_token),
    )]
}

async fn signalling_token(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
) -> ApiResult<Json<serde_json::Value>> {
    let staff = current.staff;
    let permissions = clinic
        .organisation_settings(staff.organisation_id)
        .await?
        .permissions();
    let (token, expires_at) = clinic.issue_join_token(JoinClaims::Staff(StaffJoin {
        staff_id: staff.id,
        organisation_id: staff.organisation_id,
        display_name: staff.name,
        department_ids: staff.department_id.into_iter().collect(),
        permissions,
        session_id: current.session_id,
    }))?;
    Ok(Json(json!({
        "token": token,
        "expires_at": expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    })))
}
