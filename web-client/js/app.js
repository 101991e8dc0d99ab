// @ts-check
// Staff app (served at `/`): login, dashboard (today's appointments + live waiting room) and the
// consultation room. Talks to `/api/v1/...` (cookie session) and `/ws` (signalling protocol v1).
// Patient names are shown on screen but never written to the console.

import { api, ApiError } from './api.js';
import { $, h, announce } from './dom.js';
import { navigate, registerView } from './nav.js';
import { hhmm, isToday, shortDate, punctualityLabel, statusLabel } from './format.js';
import { t, setText as setTextKey, clearText, setLanguage, chooseLanguage, asLanguage, errorText } from './i18n.js';
import { SignallingClient, connectWithRetry } from './signalling.js';
import { openCameraAndMic, stopStream, deviceErrorHelp, fetchIceServers } from './media.js';
import { ConsultationController } from './consultation.js';
import { StaffChat } from './chat.js';
import { unlockAudio, audioUnlocked, playDoorbell } from './doorbell.js';
import { current as orgSettings, notifyArrival } from './org-settings.js';
import { initQuickConsult } from './quick-consult.js';
import { Directory } from './directory.js';
import { TransferDialog } from './transfer.js';
import { GuestPanel } from './guests.js';
import { ExternalPeople } from './external.js';
import { ClientList } from './clients.js';
import { AnnouncementsPanel } from './announcements.js';
import './hooks.js';

for (const view of ['boot-view', 'login-view', 'dashboard-view', 'room-view']) registerView(view);
const APPOINTMENTS_REFRESH_MS = 60_000;

/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').WaitingEntry} WaitingEntry */
/**
 * An appointment of `GET /api/v1/appointments` (clinic/openapi.json), as far as this page reads it.
 * @typedef {{ id: string, starts_at: string, status?: string, duration_minutes?: number,
 *   client?: { id?: string, name?: string }, practitioner?: { id: string, name?: string } }} Appointment
 */
/**
 * @typedef {object} StaffState
 * @property {SignallingClient | null} signalling
 * @property {{ stop(): void } | null} retry
 * @property {import('./protocol.js').JoinedMessage | null} joined
 * @property {Map<string, WaitingEntry>} waiting participant_id → entry, in arrival order
 * @property {MediaStream | null} localStream
 * @property {string | null} admitting the participant being admitted
 * @property {ReturnType<typeof setInterval> | null} appointmentsTimer
 * @property {boolean} loggedIn
 * @property {any} me `/api/v1/me`: id, name, role, department_id (never logged)
 * @property {Directory} directory
 * @property {{ appointmentId: string, name: string, inviteUrl: string | null } | null} forceStart
 *   while a force_start is under way
 * @property {Map<string, number>} transferredByMe participant_id → time: no doorbell when they
 *   land in a room we watch
 * @property {StaffChat | null} [chat]
 * @property {ExternalPeople | null} [people]
 * @property {ClientList | null} [clients]
 */

/** @type {StaffState} */
const state = {
  signalling: null,
  retry: null,
  joined: null,
  waiting: new Map(), // participant_id → WaitingEntry, in arrival order
  localStream: null,
  admitting: null,
  appointmentsTimer: null,
  loggedIn: false,
  me: null, // `/api/v1/me`: id, name, role, department_id (never logged)
  directory: new Directory(),
  forceStart: null, // { appointmentId, name } while a force_start is under way
  transferredByMe: new Map(), // participant_id → time: no doorbell when they land in a room we watch
};

const el = {
  status: $('status'),
  toast: $('toast'),
  connState: $('conn-state'),
  staffName: $('staff-name'),
  logout: $('logout-btn', HTMLButtonElement),
  loginForm: $('login-form', HTMLFormElement),
  loginError: $('login-error'),
  email: $('login-email', HTMLInputElement),
  emailError: $('login-email-error'),
  password: $('login-password', HTMLInputElement),
  passwordError: $('login-password-error'),
  loginSubmit: $('login-submit', HTMLButtonElement),
  dashboardError: $('dashboard-error'),
  waitingList: $('waiting-list'),
  waitingEmpty: $('waiting-empty'),
  waitingCount: $('waiting-count'),
  waitingCountNumber: $('waiting-count-number'),
  soundBtn: $('sound-btn', HTMLButtonElement),
  appointmentsState: $('appointments-state'),
  appointmentsList: $('appointments-list'),
  appointmentsRefresh: $('appointments-refresh', HTMLButtonElement),
  roomView: $('room-view'),
};

