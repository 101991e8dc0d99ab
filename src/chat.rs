//! The signalling hub's [`ChatStore`] on top of the clinic's chat channels (issue #5): maps the
//! hub's string ids onto clinic ids and back. Ids that do not parse are simply not found.

use consultroom_clinic::Clinic;
use consultroom_clinic::chat::{
    self as clinic_chat, ChatChannelSummary, ChatError, ChatMessage, PartyKind,
};
use consultroom_clinic::ids::{AppointmentId, ChatChannelId, ClientId, OrganisationId, StaffId};
use consultroom_signalling::Visit;
use consultroom_signalling::chat::{
    BoxFuture, ChatAudience, ChatPage, ChatPresence, ChatPrincipal, ChatRange, ChatSent, ChatStore,
    ChatStoreError,
};
use consultroom_signalling::protocol::{ChatChannelInfo, ChatMessageInfo, ChatSender};

/// Chat storage for the hub, backed by the clinic's database.
pub struct ClinicChat(pub Clinic);

fn principal(
    who: &ChatPrincipal,
) -> Result<(clinic_chat::ChatPrincipal, OrganisationId), ChatStoreError> {
    let parse_err = |_| ChatStoreError::NotFound;
    Ok(match who {
        ChatPrincipal::Staff {
            organisation_id,
            staff_id,
        } => (
            clinic_chat::ChatPrincipal::Staff(staff_id.parse::<StaffId>().map_err(parse_err)?),
            organisation_id.parse().map_err(parse_err)?,
        ),
        ChatPrincipal::Appointment {
            organisation_id,
            appointment_id,
        } => (
            clinic_chat::ChatPrincipal::Appointment(
                appointment_id.parse::<AppointmentId>().map_err(parse_err)?,
            ),
            organisation_id.parse().map_err(parse_err)?,
        ),
        ChatPrincipal::Client {
            organisation_id,
            client_id,
        } => (
            clinic_chat::ChatPrincipal::Client(client_id.parse::<ClientId>().map_err(parse_err)?),
            organisation_id.parse().map_err(parse_err)?,
        ),
    })
}

fn presence(p: ChatPresence) -> clinic_chat::ChatPresence {
    match p {
        ChatPresence::Staff => clinic_chat::ChatPresence::Staff,
        ChatPresence::Waiting => clinic_chat::ChatPresence::Waiting,
        ChatPresence::InConsultation => clinic_chat::ChatPresence::InConsultation,
        ChatPresence::Away => clinic_chat::ChatPresence::Away,
    }
}

fn channel_id(raw: &str) -> Result<ChatChannelId, ChatStoreError> {
    raw.parse().map_err(|_| ChatStoreError::NotFound)
}

fn error(e: ChatError) -> ChatStoreError {
    match e {
        ChatError::NotFound => ChatStoreError::NotFound,
        ChatError::Forbidden(m) => ChatStoreError::Forbidden(m.to_owned()),
        ChatError::Invalid(m) => ChatStoreError::Invalid(m.to_owned()),
        ChatError::Internal(e) => ChatStoreError::Internal(format!("{e:#}")),
    }
}

fn wire_message(m: ChatMessage) -> ChatMessageInfo {
    ChatMessageInfo {
        channel_id: m.channel_id.to_string(),
        seq: m.seq,
        sender: match m.sender_kind {
            PartyKind::Staff => ChatSender::Staff,
            PartyKind::Client => ChatSender::Patient,
        },
        sender_id: m.sender_id,
        sender_name: m.sender_name,
        text: m.text,
        client_msg_id: m.client_msg_id,
        sent_at: m
            .sent_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

fn wire_channel(c: ChatChannelSummary) -> ChatChannelInfo {
    ChatChannelInfo {
        channel_id: c.channel_id.to_string(),
        practitioner_id: c.practitioner_id.to_string(),
        practitioner_name: c.practitioner_name,
        client_id: c.client_id.to_string(),
        client_name: c.client_name,
        last_seq: c.last_seq,
        cleared_through_seq: c.cleared_through_seq,
        unread: c.unread,
    }
}

impl ChatStore for ClinicChat {
    fn channels(
        &self,
        who: ChatPrincipal,
        _presence: ChatPresence,
    ) -> BoxFuture<Result<Vec<ChatChannelInfo>, ChatStoreError>> {
        let clinic = self.0.clone();
        Box::pin(async move {
            let (who, org) = principal(&who)?;
            let list = clinic.chat_channels(who, org, None).await.map_err(error)?;
            Ok(list.into_iter().map(wire_channel).collect())
        })
    }

    fn send(
        &self,
        who: ChatPrincipal,
        p: ChatPresence,
        channel: String,
        client_msg_id: String,
        text: String,
    ) -> BoxFuture<Result<ChatSent, ChatStoreError>> {
        let clinic = self.0.clone();
        Box::pin(async move {
            let (who, org) = principal(&who)?;
            let id = channel_id(&channel)?;
            let sent = clinic
                .chat_send(who, org, presence(p), id, &client_msg_id, &text)
                .await
                .map_err(error)?;
            Ok(ChatSent {
                message: wire_message(sent.message),
                duplicate: sent.duplicate,
                audience: ChatAudience {
                    staff_ids: sent
                        .audience
                        .staff_ids
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    department_ids: sent
                        .audience
                        .department_id
                        .iter()
                        .map(|d| d.to_string())
                        .collect(),
                },
            })
        })
    }

    fn history(
        &self,
        who: ChatPrincipal,
        p: ChatPresence,
        channel: String,
        range: ChatRange,
        limit: u32,
    ) -> BoxFuture<Result<ChatPage, ChatStoreError>> {
        let clinic = self.0.clone();
        Box::pin(async move {
            let (who, org) = principal(&who)?;
            let id = channel_id(&channel)?;
            let range = match range {
                ChatRange::After(a) => clinic_chat::ChatRange::After(a),
                ChatRange::Before(b) => clinic_chat::ChatRange::Before(b),
            };
            let page = clinic
                .chat_history(who, org, presence(p), id, range, i64::from(limit))
                .await
                .map_err(error)?;
            Ok(ChatPage {
                messages: page.messages.into_iter().map(wire_message).collect(),
                has_more: page.has_more,
                cleared_through_seq: page.cleared_through_seq,
                last_seq: page.last_seq,
            })
        })
    }

    fn mark_read(
        &self,
        who: ChatPrincipal,
        channel: String,
        seq: i64,
    ) -> BoxFuture<Result<(), ChatStoreError>> {
        let clinic = self.0.clone();
        Box::pin(async move {
            let (who, org) = principal(&who)?;
            let id = channel_id(&channel)?;
            clinic
                .chat_mark_read(who, org, id, seq)
                .await
                .map_err(error)
        })
    }

    fn visit_completed(
        &self,
        visit: Visit,
    ) -> BoxFuture<Result<Option<(String, i64)>, ChatStoreError>> {
        let clinic = self.0.clone();
        Box::pin(async move {
            let Visit::Appointment { appointment_id, .. } = visit else {
                return Ok(None);
            };
            let Ok(id) = appointment_id.parse::<AppointmentId>() else {
                return Ok(None);
            };
            let cleared = clinic
                .chat_consultation_completed(id)
                .await
                .map_err(error)?;
            Ok(cleared.map(|(c, through)| (c.to_string(), through)))
        })
    }
}
