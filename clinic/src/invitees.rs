//! Who a guest link is for (issue #4, F74): an ad-hoc name, an external participant record, or
//! a group of them. Used when guests are added to an appointment (`crate::guests`) and when they
//! are invited with the booking (`crate::appointments`); a leaf, so neither depends on the other.
//!
//! Invariant: everything is looked up in the caller's organisation (another's record or group is
//! a 404); guest names are never logged.

use serde::{Deserialize, Serialize};

use crate::Clinic;
use crate::error::{ApiError, ApiResult};
use crate::ids::{ExternalParticipantId, OrganisationId, ParticipantGroupId};

/// Longest guest display name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 100;

/// Who to invite: exactly one of a name (an ad-hoc guest), an external participant record, or a
/// group of them (one link per member not yet invited).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub(crate) struct Invitee {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) external_participant_id: Option<String>,
    #[serde(default)]
    pub(crate) group_id: Option<String>,
}

/// The people to invite: (display name, record).
pub(crate) async fn invitees(
    clinic: &Clinic,
    org: OrganisationId,
    req: Invitee,
) -> ApiResult<Vec<(String, Option<ExternalParticipantId>)>> {
    let store = clinic.store();
    match (req.name, req.external_participant_id, req.group_id) {
        (Some(name), None, None) => Ok(vec![(valid_name(&name)?, None)]),
        (None, Some(id), None) => {
            let id: ExternalParticipantId = id
                .parse()
                .map_err(|_| ApiError::NotFound("external participant"))?;
            let p = store
                .external_participant(org, id)
                .await?
                .ok_or(ApiError::NotFound("external participant"))?;
            Ok(vec![(guest_name(&p.name), Some(p.id))])
        }
        (None, None, Some(group)) => {
            let group: ParticipantGroupId =
                group.parse().map_err(|_| ApiError::NotFound("group"))?;
            if store.existing_groups(org, &[group]).await? == 0 {
                return Err(ApiError::NotFound("group"));
            }
            let members = store.list_external_participants(org, Some(group)).await?;
            if members.is_empty() {
                return Err(ApiError::invalid("the group has no members"));
            }
            Ok(members
                .into_iter()
                .map(|p| (guest_name(&p.name), Some(p.id)))
                .collect())
        }
        _ => Err(ApiError::invalid(
            "give exactly one of name, external_participant_id and group_id",
        )),
    }
}

/// A record's name as a guest's display name (records allow 200 characters, guests 100).
fn guest_name(name: &str) -> String {
    name.chars().take(MAX_NAME_CHARS).collect()
}

/// A guest's display name: trimmed, 1–100 characters, no control characters.
fn valid_name(raw: &str) -> ApiResult<String> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(ApiError::invalid(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(valid_name("  Ann  ").unwrap(), "Ann");
        assert!(valid_name("").is_err());
        assert!(valid_name("   ").is_err());
        assert!(valid_name("a\u{7}b").is_err());
        assert!(valid_name("a\nb").is_err());
        assert!(valid_name(&"é".repeat(100)).is_ok());
        assert!(valid_name(&"é".repeat(101)).is_err());
    }
}
