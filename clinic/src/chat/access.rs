//! Chat access rules: who may read and write a channel (its practitioner, colleagues who joined
//! it, the department when the organisation shares department chats, the channel's client through
//! an appointment or as a client), where a patient may chat (waiting room, consultation, between
//! visits), and who may join (F137) or manage (F142) a channel — always from fresh rows.

use serde::Serialize;

use super::db::{ChannelRow, PartyKind};
use super::model::{ChatError, ChatPresence, ChatPrincipal, PatientAccess, api_to_chat};
use crate::Clinic;
use crate::error::ApiResult;
use crate::ids::{ChatChannelId, ClientId, DepartmentId, OrganisationId, StaffId};
use crate::org_settings::OrganisationSettings;
use crate::staff::{Role, Staff};

/// A channel the caller may use, with what the caller is in it.
pub(crate) struct Access {
    pub channel: ChannelRow,
    pub reader: (PartyKind, String),
    /// The reader's name (staff; the client's name for patients).
    pub reader_name: String,
    /// Colleagues who joined the channel (F137).
    pub members: Vec<StaffId>,
    pub settings: OrganisationSettings,
}

/// The department whose staff share a practitioner's chats, when the organisation allows it.
pub(crate) fn shared_department(
    settings: &OrganisationSettings,
    ch: &ChannelRow,
) -> Option<DepartmentId> {
    settings
        .department_chat_access
        .then_some(ch.practitioner_department_id)
        .flatten()
}

impl Clinic {
    /// Staff member `staff_id` as a chat reader of organisation `org`; another organisation's
    /// (or an unknown) staff member is `NotFound`.
    pub(crate) async fn chat_staff(
        &self,
        staff_id: StaffId,
        org: OrganisationId,
    ) -> Result<Staff, ChatError> {
        let staff = self
            .store()
            .staff_by_id(staff_id)
            .await?
            .ok_or(ChatError::NotFound)?
            .into_staff()?;
        if staff.organisation_id != org {
            return Err(ChatError::NotFound);
        }
        Ok(staff)
    }

    /// Checks that `who` (of organisation `org`) may use channel `id`.
    pub(crate) async fn chat_access(
        &self,
        who: ChatPrincipal,
        org: OrganisationId,
        id: ChatChannelId,
    ) -> Result<Access, ChatError> {
        let store = self.store();
        let channel = store
            .chat_channel(org, id)
            .await?
            .ok_or(ChatError::NotFound)?;
        let settings = self.organisation_settings(org).await.map_err(api_to_chat)?;
        let members = store.chat_members(id).await?;
        let (reader, reader_name) = match who {
            ChatPrincipal::Staff(staff_id) => {
                let staff = self.chat_staff(staff_id, org).await?;
                let allowed = channel.practitioner_id == staff_id
                    || members.contains(&staff_id)
                    || (staff.department_id.is_some()
                        && shared_department(&settings, &channel) == staff.department_id);
                if !allowed {
                    return Err(ChatError::NotFound);
                }
                ((PartyKind::Staff, staff_id.to_string()), staff.name)
            }
            ChatPrincipal::Appointment(a) => {
                let (a_org, practitioner, client, status) = store
                    .appointment_pair(a)
                    .await?
                    .ok_or(ChatError::NotFound)?;
                if a_org != org
                    || status == "cancelled"
                    || practitioner != channel.practitioner_id
                    || client != channel.client_id
                {
                    return Err(ChatError::NotFound);
                }
                (
                    (PartyKind::Client, client.to_string()),
                    channel.client_name.clone(),
                )
            }
            ChatPrincipal::Client(c) => {
                if c != channel.client_id {
                    return Err(ChatError::NotFound);
                }
                (
                    (PartyKind::Client, c.to_string()),
                    channel.client_name.clone(),
                )
            }
        };
        Ok(Access {
            channel,
            reader,
            reader_name,
            members,
            settings,
        })
    }