// ---------------------------------------------------------------- messages

/** @type {ReturnType<typeof setTimeout> | undefined} */
let toastTimer;
/** @param {string} text */
function showError(text) {
  el.toast.textContent = text;
  el.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.toast.hidden = true; }, 8000);
}

/** @param {string} text */
function setConnState(text) {
  el.connState.textContent = text || '';
  el.connState.hidden = !text;
}

// ---------------------------------------------------------------- login / logout

/** @param {string} [message] */
function showLogin(message) {
  state.loggedIn = false;
  teardownSession();
  el.logout.hidden = true;
  el.staffName.textContent = '';
  el.loginError.hidden = !message;
  el.loginError.textContent = message || '';
  el.loginSubmit.disabled = false;
  setTextKey(el.loginSubmit, 'staff.sign_in');
  navigate('login-view', { focus: false });
  el.email.focus();
}

/**
 * @param {HTMLInputElement} input
 * @param {HTMLElement} errorEl
 * @param {string} text
 */
function setFieldError(input, errorEl, text) {
  errorEl.textContent = text || '';
  errorEl.hidden = !text;
  if (text) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

/** @param {unknown} err */
function loginErrorText(err) {
  if (!(err instanceof ApiError)) return t('staff.login.failed');
  if (err.status === 0) return t('staff.login.unreachable');
  if (err.status === 401 || err.code === 'invalid_credentials') return t('staff.login.wrong');
  if (err.status === 429) return t('staff.login.too_many');
  if (err.status === 403) return t('staff.login.forbidden');
  return t('staff.login.failed_code', { code: err.code || '' });
}

el.loginForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  unlockAudio(); // the sign-in click/Enter is the user gesture that lets the doorbell ring later
  const email = el.email.value.trim();
  const password = el.password.value;
  setFieldError(el.email, el.emailError, email ? '' : t('staff.login.enter_email'));
  setFieldError(el.password, el.passwordError, password ? '' : t('staff.login.enter_password'));
  el.loginError.hidden = true;
  if (!email) return el.email.focus();
  if (!password) return el.password.focus();
  el.loginSubmit.disabled = true;
  setTextKey(el.loginSubmit, 'staff.login.signing_in');
  try {
    const data = await api('/api/v1/auth/login', { method: 'POST', body: { email, password } });
    el.password.value = '';
    el.staffName.textContent = (data && data.staff && data.staff.name) || '';
    state.me = (data && data.staff) || null;
    await applyStaffLanguage(state.me);
    await enterDashboard();
  } catch (err) {
    el.loginError.textContent = loginErrorText(err);
    el.loginError.hidden = false;
    el.loginSubmit.disabled = false;
    setTextKey(el.loginSubmit, 'staff.sign_in');
    el.password.focus();
    el.password.select();
  }
});

el.logout.addEventListener('click', async () => {
  el.logout.disabled = true;
  try {
    await api('/api/v1/auth/logout', { method: 'POST' });
  } catch {
    // Even if the server call fails, forget everything locally.
  } finally {
    el.logout.disabled = false;
  }
  showLogin();
  announce(el.status, t('staff.signed_out'));
});

// Any click or key press may unlock audio (e.g. after a page reload with a live session).
for (const type of ['pointerdown', 'keydown']) {
  document.addEventListener(type, () => {
    if (state.loggedIn && !audioUnlocked()) {
      unlockAudio();
      setTimeout(updateSoundButton, 300);
    }
  }, { capture: true });
}
el.soundBtn.addEventListener('click', () => {
  unlockAudio();
  setTimeout(updateSoundButton, 300);
});
function updateSoundButton() {
  el.soundBtn.hidden = audioUnlocked();
}

