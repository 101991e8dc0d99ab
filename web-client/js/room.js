// @ts-check
// The consultation room, shared by staff and patient: a large main video (a screen share when
// someone shares, else the other participant — with several, the one speaking), a strip of tiles
// for everyone else, a small self view, microphone/camera/screen toggles (aria-pressed), remote
// mute indicators, a speaking highlight, a running clock and, for staff, "End consultation".
// It owns the MediaSession for one consultation and tells the server how each remote video is
// shown (`view`), so hidden or small tiles cost no bandwidth.

import { $, announce } from './dom.js';
import { mmss } from './format.js';
import { MediaSession, publisherStreamId } from './media.js';
import { setPeerConnection } from './hooks.js';
import { t, applyTranslations, setText } from './i18n.js';

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').ConsultationStartedMessage} ConsultationStartedMessage */
/** @typedef {import('./protocol.js').ConsultationEndedMessage} ConsultationEndedMessage */

/** The stage moves to a new speaker at most this often (milliseconds). */
const STAGE_HOLD_MS = 4000;
/**
 * A media connection not connected this long after the consultation starts (or after it dropped)
 * is reported as failed, to both sides, in plain words (browsers give up on ICE only after 30 s).
 */
export const MEDIA_CONNECT_MS = 10_000;

const ROOM_HTML = `
  <h2 id="room-title" class="visually-hidden" data-focus-on-show data-i18n="room.title">Consultation</h2>
  <div class="room-stage">
    <div class="remote" id="remote">
      <video id="remote-video" autoplay playsinline aria-label="Video of the other participant" data-i18n-attr="aria-label:room.remote_video"></video>
      <div class="remote-placeholder" id="remote-placeholder">
        <p id="remote-placeholder-text" data-i18n="room.connecting_video">Connecting video…</p>
        <p id="remote-placeholder-advice" class="placeholder-advice" hidden></p>
        <button type="button" id="btn-media-retry" class="btn btn-light btn-small" hidden data-i18n="room.media_retry">Try again</button>
      </div>
      <p class="remote-name" id="remote-name"></p>
      <ul class="indicators remote-indicators" id="remote-indicators" aria-label="The other participant's devices" data-i18n-attr="aria-label:room.remote_devices">
        <li id="remote-mic-off" hidden><svg class="icon off" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3M8 21h8" fill="none"/><path class="slash" d="M4 4l16 16"/></svg> <span data-i18n="room.microphone_off">Microphone off</span></li>
        <li id="remote-cam-off" hidden><svg class="icon off" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><rect x="3" y="6" width="12" height="12" rx="2"/><path d="M15 10l6-3v10l-6-3z"/><path class="slash" d="M3 3l18 18"/></svg> <span data-i18n="room.camera_off">Camera off</span></li>
      </ul>
      <div id="room-invite" class="room-invite" hidden>
        <p><span data-i18n="room.invite_before">Send this link to</span> <span id="room-invite-name"></span><span data-i18n="room.invite_after">; they come straight in:</span></p>
        <p class="room-invite-row"><input id="room-invite-url" readonly aria-label="Invitation link" data-i18n-attr="aria-label:room.invite_link">
          <button type="button" id="btn-invite-copy" class="btn btn-light btn-small" data-i18n="room.copy_link">Copy link</button></p>
      </div>
      <div id="room-notice-box" class="room-notice" hidden>
        <p id="room-notice"></p>
        <button type="button" id="btn-notice-action" class="btn btn-light" hidden></button>
      </div>
      <button type="button" id="btn-sound" class="btn btn-light sound-btn" hidden data-i18n="room.sound_on">Turn on sound</button>
    </div>
    <ul class="tiles" id="tiles" aria-label="Other participants" data-i18n-attr="aria-label:room.others"></ul>
    <figure class="self" id="self">
      <video id="self-video" autoplay playsinline muted aria-label="Your own camera" data-i18n-attr="aria-label:room.self_video"></video>
      <figcaption data-i18n="room.you">You</figcaption>
      <p class="self-sharing" id="self-sharing" hidden data-i18n="room.self_sharing">You are sharing your screen</p>
      <ul class="indicators self-indicators" aria-label="Your devices" data-i18n-attr="aria-label:room.self_devices">
        <li id="self-mic-off" hidden data-i18n="room.self_mic_off">Your microphone is off</li>
        <li id="self-cam-off" hidden data-i18n="room.self_cam_off">Your camera is off</li>
      </ul>
    </figure>
  </div>
  <div class="room-bar">
    <p class="clock" id="room-clock-wrap">
      <span class="clock-label" data-i18n="room.clock">Consultation time</span>
      <span id="room-clock" class="clock-value" role="timer" aria-live="off" translate="no">00:00</span>
    </p>
    <div class="room-actions">
      <button type="button" id="btn-mic" class="btn btn-toggle" aria-pressed="false">
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3M8 21h8" fill="none"/><path class="slash" d="M4 4l16 16"/></svg> <span data-i18n="room.mute_mic">Mute microphone</span>
      </button>
      <button type="button" id="btn-cam" class="btn btn-toggle" aria-pressed="false">
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><rect x="3" y="6" width="12" height="12" rx="2"/><path d="M15 10l6-3v10l-6-3z"/><path class="slash" d="M3 3l18 18"/></svg> <span data-i18n="room.camera_toggle">Turn camera off</span>
      </button>
      <button type="button" id="btn-screen" class="btn btn-toggle" aria-pressed="false" hidden>
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><rect x="3" y="4" width="18" height="12" rx="2"/><path d="M8 20h8M12 16v4" fill="none"/></svg> <span data-i18n="room.share_screen">Share screen</span>
      </button>
      <button type="button" id="btn-transfer" class="btn btn-toggle" aria-haspopup="dialog" hidden data-i18n="room.transfer">Transfer patient…</button>
      <button type="button" id="btn-end" class="btn btn-danger" aria-haspopup="true" hidden data-i18n="room.end">End consultation</button>
      <div id="end-confirm" class="end-confirm" role="group" aria-labelledby="end-confirm-text" hidden>
        <span id="end-confirm-text" data-i18n="room.end_confirm">End the consultation for everyone?</span>
        <button type="button" id="btn-end-yes" class="btn btn-danger btn-small" data-i18n="room.end_yes">Yes, end it</button>
        <button type="button" id="btn-end-no" class="btn btn-quiet btn-small" data-i18n="room.end_no">Keep going</button>
      </div>
    </div>
  </div>
  <p id="room-status" class="visually-hidden" role="status" aria-live="polite"></p>
`;