    /// Refuses a patient where the organisation's settings close the chat.
    pub(crate) fn chat_presence_allowed(
        settings: &OrganisationSettings,
        channel: &ChannelRow,
        presence: ChatPresence,
    ) -> Result<(), ChatError> {
        let access = PatientAccess::from_db(&channel.patient_access);
        match presence {
            ChatPresence::Staff | ChatPresence::InConsultation => Ok(()),
            ChatPresence::Waiting if settings.chat_in_waiting_room => Ok(()),
            ChatPresence::Waiting => Err(ChatError::Forbidden(
                "chat in the waiting room is not enabled by this organisation",
            )),
            ChatPresence::Away if access.open_between_visits(settings) => Ok(()),
            ChatPresence::Away if settings.continuous_chat => Err(ChatError::Forbidden(
                "chat between visits is not open for this conversation",
            )),
            ChatPresence::Away => Err(ChatError::Forbidden(
                "this organisation offers chat only during consultations",
            )),
        }
    }
}

/// One of a client's channels as a staff member sees it in the client list (F137, F138, F142):
/// who it is with and what the caller may do — no messages, no unread counts.
#[derive(Serialize)]
pub(crate) struct AccessEntry {
    pub channel_id: ChatChannelId,
    pub practitioner_id: StaffId,
    pub practitioner_name: String,
    pub client_id: ClientId,
    pub client_name: String,
    pub patient_access: PatientAccess,
    pub open_between_visits: bool,
    /// The caller is the channel's practitioner.
    pub own: bool,
    /// The caller joined it (F137).
    pub joined: bool,
    /// The caller may read and write it now (own, joined, or department access, F141).
    pub can_open: bool,
    /// The caller may join it (F137: they have their own channel with the client too).
    pub can_join: bool,
    /// The caller may change `patient_access` (F142).
    pub can_manage: bool,
}

/// F142: who may grant or stop a channel's chat between visits — organisation admins for any
/// channel, department admins for channels of their department's practitioners.
pub(crate) fn manages_patient_access(staff: &Staff, channel: &ChannelRow) -> bool {
    match staff.role {
        Role::OrganisationAdmin => true,
        Role::DepartmentAdmin => {
            staff.department_id.is_some()
                && staff.department_id == channel.practitioner_department_id
        }
        Role::Practitioner => false,
    }
}

/// What the caller knows and may do about the channels of one client.
struct ClientChannels<'a> {
    staff: &'a Staff,
    settings: &'a OrganisationSettings,
    /// The caller has their own channel with this client (they treat the client, F137).
    treats: bool,
    /// Channels the caller joined.
    joined: std::collections::HashSet<ChatChannelId>,
}

impl ClientChannels<'_> {
    fn entry(&self, ch: ChannelRow) -> Option<AccessEntry> {
        let own = ch.practitioner_id == self.staff.id;
        let joined = self.joined.contains(&ch.chat_channel_id);
        let department = self.staff.department_id.is_some()
            && shared_department(self.settings, &ch) == self.staff.department_id;
        let can_manage = manages_patient_access(self.staff, &ch);
        let can_open = own || joined || department;
        let can_join = !can_open && self.treats;
        // Segregation: a channel is listed only to those who may use, join or manage it.
        if !(can_open || can_join || can_manage) {
            return None;
        }
        let patient_access = PatientAccess::from_db(&ch.patient_access);
        Some(AccessEntry {
            channel_id: ch.chat_channel_id,
            practitioner_id: ch.practitioner_id,
            practitioner_name: ch.practitioner_name,
            client_id: ch.client_id,
            client_name: ch.client_name,
            patient_access,
            open_between_visits: patient_access.open_between_visits(self.settings),
            own,
            joined,
            can_open,
            can_join,
            can_manage,
        })
    }
}

/// Every channel of `client` as `staff` may see it (see [`ClientChannels::entry`]).
pub(crate) async fn client_channel_entries(
    clinic: &Clinic,
    staff: &Staff,
    settings: &OrganisationSettings,
    client: ClientId,
) -> ApiResult<Vec<AccessEntry>> {
    let store = clinic.store();
    let rows = store
        .chat_channels_of_client(staff.organisation_id, client)
        .await?;
    let view = ClientChannels {
        staff,
        settings,
        treats: rows.iter().any(|ch| ch.practitioner_id == staff.id),
        joined: store
            .chat_channels_joined(staff.id, client)
            .await?
            .into_iter()
            .collect(),
    };
    Ok(rows.into_iter().filter_map(|ch| view.entry(ch)).collect())
}
