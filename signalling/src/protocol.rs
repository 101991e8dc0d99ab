//! The signalling wire protocol, version 1: JSON text frames over one WebSocket.
//!
//! Every frame is an object with a `type` tag (snake_case). A client request may carry an `id`
//! (string, at most 64 bytes); the server's direct reply to it carries the same value in
//! `reply_to`. Unsolicited events have no `reply_to`. Errors carry a stable `code`
//! (see [`ErrorCode`]) and a human `message`. Documented with examples in `docs/protocol.md`;
//! a test checks that every type below has an example there.

use serde::{Deserialize, Serialize};

/// The protocol version this server speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// A frame from the client, with its optional request id.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ClientFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(flatten)]
    pub msg: ClientMessage,
}

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message on every connection: authenticate with a short-lived join token.
    /// `resume`: the id of the consultation this client was in when its previous connection
    /// dropped; within the grace period it gets its seat back (`consultation_started` with
    /// `resumed: true`) and keeps its peer connection (ICE restart with a new `media_offer`).
    /// `check`: a check-only connection (the device and network check before entering the
    /// waiting room): answered with `joined` and nothing else; it is in no waiting room, nobody
    /// sees it, and it may only run connectivity probes (`probe_*`) and `ping`.
    Join {
        token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        check: bool,
    },
    /// Leave your consultation now (hang up), without the reconnection grace period that a
    /// dropped connection gets. Answered with `ok`, then `consultation_ended` (`left`).
    LeaveConsultation {},
    /// Staff: let a waiting patient into a consultation with the caller.
    Admit { participant_id: String },
    /// SDP offer from the client (its published tracks). Answered with `media_answer`.
    /// `tracks` says what each sending m-line carries (undeclared video is the camera).
    MediaOffer {
        sdp: String,
        #[serde(default)]
        tracks: Vec<TrackInfo>,
    },
    /// How the client shows the remote video on its m-line `mid`: hidden tiles get nothing,
    /// and simulcast video is sent in the layer that fits the size (device pixels).
    View {
        mid: String,
        visible: bool,
        #[serde(default)]
        width: u32,
        #[serde(default)]
        height: u32,
    },
    /// SDP answer to a server `media_offer` (renegotiation).
    MediaAnswer { sdp: String },
    /// A trickled ICE candidate (`candidate:...`, as in `RTCIceCandidate.candidate`).
    IceCandidate { candidate: String },
    /// The caller's own microphone/camera state, relayed to the others in the consultation.
    Mute { audio: bool, video: bool },
    /// The caller's own media connection in its consultation, as its browser sees it: `failed`
    /// when it did not connect within a few seconds (or broke and could not be restored),
    /// `connected` once it does. Relayed to the others in the consultation as
    /// `participant_media` (and carried in `participants[].media`), so both sides can say what
    /// is wrong instead of "Connecting video…". Answered with `ok`.
    MediaState { state: MediaHealth },
    /// A waiting patient's device and connection check verdict (the check before entering):
    /// shown to staff on the waiting-list entry (`connection_check`), so they know before
    /// admitting that video may not work. Answered with `ok`.
    ConnectionCheck { level: CheckLevel },
    /// Staff: end the consultation for everyone.
    EndConsultation {},
    /// Staff: start the consultation of one of your appointments before the patient arrives;
    /// the patient goes straight in when they come.
    ForceStart { appointment_id: String },
    /// Staff: move a waiting (or in-consultation) patient to another waiting room.
    Transfer {
        participant_id: String,
        to: QueueRef,
    },
    /// Offer a file to the others in your consultation; answered with `file_upload_ready`
    /// (the one-time URL to upload its body to). `size` is exact, in bytes; `content_type` is
    /// the browser's guess (the server sniffs the content itself).
    FileOffer {
        name: String,
        size: u64,
        #[serde(default)]
        content_type: String,
    },
    /// Ask for a download URL of a file shared in your consultation; answered with
    /// `file_download_ready`.
    FileDownload { file_id: String },
    /// The chat channels the caller may use, with unread counts; answered with
    /// `chat_channel_list`.
    ChatChannels {},
    /// Open a chat channel and read its history: `after_seq` gives every message after it
    /// (catching up after a reconnect), `before_seq` (or neither) the newest page before it.
    /// Answered with `chat_history`; from then on the connection receives `chat_message`.
    ChatSync {
        channel_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_seq: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_seq: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Send a chat message; answered with `chat_ack` once it is stored. Resending the same
    /// `client_msg_id` (after a lost ack) stores nothing new and is acknowledged the same way.
    ChatSend {
        channel_id: String,
        client_msg_id: String,
        text: String,
    },
    /// The caller has read the channel up to `seq` (unread counts); answered with `ok`.
    ChatRead { channel_id: String, seq: i64 },
    /// Start a connectivity probe: a private media session with the SFU, which sends the
    /// client's own tracks back (never part of a consultation, seen by nobody else; at most
    /// one at a time per connection, ended after `seconds`). Answered with `probe_answer`.
    ProbeOffer { sdp: String },
    /// SDP answer to a server `probe_offer` (the echo of the client's tracks).
    ProbeAnswer { sdp: String },
    /// A trickled ICE candidate for the probe session.
    ProbeCandidate { candidate: String },
    /// End the running probe now; answered with `ok`.
    ProbeStop {},
    /// Keep-alive; answered with `pong`.
    Ping {},
}

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatSender {
    Staff,
    Patient,
}

