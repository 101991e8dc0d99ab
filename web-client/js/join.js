// Patient page (served at `/join#<token>`): reads the invitation token from the URL fragment
// (fragments are never sent to servers; the token is then removed from the address bar and kept
// only in this tab's sessionStorage so a reload still works), resolves it, runs a device check,
// enters the waiting room over the WebSocket and follows the consultation to the after page.

import { api, ApiError } from './api.js';
import { $, showView, announce } from './dom.js';
import { hhmm } from './format.js';
import { SignallingClient, connectWithRetry } from './signalling.js';
import { openCameraAndMic, stopStream, deviceErrorHelp, startLevelMeter } from './media.js';
import { ConsultationRoom } from './room.js';
import './hooks.js';

const VIEWS = ['loading-view', 'message-view', 'check-view', 'waiting-view', 'room-view', 'after-view'];
const TOKEN_KEY = 'consultroom.invitation';

const el = {
  status: $('status'),
  toast: $('toast'),
  messageTitle: $('message-title'),
  messageText: $('message-text'),
  messageRetry: $('message-retry'),
  summary: $('appointment-summary'),
  preview: $('preview-video'),
  previewEmpty: $('preview-empty'),
  meter: $('mic-meter'),
  checkHelp: $('check-help'),
  checkStatus: $('check-status'),
  checkStart: $('check-start'),
  enter: $('enter-btn'),
  waitingMessage: $('waiting-message'),
  waitingAppointment: $('waiting-appointment'),
  roomView: $('room-view'),
  afterAppointment: $('after-appointment'),
};

const state = {
  token: '',
  invitation: null, // last successful resolve (appointment, names); never logged
  stream: null,
  meterCtx: null,
  stopMeter: null,
  signalling: null,
  retry: null,
  room: null,
  selfId: null,
  finished: false,
};

let toastTimer = null;
function showError(text) {
  el.toast.textContent = text;
  el.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.toast.hidden = true; }, 8000);
}

// ---------------------------------------------------------------- token and invitation