function teardownSession() {
  clearInterval(state.appointmentsTimer);
  state.appointmentsTimer = null;
  if (state.retry) state.retry.stop();
  state.retry = null;
  consultation.abort();
  if (state.signalling) state.signalling.close();
  state.signalling = null;
  state.joined = null;
  delete document.body.dataset.signalling;
  stopStream(state.localStream);
  state.localStream = null;
  state.waiting.clear();
  renderWaiting();
  el.appointmentsList.replaceChildren();
  setConnState('');
  state.me = null;
  state.forceStart = null;
  state.directory.clear();
  transferDialog.close();
  announcements.reset();
  state.chat?.destroy();
  state.chat = null;
  state.people?.destroy();
  state.people = null;
  state.clients?.destroy();
  state.clients = null;
}

// ---------------------------------------------------------------- dashboard

async function enterDashboard() {
  state.loggedIn = true;
  el.logout.hidden = false;
  el.dashboardError.hidden = true;
  navigate('dashboard-view');
  updateSoundButton();
  loadAppointments();
  clearInterval(state.appointmentsTimer);
  state.appointmentsTimer = setInterval(loadAppointments, APPOINTMENTS_REFRESH_MS);
  startSignalling();
  loadMeAndDirectory();
}

/** Who am I (for "You" labels and announcement rooms) and the organisation's directory. */
async function loadMeAndDirectory() {
  if (!state.me || !state.me.id) {
    try {
      state.me = await api('/api/v1/me');
    } catch (err) {
      if (handleAuthError(err)) return;
    }
  }
  try {
    await state.directory.load();
  } catch (err) {
    if (handleAuthError(err)) return;
    // Without the directory, rooms are labelled generically ("Department") and transfer asks again.
  }
  if (!state.loggedIn) return;
  state.chat?.setSelf(state.me?.id);
  if (!state.people && state.me) state.people = new ExternalPeople(state.me);
  if (!state.clients && state.me) state.clients = new ClientList(state.me, () => state.chat);
  renderWaiting();
  announcements.load();
}

/**
 * A 401 anywhere means the session is gone: back to the login page. Returns true if handled.
 * @param {unknown} err
 */
function handleAuthError(err) {
  if (err instanceof ApiError && err.status === 401) {
    if (state.loggedIn) showLogin(t('staff.session_ended'));
    return true;
  }
  return false;
}

