// @ts-check
// One consultation as both the staff app (app.js) and the patient page (join.js) run it
// (issue #11): the room (room.js: layout, media through media.js), the shared files panel, and
// reconnection (issue #3, reconnect.js) — keeping the seat when the signalling connection drops,
// `join {resume}` on the new one, and `consultation_started {resumed: true}` restarting ICE on
// the same peer connection. The pages keep what differs: how they reach the server, what comes
// before the room (dashboard, waiting room) and after it.

import { announce } from './dom.js';
import { FilePanel } from './files.js';
import { navigate } from './nav.js';
import { setRoomReconnecting, handleOthersReconnecting } from './reconnect.js';
import { ConsultationRoom } from './room.js';
import { t } from './i18n.js';

/** @typedef {import('./signalling.js').SignallingClient} SignallingClient */
/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').ConsultationStartedMessage} ConsultationStartedMessage */
/** @typedef {import('./protocol.js').ConsultationEndedMessage} ConsultationEndedMessage */

/**
 * @typedef {object} ConsultationOptions
 * @property {HTMLElement} root the room section (`#room-view`)
 * @property {'staff'|'patient'} role
 * @property {HTMLElement} status the page's polite live region
 * @property {() => SignallingClient | null} signalling the page's current signalling client
 * @property {(msg: ConsultationEndedMessage | null) => void} onEnded the consultation is over:
 *   `consultation_ended`, or null when it was left without one (the connection was lost)
 * @property {(text: string) => void} onError shows a readable error
 * @property {() => boolean} allowScreenShare the organisation allows screen sharing (asked at
 *   every start; the server enforces it either way)
 * @property {() => boolean | Promise<boolean>} filesAllowed the organisation allows file
 *   sharing (asked once, when the first consultation starts)
 * @property {() => Promise<RTCIceServer[]>} getIceServers TURN servers, fresh for every consultation
 * @property {(patient: import('./protocol.js').ParticipantInfo) => void} [onTransfer] staff:
 *   "Transfer patient…" was pressed
 * @property {{ label: string, onClick: () => void }} [otherLeftAction] a button offered when the
 *   other participant left
 */

export class ConsultationController {
  /** @param {ConsultationOptions} opts */
  constructor(opts) {
    this.opts = opts;
    /** @type {ConsultationRoom | null} */
    this.room = null;
    /** @type {FilePanel | null} */
    this.files = null;
    // A closed or reloaded tab cannot resume (its peer connection is gone): hang up at once
    // rather than leave the others looking at "reconnecting" for 30 s. A dropped network keeps
    // the seat.
    window.addEventListener('pagehide', () => {
      if (this.active) this.opts.signalling()?.send({ type: 'leave_consultation' });
    });
  }

  /** In a consultation now. */
  get active() {
    return !!this.room?.active;
  }

  /**
   * Feeds a signalling frame (after the page's chat); returns true when the consultation used
   * it. Frames it does not use are the page's (waiting room, `consultation_started` to enter).
   * @param {ServerMessage} msg
   */
  handle(msg) {
    if (this.files && this.files.handle(msg)) return true;
    if (handleOthersReconnecting(this.room, msg)) return true;
    if (msg.type === 'consultation_started' && msg.resumed && this.active) {
      setRoomReconnecting(this.opts.root, null);
      this.room.resume(msg);
      announce(this.opts.status, t('common.connected_again'));
      return true;
    }
    if (msg.type === 'consultation_ended' && this.active) setRoomReconnecting(this.opts.root, null);
    return !!(this.room && this.room.handle(msg));
  }

  /**
   * The signalling connection `client` closed. In a consultation the room and its peer
   * connection are kept and the next join asks for the seat back (the server holds it for 30
   * seconds; media resumes after an ICE restart): returns true, and the caller reconnects.
   * @param {SignallingClient} client
   */
  holdSeat(client) {
    if (!this.active) return false;
    client.resume = this.room.consultationId;
    setRoomReconnecting(this.opts.root, 'self', t('room.self_reconnecting'));
    return true;
  }

  /**
   * A join on `client` succeeded: a seat asked for is now taken back (or gone).
   * @param {SignallingClient} client
   */
  connected(client) {
    client.resume = null;
  }

  /**
   * Enters the consultation of `consultation_started` and shows the room.
   * @param {ConsultationStartedMessage} msg
   * @param {{ signalling: SignallingClient, selfId: string, localStream: MediaStream,
   *   waitingFor?: string | null, inviteUrl?: string | null }} how `waitingFor` (a name) marks a
   *   force-started consultation whose patient has not arrived yet
   */
  enter(msg, { signalling, selfId, localStream, waitingFor = null, inviteUrl = null }) {
    const { root, role, onError, onTransfer, otherLeftAction, getIceServers } = this.opts;
    if (!this.room) {
      this.room = new ConsultationRoom({
        root,
        role,
        signalling,
        onEnded: (endMsg) => {
          setRoomReconnecting(root, null);
          this.opts.onEnded(endMsg);
        },
        onError,
        onTransfer,
        otherLeftAction,
        getIceServers,
      });
    }
    const room = this.room;
    room.signalling = signalling;
    room.allowScreenShare = this.opts.allowScreenShare() && !!navigator.mediaDevices?.getDisplayMedia;
    if (!this.files) this.files = new FilePanel({ root, allowed: this.opts.filesAllowed() });
    this.files.start({ signalling, selfId, nameOf: (/** @type {string} */ id) => room.others.get(id)?.display_name });
    navigate('room-view');
    room.start(msg, { selfId, localStream, waitingFor, inviteUrl });
    room.media?.watchIce();
  }

  /** Leaves the consultation without a `consultation_ended` frame (no-op outside one). */
  abort() {
    if (this.active) this.room.abort();
  }
}
