// @ts-check
// Reconnection (issue #3), the client side shared by the staff app and the patient page: a room
// in progress survives a dropped signalling connection. The owner reconnects with a fresh token
// and `join {resume: <consultation id>}`; on `consultation_started {resumed: true}` the room keeps
// its RTCPeerConnection and restarts ICE (`MediaSession.restartIce`). Meanwhile the room shows
// "Reconnecting…", and so does the other side for us (`participant_reconnecting`).

import { t } from './i18n.js';

/**
 * Shows (text) or hides (null) the reconnection banner in the room section `root`, and marks
 * `root.dataset.reconnecting` as `self` (our connection is down), `other` (someone else's) or
 * absent. The banner is a polite live region, so screen readers hear it once.
 * @param {HTMLElement} root
 * @param {'self' | 'other' | null} who
 * @param {string} [text]
 */
export function setRoomReconnecting(root, who, text) {
  let banner = /** @type {HTMLElement | null} */ (root.querySelector(':scope > .room-reconnecting'));
  if (!banner) {
    banner = document.createElement('p');
    banner.className = 'room-reconnecting';
    banner.setAttribute('role', 'status');
    banner.setAttribute('aria-live', 'polite');
    banner.hidden = true;
    root.prepend(banner);
  }
  if (!who) {
    delete root.dataset.reconnecting;
    banner.hidden = true;
    banner.textContent = '';
    return;
  }
  root.dataset.reconnecting = who;
  if (banner.textContent !== text) banner.textContent = text; // plain text, never HTML
  banner.hidden = false;
}

/**
 * Handles the reconnection frames about others for `room` (a ConsultationRoom). Returns true
 * when the frame was one of them.
 * @param {import('./room.js').ConsultationRoom | null} room
 * @param {import('./protocol.js').ServerMessage} msg
 */
export function handleOthersReconnecting(room, msg) {
  if (!room || !room.active) return false;
  if (msg.type === 'participant_reconnecting') {
    const p = room.others.get(msg.participant_id);
    const who = (p && p.display_name) || t('room.other_participant');
    setRoomReconnecting(room.root, 'other', t('room.other_reconnecting', { name: who }));
    return true;
  }
  if (msg.type === 'participant_resumed') {
    if (room.root.dataset.reconnecting === 'other') setRoomReconnecting(room.root, null);
    return true;
  }
  if (msg.type === 'participant_left' && room.root.dataset.reconnecting === 'other') {
    setRoomReconnecting(room.root, null);
  }
  return false;
}
