// @ts-check
// The signalling protocol v1 (docs/protocol.md) as types: every client → server and server →
// client frame is one member of a union discriminated by `type`. Types only, no code; the web
// client names them in JSDoc (`import('./protocol.js').ServerMessage`), and
// tools/jscheck/protocol-examples.mjs type-checks every JSON example of docs/protocol.md against
// them, so the document and these types cannot drift apart. Optional fields are the ones the
// server omits (or the client may leave out).

// ---------------------------------------------------------------- shared values

/** @typedef {'malformed_json'|'invalid_message'|'not_joined'|'invalid_token'|'forbidden'|'not_found'|'invalid_state'|'invalid_sdp'|'rate_limited'|'internal'|'too_large'|'unsupported_type'} ErrorCode */
/** @typedef {'staff'|'patient'} Role */
/** @typedef {'on_time'|'late'|'walk_in'} Punctuality */
/** @typedef {'practitioner'|'department'} QueueKind */
/** @typedef {{kind: QueueKind, id: string}} QueueRef */
/** @typedef {'microphone'|'camera'|'screen'} TrackSource */
/** @typedef {{mid: string, source: TrackSource}} TrackInfo */
/** @typedef {'staff'|'patient'} ChatSender */
/** @typedef {'ended'|'abandoned'|'transferred'|'left'|'connection_lost'} EndReason */
/** @typedef {'expired'|'connection_lost'|'consultation_started'} ProbeEndReason */
/** @typedef {'connected'|'failed'} MediaHealth */
/** @typedef {'good'|'poor'|'unreachable'} CheckLevel */

/**
 * One patient in a waiting room the staff member watches.
 * @typedef {{
 *   participant_id: string,
 *   display_name: string,
 *   appointment_id?: string,
 *   appointment_starts_at?: string,
 *   arrived_at: string,
 *   punctuality: Punctuality,
 *   queue: QueueRef,
 *   reconnecting?: boolean,
 *   connection_check?: CheckLevel,
 * }} WaitingEntry
 */

/**
 * Someone in the consultation (`stream_id` is the msid stream id of their camera/microphone).
 * @typedef {{
 *   participant_id: string,
 *   stream_id?: string,
 *   display_name: string,
 *   role: Role,
 *   audio: boolean,
 *   video: boolean,
 *   reconnecting?: boolean,
 *   guest?: boolean,
 *   media?: MediaHealth,
 * }} ParticipantInfo
 */

/** @typedef {{id: string, text: string, expires_at?: string}} AnnouncementInfo */

/**
 * @typedef {{
 *   channel_id: string,
 *   practitioner_id: string,
 *   practitioner_name: string,
 *   client_id: string,
 *   client_name: string,
 *   last_seq: number,
 *   cleared_through_seq: number,
 *   unread: number,
 * }} ChatChannelInfo
 */

/**
 * @typedef {{
 *   channel_id: string,
 *   seq: number,
 *   sender: ChatSender,
 *   sender_id: string,
 *   sender_name: string,
 *   text: string,
 *   client_msg_id: string,
 *   sent_at: string,
 * }} ChatMessageInfo
 */

// ---------------------------------------------------------------- client → server

/** @typedef {{id?: string}} Request a frame that wants a reply carries an `id` */