/// One stored chat message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ChatMessageInfo {
    pub channel_id: String,
    /// Position in the channel: 1, 2, 3, … without gaps (deleted messages leave gaps).
    pub seq: i64,
    pub sender: ChatSender,
    /// Staff id, or the patient's client id.
    pub sender_id: String,
    pub sender_name: String,
    /// Plain text (show it as text, never as HTML).
    pub text: String,
    pub client_msg_id: String,
    /// RFC 3339 UTC.
    pub sent_at: String,
}

/// A chat channel as listed to its users.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ChatChannelInfo {
    pub channel_id: String,
    pub practitioner_id: String,
    pub practitioner_name: String,
    pub client_id: String,
    pub client_name: String,
    pub last_seq: i64,
    pub cleared_through_seq: i64,
    pub unread: i64,
}

/// What one of the client's sending m-lines carries.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TrackInfo {
    pub mid: String,
    pub source: TrackSourceKind,
}

/// The source of a published track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSourceKind {
    Microphone,
    Camera,
    Screen,
}

/// A waiting room on the wire: a practitioner's own, or a department's shared one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct QueueRef {
    pub kind: QueueKind,
    pub id: String,
}

/// The kind of a waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    Practitioner,
    Department,
}

/// A service announcement shown to waiting patients.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AnnouncementInfo {
    pub id: String,
    pub text: String,
    /// RFC 3339 UTC; hidden after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// Longest request id (bytes); a frame with a longer one is refused with `invalid_message`.
pub const MAX_REQUEST_ID: usize = 64;

/// Why a client frame could not be decoded; `id` is the request id if one could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub id: Option<String>,
    pub code: ErrorCode,
    pub message: &'static str,
}

/// The request id of a frame that will not be decoded further (a rate-limited one), so that its
/// `error` can still carry `reply_to`. `None` when the frame has no usable id.
pub fn request_id_of(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    serde_json::from_str::<IdOnly>(text)
        .ok()
        .and_then(|f| f.id)
        .filter(|id| id.len() <= MAX_REQUEST_ID)
}

/// Decode one text frame from a client: the request id (if any, and not too long) and the
/// message. Never panics, whatever the input (fuzzed: `fuzz/fuzz_targets/signalling_frame.rs`).
pub fn decode_client_frame(text: &str) -> Result<(Option<String>, ClientMessage), DecodeError> {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            return Err(DecodeError {
                id: None,
                code: ErrorCode::MalformedJson,
                message: "frame is not a JSON object",
            });
        }
    };
    let id = match value.get("id").and_then(|v| v.as_str()) {
        Some(long) if long.len() > MAX_REQUEST_ID => {
            return Err(DecodeError {
                id: None,
                code: ErrorCode::InvalidMessage,
                message: "request id longer than 64 bytes",
            });
        }
        other => other.map(str::to_owned),
    };
    match serde_json::from_value::<ClientFrame>(value) {
        Ok(f) => Ok((id, f.msg)),
        Err(_) => Err(DecodeError {
            id,
            code: ErrorCode::InvalidMessage,
            message: "unknown message type or bad fields",
        }),
    }
}

