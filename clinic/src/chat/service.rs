//! Chat operations, used by the HTTP handlers and by the signalling hub (through the composing
//! binary's `ChatStore`): list channels, send (idempotent by `client_msg_id`), read history, mark
//! read, delete history, the consultation-end cleanup (F133), closing chats no longer open between
//! visits (F142), and chat-only tokens for the invitation link (F146).

use super::access::shared_department;
use super::model::{
    ChatAudience, ChatChannelSummary, ChatError, ChatMessage, ChatPage, ChatPresence,
    ChatPrincipal, ChatRange, ChatSent, MAX_CLIENT_MSG_ID, MAX_PAGE, MAX_TEXT_CHARS, PatientAccess,
    api_to_chat, message, summary,
};
use crate::Clinic;
use crate::error::ApiResult;
use crate::events::ClinicEvent;
use crate::ids::{AppointmentId, ChatChannelId, ClientId, OrganisationId};
use crate::org_settings::{ChatAfterConsultation, OrganisationSettings};

/// The organisation's settings changed from `before` to `after`: end the live chat-only
/// connections of every channel that was open between visits and no longer is (continuous chat
/// switched off, or switched to "by grant" for the channels left at the default). Without this
/// a patient's open chat page kept working until its next reconnect.
pub(crate) async fn close_chats_no_longer_open(
    clinic: &Clinic,
    organisation_id: OrganisationId,
    before: &OrganisationSettings,
    after: &OrganisationSettings,
) -> ApiResult<()> {
    for access in [PatientAccess::Default, PatientAccess::Granted] {
        if access.open_between_visits(before) && !access.open_between_visits(after) {
            let ids = clinic
                .store()
                .chat_channel_ids_with_access(organisation_id, access.as_str())
                .await?;
            for id in ids {
                clinic.emit(ClinicEvent::ChatClosedBetweenVisits { channel_id: id });
            }
        }
    }
    Ok(())
}

impl Clinic {
    /// The channel of an appointment's practitioner and client, created if missing (F135).
    pub async fn ensure_chat_channel_for_appointment(
        &self,
        appointment_id: AppointmentId,
    ) -> Result<Option<ChatChannelId>, ChatError> {
        let Some((org, practitioner, client, _)) =
            self.store().appointment_pair(appointment_id).await?
        else {
            return Ok(None);
        };
        let (id, _) = self
            .store()
            .ensure_chat_channel(org, practitioner, client, None, self.now())
            .await?;
        Ok(Some(id))
    }

    /// The channels `who` may use (a patient through an appointment: that appointment's
    /// channel, created if missing), with unread counts.
    pub async fn chat_channels(
        &self,
        who: ChatPrincipal,
        org: OrganisationId,
        client_filter: Option<ClientId>,
    ) -> Result<Vec<ChatChannelSummary>, ChatError> {
        let store = self.store();
        let settings = self.organisation_settings(org).await.map_err(api_to_chat)?;
        let rows = match who {
            ChatPrincipal::Staff(staff_id) => {
                let staff = self.chat_staff(staff_id, org).await?;
                let department = staff
                    .department_id
                    .filter(|_| settings.department_chat_access);
                store
                    .chat_channels_for_staff(org, staff_id, department, client_filter)
                    .await?
            }
            ChatPrincipal::Appointment(a) => {
                let Some((a_org, practitioner, client, status)) = store.appointment_pair(a).await?
                else {
                    return Ok(vec![]);
                };
                if a_org != org || status == "cancelled" {
                    return Ok(vec![]);
                }
                store
                    .ensure_chat_channel(org, practitioner, client, None, self.now())
                    .await?;
                store
                    .chat_channels_for_client(org, client, Some(practitioner))
                    .await?
            }
            ChatPrincipal::Client(c) => store.chat_channels_for_client(org, c, None).await?,
        };
        Ok(rows.into_iter().map(|r| summary(&settings, r)).collect())
    }

