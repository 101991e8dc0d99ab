// @ts-check
// Organisation settings in the staff app: every staff member's app reads them (screen sharing
// allowed? browser notification on arrival?), and organisation admins get a "Settings" page to
// change them (GET/PUT /api/v1/organisation/settings): screen and file sharing (F126), chat
// (F129–F133, F141), arrival notification (F93), waiting-room text (F97) and disclaimer (F102),
// the organisation's time zone and the client segregation switches (F6, F9; issue #12), and
// the organisation kind (human or veterinary: what a client's patients are; issue #15).
//
// Self-contained like walkin.js: it follows the staff app's views through nav.js
// (`followViews`), shows its own page as the view `settings-view` (`navigate`), and offers
// `current()` and `notifyArrival()` to app.js.

import { api, ApiError } from './api.js';
import { $, announce } from './dom.js';
import { navigate, registerView, followViews, currentView } from './nav.js';
import { t, errorText as apiErrorText } from './i18n.js';

const el = {
  pageBtn: $('settings-page-btn', HTMLButtonElement),
  view: $('settings-view'),
  back: $('settings-back', HTMLButtonElement),
  form: $('settings-form', HTMLFormElement),
  error: $('settings-error'),
  saved: $('settings-saved'),
  departmentTexts: $('settings-department-texts'),
  notifyBtn: $('notify-btn', HTMLButtonElement),
  status: $('status'),
};

/**
 * The settings form's named controls (checkboxes, texts, the `chat_after_consultation` radio
 * group), read by name: typed `any`, the markup in index.html defines them.
 * @type {any}
 */
const fields = el.form.elements;

const BOOLEAN_FIELDS = [
  'screen_sharing', 'file_sharing', 'continuous_chat', 'continuous_chat_by_grant', 'chat_in_waiting_room',
  'department_chat_access', 'arrival_notification', 'do_not_send_emails', 'appointment_reminders',
  'strict_department_segregation', 'strict_client_segregation',
];
const TEXT_FIELDS = ['waiting_room_text', 'disclaimer', 'after_consultation_text', 'time_zone', 'reminder_time'];

/**
 * `settings`: `GET /api/v1/organisation/settings` (clinic/openapi.json), read defensively.
 * @type {{ me: import('./directory.js').StaffMe | null, settings: any, loading: Promise<void> | null }}
 */
const state = { me: null, settings: null, loading: null };

/** The organisation's settings as last loaded (null until then). */
export function current() {
  return state.settings;
}

/**
 * A browser notification for a new arrival, when the organisation wants it and the user allowed
 * notifications. It names no patient (notifications show on lock screens), only the fact.
 */
export function notifyArrival() {
  if (!state.settings || !state.settings.arrival_notification) return false;
  if (typeof Notification !== 'function' || Notification.permission !== 'granted') return false;
  if (document.visibilityState === 'visible' && document.hasFocus()) return false; // the list shows it
  try {
    const n = new Notification(t('staff.notify.title'), /** @type {NotificationOptions} */ ({
      body: t('staff.notify.body'),
      tag: 'consultroom-arrival',
      renotify: true, // not in TypeScript's NotificationOptions yet
    }));
    n.addEventListener('click', () => { window.focus(); n.close(); });
    return true;
  } catch {
    return false; // e.g. Android Chrome wants a service worker for notifications
  }
}

// ---------------------------------------------------------------- following app.js

/** @param {string} view the view app.js (or another module) just showed */
function onViewChange(view) {
  const signedIn = view === 'dashboard-view' || view === 'room-view' || view === 'walkin-view' || view === 'settings-view';
  if (!signedIn) {
    if (view === 'login-view') reset();
    return;
  }
  if (!state.me && !state.loading) state.loading = start().finally(() => { state.loading = null; });
}

registerView('settings-view');
followViews(onViewChange);

function reset() {
  state.me = null;
  state.settings = null;
  el.pageBtn.hidden = true;
  el.view.hidden = true;
  el.notifyBtn.hidden = true;
}

async function start() {
  try {
    state.me = await api('/api/v1/me');
    state.settings = await api('/api/v1/organisation/settings');
  } catch (err) {
    state.me = null;
    if (!(err instanceof ApiError && err.status === 401)) console.warn('organisation settings could not be loaded');
    return;
  }
  el.pageBtn.hidden = state.me.role !== 'organisation_admin';
  renderNotifyButton();
}

/** "Allow notifications" is offered once, from a click (browsers require a user gesture). */
function renderNotifyButton() {
  const can = typeof Notification === 'function' && Notification.permission === 'default';
  el.notifyBtn.hidden = !(can && state.settings && state.settings.arrival_notification);
}

el.notifyBtn.addEventListener('click', async () => {
  try {
    const result = await Notification.requestPermission();
    announce(el.status, result === 'granted'
      ? t('staff.notify.on')
      : t('staff.notify.off'));
  } catch { /* unsupported */ }
  renderNotifyButton();
});

// ---------------------------------------------------------------- the admin page

