//! Refreshing a connected participant's join token (issue #11): the hub holds the token each
//! connection joined with (or was last given) and asks for its successor before it expires, so
//! that a participant who drops can resume their seat with a valid token — also after the
//! invitation window has closed (a consultation that runs past start + 60 min), when resolving
//! the link again is refused.

use chrono::{DateTime, Utc};

use crate::Clinic;
use crate::tokens::{Grant, JoinClaims, TimeCheck};

impl Clinic {
    /// The successor of `held`, a join token the signalling hub verified at join (or minted here
    /// before) and keeps for a connection that is still open: the same claims with the
    /// organisation's current permissions, valid from now for the join-token TTL. `held` is not
    /// checked against the clock (the hub may ask late; it never passes a token from the
    /// network), but its signature, audience and issuer are.
    ///
    /// `Ok(None)` when the seat is no longer valid: a staff login session that ended, a revoked
    /// guest, a cancelled or completed appointment, a walk-in visit no longer waiting, or a token
    /// that is not a join token.
    pub async fn refresh_join_token(
        &self,
        held: &str,
    ) -> anyhow::Result<Option<(String, DateTime<Utc>)>> {
        let Ok((Grant::Join(mut claims), _)) = self.decode_token(held, TimeCheck::Ignore) else {
            return Ok(None);
        };
        let store = self.store();
        let org = claims.organisation_id();
        let live = match &claims {
            JoinClaims::Staff(s) => self.staff_session_live(s.session_id).await?,
            JoinClaims::Patient(p) => store
                .appointment_seat(org, p.appointment_id)
                .await?
                .is_some_and(|r| r.status == "scheduled"),
            JoinClaims::Guest(g) => store
                .guest_seat(org, g.guest_id)
                .await?
                .is_some_and(|r| r.status == "scheduled"),
            JoinClaims::WalkIn(w) => store
                .visit_seat(org, w.visit_id)
                .await?
                .is_some_and(|r| r.status == "waiting"),
        };
        if !live {
            return Ok(None);
        }
        let permissions = self.organisation_settings(org).await?.permissions();
        match &mut claims {
            JoinClaims::Staff(s) => s.permissions = permissions,
            JoinClaims::Patient(p) => p.permissions = permissions,
            JoinClaims::Guest(g) => g.permissions = permissions,
            JoinClaims::WalkIn(w) => w.permissions = permissions,
        }
        Ok(Some(self.issue_join_token(claims)?))
    }
}