/** @typedef {Request & {type: 'join', token: string, resume?: string, check?: boolean}} JoinMessage */
/** @typedef {Request & {type: 'leave_consultation'}} LeaveConsultationMessage */
/** @typedef {Request & {type: 'admit', participant_id: string}} AdmitMessage */
/** @typedef {Request & {type: 'media_offer', sdp: string, tracks?: TrackInfo[]}} ClientMediaOfferMessage */
/** @typedef {Request & {type: 'view', mid: string, visible: boolean, width?: number, height?: number}} ViewMessage */
/** @typedef {Request & {type: 'media_answer', sdp: string}} ClientMediaAnswerMessage */
/** @typedef {Request & {type: 'ice_candidate', candidate: string}} IceCandidateMessage */
/** @typedef {Request & {type: 'mute', audio: boolean, video: boolean}} MuteMessage */
/** @typedef {Request & {type: 'media_state', state: MediaHealth}} MediaStateMessage */
/** @typedef {Request & {type: 'connection_check', level: CheckLevel}} ConnectionCheckMessage */
/** @typedef {Request & {type: 'end_consultation'}} EndConsultationMessage */
/** @typedef {Request & {type: 'force_start', appointment_id: string}} ForceStartMessage */
/** @typedef {Request & {type: 'transfer', participant_id: string, to: QueueRef}} TransferMessage */
/** @typedef {Request & {type: 'file_offer', name: string, size: number, content_type?: string}} FileOfferMessage */
/** @typedef {Request & {type: 'file_download', file_id: string}} FileDownloadMessage */
/** @typedef {Request & {type: 'chat_channels'}} ChatChannelsMessage */
/** @typedef {Request & {type: 'chat_sync', channel_id: string, after_seq?: number, before_seq?: number, limit?: number}} ChatSyncMessage */
/** @typedef {Request & {type: 'chat_send', channel_id: string, client_msg_id: string, text: string}} ChatSendMessage */
/** @typedef {Request & {type: 'chat_read', channel_id: string, seq: number}} ChatReadMessage */
/** @typedef {Request & {type: 'probe_offer', sdp: string}} ClientProbeOfferMessage */
/** @typedef {Request & {type: 'probe_answer', sdp: string}} ClientProbeAnswerMessage */
/** @typedef {Request & {type: 'probe_candidate', candidate: string}} ProbeCandidateMessage */
/** @typedef {Request & {type: 'probe_stop'}} ProbeStopMessage */
/** @typedef {Request & {type: 'ping'}} PingMessage */

/**
 * Every frame a client may send.
 * @typedef {JoinMessage | LeaveConsultationMessage | AdmitMessage | ClientMediaOfferMessage
 *   | ViewMessage | ClientMediaAnswerMessage | IceCandidateMessage | MuteMessage
 *   | MediaStateMessage | ConnectionCheckMessage
 *   | EndConsultationMessage | ForceStartMessage | TransferMessage | FileOfferMessage
 *   | FileDownloadMessage | ChatChannelsMessage | ChatSyncMessage | ChatSendMessage
 *   | ChatReadMessage | ClientProbeOfferMessage | ClientProbeAnswerMessage
 *   | ProbeCandidateMessage | ProbeStopMessage | PingMessage} ClientMessage
 */

// ---------------------------------------------------------------- server → client

/** @typedef {{reply_to?: string}} Reply the answer to a request names its `id` */

