//! The links an appointment's participants get: the client's invitation link and each guest's,
//! derived from the server secret and the row id ([`crate::secrets::derived_token`]), so they can
//! be shown again and mailed again without storing the tokens.

use crate::Clinic;
use crate::error::ApiResult;
use crate::ids::{AppointmentId, GuestInvitationId, InvitationId};
use crate::links::GUEST_PREFIX;
use crate::secrets::{digest_eq, sha256};

/// Label of derived invitation tokens.
pub(crate) const INVITATION_LABEL: &str = "invitation";
/// Label of derived guest tokens.
pub(crate) const GUEST_LABEL: &str = "guest";

/// The client's invitation link of a booked appointment, when it can be rebuilt (appointments
/// booked before links were derived from the server secret have none).
pub(crate) async fn client_link(clinic: &Clinic, id: AppointmentId) -> ApiResult<Option<String>> {
    Ok(clinic
        .store()
        .invitation_digests(id)
        .await?
        .into_iter()
        .map(|(invitation_id, digest)| {
            (
                clinic.link_token(INVITATION_LABEL, &invitation_id.to_string()),
                digest,
            )
        })
        .find(|(token, digest)| digest_eq(&sha256(token), digest))
        .map(|(token, _)| clinic.invitation_url(&token)))
}

/// The link of invitation `id` (derived, as the booking stores it).
pub(crate) fn invitation_link(clinic: &Clinic, id: InvitationId) -> String {
    clinic.invitation_url(&clinic.link_token(INVITATION_LABEL, &id.to_string()))
}

/// The link of guest invitation `id`.
pub(crate) fn guest_link(clinic: &Clinic, id: GuestInvitationId) -> String {
    format!(
        "{}/join#{GUEST_PREFIX}{}",
        clinic.config().public_url,
        clinic.link_token(GUEST_LABEL, &id.to_string())
    )
}
