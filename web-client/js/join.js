// @ts-check
// Patient page (served at `/join#<token>`): reads the invitation token from the URL fragment
// (fragments are never sent to servers; the token is then removed from the address bar and kept
// only in this tab's sessionStorage so a reload still works), resolves it, runs a device check,
// enters the waiting room over the WebSocket and follows the consultation to the after page.

import { api, ApiError } from './api.js';
import { $, announce } from './dom.js';
import { navigate, registerView, currentView } from './nav.js';
import { t, setText, clearText, errorText, chooseLanguage, setLanguage, currentLanguage, languageSwitcher, onLanguageChange, formatTime as hhmm } from './i18n.js';
import { SignallingClient, connectWithRetry } from './signalling.js';
import { openCameraAndMic, stopStream, deviceErrorHelp, startLevelMeter, playTestTone, fetchIceServers } from './media.js';
import { ConsultationController } from './consultation.js';
import { PatientChat, offerInvitationChat } from './chat.js';
import { renderVerdict, runNetworkCheck, verdictOf } from './netcheck.js';
import './hooks.js';

for (const view of ['loading-view', 'message-view', 'check-view', 'waiting-view', 'room-view', 'after-view']) registerView(view);
const TOKEN_KEY = 'consultroom.invitation';
// Set once the patient entered the waiting room in this tab: a reload goes straight back in
// (within the server's 30 s grace period the patient keeps their place).
const ENTERED_KEY = 'consultroom.entered';
const MIC_HEARD_LEVEL = 0.2;

const el = {
  status: $('status'),
  toast: $('toast'),
  messageTitle: $('message-title'),
  messageText: $('message-text'),
  messageRetry: $('message-retry', HTMLButtonElement),
  summary: $('appointment-summary'),
  preview: $('preview-video', HTMLVideoElement),
  previewEmpty: $('preview-empty'),
  meter: $('mic-meter', HTMLMeterElement),
  checkHelp: $('check-help'),
  checkStatus: $('check-status'),
  checkStart: $('check-start', HTMLButtonElement),
  enter: $('enter-btn', HTMLButtonElement),
  waitingMessage: $('waiting-message'),
  waitingAppointment: $('waiting-appointment'),
  waitingConn: $('waiting-conn'),
  queueStatus: $('queue-status'),
  queuePosition: $('queue-position'),
  queueEstimate: $('queue-estimate'),
  announcementsBox: $('announcements-box'),
  announcementsList: $('announcements-list'),
  waitingDevices: $('waiting-devices'),
  waitingDevicesText: $('waiting-devices-text'),
  waitingDevicesBtn: $('waiting-devices-btn', HTMLButtonElement),
  speakerPlay: $('speaker-play', HTMLButtonElement),
  speakerAsk: $('speaker-ask'),
  speakerYes: $('speaker-yes', HTMLButtonElement),
  speakerNo: $('speaker-no', HTMLButtonElement),
  speakerHelp: $('speaker-help'),
  roomView: $('room-view'),
  afterAppointment: $('after-appointment'),
};

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').AnnouncementInfo} AnnouncementInfo */
/** @typedef {'ok' | 'warn' | 'fail' | 'unknown'} Verdict */
/** @typedef {'camera' | 'microphone' | 'speakers' | 'connection'} CheckedDevice */
/**
 * @typedef {object} PatientState
 * @property {string} token the invitation token (never logged)
 * @property {any} invitation last successful resolve (`POST /api/v1/invitations/resolve`:
 *   appointment, names, settings); never logged
 * @property {MediaStream | null} stream
 * @property {AudioContext | null} meterCtx
 * @property {(() => void) | null} stopMeter
 * @property {SignallingClient | null} signalling
 * @property {{ stop(): void } | null} retry
 * @property {string | null} selfId
 * @property {boolean} finished
 * @property {Promise<MediaStream> | null} streamPromise
 * @property {Record<CheckedDevice, Verdict>} verdict
 * @property {Promise<import('./netcheck.js').NetworkCheck> | null} netCheck the running connection check
 * @property {AbortController | null} netCheckAbort its AbortController
 * @property {import('./netcheck.js').NetworkCheck} [netChecked] the last finished connection check (its verdict is shown)
 * @property {AnnouncementInfo[]} announcements current list from the server (plain text only)
 * @property {ReturnType<typeof setTimeout> | undefined} announcementTimer
 * @property {boolean} [devicesReady] camera and microphone were started on the check page
 * @property {'complete' | 'partial'} [equipment] what the device check found (both, or part)
 * @property {PatientChat} [chat]
 */

