//! Staff join tokens: `POST /signalling/token` mints one under the caller's login session, and
//! a staff token is accepted at join only while that session is live.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::CurrentStaff;
use crate::Clinic;
use crate::error::ApiResult;
use crate::tokens::{Grant, JoinClaims, JoinTokenError, StaffJoin};

impl Clinic {
    /// [`Clinic::verify_token`], and for a staff join token also that the login session it was
    /// minted under is still live: a database read, so it holds on every node. A token whose
    /// session has ended (logout) is `Invalid`; so is one whose session cannot be read (fail
    /// closed; the failure is logged).
    pub async fn verify_token_live(
        &self,
        token: &str,
    ) -> Result<(Grant, DateTime<Utc>), JoinTokenError> {
        let verified = self.verify_token(token)?;
        if let (Grant::Join(JoinClaims::Staff(s)), _) = &verified {
            match self.staff_session_live(s.session_id).await {
                Ok(true) => {}
                Ok(false) => return Err(JoinTokenError::Invalid),
                Err(e) => {
                    tracing::error!(error = %e, "reading a join token's session failed");
                    return Err(JoinTokenError::Invalid);
                }
            }
        }
        Ok(verified)
    }

    /// [`Clinic::verify_token_live`] for a join token only (a chat-only token is `Invalid`).
    pub async fn verify_join_token_live(&self, token: &str) -> Result<JoinClaims, JoinTokenError> {
        match self.verify_token_live(token).await? {
            (Grant::Join(claims), _) => Ok(claims),
            (Grant::Chat(_), _) => Err(JoinTokenError::Invalid),
        }
    }
}

/// A staff member's join token (`POST /signalling/token`).
#[derive(Serialize)]
pub(crate) struct SignallingToken {
    token: String,
    expires_at: String,
}

pub(crate) async fn signalling_token(
    State(clinic): State<Clinic>,
    current: CurrentStaff,
) -> ApiResult<Json<SignallingToken>> {
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
    Ok(Json(SignallingToken {
        token,
        expires_at: expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    }))
}