export class ConsultationRoom {
  /**
   * @param {object} opts
   * @param {HTMLElement} opts.root the (empty) room section
   * @param {'staff'|'patient'} opts.role
   * @param {import('./signalling.js').SignallingClient} opts.signalling
   * @param {(msg: ConsultationEndedMessage | null) => void} opts.onEnded called once with
   *   `consultation_ended`, or null when the room was left without one (`abort`)
   * @param {(text: string) => void} opts.onError shows a readable error
   * @param {{label: string, onClick: () => void}} [opts.otherLeftAction] a button (its label a
   *   catalogue key) offered when
   *   the other participant left (the patient's way back to the waiting room)
   * @param {(patient: ParticipantInfo) => void} [opts.onTransfer] staff: "Transfer patient…" was pressed
   * @param {() => Promise<RTCIceServer[]>} [opts.getIceServers] TURN servers for each consultation
   * @param {boolean} [opts.allowScreenShare] the organisation allows screen sharing (default true;
   *   the server enforces it either way)
   */
  constructor({ root, role, signalling, onEnded, onError, otherLeftAction, onTransfer, getIceServers, allowScreenShare = true }) {
    this.allowScreenShare = allowScreenShare && !!(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
    /** @type {Map<string, MediaStream>} remote streams by msid stream id */
    this.streams = new Map();
    /** @type {string | null} participant id of the active speaker */
    this.speaker = null;
    /** @type {string | null} */
    this.mainStreamId = null;
    this.resizeObserver = typeof ResizeObserver === 'function' ? new ResizeObserver(() => this.#sendViews()) : null;
    this.onVisibility = () => this.#sendViews();
    this.root = root;
    this.getIceServers = getIceServers || null;
    this.role = role;
    this.signalling = signalling;
    this.onEnded = onEnded;
    this.onError = onError;
    /** @type {MediaSession | null} */
    this.media = null;
    /** @type {MediaStream | null} */
    this.localStream = null;
    /** @type {string | null} */
    this.consultationId = null;
    /** @type {string | null} */
    this.selfId = null;
    /** @type {Map<string, ParticipantInfo>} everyone else in the consultation, by participant id */
    this.others = new Map();
    /** @type {ReturnType<typeof setInterval> | null} */
    this.clockTimer = null;
    this.audioOn = true;
    this.videoOn = true;
    this.startedAt = 0;
    this.active = false;
    this.otherLeftAction = otherLeftAction || null;
    this.onTransfer = role === 'staff' ? onTransfer || null : null;
    /** @type {string | null} */
    this.waitingFor = null;
    /** Our own media connection: null while connecting, else as last reported (`media_state`). */
    /** @type {'connected' | 'failed' | null} */
    this.mediaHealth = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.mediaTimer = undefined;
    root.innerHTML = ROOM_HTML; // static markup only; names are set with textContent
    applyTranslations(root);
    this.el = {
      remoteVideo: $('remote-video', HTMLVideoElement),
      placeholder: $('remote-placeholder'),
      placeholderText: $('remote-placeholder-text'),
      placeholderAdvice: $('remote-placeholder-advice'),
      mediaRetry: $('btn-media-retry', HTMLButtonElement),
      remoteName: $('remote-name'),
      remoteMicOff: $('remote-mic-off'),
      remoteCamOff: $('remote-cam-off'),
      notice: $('room-notice-box'),
      noticeText: $('room-notice'),
      noticeAction: $('btn-notice-action', HTMLButtonElement),
      soundBtn: $('btn-sound', HTMLButtonElement),
      selfVideo: $('self-video', HTMLVideoElement),
      selfMicOff: $('self-mic-off'),
      selfCamOff: $('self-cam-off'),
      clock: $('room-clock'),
      mic: $('btn-mic', HTMLButtonElement),
      cam: $('btn-cam', HTMLButtonElement),
      end: $('btn-end', HTMLButtonElement),
      endConfirm: $('end-confirm'),
      endYes: $('btn-end-yes', HTMLButtonElement),
      endNo: $('btn-end-no', HTMLButtonElement),
      transfer: $('btn-transfer', HTMLButtonElement),
      screen: $('btn-screen', HTMLButtonElement),
      tiles: $('tiles'),
      remote: $('remote'),
      self: $('self'),
      selfSharing: $('self-sharing'),
      invite: $('room-invite'),
      inviteName: $('room-invite-name'),
      inviteUrl: $('room-invite-url', HTMLInputElement),
      inviteCopy: $('btn-invite-copy', HTMLButtonElement),
      status: $('room-status'),
    };
    this.el.transfer.addEventListener('click', () => {
      const patient = this.#patient();
      if (patient && this.onTransfer) this.onTransfer(patient);
    });
    this.el.mic.addEventListener('click', () => this.#toggle('audio'));
    this.el.cam.addEventListener('click', () => this.#toggle('video'));
    // Ending is for everyone and cannot be undone: asked once more, "Keep going" focused.
    this.el.end.addEventListener('click', () => {
      this.el.end.hidden = true;
      this.el.endConfirm.hidden = false;
      this.el.endNo.focus();
    });
    this.el.endNo.addEventListener('click', () => this.#closeEndConfirm(true));
    this.el.endYes.addEventListener('click', () => {
      this.#closeEndConfirm(false);
      void this.#endConsultation();
    });
    this.el.screen.addEventListener('click', () => this.#toggleScreen());
    this.el.mediaRetry.addEventListener('click', () => {
      if (!this.media) return;
      this.el.mediaRetry.disabled = true;
      this.#armMediaTimer();
      this.media.restartIce().catch(() => this.#onMediaTrouble());
    });
    this.el.inviteCopy.addEventListener('click', async () => {
      this.el.inviteUrl.select();
      try {
        await navigator.clipboard.writeText(this.el.inviteUrl.value);
        announce(this.el.status, t('room.link_copied'));
        setText(this.el.inviteCopy, 'room.copied');
      } catch {
        announce(this.el.status, t('room.copy_by_hand'));
      }
    });
    this.el.soundBtn.addEventListener('click', () => {
      for (const v of /** @type {NodeListOf<HTMLVideoElement>} */ (this.root.querySelectorAll('.remote video, .tiles video'))) {
        v.muted = false;
        v.play().catch(() => {});
      }
      this.el.soundBtn.hidden = true;
    });
    this.el.remoteVideo.addEventListener('resize', () => this.#updatePlaceholder());
    if (this.resizeObserver) this.resizeObserver.observe(this.el.remoteVideo);
    this.el.remoteVideo.addEventListener('loadeddata', () => this.#updatePlaceholder());
    this.el.end.hidden = role !== 'staff';
    if (this.otherLeftAction) {
      setText(this.el.noticeAction, this.otherLeftAction.label);
      this.el.noticeAction.addEventListener('click', () => this.otherLeftAction.onClick());
    }
  }

  /**
   * Enters the room for a `consultation_started` frame with the given local stream.
   * `waitingFor` (a name) marks a force-started consultation whose patient has not arrived yet.
   * @param {ConsultationStartedMessage} msg
   * @param {{ selfId: string, localStream: MediaStream, waitingFor?: string | null, inviteUrl?: string | null }} how
   */
  start(msg, { selfId, localStream, waitingFor = null, inviteUrl = null }) {
    this.active = true;
    this.waitingFor = waitingFor || null;
    this.el.invite.hidden = !inviteUrl;
    this.el.inviteUrl.value = inviteUrl || '';
    if (waitingFor) this.el.inviteName.textContent = waitingFor;
    else setText(this.el.inviteName, 'room.the_client');
    setText(this.el.inviteCopy, 'room.copy_link');
    if (this.waitingFor) this.root.dataset.waitingFor = 'true';
    else delete this.root.dataset.waitingFor;
    this.consultationId = msg.consultation_id;
    this.selfId = selfId;
    this.localStream = localStream;
    this.audioOn = localStream.getAudioTracks().some((t) => t.enabled);
    this.videoOn = localStream.getVideoTracks().some((t) => t.enabled);
    this.el.cam.disabled = localStream.getVideoTracks().length === 0;
    this.el.mic.disabled = localStream.getAudioTracks().length === 0;
    this.#renderSelfState();

    this.startedAt = Date.parse(msg.started_at);
    if (Number.isNaN(this.startedAt)) this.startedAt = Date.now();
    this.#tick();
    this.clockTimer = setInterval(() => this.#tick(), 1000);

    this.others.clear();
    for (const p of msg.participants || []) {
      if (p.participant_id !== selfId) this.others.set(p.participant_id, p);
    }
    this.#renderOthers();
    this.el.notice.hidden = true;

    this.el.selfVideo.srcObject = localStream;
    this.el.selfVideo.play().catch(() => {});

    this.media = new MediaSession({
      signalling: this.signalling,
      localStream,
      onRemoteStreams: (streams) => this.#onStreams(streams),
      onConnectionState: (state) => {
        this.root.dataset.connection = state;
        if (state === 'connected') this.#onMediaConnected();
        else if (state === 'failed') this.#onMediaTrouble();
        else if (state === 'disconnected' && this.mediaHealth === 'connected') this.#armMediaTimer();
      },
      onError: () => this.onError(t('room.video_setup_failed')),
      getIceServers: this.getIceServers || undefined,
      onPeerConnection: (pc) => setPeerConnection(pc),
    });
    this.mediaHealth = null;
    delete this.root.dataset.media;
    this.#armMediaTimer();
    this.media.start();
    this.el.screen.hidden = !this.allowScreenShare;
    this.#renderScreenState();
    document.addEventListener('visibilitychange', this.onVisibility);
    // Tell the others our starting state (e.g. the camera was switched off before admission).
    if (!this.audioOn || !this.videoOn) this.signalling.send({ type: 'mute', audio: this.audioOn, video: this.videoOn });
  }

  /**
   * Feeds a signalling frame; returns true when the room used it.
   * @param {ServerMessage} msg
   */
  handle(msg) {
    if (!this.active) return false;
    switch (msg.type) {
      case 'media_offer':
      case 'media_answer':
        return this.media ? this.media.handle(msg) : false;
      case 'participant_joined': {
        const p = msg.participant;
        if (p && p.participant_id !== this.selfId) {
          this.others.set(p.participant_id, p);
          this.waitingFor = null;
          this.el.invite.hidden = true;
          delete this.root.dataset.waitingFor;
          this.el.notice.hidden = true;
          delete $('remote').dataset.otherLeft;
          this.#renderOthers();
          announce(this.el.status, t('room.joined', { name: p.display_name || t('room.other_participant') }));
        }
        return true;
      }
      case 'participant_left': {
        const gone = this.others.get(msg.participant_id);
        this.others.delete(msg.participant_id);
        if (this.speaker === msg.participant_id) this.speaker = null;
        this.#renderOthers();
        const who = (gone && gone.display_name) || t('room.other_participant');
        if (this.others.size === 0) {
          this.el.noticeText.textContent = t('room.left_notice', { name: who });
          this.el.noticeAction.hidden = !this.otherLeftAction;
          this.el.notice.hidden = false;
          this.root.dataset.otherLeft = 'true';
          $('remote').dataset.otherLeft = 'true';
        }
        announce(this.el.status, t('room.left', { name: who }));
        return true;
      }
      case 'speaking': {
        this.speaker = msg.participant_id || null;
        this.#layout();
        return true;
      }
      case 'participant_muted': {
        const p = this.others.get(msg.participant_id);
        if (!p) return true;
        const before = { audio: p.audio, video: p.video };
        p.audio = !!msg.audio;
        p.video = !!msg.video;
        this.#renderOthers();
        const who = p.display_name || t('room.other_participant');
        if (before.audio !== p.audio) announce(this.el.status, t(p.audio ? 'room.other_mic_on' : 'room.other_mic_off', { name: who }));
        else if (before.video !== p.video) announce(this.el.status, t(p.video ? 'room.other_cam_on' : 'room.other_cam_off', { name: who }));
        return true;
      }
      case 'participant_media': {
        const p = this.others.get(msg.participant_id);
        if (!p) return true;
        const before = p.media;
        p.media = msg.state;
        this.#renderOthers();
        if (msg.state === 'failed' && before !== 'failed') {
          announce(this.el.status, t('room.other_media_failed', { name: p.display_name || t('room.other_participant') }));
        }
        return true;
      }
      case 'consultation_ended':
        this.#finish(msg);
        return true;
      default:
        return false;
    }
  }

  /** Leaves without an `consultation_ended` frame (e.g. the connection was lost). */
  abort() {
    this.#finish(null);
  }

  /**
   * Reconnection (issue #3): our seat was resumed on a new signalling connection
   * (`consultation_started` with `resumed: true`). Keeps the peer connection and tiles, takes
   * the current participant list, and restarts ICE through the new connection.
   * @param {ConsultationStartedMessage} msg
   */
  resume(msg) {
    if (!this.active) return;
    for (const p of msg.participants || []) {
      if (p.participant_id !== this.selfId) this.others.set(p.participant_id, p);
    }
    const ids = new Set((msg.participants || []).map((p) => p.participant_id));
    for (const id of [...this.others.keys()]) if (!ids.has(id)) this.others.delete(id);
    this.#renderOthers();
    if (this.media) this.media.restartIce().catch(() => this.onError(t('room.video_restore_failed')));
  }

  /** (Re)starts the wait for our media connection: not connected by then, it has failed. */
  #armMediaTimer() {
    clearTimeout(this.mediaTimer);
    this.mediaTimer = setTimeout(() => this.#onMediaTrouble(), MEDIA_CONNECT_MS);
  }

  /** Our peer connection connected: tell the others (once, or after a failure). */
  #onMediaConnected() {
    clearTimeout(this.mediaTimer);
    const was = this.mediaHealth;
    this.mediaHealth = 'connected';
    this.root.dataset.media = 'connected';
    this.el.mediaRetry.disabled = false;
    if (was !== 'connected') this.signalling.send({ type: 'media_state', state: 'connected' });
    if (was === 'failed') announce(this.el.status, t('room.media_back'));
    this.#updatePlaceholder();
  }

  /** Our media did not connect in time (or ICE failed): say so here and to the others. */
  #onMediaTrouble() {
    clearTimeout(this.mediaTimer);
    if (!this.active || !this.media) return;
    const pc = this.media.pc;
    if (pc && pc.connectionState === 'connected') return;
    this.el.mediaRetry.disabled = false;
    if (this.mediaHealth === 'failed') return;
    this.mediaHealth = 'failed';
    this.root.dataset.media = 'failed';
    this.signalling.send({ type: 'media_state', state: 'failed' });
    announce(this.el.status, t('room.media_failed_self'));
    this.#updatePlaceholder();
  }

  /** @param {ConsultationEndedMessage | null} msg */
  #finish(msg) {
    if (!this.active) return;
    this.active = false;
    clearInterval(this.clockTimer);
    clearTimeout(this.mediaTimer);
    this.mediaHealth = null;
    delete this.root.dataset.media;
    if (this.media) this.media.close();
    this.media = null;
    setPeerConnection(null);
    document.removeEventListener('visibilitychange', this.onVisibility);
    if (this.resizeObserver) this.resizeObserver.disconnect();
    if (this.resizeObserver) this.resizeObserver.observe(this.el.remoteVideo);
    this.streams = new Map();
    this.speaker = null;
    this.mainStreamId = null;
    this.el.tiles.replaceChildren();
    this.el.invite.hidden = true;
    this.#renderScreenState();
    this.el.remoteVideo.srcObject = null;
    this.el.selfVideo.srcObject = null;
    delete this.root.dataset.otherLeft;
    delete $('remote').dataset.otherLeft;
    delete this.root.dataset.connection;
    delete this.root.dataset.waitingFor;
    this.waitingFor = null;
    this.el.transfer.hidden = true;
    this.onEnded(msg);
  }

  #tick() {
    this.el.clock.textContent = mmss(Date.now() - this.startedAt);
  }

  /** @param {Map<string, MediaStream>} streams */
  #onStreams(streams) {
    this.streams = streams;
    this.#layout();
  }

  /**
   * The other participant whose camera stream is `streamId` (or its screen share), or null.
   * @param {string} streamId
   */
  #participantOf(streamId) {
    const base = publisherStreamId(streamId);
    for (const p of this.others.values()) {
      if (p.stream_id && p.stream_id === base) return p;
    }
    // Before names are known (or from an older server): with one other participant it is them.
    return this.others.size === 1 ? [...this.others.values()][0] : null;
  }

  /**
   * The camera stream of participant `p`, if it has arrived.
   * @param {ParticipantInfo | null} p
   */
  #cameraStreamOf(p) {
    if (p && p.stream_id && this.streams.has(p.stream_id)) return p.stream_id;
    if (this.others.size === 1) {
      for (const id of this.streams.keys()) if (!id.endsWith('-screen')) return id;
    }
    return null;
  }

  /**
   * Decides what the main stage shows and which tiles the strip holds, then renders both:
   * a screen share wins the stage; else the participant speaking (with several others), else
   * the first other participant. Every camera stream is played exactly once (stage or tile), so
   * every voice is heard once.
   */
  #layout() {
    const others = [...this.others.values()];
    const screenId = [...this.streams.keys()].find((id) => id.endsWith('-screen')) || null;
    let mainParticipant;
    let mainStreamId;
    if (screenId) {
      mainParticipant = this.#participantOf(screenId);
      mainStreamId = screenId;
    } else {
      const speaking = others.find((p) => p.participant_id === this.speaker);
      const current = others.find((p) => this.#cameraStreamOf(p) === this.mainStreamId);
      // The stage follows the speaker, but calmly: at most one move per STAGE_HOLD_MS, so that
      // short interjections do not swap videos (each swap resizes two views, and the server
      // then switches simulcast layers at the next keyframe).
      const settled = Date.now() - (this.stageChangedAt || 0) >= STAGE_HOLD_MS;
      const next = (others.length > 1 && speaking && (settled || !current) ? speaking : null) || current || others[0] || null;
      if (next !== current) this.stageChangedAt = Date.now();
      mainParticipant = next;
      mainStreamId = this.#cameraStreamOf(mainParticipant);
    }
    this.mainParticipant = mainParticipant || null;
    this.root.dataset.screenShared = String(!!screenId);
    this.#show(this.el.remoteVideo, mainStreamId);
    this.mainStreamId = mainStreamId;

    // Tiles: every other participant not on the stage by their camera.
    const wanted = others.filter((p) => screenId || p !== mainParticipant);
    const keep = new Set();
    for (const p of wanted) {
      keep.add(p.participant_id);
      /** @type {HTMLLIElement | null} */
      let li = this.el.tiles.querySelector(`li[data-participant-id="${CSS.escape(p.participant_id)}"]`);
      if (!li) {
        li = document.createElement('li');
        li.className = 'tile';
        li.dataset.participantId = p.participant_id;
        const video = document.createElement('video');
        video.autoplay = true;
        video.playsInline = true;
        const name = document.createElement('p');
        name.className = 'tile-name';
        li.append(video, name);
        this.el.tiles.append(li);
        if (this.resizeObserver) this.resizeObserver.observe(video);
      }
      li.querySelector('.tile-name').textContent = p.display_name || '';
      li.dataset.audio = String(p.audio !== false);
      li.dataset.video = String(p.video !== false);
      li.dataset.speaking = String(this.speaker === p.participant_id);
      this.#show(li.querySelector('video'), this.#cameraStreamOf(p));
    }
    for (const li of /** @type {HTMLElement[]} */ ([...this.el.tiles.children])) {
      if (!keep.has(li.dataset.participantId)) {
        const v = li.querySelector('video');
        if (this.resizeObserver && v) this.resizeObserver.unobserve(v);
        li.remove();
      }
    }
    this.el.tiles.hidden = this.el.tiles.children.length === 0;
    this.el.remote.dataset.speaking = String(!!mainParticipant && this.speaker === mainParticipant.participant_id);
    this.el.self.dataset.speaking = String(!!this.speaker && this.speaker === this.selfId);
    this.#renderMain();
    this.#sendViews();
  }

  /**
   * Plays stream `id` (or nothing) in `video`, unmuted, offering a sound button if refused.
   * @param {HTMLVideoElement} video
   * @param {string | null} id
   */
  #show(video, id) {
    const stream = id ? this.streams.get(id) : null;
    if (video.srcObject === stream || (!stream && !video.srcObject)) return;
    video.srcObject = stream || null;
    if (!stream) return;
    video.muted = false;
    video.play().catch((e) => {
      if (e && e.name === 'NotAllowedError') {
        // Autoplay with sound was refused: play silently and offer a button.
        video.muted = true;
        video.play().catch(() => {});
        this.el.soundBtn.hidden = false;
      }
    });
  }

  /** Tells the server the size (or hiddenness) of every remote video shown. */
  #sendViews() {
    if (!this.media) return;
    const hidden = document.visibilityState === 'hidden';
    const dpr = window.devicePixelRatio || 1;
    for (const v of [this.el.remoteVideo, ...this.el.tiles.querySelectorAll('video')]) {
      const stream = /** @type {MediaStream | null} */ (v.srcObject);
      const track = stream && stream.getVideoTracks ? stream.getVideoTracks()[0] : null;
      if (!track) continue;
      const visible = !hidden && v.clientWidth > 0 && v.clientHeight > 0;
      this.media.setView(track, { visible, width: v.clientWidth * dpr, height: v.clientHeight * dpr });
    }
  }

  #updatePlaceholder() {
    const v = this.el.remoteVideo;
    const main = this.mainParticipant || null;
    const showsScreen = this.root.dataset.screenShared === 'true';
    const hasPicture = !!v.srcObject && v.videoWidth > 0 && (showsScreen || !main || main.video !== false);
    const selfFailed = this.mediaHealth === 'failed';
    const otherFailed = [...this.others.values()].find((p) => p.media === 'failed') || null;
    this.root.dataset.otherMedia = otherFailed ? 'failed' : '';
    this.el.placeholder.hidden = hasPicture && !selfFailed;
    this.el.mediaRetry.hidden = !selfFailed;
    // What is wrong, and what to try: our own connection first (nothing can arrive then),
    // else a participant whose connection failed.
    if (selfFailed) {
      setText(this.el.placeholderText, 'room.media_failed_self');
      setText(this.el.placeholderAdvice, 'room.media_failed_self_advice');
      this.el.placeholderAdvice.hidden = false;
      return;
    }
    if (otherFailed && !hasPicture) {
      const name = otherFailed.display_name || t('room.other_participant');
      setText(this.el.placeholderText, 'room.other_media_failed', { name });
      setText(this.el.placeholderAdvice, this.role === 'staff' ? 'room.other_media_failed_advice_staff' : 'room.other_media_failed_advice_patient');
      this.el.placeholderAdvice.hidden = false;
      return;
    }
    this.el.placeholderAdvice.hidden = true;
    if (!main) {
      if (this.waitingFor) setText(this.el.placeholderText, 'room.waiting_for', { name: this.waitingFor });
      else setText(this.el.placeholderText, 'room.no_one_here');
    } else if (!showsScreen && main.video === false) {
      setText(this.el.placeholderText, 'room.other_camera_off', { name: main.display_name || t('room.other_participant') });
    } else setText(this.el.placeholderText, 'room.connecting_video');
  }