/** @type {PatientState} */
const state = {
  token: '',
  invitation: null, // last successful resolve (appointment, names); never logged
  stream: null,
  meterCtx: null,
  stopMeter: null,
  signalling: null,
  retry: null,
  selfId: null,
  finished: false,
  streamPromise: null,
  verdict: { camera: 'unknown', microphone: 'unknown', speakers: 'unknown', connection: 'unknown' },
  netCheck: null, // the running connection check (a promise), if any
  netCheckAbort: null, // its AbortController
  announcements: [], // current list from the server (plain text only)
  announcementTimer: undefined,
};

/** @type {ReturnType<typeof setTimeout> | undefined} */
let toastTimer;
/** @param {string} text */
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
  try {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(ENTERED_KEY);
  } catch { /* ignore */ }
}

/** @param {boolean} on */
function markEntered(on) {
  try {
    if (on) sessionStorage.setItem(ENTERED_KEY, '1');
    else sessionStorage.removeItem(ENTERED_KEY);
  } catch { /* storage disabled: no resume after a reload */ }
}

function wasEntered() {
  try { return sessionStorage.getItem(ENTERED_KEY) === '1'; } catch { return false; }
}

function resolveInvitation() {
  return api('/api/v1/invitations/resolve', { method: 'POST', body: { token: state.token } });
}

/**
 * TURN servers for this consultation: the join token lives 120 s and the patient may have waited
 * far longer, so resolve the invitation again for a fresh one and present it as a bearer token.
 * Any failure means no TURN (the SFU's own candidates still work on most networks).
 */
async function iceServersForPatient() {
  let token;
  try {
    token = (await resolveInvitation()).signalling_token;
  } catch {
    return [];
  }
  if (!token) return [];
  return fetchIceServers(api, { Authorization: `Bearer ${token}` });
}

/**
 * Shows the page for a link problem. Returns true when the error was a link problem.
 * @param {any} err an ApiError (or anything thrown)
 */