/** `from`/`to` for the browser's local calendar day (the API defaults to the UTC day). */
function todayRange(now = new Date()) {
  const from = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const to = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
  return `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
}

async function loadAppointments() {
  try {
    const data = await api(`/api/v1/appointments?${todayRange()}`);
    renderAppointments((data && data.appointments) || []);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showLogin(t('staff.session_ended'));
    setTextKey(el.appointmentsState, 'staff.appointments_failed');
    el.appointmentsState.hidden = false;
  }
}
el.appointmentsRefresh.addEventListener('click', loadAppointments);

initQuickConsult({
  onCreated: async (appointment, invitationUrl) => {
    loadAppointments();
    await forceStart(appointment, $('quick-consult-btn', HTMLButtonElement), invitationUrl);
  },
});

const STARTABLE = new Set(['scheduled', 'booked', 'confirmed', 'waiting', '']);

/**
 * "Start now" (force start, F78) is offered for today's appointments that are still to come.
 * @param {Appointment} a
 */
function canForceStart(a) {
  return !!a.id && isToday(a.starts_at) && STARTABLE.has(a.status || '');
}

/**
 * @param {Appointment} a
 * @param {HTMLButtonElement} button
 * @param {string | null} [inviteUrl]
 */
async function forceStart(a, button, inviteUrl = null) {
  if (state.admitting || state.forceStart || consultation.active) return;
  if (!state.signalling?.isOpen) {
    showError(t('staff.no_connection'));
    return;
  }
  const name = (a.client && a.client.name) || 'the patient';
  state.forceStart = { appointmentId: a.id, name, inviteUrl };
  guests.appointmentId = a.id;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    if (!state.localStream) {
      try {
        state.localStream = await openCameraAndMic();
      } catch (err) {
        showError(`${t('staff.devices_needed_start')} ${deviceErrorHelp(err)}`);
        state.forceStart = null;
        return;
      }
    }
    await state.signalling.request({ type: 'force_start', appointment_id: a.id });
  } catch (err) {
    state.forceStart = null;
    const code = err && err.code;
    showError(code === 'invalid_state'
      ? t('staff.already_in_consultation')
      : code === 'not_found' || code === 'forbidden'
        ? t('staff.cannot_start')
        : t('staff.start_failed', { reason: errorText(err) }));
    if (!consultation.active) {
      stopStream(state.localStream);
      state.localStream = null;
    }
  } finally {
    if (button.isConnected) {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    }
  }
}

/** Distinct, colour-blind-friendly hues (Okabe–Ito) for the "Today" overview (F20). */
const PRACTITIONER_COLOURS = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000'];

/**
 * "Today" overview (F20): with appointments of several practitioners (admins see the whole
 * organisation), each row gets its practitioner's colour, and a legend names the colours (never
 * colour alone: the name is on every row too).
 */
/** @param {Appointment[]} list */
function practitionerColours(list) {
  /** @type {string[]} */
  const ids = [];
  for (const a of list) {
    const id = a.practitioner && a.practitioner.id;
    if (id && !ids.includes(id)) ids.push(id);
  }
  /** @type {Map<string, string>} */
  const colours = new Map();
  if (ids.length < 2) return colours;
  ids.forEach((id, i) => colours.set(id, PRACTITIONER_COLOURS[i % PRACTITIONER_COLOURS.length]));
  return colours;
}

/**
 * @param {Appointment[]} list
 * @param {Map<string, string>} colours
 */
function renderLegend(list, colours) {
  const legend = document.getElementById('appointments-legend');
  if (!legend) return;
  const seen = new Map();
  for (const a of list) {
    const p = a.practitioner;
    if (p && p.id && colours.has(p.id) && !seen.has(p.id)) seen.set(p.id, p.name || t('staff.practitioner'));
  }
  // Colours go through the CSSOM: the CSP forbids inline style attributes.
  legend.replaceChildren(...[...seen].map(([id, name]) => {
    const swatch = h('span', { class: 'legend-swatch', 'aria-hidden': 'true' });
    swatch.style.background = colours.get(id);
    return h('li', {}, swatch, name);
  }));
  legend.hidden = seen.size === 0;
}

/** @param {Appointment[]} list */
function renderAppointments(list) {
  const sorted = [...list].sort((a, b) => Date.parse(a.starts_at) - Date.parse(b.starts_at));
  const colours = practitionerColours(sorted);
  renderLegend(sorted, colours);
  const items = sorted.map((a) => {
    const start = a.starts_at;
    const status = a.status || '';
    const colour = a.practitioner && colours.get(a.practitioner.id);
    const li = h('li', {
      class: `appointment status-${status.replace(/[^a-z_]/g, '')}${colour ? ' coloured' : ''}`,
      dataset: { appointmentId: a.id },
    },
      h('p', { class: 'appt-time' },
        h('span', { class: 'appt-hhmm' }, hhmm(start)),
        isToday(start) ? null : h('span', { class: 'appt-date' }, shortDate(start)),
        a.duration_minutes ? h('span', { class: 'appt-duration' }, t('staff.minutes_short', { n: a.duration_minutes })) : null),
      h('div', { class: 'appt-who' },
        h('p', { class: 'appt-client' }, (a.client && a.client.name) || t('staff.unnamed_client')),
        a.practitioner && a.practitioner.name ? h('p', { class: 'appt-practitioner' }, t('staff.with_name', { name: a.practitioner.name })) : null),
      h('div', { class: 'appt-side' },
        status ? h('p', { class: 'appt-status' }, statusLabel(status)) : null,
        state.chat?.appointmentButton(a.client),
        (guests.panel ||= new GuestPanel(el.roomView)).listButton(a),
        canForceStart(a) ? h('button', {
          type: 'button',
          class: 'btn btn-secondary btn-small appt-start',
          onclick: (/** @type {MouseEvent} */ ev) => forceStart(a, /** @type {HTMLButtonElement} */ (ev.currentTarget)),
        }, t('staff.start_now'), h('span', { class: 'visually-hidden' }, ` ${t('staff.start_with', { name: (a.client && a.client.name) || t('staff.the_patient') })}`)) : null));
    if (colour) li.style.setProperty('--practitioner-colour', colour);
    return li;
  });
  el.appointmentsList.replaceChildren(...items);
  if (items.length) clearText(el.appointmentsState);
  else setTextKey(el.appointmentsState, 'staff.no_appointments_today');
  el.appointmentsState.hidden = items.length > 0;
}

// ---------------------------------------------------------------- waiting room

/** Labels the room of each entry only when there is more than one room to tell apart. */
function showsRoomLabels() {
  if (state.me && state.me.department_id) return true;
  for (const e of state.waiting.values()) if (e.queue && e.queue.kind === 'department') return true;
  return false;
}

function renderWaiting() {
  const entries = [...state.waiting.values()];
  const existing = new Map(/** @type {HTMLElement[]} */ ([...el.waitingList.children]).map((li) => [li.dataset.participantId, li]));
  // Keep existing <li> nodes (focus, live region) and update them in place; add new, remove gone.
  for (const [id, li] of existing) if (!state.waiting.has(id)) li.remove();
  const labels = showsRoomLabels();
  for (const e of entries) {
    let li = existing.get(e.participant_id);
    if (!li) {
      li = waitingItem(e);
      el.waitingList.append(li);
    }
    updateWaitingItem(li, e, labels);
  }
  const n = entries.length;
  el.waitingEmpty.hidden = n > 0;
  el.waitingCount.hidden = n === 0;
  el.waitingCount.dataset.count = String(n);
  el.waitingCountNumber.textContent = String(n);
  document.title = n ? t('staff.title_waiting', { n: String(n) }) : 'Consultroom';
  // During a consultation the list is out of sight: keep the count in the top bar.
  const roomWaiting = document.getElementById('room-waiting');
  roomWaiting.textContent = t('staff.patients_waiting', { count: n });
  roomWaiting.hidden = n === 0;
}

/**
 * Creates the (empty) nodes of one waiting entry; `updateWaitingItem` fills them.
 * @param {WaitingEntry} e
 */
function waitingItem(e) {
  const id = e.participant_id;
  const admitBtn = h('button', {
    type: 'button',
    class: 'waiting-entry',
    dataset: { participantId: id },
    onclick: () => admit(id, admitBtn),
  },
  h('span', { class: 'corner', 'aria-hidden': 'true' }),
  h('span', { class: 'visually-hidden' }, `${t('staff.let_in')}: `),
  h('span', { class: 'we-name' }),
  h('span', { class: 'we-meta' },
    h('span', { class: 'we-appt' }),
    h('span', { class: 'we-arrived' }),
    h('span', { class: 'we-queue', hidden: true },
      h('span', { class: 'visually-hidden' }, `${t('staff.waiting_room')}: `),
      h('span', { class: 'we-queue-name' }))),
  h('span', { class: 'we-tag' }),
  h('span', { class: 'we-check', hidden: true }),
  h('span', { class: 'we-action', 'aria-hidden': 'true', 'data-i18n': 'staff.let_in' }, t('staff.let_in')),
  h('span', { class: 'we-reconnecting', hidden: true, 'data-i18n': 'staff.reconnecting' }, t('staff.reconnecting')));
  const transferBtn = h('button', {
    type: 'button',
    class: 'btn btn-quiet btn-small we-transfer',
    'aria-haspopup': 'dialog',
    onclick: () => {
      const cur = state.waiting.get(id);
      if (cur) openTransfer({ participantId: id, name: cur.display_name, queue: cur.queue });
    },
  }, t('staff.transfer_ellipsis'), h('span', { class: 'visually-hidden we-transfer-name' }));
  return h('li', { class: 'waiting-item', dataset: { participantId: id } }, admitBtn, transferBtn);
}

/**
 * @param {Element} node
 * @param {string} text
 */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * @param {HTMLElement} li
 * @param {WaitingEntry} e
 * @param {boolean} labels
 */
function updateWaitingItem(li, e, labels) {
  const p = ['on_time', 'late', 'walk_in'].includes(e.punctuality) ? e.punctuality : 'on_time';
  /** @type {HTMLButtonElement} */
  const btn = li.querySelector('.waiting-entry');
  btn.className = `waiting-entry ${p}`;
  btn.dataset.punctuality = p;
  setText(btn.querySelector('.we-name'), e.display_name || t('staff.patient'));
  setText(btn.querySelector('.we-appt'), e.appointment_starts_at ? t('staff.appointment_at', { time: hhmm(e.appointment_starts_at) }) : t('staff.no_appointment'));
  setText(btn.querySelector('.we-arrived'), t('staff.arrived_at', { time: hhmm(e.arrived_at) }));
  const tag = btn.querySelector('.we-tag');
  tag.className = `we-tag ${p}`;
  setText(tag, punctualityLabel(p));
  /** @type {HTMLElement} */
  const q = btn.querySelector('.we-queue');
  const label = labels ? state.directory.roomLabel(e.queue, state.me) : '';
  q.hidden = !label;
  q.dataset.queueKind = (e.queue && e.queue.kind) || '';
  setText(q.querySelector('.we-queue-name'), label);
  // The patient's connection check before entering: warn that video may not work.
  /** @type {HTMLElement} */
  const check = btn.querySelector('.we-check');
  const level = e.connection_check === 'unreachable' || e.connection_check === 'poor' ? e.connection_check : '';
  check.hidden = !level;
  check.className = `we-check ${level}`;
  li.dataset.connectionCheck = e.connection_check || '';
  setText(check, level ? t(level === 'unreachable' ? 'staff.check_unreachable' : 'staff.check_poor') : '');
  const reconnecting = e.reconnecting === true;
  li.classList.toggle('reconnecting', reconnecting);
  li.dataset.reconnecting = String(reconnecting);
  /** @type {HTMLElement} */ (btn.querySelector('.we-reconnecting')).hidden = !reconnecting;
  /** @type {HTMLElement} */ (btn.querySelector('.we-action')).hidden = reconnecting;
  // A reconnecting patient cannot be admitted (the server refuses it); the button says why.
  if (state.admitting !== e.participant_id) btn.disabled = reconnecting;
  setText(li.querySelector('.we-transfer-name'), ` ${e.display_name || t('staff.patient_lower')}`);
}

/**
 * @param {string} participantId
 * @param {HTMLButtonElement} button
 */
async function admit(participantId, button) {
  if (state.admitting || consultation.active) return;
  state.admitting = participantId;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    if (!state.localStream) {
      try {
        state.localStream = await openCameraAndMic();
      } catch (err) {
        showError(`${t('staff.devices_needed_admit')} ${deviceErrorHelp(err)}`);
        return;
      }
    }
    guests.appointmentId = state.waiting.get(participantId)?.appointment_id || null;
    await state.signalling.request({ type: 'admit', participant_id: participantId });
  } catch (err) {
    const text = err && err.code === 'not_found'
      ? t('staff.patient_gone')
      : t('staff.admit_failed', { reason: errorText(err) });
    showError(text);
    if (!consultation.active) {
      stopStream(state.localStream);
      state.localStream = null;
    }
  } finally {
    state.admitting = null;
    if (button.isConnected) {
      button.disabled = state.waiting.get(participantId)?.reconnecting === true;
      button.removeAttribute('aria-busy');
    }
  }
}

// ---------------------------------------------------------------- signalling

function startSignalling() {
  if (state.signalling) return;
  const client = new SignallingClient({
    getToken: async () => {
      const data = await api('/api/v1/signalling/token', { method: 'POST' });
      return data.token;
    },
    onMessage: onSignal,
    onClose: ({ reason }) => {
      if (state.signalling !== client) return;
      delete document.body.dataset.signalling;
      if (reason === 'replaced') {
        consultation.abort();
        state.waiting.clear();
        renderWaiting();
        setConnState(t('staff.conn.replaced'));
        return;
      }
      if (reason === 'session_ended') {
        // This login ended (signed out in another tab, or the account was closed): the server
        // took us out of every room and refuses this session's tokens; no point reconnecting.
        showLogin(t('staff.session_ended'));
        return;
      }
      // In a consultation the room and its peer connection are kept; the server holds our seat
      // for 30 seconds and gives it back to a join that names the consultation.
      consultation.holdSeat(client);
      state.waiting.clear();
      renderWaiting();
      setConnState(t('staff.reconnecting'));
      reconnect();
    },
  });
  state.signalling = client;
  if (!state.chat) state.chat = new StaffChat({ selfStaffId: state.me?.id });
  setConnState(t('staff.conn.connecting'));
  reconnect();
}

function reconnect() {
  const client = state.signalling;
  if (!client) return;
  state.retry?.stop();
  state.retry = connectWithRetry(client, {
    onConnected: (joined) => {
      state.joined = joined;
      consultation.connected(client);
      if (joined.display_name) el.staffName.textContent = joined.display_name;
      document.body.dataset.signalling = 'joined';
      setConnState('');
      state.chat?.connected(client);
    },
    onRetry: () => setConnState(t('staff.reconnecting')),
    shouldRetry: (err) => {
      if (err instanceof ApiError && err.status === 401) {
        showLogin(t('staff.session_ended'));
        return false;
      }
      return true;
    },
  });
}

/** @param {ServerMessage} msg */
function onSignal(msg) {
  if (state.chat && state.chat.handle(msg)) return;
  if (consultation.handle(msg)) return;
  switch (msg.type) {
    case 'waiting_snapshot':
      state.waiting.clear();
      for (const e of msg.entries || []) state.waiting.set(e.participant_id, e);
      renderWaiting();
      break;
    case 'waiting_arrived': {
      const e = msg.entry;
      if (!e) break;
      const isNew = !state.waiting.has(e.participant_id);
      state.waiting.set(e.participant_id, e);
      renderWaiting();
      const movedByUs = Date.now() - (state.transferredByMe.get(e.participant_id) || 0) < 10_000;
      state.transferredByMe.delete(e.participant_id);
      if (isNew && !movedByUs) {
        playDoorbell().then((played) => { if (!played) updateSoundButton(); });
        notifyArrival();
      }
      break;
    }
    case 'waiting_updated': {
      // Same patient, same place in the list (e.g. reconnecting): update in place, no doorbell.
      const e = msg.entry;
      if (!e) break;
      state.waiting.set(e.participant_id, e);
      renderWaiting();
      break;
    }
    case 'waiting_left':
      state.waiting.delete(msg.participant_id);
      renderWaiting();
      break;
    case 'consultation_started':
      enterRoom(msg);
      break;
    case 'error':
      showError(errorText(msg, 'error.server'));
      break;
    default:
      break; // ok, pong and anything newer than this client
  }
}

/** @param {import('./protocol.js').ConsultationStartedMessage} msg */
async function enterRoom(msg) {
  if (!state.localStream) {
    try {
      state.localStream = await openCameraAndMic();
    } catch (err) {
      showError(deviceErrorHelp(err));
      return;
    }
  }
  // A force-started consultation begins with only us in it: say whom we are waiting for.
  const selfId = state.joined?.participant_id;
  const alone = !(msg.participants || []).some((p) => p.participant_id !== selfId);
  const waitingFor = state.forceStart && alone ? state.forceStart.name : null;
  const inviteUrl = (state.forceStart && alone && state.forceStart.inviteUrl) || null;
  state.forceStart = null;
  consultation.enter(msg, { signalling: state.signalling, selfId, localStream: state.localStream, waitingFor, inviteUrl });
  // "Add participant…" for the appointment being seen (issue #4; none for a walk-in).
  guests.panel ||= new GuestPanel(el.roomView);
  guests.panel.start(guests.appointmentId);
  announce(el.status, waitingFor
    ? t('staff.started_waiting_for', { name: waitingFor })
    : t('staff.started'));
}

/** The consultation room, its files and reconnection (shared with the patient page). */
const consultation = new ConsultationController({
  root: el.roomView,
  role: 'staff',
  status: el.status,
  signalling: () => state.signalling,
  onEnded: () => leaveRoom(),
  onError: showError,
  onTransfer: (p) => openTransfer({ participantId: p.participant_id, name: p.display_name, fromRoom: true }),
  // TURN credentials for the session cookie, fresh for every consultation.
  getIceServers: () => fetchIceServers(api),
  // Screen sharing as the organisation allows it now (the server enforces it either way).
  allowScreenShare: () => orgSettings()?.screen_sharing !== false,
  filesAllowed: () => api('/api/v1/organisation/settings').then((s) => s?.file_sharing !== false),
});

// ---------------------------------------------------------------- guests (issue #4)

/** The appointment of the consultation being entered (from `admit` or `force_start`). */
/** @type {{ panel: GuestPanel | null, appointmentId: string | null }} */
const guests = { panel: null, appointmentId: null };

// ---------------------------------------------------------------- transfer

/** @param {import('./transfer.js').TransferContext} ctx */
function openTransfer(ctx) {
  if (!state.signalling?.isOpen) {
    showError(t('staff.no_connection'));
    return;
  }
  transferDialog.open(ctx);
}

const transferDialog = new TransferDialog({
  directory: state.directory,
  me: () => state.me,
  send: async (participantId, to) => {
    state.transferredByMe.set(participantId, Date.now());
    try {
      await state.signalling.request({ type: 'transfer', participant_id: participantId, to });
    } catch (err) {
      state.transferredByMe.delete(participantId);
      throw err;
    }
  },
  onDone: (text, ctx) => {
    announce(el.status, text);
    if (ctx.fromRoom && consultation.active) {
      // The patient has left our consultation; nobody is left to talk to, so close it.
      state.signalling?.request({ type: 'end_consultation' }).catch(() => {});
    }
  },
});

// ---------------------------------------------------------------- announcements

const announcements = new AnnouncementsPanel({
  directory: state.directory,
  me: () => state.me,
  status: el.status,
  onAuthError: handleAuthError,
});

function leaveRoom() {
  // A passing error of the consultation is over with it.
  clearTimeout(toastTimer);
  el.toast.hidden = true;
  guests.panel?.stop();
  guests.appointmentId = null;
  stopStream(state.localStream);
  state.localStream = null;
  if (!state.loggedIn) return;
  navigate('dashboard-view');
  announce(el.status, t('staff.ended'));
  loadAppointments();
}

// ---------------------------------------------------------------- boot

/**
 * The staff app's language: the one chosen in the profile (`me.language`), else the browser's.
 * @param {{ language?: string | null } | null} me
 */
async function applyStaffLanguage(me) {
  const lang = asLanguage(me && me.language) || chooseLanguage();
  await setLanguage(lang);
}

async function boot() {
  await setLanguage(chooseLanguage()); // before sign-in: the browser's languages
  try {
    // Always 200 (signed in or not), so a signed-out visitor's console shows no failed request.
    const session = await api('/api/v1/auth/session');
    if (!session || !session.signed_in) {
      showLogin();
      return;
    }
    const me = session.me;
    state.me = me;
    await applyStaffLanguage(me);
    el.staffName.textContent = (me && me.name) || '';
    await enterDashboard();
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) showLogin();
    else showLogin(err instanceof ApiError && err.status === 0
      ? t('staff.unreachable_reload')
      : '');
  }
}

boot();
