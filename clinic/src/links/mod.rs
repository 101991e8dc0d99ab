//! Links: every link a patient or guest holds, parsed and resolved in one place (issue #11).
//!
//! A link's token travels in the URL fragment (`/join#<token>`): an appointment invitation is
//! the bare token, a guest link `g.<token>`, a walk-in visit `w.<token>`. [`parse`] reads the
//! kind prefix and checks the shape (≤ 128 characters, base64url) before anything is looked up;
//! [`resolve`] hashes the token, loads its row, compares the digest in constant time and checks
//! the status and the window, and returns a typed [`Link`]. `POST /invitations/resolve` turns a
//! link into a join token ([`http`]); `POST /invitations/chat` (in [`crate::chat`]) turns an
//! invitation into a chat-only token through [`resolve_for_chat`]. [`refresh`] mints the
//! successor of a join token the hub holds for a connected participant, as long as their seat is
//! still valid — also after the invitation window, which only governs *entering* by link.
//!
//! Invariants: only SHA-256 digests of link tokens are stored; refusals (unknown, revoked,
//! cancelled, too early, expired) reveal no patient, practitioner or clinic data and are the
//! same for every kind; tokens are never logged.

mod db;
pub(crate) mod http;
mod refresh;

use chrono::{DateTime, Duration, Utc};

use crate::Clinic;
use crate::error::{ApiError, ApiResult};
use crate::ids::{
    AppointmentId, DepartmentId, GuestInvitationId, OrganisationId, StaffId, WalkInVisitId,
};
use crate::secrets::{digest_eq, sha256};
use crate::templates::Language;

/// Guest links carry this prefix before their token (`/join#g.<token>`).
pub const GUEST_PREFIX: &str = "g.";
/// Walk-in visit links carry this prefix before their token (`/join#w.<token>`).
pub const VISIT_PREFIX: &str = "w.";
/// Longest token (after the prefix) worth looking up: ours are 43 characters.
const MAX_TOKEN_CHARS: usize = 128;
/// How long after the appointment its invitation link still opens the chat (F146).
pub const CHAT_LINK_DAYS: i64 = 30;

/// The kind of a link, from its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An appointment's invitation (no prefix).
    Invitation,
    /// A guest of an appointment (`g.`).
    Guest,
    /// A walk-in visit (`w.`).
    WalkIn,
}

/// A link token that has the right shape: its kind and its digest.
pub(crate) struct Parsed {
    pub(crate) kind: Kind,
    hash: Vec<u8>,
}

/// Reads a link's kind and checks its shape; anything that cannot be one of ours is
/// `invitation_not_found` without a lookup.
pub(crate) fn parse(raw: &str) -> ApiResult<Parsed> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (kind, token) = if let Some(t) = raw.strip_prefix(VISIT_PREFIX) {
        (Kind::WalkIn, t)
    } else if let Some(t) = raw.strip_prefix(GUEST_PREFIX) {
        (Kind::Guest, t)
    } else {
        (Kind::Invitation, raw)
    };
    if token.len() > MAX_TOKEN_CHARS || URL_SAFE_NO_PAD.decode(token.as_bytes()).is_err() {
        return Err(ApiError::InvitationNotFound);
    }
    Ok(Parsed {
        kind,
        hash: sha256(token),
    })
}

/// The appointment behind an invitation or guest link.
#[derive(sqlx::FromRow)]
pub(crate) struct AppointmentInfo {
    pub(crate) appointment_id: AppointmentId,
    pub(crate) organisation_id: OrganisationId,
    pub(crate) practitioner_id: StaffId,
    pub(crate) practitioner_name: String,
    pub(crate) starts_at: DateTime<Utc>,
    pub(crate) duration_minutes: i32,
    pub(crate) department_id: Option<DepartmentId>,
    /// `practitioner` or `department`.
    pub(crate) waiting_room: String,
}

/// A link that may enter now (status and window checked).
pub(crate) enum Link {
    /// The client of an appointment.
    Invitation {
        appointment: AppointmentInfo,
        client_name: String,
        /// The client's language: the patient page's language unless the patient chose one.
        client_language: Language,
    },
    /// A guest of an appointment.
    Guest {
        appointment: AppointmentInfo,
        guest_id: GuestInvitationId,
        display_name: String,
    },
    /// A walk-in visitor.
    WalkIn(WalkInInfo),
}

/// A walk-in visit behind a `w.` link.
#[derive(sqlx::FromRow)]
pub(crate) struct WalkInInfo {
    pub(crate) visit_id: WalkInVisitId,
    pub(crate) organisation_id: OrganisationId,
    pub(crate) practitioner_id: StaffId,
    pub(crate) practitioner_name: String,
    pub(crate) display_name: String,
    pub(crate) expires_at: DateTime<Utc>,
}