  #renderOthers() {
    this.#layout();
  }

  /** Name, indicators and placeholder of whoever is on the main stage. */
  #renderMain() {
    const main = this.mainParticipant || null;
    const showsScreen = this.root.dataset.screenShared === 'true';
    this.el.remoteName.textContent = main
      ? (showsScreen ? t('room.name_screen', { name: main.display_name || '' }) : main.display_name || '')
      : (showsScreen ? t('room.screen') : '');
    this.el.remoteMicOff.hidden = !main || main.audio !== false;
    this.el.remoteCamOff.hidden = !main || showsScreen || main.video !== false;
    this.root.dataset.remoteAudio = main ? String(main.audio !== false) : '';
    this.root.dataset.remoteVideo = main ? String(main.video !== false) : '';
    this.el.transfer.hidden = !this.onTransfer || !this.#patient();
    this.#updatePlaceholder();
  }

  #renderScreenState() {
    const sharing = !!(this.media && this.media.sharingScreen);
    this.el.screen.setAttribute('aria-pressed', String(sharing));
    setText(this.el.screen.querySelector('span'), sharing ? 'room.stop_sharing' : 'room.share_screen');
    this.el.selfSharing.hidden = !sharing;
    this.root.dataset.sharing = String(sharing);
  }

  async #toggleScreen() {
    if (!this.media) return;
    this.el.screen.disabled = true;
    try {
      if (this.media.sharingScreen) {
        await this.media.stopScreenShare();
        announce(this.el.status, t('room.stopped_sharing'));
      } else {
        const stream = await this.media.startScreenShare();
        // The browser's own "Stop sharing" button ends the track: reflect it here.
        for (const t of stream.getVideoTracks()) t.addEventListener('ended', () => setTimeout(() => this.#renderScreenState(), 0));
        announce(this.el.status, t('room.sharing'));
      }
    } catch (e) {
      if (e && e.code === 'forbidden') this.onError(t('room.screen_forbidden'));
      else if (e && e.name === 'NotAllowedError') { /* the picker was cancelled */ }
      else this.onError(t('room.screen_failed'));
    } finally {
      this.el.screen.disabled = false;
      this.#renderScreenState();
    }
  }

  /** The patient in this consultation (for staff), or null. */
  #patient() {
    return [...this.others.values()].find((p) => p.role === 'patient') || null;
  }

  #renderSelfState() {
    this.el.mic.setAttribute('aria-pressed', String(!this.audioOn));
    this.el.cam.setAttribute('aria-pressed', String(!this.videoOn));
    this.el.selfMicOff.hidden = this.audioOn;
    this.el.selfCamOff.hidden = this.videoOn;
  }

  /** @param {'audio' | 'video'} kind */
  #toggle(kind) {
    if (!this.media) return;
    if (kind === 'audio') this.audioOn = !this.audioOn;
    else this.videoOn = !this.videoOn;
    this.media.setEnabled('audio', this.audioOn);
    this.media.setEnabled('video', this.videoOn);
    this.#renderSelfState();
    announce(this.el.status, kind === 'audio'
      ? t(this.audioOn ? 'room.my_mic_on' : 'room.my_mic_off')
      : t(this.videoOn ? 'room.my_cam_on' : 'room.my_cam_off'));
    this.signalling.send({ type: 'mute', audio: this.audioOn, video: this.videoOn });
  }

  /** @param {boolean} focusEnd */
  #closeEndConfirm(focusEnd) {
    this.el.endConfirm.hidden = true;
    this.el.end.hidden = this.role !== 'staff';
    if (focusEnd) this.el.end.focus();
  }

  async #endConsultation() {
    this.el.end.disabled = true;
    try {
      await this.signalling.request({ type: 'end_consultation' });
    } catch (e) {
      // The ended broadcast may already have closed the room; only complain while still in it.
      if (this.active) this.onError(t('room.end_failed', { reason: e.message }));
    } finally {
      this.el.end.disabled = false;
    }
  }
}
