// @ts-check
// Walk-in hours in the staff app: the one-click walk-in switch in the top bar (visible on the
// dashboard and in the consultation room, F49/F124), and the "Walk-in hours" page with the
// practitioner's scheduled availability (one-off and weekly ranges, F56/F59) and, for
// organisation admins, the widget wizard (js/widget-admin.js).
//
// Self-contained: it follows the staff app's views through nav.js (`followViews`; no hooks into
// app.js), and shows its own page as the view `walkin-view` (`navigate`).

import { api, ApiError } from './api.js';
import { $, h, announce } from './dom.js';
import { navigate, registerView, followViews, currentView } from './nav.js';
import { initWidgetAdmin } from './widget-admin.js';
import { t, setText, formatDate, errorText as apiErrorText } from './i18n.js';

/** Catalogue keys of the weekdays, Monday first (ISO 1–7). */
const WEEKDAYS = ['staff.monday', 'staff.tuesday', 'staff.wednesday', 'staff.thursday', 'staff.friday', 'staff.saturday', 'staff.sunday'];
const REFRESH_MS = 60_000; // scheduled ranges start and end by themselves

const el = {
  toggle: $('walkin-toggle', HTMLButtonElement),
  toggleState: $('walkin-toggle-state'),
  pageBtn: $('walkin-page-btn', HTMLButtonElement),
  view: $('walkin-view'),
  back: $('walkin-back', HTMLButtonElement),
  error: $('walkin-error'),
  summary: $('walkin-summary'),
  tz: $('walkin-tz', HTMLInputElement),
  tzSave: $('walkin-tz-save', HTMLButtonElement),
  ranges: $('walkin-ranges'),
  rangesEmpty: $('walkin-ranges-empty'),
  form: $('walkin-range-form', HTMLFormElement),
  kind: $('walkin-range-kind', HTMLSelectElement),
  weekday: $('walkin-range-weekday', HTMLSelectElement),
  weekdayField: $('walkin-range-weekday-field'),
  date: $('walkin-range-date', HTMLInputElement),
  dateField: $('walkin-range-date-field'),
  start: $('walkin-range-start', HTMLInputElement),
  end: $('walkin-range-end', HTMLInputElement),
  formError: $('walkin-range-error'),
  widgets: $('widget-admin'),
  status: $('status'),
};

/**
 * A walk-in range of `GET /api/v1/walkin/me` (clinic/openapi.json).
 * @typedef {{ id?: string, kind: string, start: string, end: string, weekday?: number, date?: string }} WalkinRange
 */

/**
 * `walkin`: `GET /api/v1/walkin/me` (switch, availability, ranges), read defensively.
 * @type {{ me: any, walkin: any, timer: ReturnType<typeof setInterval> | null, busy: boolean,
 *   admin: ReturnType<typeof initWidgetAdmin> | null }}
 */
const state = { me: null, walkin: null, timer: null, busy: false, admin: null };

// ---------------------------------------------------------------- session following app.js

/** @param {string} view the view app.js (or another module) just showed */
function onViewChange(view) {
  const signedIn = view === 'dashboard-view' || view === 'room-view' || view === 'walkin-view';
  if (!signedIn) {
    if (view === 'login-view') reset();
    return;
  }
  if (!state.me) start();
}

registerView('walkin-view');
followViews(onViewChange);

function reset() {
  state.me = null;
  state.walkin = null;
  clearInterval(state.timer);
  state.timer = null;
  el.toggle.hidden = true;
  el.pageBtn.hidden = true;
  el.view.hidden = true;
}

async function start() {
  state.me = {};
  try {
    state.me = await api('/api/v1/me');
    await refresh();
  } catch (err) {
    state.me = null;
    if (!(err instanceof ApiError && err.status === 401)) console.warn('walk-in state could not be loaded');
    return;
  }
  el.toggle.hidden = false;
  el.pageBtn.hidden = false;
  clearInterval(state.timer);
  state.timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
}

async function refresh() {
  render(await api('/api/v1/walkin/me'));
}

// ---------------------------------------------------------------- the switch

/** @param {any} walkin `GET /api/v1/walkin/me` */
function render(walkin) {
  state.walkin = walkin;
  const on = !!walkin.switch_on;
  const available = !!walkin.available_now;
  el.toggle.setAttribute('aria-pressed', String(on));
  el.toggle.dataset.available = String(available);
  setText(el.toggleState, on ? 'staff.walkin.on' : (available ? 'staff.walkin.scheduled' : 'staff.off'));
  el.toggle.title = on
    ? t('staff.walkin.title_on')
    : (available
      ? t('staff.walkin.title_scheduled')
      : t('staff.walkin.title_off'));
  el.summary.textContent = available
    ? (on ? t('staff.walkin.available_on') : t('staff.walkin.available_scheduled'))
    : t('staff.walkin.not_available');
  if (document.activeElement !== el.tz) el.tz.value = walkin.time_zone || '';
  renderRanges(walkin.ranges || []);
}