/// Where `now` falls relative to an appointment's invitation window.
#[derive(Debug, PartialEq, Eq)]
enum Window {
    /// Before `opens_at`.
    TooEarly(DateTime<Utc>),
    /// Inside, bounds included.
    Open,
    /// After the close.
    Expired,
}

fn window(clinic: &Clinic, starts_at: DateTime<Utc>, now: DateTime<Utc>) -> Window {
    let opens_at = starts_at - clinic.config().invitation_before;
    let closes_at = starts_at + clinic.config().invitation_after;
    if now < opens_at {
        Window::TooEarly(opens_at)
    } else if now > closes_at {
        Window::Expired
    } else {
        Window::Open
    }
}

/// An appointment link may enter: not cancelled or completed, and inside its window.
fn check_appointment(clinic: &Clinic, a: &AppointmentInfo, status: &str) -> ApiResult<()> {
    match status {
        "cancelled" => return Err(ApiError::InvitationCancelled),
        "completed" => return Err(ApiError::InvitationExpired),
        _ => {}
    }
    match window(clinic, a.starts_at, clinic.now()) {
        Window::TooEarly(opens_at) => Err(ApiError::InvitationTooEarly { opens_at }),
        Window::Expired => Err(ApiError::InvitationExpired),
        Window::Open => Ok(()),
    }
}

/// Resolves a link for entering: its row by digest (compared in constant time), its status and
/// its window (a walk-in link: still waiting and not past its expiry).
pub(crate) async fn resolve(clinic: &Clinic, raw: &str) -> ApiResult<Link> {
    let parsed = parse(raw)?;
    let store = clinic.store();
    match parsed.kind {
        Kind::Invitation => {
            let row = store
                .invitation_by_hash(&parsed.hash)
                .await?
                .filter(|r| digest_eq(&r.token_hash, &parsed.hash))
                .ok_or(ApiError::InvitationNotFound)?;
            check_appointment(clinic, &row.appointment, &row.status)?;
            Ok(Link::Invitation {
                appointment: row.appointment,
                client_name: row.client_name,
                client_language: row.client_language,
            })
        }
        Kind::Guest => {
            let row = store
                .guest_by_hash(&parsed.hash)
                .await?
                .filter(|r| digest_eq(&r.token_hash, &parsed.hash))
                .ok_or(ApiError::InvitationNotFound)?;
            check_appointment(clinic, &row.appointment, &row.status)?;
            Ok(Link::Guest {
                appointment: row.appointment,
                guest_id: row.guest_invitation_id,
                display_name: row.display_name,
            })
        }
        Kind::WalkIn => {
            let row = store
                .visit_by_hash(&parsed.hash)
                .await?
                .filter(|r| digest_eq(&r.token_hash, &parsed.hash))
                .ok_or(ApiError::InvitationNotFound)?;
            if row.status != "waiting" || row.visit.expires_at < clinic.now() {
                return Err(ApiError::InvitationExpired);
            }
            Ok(Link::WalkIn(row.visit))
        }
    }
}

/// Resolves an invitation link for its chat (F146): any time from booking until
/// [`CHAT_LINK_DAYS`] after the appointment, unless cancelled. Guest and walk-in links have no
/// chat (`invitation_not_found`). Returns the appointment's organisation and id.
pub(crate) async fn resolve_for_chat(
    clinic: &Clinic,
    raw: &str,
) -> ApiResult<(OrganisationId, AppointmentId)> {
    let parsed = parse(raw)?;
    if parsed.kind != Kind::Invitation {
        return Err(ApiError::InvitationNotFound);
    }
    let row = clinic
        .store()
        .invitation_by_hash(&parsed.hash)
        .await?
        .filter(|r| digest_eq(&r.token_hash, &parsed.hash))
        .ok_or(ApiError::InvitationNotFound)?;
    if row.status == "cancelled" {
        return Err(ApiError::InvitationCancelled);
    }
    if clinic.now() > row.appointment.starts_at + Duration::days(CHAT_LINK_DAYS) {
        return Err(ApiError::InvitationExpired);
    }
    Ok((
        row.appointment.organisation_id,
        row.appointment.appointment_id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_the_kind_and_refuses_bad_shapes_without_a_lookup() {
        let t = crate::secrets::random_token();
        assert_eq!(parse(&t).unwrap().kind, Kind::Invitation);
        assert_eq!(parse(&format!("g.{t}")).unwrap().kind, Kind::Guest);
        assert_eq!(parse(&format!("w.{t}")).unwrap().kind, Kind::WalkIn);
        // The digest is of the token without its prefix.
        assert_eq!(parse(&format!("g.{t}")).unwrap().hash, sha256(&t));
        for bad in ["not base64!", "g.a b", &"A".repeat(129), "w.=="] {
            assert!(
                matches!(parse(bad), Err(ApiError::InvitationNotFound)),
                "{bad}"
            );
        }
    }
}