function takeToken() {
  let raw = window.location.hash.replace(/^#/, '');
  try {
    raw = decodeURIComponent(raw);
  } catch {
    /* keep as is */
  }
  raw = raw.replace(/^token=/, '').trim();
  if (raw) {
    try { sessionStorage.setItem(TOKEN_KEY, raw); } catch { /* storage disabled: memory only */ }
    // Take the secret out of the address bar (and out of history, bookmarks and screenshots).
    history.replaceState(null, '', window.location.pathname + window.location.search);
    return raw;
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

function forgetToken() {
  try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* ignore */ }
}

function resolveInvitation() {
  return api('/api/v1/invitations/resolve', { method: 'POST', body: { token: state.token } });
}

/** Shows the page for a link problem. Returns true when the error was a link problem. */
function showLinkProblem(err) {
  let title;
  let text;
  let retry = false;
  const code = err instanceof ApiError ? err.code : '';
  if (code === 'invitation_too_early') {
    const opens = err.details && err.details.opens_at;
    title = opens ? `Too early — this link opens at ${hhmm(opens)}` : 'Too early — this link is not open yet';
    text = 'Please come back at that time. You can keep this page open and press "Try again" then.';
    retry = true;
    scheduleReopen(opens);
  } else if (code === 'invitation_expired') {
    title = 'This link has expired';
    text = 'Please contact your clinic if you still need a consultation.';
  } else if (code === 'invitation_cancelled') {
    title = 'This appointment was cancelled';
    text = 'Please contact your clinic if you have questions.';
  } else if (code === 'invitation_not_found' || (err instanceof ApiError && (err.status === 404 || err.status === 400))) {
    title = 'This link is not valid';
    text = 'Check that you opened the whole link from your invitation, or contact your clinic.';
  } else if (err instanceof ApiError && err.status === 0) {
    title = 'No connection';
    text = 'The server could not be reached. Check your internet connection and try again.';
    retry = true;
  } else if (err instanceof ApiError && err.status === 429) {
    title = 'Please wait a moment';
    text = 'There were too many attempts. Wait a minute, then try again.';
    retry = true;
  } else {
    title = 'Something went wrong';
    text = 'Your link could not be checked right now. Please try again in a moment.';
    retry = true;
  }
  const terminal = !retry;
  if (terminal) {
    forgetToken();
    stopEverything();
  }
  el.messageTitle.textContent = title;
  el.messageText.textContent = text;
  el.messageRetry.hidden = !retry;
  document.body.dataset.linkState = code || 'error';
  showView(VIEWS, 'message-view');
  return true;
}

let reopenTimer = null;
function scheduleReopen(opensAt) {
  clearTimeout(reopenTimer);
  const ms = Date.parse(opensAt) - Date.now();
  if (Number.isFinite(ms) && ms > 0 && ms < 24 * 3600 * 1000) {
    reopenTimer = setTimeout(() => start(), ms + 1500);
  }
}

el.messageRetry.addEventListener('click', () => {
  if (document.body.dataset.linkState !== 'replaced') start();
});

function describeAppointment(inv) {
  const a = (inv && inv.appointment) || {};
  const parts = [];
  if (a.starts_at) parts.push(`at ${hhmm(a.starts_at)}`);
  if (a.practitioner_name) parts.push(`with ${a.practitioner_name}`);
  let s = parts.length ? `Your appointment ${parts.join(' ')}` : 'Your appointment';
  if (a.duration_minutes) s += ` (${a.duration_minutes} minutes)`;
  return `${s}.`;
}

async function start() {
  showView(VIEWS, 'loading-view', { focus: false });
  delete document.body.dataset.linkState;
  if (!state.token) {
    showLinkProblem(new ApiError(404, 'invitation_not_found', ''));
    return;
  }
  try {
    state.invitation = await resolveInvitation();
  } catch (err) {
    showLinkProblem(err);
    return;
  }
  const name = state.invitation.patient_display_name;
  el.summary.textContent = `${name ? `Hello ${name}. ` : ''}${describeAppointment(state.invitation)}`;
  document.body.dataset.linkState = 'open';
  showView(VIEWS, 'check-view');
}

// ---------------------------------------------------------------- device check

el.checkStart.addEventListener('click', async () => {
  el.checkHelp.hidden = true;
  el.checkStart.disabled = true;
  el.checkStatus.textContent = 'Starting your camera and microphone…';
  // The click is the user gesture that lets the level meter's AudioContext run.
  try {
    if (!state.meterCtx) state.meterCtx = new AudioContext();
    state.meterCtx.resume().catch(() => {});
  } catch {
    state.meterCtx = null;
  }
  stopPreview();
  try {
    state.stream = await openCameraAndMic();
  } catch (err) {
    el.checkHelp.textContent = deviceErrorHelp(err);
    el.checkHelp.hidden = false;
    el.checkStatus.textContent = '';
    el.checkStart.textContent = 'Try again';
    el.checkStart.disabled = false;
    el.enter.disabled = true;
    return;
  }
  el.preview.srcObject = state.stream;
  el.preview.play().catch(() => {});
  el.previewEmpty.hidden = true;
  state.stopMeter = startLevelMeter(state.stream, state.meterCtx, (level) => {
    el.meter.value = level;
    el.meter.textContent = `${Math.round(level * 100)}%`;
  });
  const hasVideo = state.stream.getVideoTracks().length > 0;
  const hasAudio = state.stream.getAudioTracks().length > 0;
  el.checkStatus.textContent = hasVideo && hasAudio
    ? 'Camera and microphone are working. You can enter the waiting room.'
    : 'Only part of your equipment was found. You can still enter the waiting room.';
  el.checkStart.textContent = 'Restart camera and microphone';
  el.checkStart.disabled = false;
  el.enter.disabled = false;
  document.body.dataset.deviceCheck = 'ok';
  el.enter.focus();
});

function stopPreview() {
  if (state.stopMeter) state.stopMeter();
  state.stopMeter = null;
  el.preview.srcObject = null;
  stopStream(state.stream);
  state.stream = null;
}

// ---------------------------------------------------------------- waiting room and consultation

el.enter.addEventListener('click', () => {
  if (!state.stream) return;
  el.enter.disabled = true;
  el.checkStatus.textContent = 'Connecting to the waiting room…';
  connect();
});

function connect() {
  if (!state.signalling) {
    state.signalling = new SignallingClient({
      getToken: async () => {
        // The signalling token lives 120 s: resolve again right before every connect.
        state.invitation = await resolveInvitation();
        return state.invitation.signalling_token;
      },
      onMessage,
      onClose: ({ reason }) => {
        if (state.finished) return;
        if (state.room?.active) state.room.abort();
        if (reason === 'replaced') {
          // The same invitation was opened in another window or device: reconnecting here would
          // throw that one out again, so stop and let the patient choose.
          showReplaced();
          return;
        }
        showWaiting(null, 'The connection was lost. Reconnecting…');
        connect();
      },
    });
  }
  state.retry?.stop();
  state.retry = connectWithRetry(state.signalling, {
    onConnected: (joined) => {
      state.selfId = joined.participant_id;
    },
    onRetry: (err) => {
      if (document.body.dataset.view === 'check-view') {
        el.checkStatus.textContent = 'Could not reach the waiting room yet. Trying again…';
      }
    },
    shouldRetry: (err) => {
      if (err instanceof ApiError && [403, 404, 410].includes(err.status)) {
        showLinkProblem(err);
        return false;
      }
      return true;
    },
  });
}

function showReplaced() {
  state.retry?.stop();
  el.messageTitle.textContent = 'Opened in another window';
  el.messageText.textContent = 'Your consultation link was opened in another window or on another device. Continue there, or press "Use this window" to continue here.';
  el.messageRetry.textContent = 'Use this window';
  el.messageRetry.hidden = false;
  el.messageRetry.onclick = () => {
    el.messageRetry.onclick = null;
    delete document.body.dataset.linkState;
    el.messageRetry.textContent = 'Try again';
    showWaiting(null, 'Connecting to the waiting room…');
    connect();
  };
  document.body.dataset.linkState = 'replaced';
  showView(VIEWS, 'message-view');
}

function waitingText(punctuality) {
  if (punctuality === 'late') return 'You are late; your practitioner has been told you are here.';
  if (punctuality === 'walk_in') return 'You are in the waiting room; a practitioner will let you in soon.';
  return 'You are on time; your practitioner will let you in.';
}

function showWaiting(msg, overrideText) {
  const starts = (msg && msg.appointment_starts_at) || state.invitation?.appointment?.starts_at;
  el.waitingMessage.textContent = overrideText || waitingText(msg && msg.punctuality);
  if (msg) document.body.dataset.punctuality = msg.punctuality || '';
  el.waitingAppointment.textContent = starts ? `Appointment time: ${hhmm(starts)}` : '';
  if (document.body.dataset.view !== 'waiting-view') showView(VIEWS, 'waiting-view');
}

function onMessage(msg) {
  if (state.room && state.room.handle(msg)) return;
  switch (msg.type) {
    case 'waiting':
      showWaiting(msg);
      break;
    case 'consultation_started':
      enterRoom(msg);
      break;
    case 'consultation_ended':
      showAfter();
      break;
    case 'error':
      showError(msg.message || 'Something went wrong on the server.');
      break;
    default:
      break;
  }
}

async function enterRoom(msg) {
  if (!state.stream) {
    try {
      state.stream = await openCameraAndMic();
    } catch (err) {
      showError(deviceErrorHelp(err));
      return;
    }
  }
  if (state.stopMeter) state.stopMeter();
  state.stopMeter = null;
  if (!state.room) {
    state.room = new ConsultationRoom({
      root: el.roomView,
      role: 'patient',
      signalling: state.signalling,
      onEnded: (endMsg) => {
        if (endMsg) showAfter();
        // else: connection lost; onClose shows the reconnecting state.
      },
      onError: showError,
      // If the practitioner's connection drops, the patient can go back and wait again: a new
      // connection puts them back in the waiting room (and replaces the old one).
      otherLeftAction: { label: 'Back to the waiting room', onClick: backToWaiting },
    });
  }
  showView(VIEWS, 'room-view');
  state.room.start(msg, { selfId: state.selfId, localStream: state.stream });
  announce(el.status, 'Your practitioner let you in. The consultation has started.');
}

function backToWaiting() {
  if (state.room?.active) state.room.abort();
  state.retry?.stop();
  state.signalling?.close();
  state.signalling = null;
  showWaiting(null, 'Connecting to the waiting room…');
  connect();
}

function showAfter() {
  if (state.finished) return;
  state.finished = true;
  const a = state.invitation?.appointment;
  stopEverything();
  forgetToken();
  el.afterAppointment.textContent = a && a.starts_at
    ? `Appointment: ${hhmm(a.starts_at)}${a.practitioner_name ? ` with ${a.practitioner_name}` : ''}`
    : '';
  showView(VIEWS, 'after-view');
}

function stopEverything() {
  state.retry?.stop();
  state.retry = null;
  if (state.room?.active) state.room.abort();
  if (state.signalling) state.signalling.close();
  state.signalling = null;
  stopPreview();
  clearTimeout(reopenTimer);
}

// A new link pasted into the same tab only changes the fragment: start over with it (unless a
// waiting room or consultation is already under way in this tab).
window.addEventListener('hashchange', () => {
  if (state.signalling || state.finished) return;
  const token = takeToken();
  if (token) {
    state.token = token;
    start();
  }
});

state.token = takeToken();
start();