/// A frame from the server.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ServerFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(flatten)]
    pub msg: ServerMessage,
}

/// Who a participant is, as far as the room is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Staff,
    Patient,
}

/// How a waiting patient arrived relative to their appointment (the corner colour in the list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Punctuality {
    /// Arrived before or at the appointment start (green).
    OnTime,
    /// Arrived after the appointment start (red).
    Late,
    /// No appointment: walk-in (yellow).
    WalkIn,
}

/// A participant's media connection as its own browser reports it (`media_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaHealth {
    /// Connected: media flows.
    Connected,
    /// Did not connect within a few seconds, or broke and could not be restored.
    Failed,
}

/// The verdict of a patient's connection check (the device check's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckLevel {
    /// Video works.
    Good,
    /// It connects, but slowly, with loss, or without the camera's echo.
    Poor,
    /// The video server cannot be reached (UDP and the relay blocked).
    Unreachable,
}

/// Why a `waiting` frame is not an ordinary waiting-room place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitingReason {
    /// A guest of an appointment: they enter as soon as the appointment's client is in the
    /// consultation (issue #4, F74). Not in any waiting list.
    WaitingForClient,
}

/// One patient in a waiting room, as shown to staff.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct WaitingEntry {
    pub participant_id: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<String>,
    /// RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_starts_at: Option<String>,
    /// RFC 3339 UTC.
    pub arrived_at: String,
    pub punctuality: Punctuality,
    /// The waiting room the patient is in.
    pub queue: QueueRef,
    /// The patient's connection dropped; they keep their place for a short grace period.
    #[serde(default)]
    pub reconnecting: bool,
    /// The verdict of the patient's connection check, once they sent one (`connection_check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_check: Option<CheckLevel>,
}