el.pageBtn.addEventListener('click', async () => {
  if (currentView() === 'room-view') return; // never hide a running consultation
  navigate('settings-view');
  showError('');
  el.saved.hidden = true;
  try {
    const [settings, directory] = await Promise.all([
      api('/api/v1/organisation/settings'),
      api('/api/v1/directory').catch(() => /** @type {any} */ (null)),
    ]);
    state.settings = settings;
    renderDepartmentTexts((directory && directory.departments) || []);
    fill(state.settings);
  } catch (err) {
    showError(errorText(err));
  }
});

/**
 * One textarea per department: its own waiting-room text (empty = the organisation's).
 * @param {{ id: string, name: string }[]} departments
 */
function renderDepartmentTexts(departments) {
  el.departmentTexts.replaceChildren(...departments.map((d) => {
    const id = `settings-dept-text-${d.id}`;
    const wrap = document.createElement('div');
    wrap.className = 'field';
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = t('staff.settings.dept_text', { name: d.name });
    const area = document.createElement('textarea');
    area.id = id;
    area.rows = 2;
    area.maxLength = 2000;
    area.dataset.departmentId = d.id;
    const hint = document.createElement('p');
    hint.className = 'hint field-hint';
    hint.textContent = t('staff.settings.dept_text_hint');
    wrap.append(label, area, hint);
    return wrap;
  }));
}

el.back.addEventListener('click', () => navigate('dashboard-view', { focus: false }));

/** @param {any} s the organisation's settings */
function fill(s) {
  for (const f of BOOLEAN_FIELDS) fields[f].checked = !!s[f];
  for (const f of TEXT_FIELDS) fields[f].value = s[f] || '';
  const texts = s.department_waiting_room_texts || {};
  for (const area of el.departmentTexts.querySelectorAll('textarea')) area.value = texts[area.dataset.departmentId] || '';
  fields.chat_after_consultation.value = s.chat_after_consultation || 'keep';
  fields.organisation_kind.value = s.organisation_kind || 'human';
  const days = String(s.reminder_days_before ?? 0);
  /** @type {HTMLSelectElement} */
  const daysSelect = fields.reminder_days_before;
  if (![...daysSelect.options].some((o) => o.value === days)) daysSelect.add(new Option(`${days} days before`, days));
  daysSelect.value = days;
  syncChatFields();
  syncReminderFields();
}

/** Without continuous chat, messages cannot be kept (F130, F133): the form says so itself. */
function syncChatFields() {
  const continuous = fields.continuous_chat.checked;
  /** @type {HTMLInputElement} */
  const keep = el.form.querySelector('input[name="chat_after_consultation"][value="keep"]');
  keep.disabled = !continuous;
  fields.continuous_chat_by_grant.disabled = !continuous;
  if (!continuous) fields.chat_after_consultation.value = 'delete';
}

fields.continuous_chat.addEventListener('change', syncChatFields);

/** The reminder's timing only matters when reminders are on. */
function syncReminderFields() {
  const on = fields.appointment_reminders.checked;
  fields.reminder_days_before.disabled = !on;
  fields.reminder_time.disabled = !on;
}

fields.appointment_reminders.addEventListener('change', syncReminderFields);

el.form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError('');
  el.saved.hidden = true;
  for (const p of el.form.querySelectorAll('.field-error')) /** @type {HTMLElement} */ (p).hidden = true;
  /** @type {Record<string, any>} */
  const body = {};
  for (const f of BOOLEAN_FIELDS) body[f] = fields[f].checked;
  for (const f of TEXT_FIELDS) body[f] = fields[f].value;
  body.chat_after_consultation = fields.chat_after_consultation.value;
  body.organisation_kind = fields.organisation_kind.value;
  if (fields.appointment_reminders.checked) body.reminder_days_before = Number(fields.reminder_days_before.value);
  else delete body.reminder_time; // kept as stored while reminders are off
  body.department_waiting_room_texts = {};
  for (const area of el.departmentTexts.querySelectorAll('textarea')) {
    if (area.value.trim()) body.department_waiting_room_texts[area.dataset.departmentId] = area.value;
  }
  /** @type {HTMLButtonElement} */
  const submit = el.form.querySelector('button[type="submit"]');
  submit.disabled = true;
  try {
    state.settings = await api('/api/v1/organisation/settings', { method: 'PUT', body });
    fill(state.settings);
    el.saved.hidden = false;
    announce(el.status, t('staff.settings.saved'));
  } catch (err) {
    const field = err instanceof ApiError && err.details && err.details.field;
    /** @type {HTMLElement | null} */
  const slot = field && document.getElementById(`settings-${field.replaceAll('_', '-')}-error`);
    if (slot) {
      slot.textContent = apiErrorText(err);
      slot.hidden = false;
    }
    showError(errorText(err));
  } finally {
    submit.disabled = false;
  }
});

/** @param {string} text */
function showError(text) {
  el.error.textContent = text || '';
  el.error.hidden = !text;
}

/** @param {unknown} err */
function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 403) return t('staff.settings.forbidden');
    if (err.status === 401) return t('staff.session_ended');
    return t('staff.settings.save_failed', { reason: apiErrorText(err) });
  }
  return t('staff.login.unreachable');
}