el.toggle.addEventListener('click', async () => {
  if (state.busy || !state.walkin) return;
  state.busy = true;
  el.toggle.setAttribute('aria-busy', 'true');
  const next = !state.walkin.switch_on;
  try {
    render(await api('/api/v1/walkin/me', { method: 'PUT', body: { switch_on: next } }));
    announce(el.status, next ? t('staff.walkin.now_on') : t('staff.walkin.now_off'));
  } catch (err) {
    announce(el.status, t('staff.walkin.switch_failed'));
    showError(errorText(err));
  } finally {
    state.busy = false;
    el.toggle.removeAttribute('aria-busy');
  }
});

// ---------------------------------------------------------------- the page

el.pageBtn.addEventListener('click', () => {
  if (currentView() === 'room-view') return; // never hide a running consultation
  navigate('walkin-view');
  if (state.me && state.me.role === 'organisation_admin') {
    el.widgets.hidden = false;
    if (!state.admin) state.admin = initWidgetAdmin();
    state.admin.load();
  } else {
    el.widgets.hidden = true;
  }
  refresh().catch((err) => showError(errorText(err)));
});

el.back.addEventListener('click', () => navigate('dashboard-view', { focus: false }));

/** @param {string} text */
function showError(text) {
  el.error.textContent = text || '';
  el.error.hidden = !text;
}

/** @param {unknown} err */
function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return t('error.network_error');
    if (err.message) return apiErrorText(err);
    return t('staff.something_wrong_code', { code: err.code });
  }
  return t('staff.something_wrong');
}

// ---------------------------------------------------------------- scheduled availability

/** @param {WalkinRange} r */
function describe(r) {
  if (r.kind === 'weekly') return t('staff.walkin.every', { day: t(WEEKDAYS[(r.weekday || 1) - 1] || WEEKDAYS[0]), start: r.start || '', end: r.end || '' });
  const d = new Date(`${r.date}T12:00:00`);
  const day = Number.isNaN(d.getTime()) ? r.date : formatDate(d, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
  return `${day}, ${r.start}–${r.end}`;
}

/** @param {WalkinRange[]} ranges */
function renderRanges(ranges) {
  const items = ranges.filter((r) => r && r.id).map((r) => {
    const text = describe(r);
    const del = h('button', { type: 'button', class: 'btn btn-quiet btn-small', 'aria-label': t('staff.delete_what', { what: text }) }, t('staff.delete'));
    del.addEventListener('click', async () => {
      del.disabled = true;
      try {
        render(await api(`/api/v1/walkin/me/ranges/${encodeURIComponent(r.id)}`, { method: 'DELETE' }));
        announce(el.status, t('staff.walkin.removed'));
      } catch (err) {
        del.disabled = false;
        showError(errorText(err));
      }
    });
    return h('li', { class: 'walkin-range', dataset: { kind: r.kind } }, h('span', {}, text), del);
  });
  el.ranges.replaceChildren(...items);
  el.rangesEmpty.hidden = items.length > 0;
}

function syncKind() {
  const weekly = el.kind.value === 'weekly';
  el.weekdayField.hidden = !weekly;
  el.dateField.hidden = weekly;
}
el.kind.addEventListener('change', syncKind);
syncKind();

el.form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  el.formError.hidden = true;
  /** @type {WalkinRange} */
  const body = { kind: el.kind.value, start: el.start.value, end: el.end.value };
  if (body.kind === 'weekly') body.weekday = Number(el.weekday.value);
  else body.date = el.date.value;
  let problem = '';
  if (!body.start || !body.end) problem = t('staff.walkin.enter_times');
  else if (body.end <= body.start) problem = t('staff.walkin.end_after_start');
  else if (body.kind === 'once' && !body.date) problem = t('staff.walkin.choose_date');
  if (problem) {
    el.formError.textContent = problem;
    el.formError.hidden = false;
    return;
  }
  try {
    render(await api('/api/v1/walkin/me/ranges', { method: 'POST', body }));
    announce(el.status, t('staff.walkin.added'));
  } catch (err) {
    el.formError.textContent = errorText(err);
    el.formError.hidden = false;
  }
});

el.tzSave.addEventListener('click', async () => {
  try {
    render(await api('/api/v1/walkin/me', { method: 'PUT', body: { time_zone: el.tz.value.trim() } }));
    showError('');
    announce(el.status, t('staff.walkin.tz_saved'));
  } catch (err) {
    showError(errorText(err));
  }
});

// This module may load after app.js has already shown its first view: catch up.
if (currentView()) onViewChange(currentView());