/** @typedef {Reply & {type: 'joined', protocol: number, participant_id: string, role: Role, display_name: string}} JoinedMessage */
/** @typedef {Reply & {type: 'waiting_snapshot', entries: WaitingEntry[]}} WaitingSnapshotMessage */
/** @typedef {Reply & {type: 'waiting_arrived', entry: WaitingEntry}} WaitingArrivedMessage */
/** @typedef {Reply & {type: 'waiting_left', participant_id: string}} WaitingLeftMessage */
/** @typedef {Reply & {type: 'waiting_updated', entry: WaitingEntry}} WaitingUpdatedMessage */
/** @typedef {Reply & {type: 'waiting', appointment_starts_at?: string, punctuality: Punctuality, reason?: 'waiting_for_client'}} WaitingMessage */
/** @typedef {Reply & {type: 'queue_status', position: number, estimated_start_at?: string}} QueueStatusMessage */
/** @typedef {Reply & {type: 'announcements', items: AnnouncementInfo[]}} AnnouncementsMessage */
/** @typedef {Reply & {type: 'consultation_started', consultation_id: string, started_at: string, participants: ParticipantInfo[], resumed?: boolean}} ConsultationStartedMessage */
/** @typedef {Reply & {type: 'participant_joined', participant: ParticipantInfo}} ParticipantJoinedMessage */
/** @typedef {Reply & {type: 'participant_left', participant_id: string}} ParticipantLeftMessage */
/** @typedef {Reply & {type: 'participant_reconnecting', participant_id: string}} ParticipantReconnectingMessage */
/** @typedef {Reply & {type: 'participant_resumed', participant_id: string}} ParticipantResumedMessage */
/** @typedef {Reply & {type: 'speaking', participant_id: string}} SpeakingMessage */
/** @typedef {Reply & {type: 'participant_muted', participant_id: string, audio: boolean, video: boolean}} ParticipantMutedMessage */
/** @typedef {Reply & {type: 'participant_media', participant_id: string, state: MediaHealth}} ParticipantMediaMessage */
/** @typedef {Reply & {type: 'media_answer', sdp: string}} ServerMediaAnswerMessage */
/** @typedef {Reply & {type: 'media_offer', sdp: string}} ServerMediaOfferMessage */
/** @typedef {Reply & {type: 'consultation_ended', consultation_id: string, reason: EndReason}} ConsultationEndedMessage */
/** @typedef {Reply & {type: 'file_upload_ready', file_id: string, url: string, expires_at: string}} FileUploadReadyMessage */
/** @typedef {Reply & {type: 'file_shared', file_id: string, name: string, size: number, content_type: string, from: string, shared_at: string}} FileSharedMessage */
/** @typedef {Reply & {type: 'file_download_ready', file_id: string, url: string, expires_at: string}} FileDownloadReadyMessage */
/** @typedef {Reply & {type: 'chat_channel_list', channels: ChatChannelInfo[]}} ChatChannelListMessage */
/** @typedef {Reply & {type: 'chat_history', channel_id: string, messages: ChatMessageInfo[], has_more: boolean, cleared_through_seq: number, last_seq: number}} ChatHistoryMessage */
/** @typedef {Reply & {type: 'chat_ack', channel_id: string, client_msg_id: string, seq: number, sent_at: string}} ChatAckMessage */
/** @typedef {Reply & {type: 'chat_message', message: ChatMessageInfo}} ChatMessageMessage */
/** @typedef {Reply & {type: 'chat_activity', channel_id: string, seq: number, sender: ChatSender}} ChatActivityMessage */
/** @typedef {Reply & {type: 'chat_cleared', channel_id: string, through_seq: number}} ChatClearedMessage */
/** @typedef {Reply & {type: 'probe_answer', sdp: string, seconds: number, udp_ports?: number[], tcp_ports?: number[]}} ServerProbeAnswerMessage */
/** @typedef {Reply & {type: 'probe_offer', sdp: string}} ServerProbeOfferMessage */
/** @typedef {Reply & {type: 'probe_ended', reason: ProbeEndReason}} ProbeEndedMessage */
/** @typedef {Reply & {type: 'token_refresh', token: string, expires_at: string}} TokenRefreshMessage */
/** @typedef {Reply & {type: 'ok'}} OkMessage */
/** @typedef {Reply & {type: 'pong'}} PongMessage */
/** @typedef {Reply & {type: 'error', code: ErrorCode, message: string}} ErrorMessage */

/**
 * Every frame the server sends.
 * @typedef {JoinedMessage | WaitingSnapshotMessage | WaitingArrivedMessage | WaitingLeftMessage
 *   | WaitingUpdatedMessage | WaitingMessage | QueueStatusMessage | AnnouncementsMessage
 *   | ConsultationStartedMessage | ParticipantJoinedMessage | ParticipantLeftMessage
 *   | ParticipantReconnectingMessage | ParticipantResumedMessage | SpeakingMessage
 *   | ParticipantMutedMessage | ParticipantMediaMessage | ServerMediaAnswerMessage | ServerMediaOfferMessage
 *   | ConsultationEndedMessage | FileUploadReadyMessage | FileSharedMessage
 *   | FileDownloadReadyMessage | ChatChannelListMessage | ChatHistoryMessage | ChatAckMessage
 *   | ChatMessageMessage | ChatActivityMessage | ChatClearedMessage | ServerProbeAnswerMessage
 *   | ServerProbeOfferMessage | ProbeEndedMessage | TokenRefreshMessage | OkMessage
 *   | PongMessage | ErrorMessage} ServerMessage
 */

export {};
