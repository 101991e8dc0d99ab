// The consultation room, shared by staff and patient: large remote video, small self view,
// microphone/camera toggles (aria-pressed), remote mute indicators, a running clock and, for
// staff, "End consultation". It owns the MediaSession for one consultation.

import { $, announce } from './dom.js';
import { mmss } from './format.js';
import { MediaSession } from './media.js';
import { setPeerConnection } from './hooks.js';

const ROOM_HTML = `
  <h2 id="room-title" class="visually-hidden" data-focus-on-show>Consultation</h2>
  <div class="room-stage">
    <div class="remote" id="remote">
      <video id="remote-video" autoplay playsinline aria-label="Video of the other participant"></video>
      <div class="remote-placeholder" id="remote-placeholder">
        <p id="remote-placeholder-text">Connecting video…</p>
      </div>
      <p class="remote-name" id="remote-name"></p>
      <ul class="indicators remote-indicators" id="remote-indicators" aria-label="The other participant's devices">
        <li id="remote-mic-off" hidden><svg class="icon off" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3M8 21h8" fill="none"/><path class="slash" d="M4 4l16 16"/></svg> Microphone off</li>
        <li id="remote-cam-off" hidden><svg class="icon off" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><rect x="3" y="6" width="12" height="12" rx="2"/><path d="M15 10l6-3v10l-6-3z"/><path class="slash" d="M3 3l18 18"/></svg> Camera off</li>
      </ul>
      <div id="room-notice-box" class="room-notice" hidden>
        <p id="room-notice"></p>
        <button type="button" id="btn-notice-action" class="btn btn-light" hidden></button>
      </div>
      <button type="button" id="btn-sound" class="btn btn-light sound-btn" hidden>Turn on sound</button>
    </div>
    <figure class="self" id="self">
      <video id="self-video" autoplay playsinline muted aria-label="Your own camera"></video>
      <figcaption>You</figcaption>
      <ul class="indicators self-indicators" aria-label="Your devices">
        <li id="self-mic-off" hidden>Your microphone is off</li>
        <li id="self-cam-off" hidden>Your camera is off</li>
      </ul>
    </figure>
  </div>
  <div class="room-bar">
    <p class="clock" id="room-clock-wrap">
      <span class="clock-label">Consultation time</span>
      <span id="room-clock" class="clock-value" role="timer" aria-live="off">00:00</span>
    </p>
    <div class="room-actions">
      <button type="button" id="btn-mic" class="btn btn-toggle" aria-pressed="false">
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0M12 18v3M8 21h8" fill="none"/><path class="slash" d="M4 4l16 16"/></svg> <span>Mute microphone</span>
      </button>
      <button type="button" id="btn-cam" class="btn btn-toggle" aria-pressed="false">
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><rect x="3" y="6" width="12" height="12" rx="2"/><path d="M15 10l6-3v10l-6-3z"/><path class="slash" d="M3 3l18 18"/></svg> <span>Turn camera off</span>
      </button>
      <button type="button" id="btn-transfer" class="btn btn-toggle" aria-haspopup="dialog" hidden>Transfer patient…</button>
      <button type="button" id="btn-end" class="btn btn-danger" hidden>End consultation</button>
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
   * @param {(msg: object) => void} opts.onEnded called once with `consultation_ended` (or a synthetic one)
   * @param {(text: string) => void} opts.onError shows a readable error
   * @param {{label: string, onClick: () => void}} [opts.otherLeftAction] a button offered when
   *   the other participant left (the patient's way back to the waiting room)
   * @param {(patient: object) => void} [opts.onTransfer] staff: "Transfer patient…" was pressed
   */
  constructor({ root, role, signalling, onEnded, onError, otherLeftAction, onTransfer }) {
    this.root = root;
    this.role = role;
    this.signalling = signalling;
    this.onEnded = onEnded;
    this.onError = onError;
    this.media = null;
    this.localStream = null;
    this.consultationId = null;
    this.selfId = null;
    this.others = new Map();
    this.clockTimer = null;
    this.active = false;
    this.otherLeftAction = otherLeftAction || null;
    this.onTransfer = role === 'staff' ? onTransfer || null : null;
    this.waitingFor = null;
    root.innerHTML = ROOM_HTML; // static markup only; names are set with textContent
    this.el = {
      remoteVideo: $('remote-video'),
      placeholder: $('remote-placeholder'),
      placeholderText: $('remote-placeholder-text'),
      remoteName: $('remote-name'),
      remoteMicOff: $('remote-mic-off'),
      remoteCamOff: $('remote-cam-off'),
      notice: $('room-notice-box'),
      noticeText: $('room-notice'),
      noticeAction: $('btn-notice-action'),
      soundBtn: $('btn-sound'),
      selfVideo: $('self-video'),
      selfMicOff: $('self-mic-off'),
      selfCamOff: $('self-cam-off'),
      clock: $('room-clock'),
      mic: $('btn-mic'),
      cam: $('btn-cam'),
      end: $('btn-end'),
      transfer: $('btn-transfer'),
      status: $('room-status'),
    };
    this.el.transfer.addEventListener('click', () => {
      const patient = this.#patient();
      if (patient && this.onTransfer) this.onTransfer(patient);
    });
    this.el.mic.addEventListener('click', () => this.#toggle('audio'));
    this.el.cam.addEventListener('click', () => this.#toggle('video'));
    this.el.end.addEventListener('click', () => this.#endConsultation());
    this.el.soundBtn.addEventListener('click', () => {
      this.el.remoteVideo.muted = false;
      this.el.remoteVideo.play().then(() => { this.el.soundBtn.hidden = true; }).catch(() => {});
    });
    this.el.remoteVideo.addEventListener('resize', () => this.#updatePlaceholder());
    this.el.remoteVideo.addEventListener('loadeddata', () => this.#updatePlaceholder());
    this.el.end.hidden = role !== 'staff';
    if (this.otherLeftAction) {
      this.el.noticeAction.textContent = this.otherLeftAction.label;
      this.el.noticeAction.addEventListener('click', () => this.otherLeftAction.onClick());
    }
  }

  /**
   * Enters the room for a `consultation_started` frame with the given local stream.
   * `waitingFor` (a name) marks a force-started consultation whose patient has not arrived yet.
   */
  start(msg, { selfId, localStream, waitingFor = null }) {
    this.active = true;
    this.waitingFor = waitingFor || null;
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
      onRemoteStream: (stream) => this.#attachRemote(stream),
      onConnectionState: (state) => {
        this.root.dataset.connection = state;
        if (state === 'failed') this.onError('The video connection failed. Check your network connection.');
      },
      onError: () => this.onError('The video connection could not be set up.'),
    });
    this.media.start();
    setPeerConnection(this.media.pc);
    // Tell the others our starting state (e.g. the camera was switched off before admission).
    if (!this.audioOn || !this.videoOn) this.signalling.send({ type: 'mute', audio: this.audioOn, video: this.videoOn });
  }

  /** Feeds a signalling frame; returns true when the room used it. */
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
          delete this.root.dataset.waitingFor;
          this.el.notice.hidden = true;
          delete $('remote').dataset.otherLeft;
          this.#renderOthers();
          announce(this.el.status, `${p.display_name || 'The other participant'} joined.`);
        }
        return true;
      }
      case 'participant_left': {
        this.others.delete(msg.participant_id);
        this.#renderOthers();
        this.el.noticeText.textContent = 'The other participant left';
        this.el.noticeAction.hidden = !this.otherLeftAction;
        this.el.notice.hidden = false;
        this.root.dataset.otherLeft = 'true';
        $('remote').dataset.otherLeft = 'true';
        announce(this.el.status, 'The other participant left.');
        return true;
      }
      case 'participant_muted': {
        const p = this.others.get(msg.participant_id);
        if (!p) return true;
        const before = { audio: p.audio, video: p.video };
        p.audio = !!msg.audio;
        p.video = !!msg.video;
        this.#renderOthers();
        const who = p.display_name || 'The other participant';
        if (before.audio !== p.audio) announce(this.el.status, `${who} turned their microphone ${p.audio ? 'on' : 'off'}.`);
        else if (before.video !== p.video) announce(this.el.status, `${who} turned their camera ${p.video ? 'on' : 'off'}.`);
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

  #finish(msg) {
    if (!this.active) return;
    this.active = false;
    clearInterval(this.clockTimer);
    if (this.media) this.media.close();
    this.media = null;
    setPeerConnection(null);
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

  #attachRemote(stream) {
    const v = this.el.remoteVideo;
    const tracks = stream.getTracks();
    v.srcObject = tracks.length ? new MediaStream(tracks) : null;
    if (!tracks.length) {
      this.#updatePlaceholder();
      return;
    }
    v.muted = false;
    v.play().catch((e) => {
      if (e && e.name === 'NotAllowedError') {
        // Autoplay with sound was refused: play silently and offer a button.
        v.muted = true;
        v.play().catch(() => {});
        this.el.soundBtn.hidden = false;
      }
    });
    this.#updatePlaceholder();
  }

  #updatePlaceholder() {
    const v = this.el.remoteVideo;
    const other = [...this.others.values()][0];
    const hasPicture = !!v.srcObject && v.videoWidth > 0 && (!other || other.video !== false);
    this.el.placeholder.hidden = hasPicture;
    if (!other) this.el.placeholderText.textContent = this.waitingFor ? `Waiting for ${this.waitingFor} to join` : 'No one else is here yet.';
    else if (other.video === false) this.el.placeholderText.textContent = `${other.display_name || 'The other participant'} turned the camera off.`;
    else this.el.placeholderText.textContent = 'Connecting video…';
  }

  #renderOthers() {
    const other = [...this.others.values()][0];
    this.el.remoteName.textContent = other ? other.display_name || '' : '';
    this.el.remoteMicOff.hidden = !other || other.audio !== false;
    this.el.remoteCamOff.hidden = !other || other.video !== false;
    this.root.dataset.remoteAudio = other ? String(other.audio !== false) : '';
    this.root.dataset.remoteVideo = other ? String(other.video !== false) : '';
    this.el.transfer.hidden = !this.onTransfer || !this.#patient();
    this.#updatePlaceholder();
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

  #toggle(kind) {
    if (!this.media) return;
    if (kind === 'audio') this.audioOn = !this.audioOn;
    else this.videoOn = !this.videoOn;
    this.media.setEnabled('audio', this.audioOn);
    this.media.setEnabled('video', this.videoOn);
    this.#renderSelfState();
    announce(this.el.status, kind === 'audio'
      ? `Your microphone is ${this.audioOn ? 'on' : 'off'}.`
      : `Your camera is ${this.videoOn ? 'on' : 'off'}.`);
    this.signalling.send({ type: 'mute', audio: this.audioOn, video: this.videoOn });
  }

  async #endConsultation() {
    this.el.end.disabled = true;
    try {
      await this.signalling.request({ type: 'end_consultation' });
    } catch (e) {
      // The ended broadcast may already have closed the room; only complain while still in it.
      if (this.active) this.onError(`The consultation could not be ended: ${e.message}`);
    } finally {
      this.el.end.disabled = false;
    }
  }
}
