// Walk-in hours in the staff app: the one-click walk-in switch in the top bar (visible on the
// dashboard and in the consultation room, F49/F124), and the "Walk-in hours" page with the
// practitioner's scheduled availability (one-off and weekly ranges, F56/F59) and, for
// organisation admins, the widget wizard (js/widget-admin.js).
//
// Self-contained: it follows app.js through `<body data-view>` (no hooks into app.js), shows its
// own page as the view `walkin-view`, and steps aside whenever app.js shows another view.

import { api, ApiError } from './api.js';
import { $, h, announce } from './dom.js';
import { initWidgetAdmin } from './widget-admin.js';

const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const REFRESH_MS = 60_000; // scheduled ranges start and end by themselves

const el = {
  toggle: $('walkin-toggle'),
  toggleState: $('walkin-toggle-state'),
  pageBtn: $('walkin-page-btn'),
  view: $('walkin-view'),
  back: $('walkin-back'),
  error: $('walkin-error'),
  summary: $('walkin-summary'),
  tz: $('walkin-tz'),
  tzSave: $('walkin-tz-save'),
  ranges: $('walkin-ranges'),
  rangesEmpty: $('walkin-ranges-empty'),
  form: $('walkin-range-form'),
  kind: $('walkin-range-kind'),
  weekday: $('walkin-range-weekday'),
  weekdayField: $('walkin-range-weekday-field'),
  date: $('walkin-range-date'),
  dateField: $('walkin-range-date-field'),
  start: $('walkin-range-start'),
  end: $('walkin-range-end'),
  formError: $('walkin-range-error'),
  widgets: $('widget-admin'),
  status: $('status'),
};

const state = { me: null, walkin: null, timer: null, busy: false, admin: null };

// ---------------------------------------------------------------- session following app.js

function onViewChange() {
  const view = document.body.dataset.view;
  const signedIn = view === 'dashboard-view' || view === 'room-view' || view === 'walkin-view';
  if (!signedIn) {
    if (view === 'login-view') reset();
    return;
  }
  if (view !== 'walkin-view') el.view.hidden = true;
  if (!state.me) start();
}

new MutationObserver(onViewChange).observe(document.body, { attributes: true, attributeFilter: ['data-view'] });

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

function render(walkin) {
  state.walkin = walkin;
  const on = !!walkin.switch_on;
  const available = !!walkin.available_now;
  el.toggle.setAttribute('aria-pressed', String(on));
  el.toggle.dataset.available = String(available);
  el.toggleState.textContent = on ? 'on' : (available ? 'scheduled' : 'off');
  el.toggle.title = on
    ? 'You are shown as available for walk-ins. Click to switch off.'
    : (available
      ? 'You are available through your schedule. Click to also switch on by hand.'
      : 'You are not shown as available for walk-ins. Click to switch on.');
  el.summary.textContent = available
    ? (on ? 'You are available for walk-ins now (switched on).' : 'You are available for walk-ins now (scheduled).')
    : 'You are not available for walk-ins now.';
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
    announce(el.status, next ? 'Walk-in is on: you are shown in the walk-in widget.' : 'Walk-in is off.');
  } catch (err) {
    announce(el.status, 'The walk-in switch could not be changed. Try again.');
    showError(errorText(err));
  } finally {
    state.busy = false;
    el.toggle.removeAttribute('aria-busy');
  }
});

// ---------------------------------------------------------------- the page

el.pageBtn.addEventListener('click', () => {
  for (const id of ['dashboard-view', 'room-view']) {
    const v = document.getElementById(id);
    if (v && id === 'room-view' && !v.hidden) return; // never hide a running consultation
    if (v) v.hidden = true;
  }
  el.view.hidden = false;
  document.body.dataset.view = 'walkin-view';
  el.view.querySelector('h1').focus();
  if (state.me && state.me.role === 'organisation_admin') {
    el.widgets.hidden = false;
    if (!state.admin) state.admin = initWidgetAdmin();
    state.admin.load();
  } else {
    el.widgets.hidden = true;
  }
  refresh().catch((err) => showError(errorText(err)));
});

el.back.addEventListener('click', () => {
  el.view.hidden = true;
  const dash = document.getElementById('dashboard-view');
  if (dash) dash.hidden = false;
  document.body.dataset.view = 'dashboard-view';
});

function showError(text) {
  el.error.textContent = text || '';
  el.error.hidden = !text;
}

function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 0) return 'The server could not be reached.';
    if (err.message) return err.message;
    return `Something went wrong (${err.code}).`;
  }
  return 'Something went wrong.';
}

// ---------------------------------------------------------------- scheduled availability

function describe(r) {
  if (r.kind === 'weekly') return `Every ${WEEKDAYS[(r.weekday || 1) - 1]}, ${r.start}–${r.end}`;
  const d = new Date(`${r.date}T12:00:00`);
  const day = Number.isNaN(d.getTime()) ? r.date : d.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
  return `${day}, ${r.start}–${r.end}`;
}

function renderRanges(ranges) {
  const items = ranges.filter((r) => r && r.id).map((r) => {
    const text = describe(r);
    const del = h('button', { type: 'button', class: 'btn btn-quiet btn-small', 'aria-label': `Delete ${text}` }, 'Delete');
    del.addEventListener('click', async () => {
      del.disabled = true;
      try {
        render(await api(`/api/v1/walkin/me/ranges/${encodeURIComponent(r.id)}`, { method: 'DELETE' }));
        announce(el.status, 'Availability removed.');
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
  const body = { kind: el.kind.value, start: el.start.value, end: el.end.value };
  if (body.kind === 'weekly') body.weekday = Number(el.weekday.value);
  else body.date = el.date.value;
  let problem = '';
  if (!body.start || !body.end) problem = 'Enter a start and an end time.';
  else if (body.end <= body.start) problem = 'The end must be after the start.';
  else if (body.kind === 'once' && !body.date) problem = 'Choose a date.';
  if (problem) {
    el.formError.textContent = problem;
    el.formError.hidden = false;
    return;
  }
  try {
    render(await api('/api/v1/walkin/me/ranges', { method: 'POST', body }));
    announce(el.status, 'Availability added.');
  } catch (err) {
    el.formError.textContent = errorText(err);
    el.formError.hidden = false;
  }
});

el.tzSave.addEventListener('click', async () => {
  try {
    render(await api('/api/v1/walkin/me', { method: 'PUT', body: { time_zone: el.tz.value.trim() } }));
    showError('');
    announce(el.status, 'Time zone saved.');
  } catch (err) {
    showError(errorText(err));
  }
});

onViewChange();