    /// Stores a message and returns it once committed, with who should see it live. A retry
    /// (same sender and `client_msg_id`) returns the first copy with `duplicate: true`.
    pub async fn chat_send(
        &self,
        who: ChatPrincipal,
        org: OrganisationId,
        presence: ChatPresence,
        id: ChatChannelId,
        client_msg_id: &str,
        text: &str,
    ) -> Result<ChatSent, ChatError> {
        if client_msg_id.is_empty() || client_msg_id.len() > MAX_CLIENT_MSG_ID {
            return Err(ChatError::Invalid("client_msg_id must be 1 to 64 bytes"));
        }
        let chars = text.chars().count();
        if text.trim().is_empty() || chars > MAX_TEXT_CHARS {
            return Err(ChatError::Invalid("text must be 1 to 4000 characters"));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(ChatError::Invalid("control characters are not allowed"));
        }
        let access = self.chat_access(who, org, id).await?;
        Clinic::chat_presence_allowed(&access.settings, &access.channel, presence)?;
        let (kind, sender_id) = &access.reader;
        let appended = self
            .store()
            .append_chat_message(id, *kind, sender_id, client_msg_id, text, self.now())
            .await?;
        let sender_name = access.reader_name.clone();
        let mut staff_ids = vec![access.channel.practitioner_id];
        staff_ids.extend(access.members.iter().copied());
        Ok(ChatSent {
            message: ChatMessage {
                channel_id: id,
                seq: appended.seq,
                sender_kind: *kind,
                sender_id: sender_id.clone(),
                sender_name,
                client_msg_id: client_msg_id.to_owned(),
                text: if appended.deleted {
                    String::new()
                } else {
                    text.to_owned()
                },
                sent_at: appended.created_at,
            },
            duplicate: appended.duplicate,
            audience: ChatAudience {
                staff_ids,
                department_id: shared_department(&access.settings, &access.channel),
            },
        })
    }

    /// A page of a channel's history.
    pub async fn chat_history(
        &self,
        who: ChatPrincipal,
        org: OrganisationId,
        presence: ChatPresence,
        id: ChatChannelId,
        range: ChatRange,
        limit: i64,
    ) -> Result<ChatPage, ChatError> {
        let access = self.chat_access(who, org, id).await?;
        Clinic::chat_presence_allowed(&access.settings, &access.channel, presence)?;
        let limit = limit.clamp(1, MAX_PAGE);
        let store = self.store();
        // One more than asked tells whether there is more.
        let (mut rows, forward) = match range {
            ChatRange::After(after) => (
                store
                    .chat_messages_after(id, after.max(0), limit + 1)
                    .await?,
                true,
            ),
            ChatRange::Before(before) => (
                store
                    .chat_messages_before(id, before.unwrap_or(i64::MAX), limit + 1)
                    .await?,
                false,
            ),
        };
        let has_more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        if !forward {
            rows.reverse();
        }
        Ok(ChatPage {
            messages: rows.into_iter().map(|r| message(id, r)).collect(),
            has_more,
            cleared_through_seq: access.channel.cleared_through_seq,
            last_seq: access.channel.last_seq,
        })
    }

    /// Records that `who` has read channel `id` up to `seq`.
    pub async fn chat_mark_read(
        &self,
        who: ChatPrincipal,
        org: OrganisationId,
        id: ChatChannelId,
        seq: i64,
    ) -> Result<(), ChatError> {
        let access = self.chat_access(who, org, id).await?;
        let seq = seq.clamp(0, access.channel.last_seq);
        let (kind, reader) = &access.reader;
        self.store()
            .mark_chat_read(id, *kind, reader, seq, self.now())
            .await?;
        Ok(())
    }

    /// After an appointment's consultation: with `chat_after_consultation: delete` (F133), its
    /// channel's messages are deleted. Returns the channel and the seq deleted through.
    pub async fn chat_consultation_completed(
        &self,
        appointment_id: AppointmentId,
    ) -> Result<Option<(ChatChannelId, i64)>, ChatError> {
        let Some(channel) = self
            .store()
            .chat_channel_of_appointment(appointment_id)
            .await?
        else {
            return Ok(None);
        };
        let settings = self
            .organisation_settings(channel.organisation_id)
            .await
            .map_err(api_to_chat)?;
        if settings.chat_after_consultation != ChatAfterConsultation::Delete {
            return Ok(None);
        }
        let through = self
            .store()
            .clear_chat_history(channel.chat_channel_id, self.now())
            .await?;
        tracing::info!(channel_id = %channel.chat_channel_id, "chat deleted after consultation");
        Ok(Some((channel.chat_channel_id, through)))
    }

    /// Deletes a channel's history (F143) for `who`, who must have access to it; everyone
    /// connected is told (`chat_cleared`). Returns the seq it was deleted through.
    pub async fn chat_clear_history(
        &self,
        who: ChatPrincipal,
        org: OrganisationId,
        id: ChatChannelId,
    ) -> Result<i64, ChatError> {
        self.chat_access(who, org, id).await?;
        let through = self.store().clear_chat_history(id, self.now()).await?;
        self.emit(ClinicEvent::ChatCleared {
            channel_id: id,
            through_seq: through,
        });
        Ok(through)
    }
}