/// A participant of a consultation.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ParticipantInfo {
    pub participant_id: String,
    /// The msid stream id of this participant's microphone and camera tracks
    /// (`participant-<n>`; a screen share uses `participant-<n>-screen`).
    #[serde(default)]
    pub stream_id: String,
    pub display_name: String,
    pub role: Role,
    pub audio: bool,
    pub video: bool,
    /// Their connection dropped; the seat is held for them (until `participant_resumed` or
    /// `participant_left`). Omitted when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconnecting: bool,
    /// A guest of the appointment (colleague, family, interpreter; `role` is `patient`).
    /// Omitted when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guest: bool,
    /// Their media connection as their browser last reported it (`media_state`); omitted
    /// until they report one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaHealth>,
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Reply to `join`.
    Joined {
        protocol: u32,
        participant_id: String,
        role: Role,
        display_name: String,
    },
    /// Staff: the whole waiting room, sent after `joined` (and never to patients).
    WaitingSnapshot { entries: Vec<WaitingEntry> },
    /// Staff: a patient arrived in the waiting room.
    WaitingArrived { entry: WaitingEntry },
    /// Staff: a patient left the waiting room (gone, admitted, or transferred elsewhere).
    WaitingLeft { participant_id: String },
    /// Staff: a waiting entry changed (e.g. `reconnecting`).
    WaitingUpdated { entry: WaitingEntry },
    /// Patient: your place in the queue and when you will probably be seen.
    QueueStatus {
        /// 1 = next.
        position: u32,
        /// RFC 3339 UTC estimate; absent when no honest estimate can be made.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estimated_start_at: Option<String>,
    },
    /// Patient: the service announcements for your waiting room (the whole current list).
    Announcements { items: Vec<AnnouncementInfo> },
    /// Patient: you are in the waiting room.
    Waiting {
        /// RFC 3339 UTC, when there is an appointment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        appointment_starts_at: Option<String>,
        punctuality: Punctuality,
        /// Set when this is not a waiting-room place: `waiting_for_client` (a guest).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<WaitingReason>,
    },
    /// You are in a consultation now (staff after `admit`, patient when admitted).
    ConsultationStarted {
        consultation_id: String,
        /// RFC 3339 UTC.
        started_at: String,
        participants: Vec<ParticipantInfo>,
        /// True when this connection took over its seat (`join` with `resume`): keep the
        /// peer connection and restart ICE. Omitted when false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        resumed: bool,
    },
    /// Someone joined the consultation you are in.
    ParticipantJoined { participant: ParticipantInfo },
    /// Someone left the consultation you are in.
    ParticipantLeft { participant_id: String },
    /// Someone's connection dropped; their seat (and media session) is held for the grace
    /// period. Followed by `participant_resumed` or `participant_left`.
    ParticipantReconnecting { participant_id: String },
    /// A reconnecting participant is back on a new connection (same participant id, same
    /// tracks): no `participant_joined` follows.
    ParticipantResumed { participant_id: String },
    /// A fresh join token for this connection's identity, pushed before the current one expires
    /// (RFC 3339 `expires_at`): keep the newest and use it for a reconnect `join` (`resume`).
    /// Only while the seat is valid (not after the visit ended, the guest link was revoked or the
    /// staff login session ended).
    TokenRefresh { token: String, expires_at: String },
    /// The loudest participant of your consultation changed (at most twice a second).
    Speaking { participant_id: String },
    /// Someone's microphone/camera state changed.
    ParticipantMuted {
        participant_id: String,
        audio: bool,
        video: bool,
    },
    /// Someone's media connection, as their browser reported it (`media_state`).
    ParticipantMedia {
        participant_id: String,
        state: MediaHealth,
    },
    /// Reply to a client `media_offer`.
    MediaAnswer { sdp: String },
    /// Server-initiated renegotiation (new remote tracks); reply with `media_answer`.
    MediaOffer { sdp: String },
    /// The consultation is over.
    ConsultationEnded {
        consultation_id: String,
        reason: EndReason,
    },
    /// Reply to `file_offer`: PUT the file's body to `url` (relative to the server) within
    /// `expires_at`, with an exact `Content-Length`.
    FileUploadReady {
        file_id: String,
        url: String,
        expires_at: String,
    },
    /// A file was shared in your consultation (also sent to the sender, and to whoever joins
    /// later). `from` is the sender's participant id.
    FileShared {
        file_id: String,
        name: String,
        size: u64,
        content_type: String,
        from: String,
        shared_at: String,
    },
    /// Reply to `file_download`: a single-use URL, valid until `expires_at`.
    FileDownloadReady {
        file_id: String,
        url: String,
        expires_at: String,
    },
    /// Reply to `chat_channels`.
    ChatChannelList { channels: Vec<ChatChannelInfo> },
    /// Reply to `chat_sync`: messages oldest first; `has_more` when the page was full.
    ChatHistory {
        channel_id: String,
        messages: Vec<ChatMessageInfo>,
        has_more: bool,
        cleared_through_seq: i64,
        last_seq: i64,
    },
    /// Reply to `chat_send`, sent only after the message is stored.
    ChatAck {
        channel_id: String,
        client_msg_id: String,
        seq: i64,
        sent_at: String,
    },
    /// A new message in a channel this connection opened (`chat_sync` or `chat_send`).
    ChatMessage { message: ChatMessageInfo },
    /// Staff: a new message in one of your channels that this connection has not opened
    /// (for unread counts).
    ChatActivity {
        channel_id: String,
        seq: i64,
        sender: ChatSender,
    },
    /// The channel's messages up to `through_seq` were deleted: remove them from the screen.
    ChatCleared {
        channel_id: String,
        through_seq: i64,
    },
    /// Reply to `probe_offer`: the SFU's SDP answer; the probe ends after `seconds`.
    /// `udp_ports` / `tcp_ports`: every media port of the SFU (one per media loop; the answer's
    /// candidates name only the loop this probe runs on), for the advice to IT departments.
    ProbeAnswer {
        sdp: String,
        seconds: u32,
        #[serde(default)]
        udp_ports: Vec<u16>,
        #[serde(default)]
        tcp_ports: Vec<u16>,
    },
    /// The SFU (re)negotiates the probe (the echo m-lines); reply with `probe_answer`.
    ProbeOffer { sdp: String },
    /// The probe is over (not sent after `probe_stop`).
    ProbeEnded { reason: ProbeEndReason },
    /// Generic success reply to a request that has no other reply (`admit`, `mute`, ...).
    Ok {},
    /// Reply to `ping`.
    Pong {},
    /// Something went wrong; `code` is stable, `message` is for humans.
    Error { code: ErrorCode, message: String },
}