function showLinkProblem(err) {
  /** @type {[string, import('./i18n.js').Params?]} */
  let title;
  let text;
  let retry = false;
  const code = err instanceof ApiError ? err.code : '';
  // F146: early or late, the link still opens the chat (when the organisation offers it).
  if (code === 'invitation_too_early' || code === 'invitation_expired') offerInvitationChat(state.token, document.getElementById('message-view'));
  if (code === 'invitation_too_early') {
    const opens = err.details && err.details.opens_at;
    title = opens ? ['link.too_early_at', { time: hhmm(opens) }] : ['link.too_early'];
    text = 'link.too_early_text';
    retry = true;
    scheduleReopen(opens);
  } else if (code === 'invitation_expired') {
    title = ['link.expired'];
    text = 'link.expired_text';
  } else if (code === 'invitation_revoked') {
    title = ['link.revoked'];
    text = 'link.revoked_text';
  } else if (code === 'invitation_cancelled') {
    title = ['link.cancelled'];
    text = 'link.cancelled_text';
  } else if (code === 'invitation_not_found' || (err instanceof ApiError && (err.status === 404 || err.status === 400))) {
    title = ['link.not_found'];
    text = 'link.not_found_text';
  } else if (err instanceof ApiError && err.status === 0) {
    title = ['link.offline'];
    text = 'link.offline_text';
    retry = true;
  } else if (err instanceof ApiError && err.status === 429) {
    title = ['link.rate_limited'];
    text = 'link.rate_limited_text';
    retry = true;
  } else {
    title = ['link.error'];
    text = 'link.error_text';
    retry = true;
  }
  const terminal = !retry;
  if (terminal) {
    forgetToken();
    stopEverything();
  }
  setText(el.messageTitle, ...title);
  setText(el.messageText, text);
  el.messageRetry.hidden = !retry;
  document.body.dataset.linkState = code || 'error';
  navigate('message-view');
  return true;
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let reopenTimer;
/** @param {string} opensAt */
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

/** @param {any} inv the resolved invitation */
function describeAppointment(inv) {
  if (inv && inv.walk_in) {
    // A walk-in visit from a clinic's website widget: no appointment time.
    const who = inv.visit && inv.visit.practitioner_name;
    return who ? t('appt.walk_in_with', { name: who }) : t('appt.walk_in');
  }
  const a = (inv && inv.appointment) || {};
  // A guest link (issue #4): invited to someone else's appointment.
  let s = inv && inv.guest ? t('appt.guest') : t('appt.own');
  if (a.starts_at) s += t('appt.at', { time: hhmm(a.starts_at) });
  if (a.practitioner_name) s += t('appt.with', { name: a.practitioner_name });
  if (a.duration_minutes) s += t('appt.duration', { count: a.duration_minutes });
  return t('appt.sentence', { text: s });
}

async function start() {
  navigate('loading-view', { focus: false });
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
  // The client's language (from the invitation) unless the patient chose one on a page.
  const lang = chooseLanguage(urlLanguage || state.invitation.language);
  if (lang !== currentLanguage()) await setLanguage(lang);
  applyOrgTexts(state.invitation);
  applyBranding(state.invitation);
  renderSummary();
  document.body.dataset.linkState = 'open';
  if (wasEntered() && !state.signalling) {
    // A reload (or a crash of the tab) while waiting: straight back to the waiting room.
    resumeWaiting();
    return;
  }
  navigate('check-view');
}

/** "Hello Ann. Your appointment at 10:30 with Dr. Bos (20 minutes)." */
function renderSummary() {
  const name = state.invitation && state.invitation.patient_display_name;
  const about = describeAppointment(state.invitation);
  el.summary.textContent = name ? `${t('appt.hello', { name })} ${about}` : about;
}

function resumeWaiting() {
  setConnection('reconnecting');
  showWaiting(null, 'waiting.connecting_again');
  connect();
  ensureStream().catch(() => {
    // Permission is no longer granted (or the camera is busy): ask once the patient can click.
    showDevicePrompt();
  });
}

// ---------------------------------------------------------------- device check

el.checkStart.addEventListener('click', async () => {
  el.checkHelp.hidden = true;
  el.checkStart.disabled = true;
  setText(el.checkStatus, 'check.starting');
  // The click is the user gesture that lets the level meter's AudioContext run.
  try {
    if (!state.meterCtx) state.meterCtx = new AudioContext();
    state.meterCtx.resume().catch(() => {});
  } catch {
    state.meterCtx = null;
  }
  stopConnectionCheck();
  stopPreview();
  try {
    state.stream = await openCameraAndMic();
  } catch (err) {
    el.checkHelp.textContent = deviceErrorHelp(err);
    el.checkHelp.hidden = false;
    clearText(el.checkStatus);
    setText(el.checkStart, 'common.try_again');
    el.checkStart.disabled = false;
    el.enter.disabled = true;
    document.body.dataset.deviceCheck = 'failed';
    setVerdict('camera', 'fail');
    setVerdict('microphone', 'fail');
    return;
  }
  el.preview.srcObject = state.stream;
  el.preview.play().catch(() => {});
  el.previewEmpty.hidden = true;
  const hasVideo = state.stream.getVideoTracks().length > 0;
  const hasAudio = state.stream.getAudioTracks().length > 0;
  setVerdict('camera', hasVideo ? 'unknown' : 'fail');
  setVerdict('microphone', hasAudio ? 'unknown' : 'fail');
  if (hasVideo) {
    const markCamera = () => { if (el.preview.videoWidth > 0) setVerdict('camera', 'ok'); };
    el.preview.addEventListener('loadeddata', markCamera, { once: true });
    el.preview.addEventListener('resize', markCamera, { once: true });
    markCamera();
  }
  state.stopMeter = startLevelMeter(state.stream, state.meterCtx, (level) => {
    el.meter.value = level;
    el.meter.textContent = `${Math.round(level * 100)}%`;
    // The microphone is "working" once it has picked up some sound.
    if (level >= MIC_HEARD_LEVEL && state.verdict.microphone !== 'ok') setVerdict('microphone', 'ok');
  });
  state.equipment = hasVideo && hasAudio ? 'complete' : 'partial';
  summarise();
  setText(el.checkStart, 'check.restart');
  el.checkStart.disabled = false;
  state.devicesReady = true;
  el.enter.disabled = !disclaimerAccepted();
  document.body.dataset.deviceCheck = 'ok';
  el.enter.focus();
  // With the camera on, the connection check can send a real picture through the server.
  runConnectionCheck();
});

// ---------------------------------------------------------------- connection check (F33/F37)

/**
 * Checks the way to our video server (and the clinic's TURN relay) with a private test session
 * on a check-only connection (js/netcheck.js), and shows the verdict. The patient can enter the
 * waiting room whatever it says.
 */
async function runConnectionCheck() {
  if (state.signalling) return;
  if (state.netCheck) {
    // A check with the previous camera (restarted meanwhile) is stopped and run again.
    stopConnectionCheck();
    await state.netCheck.catch(() => {});
    if (state.netCheck || state.signalling) return;
  }
  const run = $('net-run', HTMLButtonElement);
  const result = $('net-result');
  run.disabled = true;
  result.hidden = true;
  document.body.dataset.netCheck = 'running';
  setVerdict('connection', 'unknown');
  summarise();
  state.netCheckAbort = new AbortController();
  state.netCheck = runNetworkCheck({
    signal: state.netCheckAbort.signal,
    getToken: async () => (await resolveInvitation()).signalling_token,
    getIceServers: iceServersForPatient,
    stream: state.stream,
    echoVideo: $('net-echo', HTMLVideoElement),
    onStep: (/** @type {string} */ text) => { $('net-step').textContent = text; },
  });
  let checked;
  try {
    checked = await state.netCheck;
    state.netChecked = checked;
  } finally {
    state.netCheck = null;
    state.netCheckAbort = null;
    run.disabled = false;
  }
  $('net-step').textContent = '';
  if (checked.aborted) {
    document.body.dataset.netCheck = 'stopped';
    summarise();
    return;
  }
  showConnectionVerdict(verdictOf(checked));
}

/**
 * The one line under the device check: the equipment and the connection together, so it never
 * says "working" while the connection verdict below is red.
 */
function summarise() {
  if (!state.equipment) return;
  const devices = state.equipment === 'complete' ? 'devices_ok' : 'devices_partial';
  const connection = state.verdict.connection;
  const checking = document.body.dataset.netCheck === 'running';
  const how = checking ? 'checking' : connection === 'ok' || connection === 'warn' || connection === 'fail' ? connection : 'unknown';
  setText(el.checkStatus, `check.summary.${devices}.${how}`);
}

/** Stops a running connection check (the patient goes on to the waiting room). */
function stopConnectionCheck() {
  state.netCheckAbort?.abort();
}

/** @param {import('./netcheck.js').ConnectionVerdict} v */
function showConnectionVerdict(v) {
  renderVerdict(v, { result: $('net-result'), title: $('net-title'), details: $('net-details'), advice: $('net-advice') });
  setText($('net-run', HTMLButtonElement), 'check.net_run_again');
  document.body.dataset.netCheck = v.level;
  setVerdict('connection', v.level === 'good' ? 'ok' : v.level === 'poor' ? 'warn' : 'fail');
  summarise();
  announce(el.status, v.title);
}

$('net-run', HTMLButtonElement).addEventListener('click', () => { runConnectionCheck(); });

// ---------------------------------------------------------------- organisation texts (F97, F102)

/**
 * The organisation's disclaimer (must be accepted before entering; refusing blocks access) and
 * its waiting-room text with {appointment_time}, {opens_at} and {practitioner} filled in. Both
 * are plain text: set with textContent, line breaks kept by CSS.
 */
/** @param {any} invitation the resolved invitation */
function applyOrgTexts(invitation) {
  const settings = (invitation && invitation.settings) || {};
  const disclaimer = (settings.disclaimer || '').trim();
  const box = document.getElementById('disclaimer-box');
  box.hidden = !disclaimer;
  document.getElementById('disclaimer-text').textContent = disclaimer;
  const text = (settings.waiting_room_text || '').trim();
  const slot = document.getElementById('waiting-org-text');
  const a = invitation && invitation.appointment;
  /** @type {Record<string, string>} */
  const values = {
    '{appointment_time}': a && a.starts_at ? hhmm(a.starts_at) : '',
    '{opens_at}': a && a.opens_at ? hhmm(a.opens_at) : '',
    '{practitioner}': (a && a.practitioner_name) || (invitation && invitation.visit && invitation.visit.practitioner_name) || '',
  };
  slot.textContent = text.replace(/\{appointment_time\}|\{opens_at\}|\{practitioner\}/g, (/** @type {string} */ m) => values[m]);
  slot.hidden = !text;
}

/**
 * The clinic's name and logo in the top bar and its contact details at the foot of the page
 * (F11; `organisation` of the resolved link). Plain text and `tel:`/`mailto:`/http(s) links only.
 * @param {any} invitation
 */
function applyBranding(invitation) {
  const org = (invitation && invitation.organisation) || null;
  const name = org && typeof org.name === 'string' ? org.name.trim() : '';
  const logo = $('clinic-logo', HTMLImageElement);
  const hasLogo = !!(org && typeof org.logo_url === 'string' && org.logo_url.startsWith('/api/v1/public/'));
  if (hasLogo) {
    logo.src = org.logo_url;
    logo.alt = name;
  }
  logo.hidden = !hasLogo;
  $('brand-mark').hidden = hasLogo;
  const nameEl = $('clinic-name');
  nameEl.textContent = name;
  nameEl.hidden = !name || hasLogo;
  const contact = (org && org.contact) || {};
  const text = (/** @type {any} */ s) => (typeof s === 'string' ? s.trim() : '');
  const phone = text(contact.phone);
  const email = text(contact.email);
  const website = text(contact.website);
  const free = text(contact.text);
  /** @type {HTMLLIElement[]} */
  const items = [];
  /**
   * @param {string} labelKey
   * @param {string} href
   * @param {string} shown
   */
  const item = (labelKey, href, shown) => {
    const li = document.createElement('li');
    const label = document.createElement('span');
    label.className = 'clinic-contact-label';
    setText(label, labelKey);
    const a = document.createElement('a');
    a.href = href;
    a.textContent = shown;
    if (href.startsWith('http')) {
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
    }
    li.append(label, ' ', a);
    items.push(li);
  };
  if (phone) item('join.contact_phone', `tel:${phone.replace(/[^\d+]/g, '')}`, phone);
  if (email) item('join.contact_email', `mailto:${email}`, email);
  if (/^https?:\/\//.test(website)) item('join.contact_website', website, website.replace(/^https?:\/\//, '').replace(/\/$/, ''));
  $('clinic-contact-list').replaceChildren(...items);
  const freeEl = $('clinic-contact-text');
  freeEl.textContent = free;
  freeEl.hidden = !free;
  const box = $('clinic-contact');
  box.hidden = !name || (items.length === 0 && !free);
  setText($('clinic-contact-title'), 'join.contact_title', { name });
}

/** True when there is no disclaimer or the patient accepted it. */
function disclaimerAccepted() {
  const box = document.getElementById('disclaimer-box');
  return box.hidden || $('disclaimer-accept', HTMLInputElement).checked;
}

$('disclaimer-accept', HTMLInputElement).addEventListener('change', () => {
  el.enter.disabled = !(state.devicesReady && disclaimerAccepted());
});

// ---------------------------------------------------------------- verdict and speaker test

/** @type {Record<Verdict, string>} */
const VERDICT_MARK = { ok: '✓', warn: '!', fail: '✗', unknown: '?' };

/**
 * One line summing up the check: "Camera ✓ Microphone ✓ Speakers ?" (with words for screen readers).
 * @param {CheckedDevice} device
 * @param {Verdict} value
 */
function setVerdict(device, value) {
  state.verdict[device] = value;
  const li = document.getElementById(`verdict-${device}`);
  if (!li) return;
  li.dataset.state = value;
  li.querySelector('.verdict-mark').textContent = VERDICT_MARK[value];
  let words = `check.verdict.${value}`;
  if (device === 'microphone' && value === 'unknown' && state.stream) words = 'check.verdict.no_sound';
  setText(li.querySelector('.verdict-words'), words);
}

el.speakerPlay.addEventListener('click', async () => {
  el.speakerPlay.disabled = true;
  el.speakerHelp.hidden = true;
  setText(el.checkStatus, 'check.playing');
  try {
    if (!state.meterCtx) state.meterCtx = new AudioContext();
    await playTestTone(state.meterCtx);
  } catch {
    setText(el.checkStatus, 'check.play_failed');
    el.speakerPlay.disabled = false;
    return;
  }
  clearText(el.checkStatus);
  el.speakerPlay.disabled = false;
  setText(el.speakerPlay, 'check.play_again');
  el.speakerAsk.hidden = false;
  el.speakerYes.focus();
});
el.speakerYes.addEventListener('click', () => {
  setVerdict('speakers', 'ok');
  el.speakerAsk.hidden = true;
  el.speakerHelp.hidden = true;
  setText(el.checkStatus, 'check.speakers_ok');
  el.speakerPlay.focus();
});
el.speakerNo.addEventListener('click', () => {
  setVerdict('speakers', 'fail');
  el.speakerAsk.hidden = true;
  el.speakerHelp.hidden = false;
  setText(el.checkStatus, 'check.speakers_not_heard');
  el.speakerPlay.focus();
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
  if (!state.stream || !disclaimerAccepted()) return;
  el.enter.disabled = true;
  setText(el.checkStatus, 'waiting.connecting');
  markEntered(true);
  stopConnectionCheck();
  connect();
});

/** The local camera+microphone stream, opened once (also after a reload, without the check page). */
function ensureStream() {
  if (state.stream) return Promise.resolve(state.stream);
  if (!state.streamPromise) {
    state.streamPromise = openCameraAndMic()
      .then((s) => {
        state.stream = s;
        el.waitingDevices.hidden = true;
        return s;
      })
      .finally(() => { state.streamPromise = null; });
  }
  return state.streamPromise;
}

/** @param {string} [text] */
function showDevicePrompt(text) {
  if (text) {
    delete el.waitingDevicesText.dataset.i18n;
    el.waitingDevicesText.textContent = text;
  } else setText(el.waitingDevicesText, 'waiting.devices_off');
  el.waitingDevices.hidden = false;
}

el.waitingDevicesBtn.addEventListener('click', async () => {
  el.waitingDevicesBtn.disabled = true;
  try {
    await ensureStream();
    announce(el.status, t('waiting.devices_on'));
  } catch (err) {
    showDevicePrompt(deviceErrorHelp(err));
  } finally {
    el.waitingDevicesBtn.disabled = false;
  }
});

/** 'connected' | 'reconnecting' on <body data-connection>, with a visible banner while down. */
/** @param {'connected' | 'reconnecting'} value */
function setConnection(value) {
  const before = document.body.dataset.connection;
  document.body.dataset.connection = value;
  el.waitingConn.hidden = value !== 'reconnecting';
  if (before === value) return;
  if (value === 'reconnecting' && before === 'connected') announce(el.status, t('waiting.connection_lost'));
  if (value === 'connected' && before === 'reconnecting') announce(el.status, t('common.connected_again'));
}

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
        if (reason === 'revoked') {
          // The clinic withdrew this (guest) invitation: out at once, no reconnect.
          consultation.abort();
          showLinkProblem(new ApiError(410, 'invitation_revoked', ''));
          return;
        }
        if (reason !== 'replaced' && consultation.holdSeat(state.signalling)) {
          // In a consultation: the room and its peer connection are kept, and the next join asks
          // for the seat back (the server holds it for 30 seconds).
          connect();
          return;
        }
        consultation.abort();
        if (reason === 'replaced') {
          // The same invitation was opened in another window or device: reconnecting here would
          // throw that one out again, so stop and let the patient choose.
          showReplaced();
          return;
        }
        // Unexpected close: reconnect with backoff and a fresh token; the server keeps the
        // place in the queue for 30 seconds.
        setConnection('reconnecting');
        showWaiting(null, null);
        connect();
      },
    });
  }
  state.retry?.stop();
  state.retry = connectWithRetry(state.signalling, {
    onConnected: (joined) => {
      state.selfId = joined.participant_id;
      if (state.signalling) consultation.connected(state.signalling);
      setConnection('connected');
      (state.chat ??= new PatientChat()).connected(state.signalling);
    },
    onRetry: () => {
      if (currentView() === 'waiting-view') setConnection('reconnecting');
      if (currentView() === 'check-view') {
        setText(el.checkStatus, 'waiting.retrying');
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
  setText(el.messageTitle, 'link.replaced');
  setText(el.messageText, 'link.replaced_text');
  setText(el.messageRetry, 'link.use_this_window');
  el.messageRetry.hidden = false;
  el.messageRetry.onclick = () => {
    el.messageRetry.onclick = null;
    delete document.body.dataset.linkState;
    setText(el.messageRetry, 'common.try_again');
    showWaiting(null, 'waiting.connecting');
    connect();
  };
  markEntered(false);
  document.body.dataset.linkState = 'replaced';
  navigate('message-view');
}

/**
 * The catalogue key of the waiting text for `punctuality`.
 * @param {import('./protocol.js').Punctuality} punctuality
 */
function waitingText(punctuality) {
  if (punctuality === 'late') return 'waiting.late';
  if (punctuality === 'walk_in') return 'waiting.walk_in';
  return 'waiting.on_time';
}

/** A guest (issue #4) waits for the client, not in the waiting room. */
const GUEST_WAITING_TEXT = 'waiting.guest';

/**
 * @param {import('./protocol.js').WaitingMessage | null} msg
 * @param {string | null} overrideText a catalogue key
 */
function showWaiting(msg, overrideText) {
  const starts = (msg && msg.appointment_starts_at) || state.invitation?.appointment?.starts_at;
  const guestWaits = msg && msg.reason === 'waiting_for_client';
  if (msg) document.body.dataset.waitingReason = msg.reason || '';
  const key = overrideText || (guestWaits ? GUEST_WAITING_TEXT : msg ? waitingText(msg.punctuality) : '');
  // Unchanged text is not written again (a live region would read it out again).
  if (key && el.waitingMessage.dataset.i18n !== key) setText(el.waitingMessage, key);
  if (msg) document.body.dataset.punctuality = msg.punctuality || '';
  if (starts) setText(el.waitingAppointment, 'waiting.appointment_time', { time: hhmm(starts) });
  else clearText(el.waitingAppointment);
  showSelfWhileWaiting();
  if (currentView() !== 'waiting-view') navigate('waiting-view');
}

/** A self-view while waiting (issue #14): the camera the device check started, if any. */
function showSelfWhileWaiting() {
  const box = document.getElementById('waiting-self-box');
  const video = /** @type {HTMLVideoElement | null} */ (document.getElementById('waiting-self'));
  if (!box || !video) return;
  const live = state.stream && state.stream.getVideoTracks().some((t) => t.readyState === 'live');
  if (!live) {
    box.hidden = true;
    video.srcObject = null;
    return;
  }
  if (video.srcObject !== state.stream) {
    video.srcObject = state.stream;
    video.play().catch(() => {});
  }
  box.hidden = false;
}

// ---------------------------------------------------------------- queue position and announcements

/**
 * "You are next" / "1 person before you" / "3 people before you", as a catalogue key and its
 * parameters (null for no position).
 * @param {number} position
 * @returns {[string, import('./i18n.js').Params?] | null}
 */
function positionText(position) {
  const p = Number(position);
  if (!Number.isInteger(p) || p < 1) return null;
  if (p === 1) return ['waiting.next'];
  return ['waiting.before_you', { count: p - 1 }];
}

/** @param {import('./protocol.js').QueueStatusMessage} msg */
function showQueueStatus(msg) {
  const position = positionText(msg.position);
  // Only an estimate the server made; never one of our own.
  const time = msg.estimated_start_at ? hhmm(msg.estimated_start_at) : '';
  const pos = position ? t(...position) : '';
  const est = time ? t('waiting.expected', { time }) : '';
  // Unchanged text is not written again (a live region would read it out again).
  if (el.queuePosition.textContent !== pos) {
    if (position) setText(el.queuePosition, ...position);
    else clearText(el.queuePosition);
  }
  if (el.queueEstimate.textContent !== est) {
    if (time) setText(el.queueEstimate, 'waiting.expected', { time });
    else clearText(el.queueEstimate);
  }
  el.queueEstimate.hidden = !est;
  el.queueStatus.hidden = !pos && !est;
  document.body.dataset.queuePosition = pos ? String(msg.position) : '';
}

function clearQueueStatus() {
  clearText(el.queuePosition);
  clearText(el.queueEstimate);
  el.queueStatus.hidden = true;
  delete document.body.dataset.queuePosition;
}

/** Shows the clinic's current announcements; items are diffed so unchanged ones are not re-read. */
/** @param {AnnouncementInfo[]} items */
function showAnnouncements(items) {
  const now = Date.now();
  state.announcements = (Array.isArray(items) ? items : [])
    .filter((a) => a && typeof a.text === 'string' && a.text.trim())
    .filter((a) => !a.expires_at || !(Date.parse(a.expires_at) <= now));
  renderAnnouncements();
}

function renderAnnouncements() {
  const now = Date.now();
  const items = state.announcements.filter((a) => !a.expires_at || !(Date.parse(a.expires_at) <= now));
  state.announcements = items;
  const keep = new Set(items.map((a) => String(a.id)));
  for (const li of /** @type {HTMLElement[]} */ ([...el.announcementsList.children])) if (!keep.has(li.dataset.id)) li.remove();
  const byId = new Map(/** @type {HTMLElement[]} */ ([...el.announcementsList.children]).map((li) => [li.dataset.id, li]));
  items.forEach((a, i) => {
    const id = String(a.id);
    let li = byId.get(id);
    if (!li) {
      li = document.createElement('li');
      li.dataset.id = id;
    }
    if (li.textContent !== a.text) li.textContent = a.text; // plain text, never HTML
    if (el.announcementsList.children[i] !== li) el.announcementsList.insertBefore(li, el.announcementsList.children[i] || null);
  });
  el.announcementsBox.hidden = items.length === 0;
  document.body.dataset.announcements = String(items.length);
  // The server also sends a new list at the expiry; this hides it on time even if that is late.
  clearTimeout(state.announcementTimer);
  const next = Math.min(...items.map((a) => (a.expires_at ? Date.parse(a.expires_at) : Infinity)).filter(Number.isFinite));
  if (Number.isFinite(next)) {
    state.announcementTimer = setTimeout(renderAnnouncements, Math.max(0, Math.min(next - now + 50, 2 ** 31 - 1)));
  }
}

/** @param {ServerMessage} msg */
function onMessage(msg) {
  if (state.chat && state.chat.handle(msg)) return;
  if (msg.type === 'waiting' && consultation.active) {
    // The practitioner moved us out of the consultation (a transfer): leave the room cleanly.
    consultation.abort();
    clearQueueStatus();
    announce(el.status, t('waiting.back'));
  }
  if (consultation.handle(msg)) return;
  switch (msg.type) {
    case 'waiting':
      setConnection('connected');
      showWaiting(msg, null);
      reportConnectionCheck();
      break;
    case 'queue_status':
      showQueueStatus(msg);
      break;
    case 'announcements':
      showAnnouncements(msg.items);
      break;
    case 'consultation_started':
      enterRoom(msg);
      break;
    case 'consultation_ended':
      showAfter();
      break;
    case 'error':
      showError(errorText(msg, 'error.server'));
      break;
    default:
      break;
  }
}

/**
 * Tells the practitioner the verdict of the connection check the patient ran before entering
 * (on every `waiting`, so also after a reconnect): the waiting list shows when video may not work.
 */
function reportConnectionCheck() {
  const checked = state.netChecked;
  if (!checked || checked.aborted || !state.signalling) return;
  state.signalling.send({ type: 'connection_check', level: verdictOf(checked).level });
}

/** @param {import('./protocol.js').ConsultationStartedMessage} msg */
async function enterRoom(msg) {
  if (!state.stream) {
    try {
      await ensureStream();
    } catch (err) {
      showError(deviceErrorHelp(err));
      showDevicePrompt(deviceErrorHelp(err));
      return;
    }
  }
  if (state.stopMeter) state.stopMeter();
  state.stopMeter = null;
  consultation.enter(msg, { signalling: state.signalling, selfId: state.selfId, localStream: state.stream });
  announce(el.status, t('room.started'));
}

/** The consultation room, its files and reconnection (shared with the staff app). */
const consultation = new ConsultationController({
  root: el.roomView,
  role: 'patient',
  status: el.status,
  signalling: () => state.signalling,
  onEnded: (endMsg) => {
    // Our seat could not be kept (away too long): the server puts us back in the waiting
    // room, whose frames follow.
    if (endMsg && endMsg.reason === 'connection_lost') showWaiting(null, null);
    else if (endMsg) showAfter();
    // else: connection lost; onClose shows the reconnecting state.
  },
  onError: showError,
  // If the practitioner's connection drops, the patient can go back and wait again: a new
  // connection puts them back in the waiting room (and replaces the old one).
  otherLeftAction: { label: 'room.back_to_waiting', onClick: backToWaiting },
  getIceServers: iceServersForPatient,
  allowScreenShare: () => state.invitation?.settings?.screen_sharing !== false,
  filesAllowed: () => state.invitation?.settings?.file_sharing !== false,
});

function backToWaiting() {
  consultation.abort();
  state.retry?.stop();
  state.signalling?.close();
  state.signalling = null;
  showWaiting(null, 'waiting.connecting');
  connect();
}

function showAfter() {
  if (state.finished) return;
  state.finished = true;
  const a = state.invitation?.appointment;
  // A passing error of the consultation ("Your screen could not be shared.") is over with it.
  clearTimeout(toastTimer);
  el.toast.hidden = true;
  stopEverything();
  forgetToken();
  // The organisation's own words for after the consultation (F119), as plain text.
  const after = document.getElementById('after-message');
  const words = String(state.invitation?.settings?.after_consultation_text || '').trim();
  if (after) {
    after.textContent = words;
    after.hidden = !words;
  }
  if (a && a.starts_at) {
    if (a.practitioner_name) setText(el.afterAppointment, 'after.appointment_with', { time: hhmm(a.starts_at), name: a.practitioner_name });
    else setText(el.afterAppointment, 'after.appointment', { time: hhmm(a.starts_at) });
  } else clearText(el.afterAppointment);
  navigate('after-view');
  // Follow-up questions after the consultation (F132), where the organisation keeps the chat.
  offerInvitationChat(state.token, document.getElementById('after-view'));
}

function stopEverything() {
  stopConnectionCheck();
  clearTimeout(state.announcementTimer);
  state.retry?.stop();
  state.retry = null;
  consultation.abort();
  if (state.signalling) state.signalling.close();
  state.signalling = null;
  state.chat?.hide();
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

// ---------------------------------------------------------------- language (issue #14)

/** `?lang=` on the link (the walk-in widget passes the language the visitor saw there). */
const urlLanguage = new URLSearchParams(window.location.search).get('lang');

/** Texts built in script that `setText` does not cover: written again in the new language. */
onLanguageChange(() => {
  if (state.invitation) {
    renderSummary();
    applyOrgTexts(state.invitation);
  }
  summarise();
  for (const device of /** @type {CheckedDevice[]} */ (Object.keys(state.verdict))) setVerdict(device, state.verdict[device]);
  if (state.netChecked && !state.netCheck) {
    const v = verdictOf(state.netChecked);
    renderVerdict(v, { result: $('net-result'), title: $('net-title'), details: $('net-details'), advice: $('net-advice') });
  }
});

$('language-slot').append(languageSwitcher());
// Before the invitation is known: an earlier choice, else the browser's languages (a shown
// page should not wait for the network); `start` switches to the invitation's language.
await setLanguage(chooseLanguage(urlLanguage));

state.token = takeToken();
start();