/// Why a consultation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Staff ended it.
    Ended,
    /// Every other participant left.
    Abandoned,
    /// The patient was transferred to another waiting room; the appointment is not completed.
    Transferred,
    /// You left (`leave_consultation`).
    Left,
    /// Your connection (signalling or media) was gone longer than the grace period, or the
    /// consultation you asked to resume is over.
    ConnectionLost,
}

/// Why a connectivity probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeEndReason {
    /// Its time was up.
    Expired,
    /// The SFU lost the session (no ICE consent, DTLS closed).
    ConnectionLost,
    /// The connection entered a consultation (its media takes over).
    ConsultationStarted,
}

/// Stable error codes. Never rename one; add new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON or not a JSON object.
    MalformedJson,
    /// The `type` is unknown, or fields are missing or of the wrong type.
    InvalidMessage,
    /// The first message must be `join`; or `join` sent twice.
    NotJoined,
    /// The join token is invalid or expired.
    InvalidToken,
    /// The caller's role may not do this.
    Forbidden,
    /// The referenced participant is not in the caller's waiting room.
    NotFound,
    /// The request does not fit the caller's state (e.g. media before admission).
    InvalidState,
    /// The SDP offer/answer was refused.
    InvalidSdp,
    /// Too many messages; slow down.
    RateLimited,
    /// The server failed; the message carries a correlation id.
    Internal,
    /// A file is larger than allowed, or a consultation's files would exceed their total.
    TooLarge,
    /// Files of this type cannot be shared.
    UnsupportedType,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frame_round_trip() {
        let f: ClientFrame =
            serde_json::from_str(r#"{"id":"1","type":"admit","participant_id":"p-1"}"#).unwrap();
        assert_eq!(f.id.as_deref(), Some("1"));
        assert_eq!(
            f.msg,
            ClientMessage::Admit {
                participant_id: "p-1".into()
            }
        );
        let f: ClientFrame = serde_json::from_str(r#"{"type":"ping"}"#).unwrap();
        assert_eq!(f.msg, ClientMessage::Ping {});
    }

    #[test]
    fn decode_separates_malformed_from_invalid_and_keeps_the_id() {
        assert_eq!(
            decode_client_frame("{oops").unwrap_err().code,
            ErrorCode::MalformedJson
        );
        assert_eq!(
            decode_client_frame("42").unwrap_err().code,
            ErrorCode::MalformedJson
        );
        let e = decode_client_frame(r#"{"id":"9","type":"nope"}"#).unwrap_err();
        assert_eq!(
            (e.id.as_deref(), e.code),
            (Some("9"), ErrorCode::InvalidMessage)
        );
        // An id over 64 bytes is refused (not silently dropped from the reply), without a
        // `reply_to` since it cannot be echoed.
        let long = "x".repeat(MAX_REQUEST_ID + 1);
        let e = decode_client_frame(&format!(r#"{{"id":"{long}","type":"ping"}}"#)).unwrap_err();
        assert_eq!((e.id, e.code), (None, ErrorCode::InvalidMessage));
        let max = "x".repeat(MAX_REQUEST_ID);
        let (id, _) = decode_client_frame(&format!(r#"{{"id":"{max}","type":"ping"}}"#)).unwrap();
        assert_eq!(id.as_deref(), Some(max.as_str()));
    }

    #[test]
    fn unknown_type_is_rejected() {
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"launch_rockets"}"#).is_err());
    }

    #[test]
    fn server_frame_shape() {
        let f = ServerFrame {
            reply_to: Some("7".into()),
            msg: ServerMessage::Error {
                code: ErrorCode::InvalidToken,
                message: "expired".into(),
            },
        };
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"reply_to":"7","type":"error","code":"invalid_token","message":"expired"})
        );
    }

    /// One sample of every message; the `match` makes adding a variant without a sample fail
    /// to compile.
    fn samples() -> (Vec<ClientMessage>, Vec<ServerMessage>) {
        let client = vec![
            ClientMessage::Join {
                token: "t".into(),
                resume: Some("c".into()),
                check: false,
            },
            ClientMessage::Join {
                token: "t".into(),
                resume: None,
                check: true,
            },
            ClientMessage::ProbeOffer { sdp: "v=0".into() },
            ClientMessage::ProbeAnswer { sdp: "v=0".into() },
            ClientMessage::ProbeCandidate {
                candidate: "c".into(),
            },
            ClientMessage::ProbeStop {},
            ClientMessage::Admit {
                participant_id: "p".into(),
            },
            ClientMessage::MediaOffer {
                sdp: "v=0".into(),
                tracks: vec![TrackInfo {
                    mid: "0".into(),
                    source: TrackSourceKind::Camera,
                }],
            },
            ClientMessage::View {
                mid: "2".into(),
                visible: true,
                width: 640,
                height: 360,
            },
            ClientMessage::MediaAnswer { sdp: "v=0".into() },
            ClientMessage::IceCandidate {
                candidate: "c".into(),
            },
            ClientMessage::Mute {
                audio: true,
                video: true,
            },
            ClientMessage::MediaState {
                state: MediaHealth::Failed,
            },
            ClientMessage::ConnectionCheck {
                level: CheckLevel::Unreachable,
            },
            ClientMessage::EndConsultation {},
            ClientMessage::ForceStart {
                appointment_id: "a".into(),
            },
            ClientMessage::Transfer {
                participant_id: "p".into(),
                to: QueueRef {
                    kind: QueueKind::Department,
                    id: "d".into(),
                },
            },
            ClientMessage::FileOffer {
                name: "n.pdf".into(),
                size: 1,
                content_type: "application/pdf".into(),
            },
            ClientMessage::FileDownload {
                file_id: "f".into(),
            },
            ClientMessage::LeaveConsultation {},
            ClientMessage::ChatChannels {},
            ClientMessage::ChatSync {
                channel_id: "c".into(),
                after_seq: Some(3),
                before_seq: None,
                limit: Some(50),
            },
            ClientMessage::ChatSend {
                channel_id: "c".into(),
                client_msg_id: "m".into(),
                text: "hello".into(),
            },
            ClientMessage::ChatRead {
                channel_id: "c".into(),
                seq: 4,
            },
            ClientMessage::Ping {},
        ];
        for c in &client {
            match c {
                ClientMessage::Join { .. }
                | ClientMessage::Admit { .. }
                | ClientMessage::MediaOffer { .. }
                | ClientMessage::View { .. }
                | ClientMessage::MediaAnswer { .. }
                | ClientMessage::IceCandidate { .. }
                | ClientMessage::Mute { .. }
                | ClientMessage::MediaState { .. }
                | ClientMessage::ConnectionCheck { .. }
                | ClientMessage::EndConsultation {}
                | ClientMessage::ForceStart { .. }
                | ClientMessage::Transfer { .. }
                | ClientMessage::FileOffer { .. }
                | ClientMessage::FileDownload { .. }
                | ClientMessage::LeaveConsultation {}
                | ClientMessage::ChatChannels {}
                | ClientMessage::ChatSync { .. }
                | ClientMessage::ChatSend { .. }
                | ClientMessage::ChatRead { .. }
                | ClientMessage::ProbeOffer { .. }
                | ClientMessage::ProbeAnswer { .. }
                | ClientMessage::ProbeCandidate { .. }
                | ClientMessage::ProbeStop {}
                | ClientMessage::Ping {} => {}
            }
        }
        let entry = WaitingEntry {
            participant_id: "p".into(),
            display_name: "n".into(),
            appointment_id: None,
            appointment_starts_at: None,
            arrived_at: "t".into(),
            punctuality: Punctuality::OnTime,
            queue: QueueRef {
                kind: QueueKind::Practitioner,
                id: "d".into(),
            },
            reconnecting: false,
            connection_check: Some(CheckLevel::Poor),
        };
        let info = ParticipantInfo {
            participant_id: "p".into(),
            stream_id: "participant-1".into(),
            display_name: "n".into(),
            role: Role::Staff,
            audio: true,
            video: true,
            reconnecting: false,
            guest: false,
            media: Some(MediaHealth::Failed),
        };
        let chat_message = ChatMessageInfo {
            channel_id: "c".into(),
            seq: 4,
            sender: ChatSender::Staff,
            sender_id: "s".into(),
            sender_name: "n".into(),
            text: "hello".into(),
            client_msg_id: "m".into(),
            sent_at: "t".into(),
        };
        let server = vec![
            ServerMessage::Joined {
                protocol: 1,
                participant_id: "p".into(),
                role: Role::Staff,
                display_name: "n".into(),
            },
            ServerMessage::WaitingSnapshot { entries: vec![] },
            ServerMessage::WaitingArrived {
                entry: entry.clone(),
            },
            ServerMessage::WaitingLeft {
                participant_id: "p".into(),
            },
            ServerMessage::Waiting {
                appointment_starts_at: None,
                punctuality: Punctuality::Late,
                reason: Some(WaitingReason::WaitingForClient),
            },
            ServerMessage::ConsultationStarted {
                consultation_id: "c".into(),
                started_at: "t".into(),
                participants: vec![],
                resumed: true,
            },
            ServerMessage::ParticipantJoined { participant: info },
            ServerMessage::ParticipantLeft {
                participant_id: "p".into(),
            },
            ServerMessage::ParticipantReconnecting {
                participant_id: "p".into(),
            },
            ServerMessage::ParticipantResumed {
                participant_id: "p".into(),
            },
            ServerMessage::TokenRefresh {
                token: "t".into(),
                expires_at: "2026-03-02T10:02:00Z".into(),
            },
            ServerMessage::Speaking {
                participant_id: "p".into(),
            },
            ServerMessage::ParticipantMuted {
                participant_id: "p".into(),
                audio: true,
                video: false,
            },
            ServerMessage::ParticipantMedia {
                participant_id: "p".into(),
                state: MediaHealth::Connected,
            },
            ServerMessage::MediaAnswer { sdp: "v=0".into() },
            ServerMessage::MediaOffer { sdp: "v=0".into() },
            ServerMessage::ConsultationEnded {
                consultation_id: "c".into(),
                reason: EndReason::Ended,
            },
            ServerMessage::FileUploadReady {
                file_id: "f".into(),
                url: "/u".into(),
                expires_at: "t".into(),
            },
            ServerMessage::FileShared {
                file_id: "f".into(),
                name: "n.pdf".into(),
                size: 1,
                content_type: "application/pdf".into(),
                from: "p".into(),
                shared_at: "t".into(),
            },
            ServerMessage::FileDownloadReady {
                file_id: "f".into(),
                url: "/d".into(),
                expires_at: "t".into(),
            },
            ServerMessage::ChatChannelList {
                channels: vec![ChatChannelInfo {
                    channel_id: "c".into(),
                    practitioner_id: "s".into(),
                    practitioner_name: "n".into(),
                    client_id: "k".into(),
                    client_name: "n".into(),
                    last_seq: 4,
                    cleared_through_seq: 0,
                    unread: 1,
                }],
            },
            ServerMessage::ChatHistory {
                channel_id: "c".into(),
                messages: vec![chat_message.clone()],
                has_more: false,
                cleared_through_seq: 0,
                last_seq: 4,
            },
            ServerMessage::ChatAck {
                channel_id: "c".into(),
                client_msg_id: "m".into(),
                seq: 4,
                sent_at: "t".into(),
            },
            ServerMessage::ChatMessage {
                message: chat_message,
            },
            ServerMessage::ChatActivity {
                channel_id: "c".into(),
                seq: 4,
                sender: ChatSender::Patient,
            },
            ServerMessage::ChatCleared {
                channel_id: "c".into(),
                through_seq: 4,
            },
            ServerMessage::ProbeAnswer {
                sdp: "v=0".into(),
                seconds: 20,
                udp_ports: vec![50000, 50001],
                tcp_ports: vec![],
            },
            ServerMessage::ProbeOffer { sdp: "v=0".into() },
            ServerMessage::ProbeEnded {
                reason: ProbeEndReason::Expired,
            },
            ServerMessage::Ok {},
            ServerMessage::Pong {},
            ServerMessage::Error {
                code: ErrorCode::Internal,
                message: "m".into(),
            },
        ];
        for m in &server {
            match m {
                ServerMessage::Joined { .. }
                | ServerMessage::WaitingSnapshot { .. }
                | ServerMessage::WaitingArrived { .. }
                | ServerMessage::WaitingLeft { .. }
                | ServerMessage::WaitingUpdated { .. }
                | ServerMessage::QueueStatus { .. }
                | ServerMessage::Announcements { .. }
                | ServerMessage::Waiting { .. }
                | ServerMessage::ConsultationStarted { .. }
                | ServerMessage::ParticipantJoined { .. }
                | ServerMessage::ParticipantLeft { .. }
                | ServerMessage::ParticipantReconnecting { .. }
                | ServerMessage::ParticipantResumed { .. }
                | ServerMessage::TokenRefresh { .. }
                | ServerMessage::Speaking { .. }
                | ServerMessage::ParticipantMuted { .. }
                | ServerMessage::ParticipantMedia { .. }
                | ServerMessage::MediaAnswer { .. }
                | ServerMessage::MediaOffer { .. }
                | ServerMessage::ConsultationEnded { .. }
                | ServerMessage::FileUploadReady { .. }
                | ServerMessage::FileShared { .. }
                | ServerMessage::FileDownloadReady { .. }
                | ServerMessage::ChatChannelList { .. }
                | ServerMessage::ChatHistory { .. }
                | ServerMessage::ChatAck { .. }
                | ServerMessage::ChatMessage { .. }
                | ServerMessage::ChatActivity { .. }
                | ServerMessage::ChatCleared { .. }
                | ServerMessage::ProbeAnswer { .. }
                | ServerMessage::ProbeOffer { .. }
                | ServerMessage::ProbeEnded { .. }
                | ServerMessage::Ok {}
                | ServerMessage::Pong {}
                | ServerMessage::Error { .. } => {}
            }
        }
        (client, server)
    }

    fn tag(v: serde_json::Value) -> String {
        v["type"].as_str().unwrap().to_owned()
    }

    #[test]
    fn every_message_type_is_documented() {
        let doc = include_str!("../../docs/protocol.md");
        let (client, server) = samples();
        let tags = client
            .into_iter()
            .map(|c| tag(serde_json::to_value(c).unwrap()))
            .chain(
                server
                    .into_iter()
                    .map(|s| tag(serde_json::to_value(s).unwrap())),
            );
        for t in tags {
            let example = format!("\"type\":\"{t}\"");
            assert!(
                doc.contains(&example),
                "docs/protocol.md has no example of {t}"
            );
            assert!(
                doc.contains(&format!("### {t}")),
                "docs/protocol.md has no section for {t}"
            );
        }
    }

    #[test]
    fn documented_examples_parse() {
        // Every client example in the doc is a valid frame.
        let doc = include_str!("../../docs/protocol.md");
        let client_part = doc.split("## Server → client").next().unwrap();
        for block in client_part.split("```json\n").skip(1) {
            let json = block.split("\n```").next().unwrap();
            serde_json::from_str::<ClientFrame>(json)
                .unwrap_or_else(|e| panic!("example does not parse: {json}: {e}"));
        }
    }

    #[test]
    fn samples_round_trip() {
        let (client, server) = samples();
        for c in client {
            let s = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<ClientMessage>(&s).unwrap(), c);
        }
        for m in server {
            let s = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<ServerMessage>(&s).unwrap(), m);
        }
    }
}
