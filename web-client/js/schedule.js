// @ts-check
// Scheduling in the staff app (issue #12; F66, F68, F74, F75, F84): the "Appointments" page
// (`schedule-view`) shows a day or a week, for everyone the caller sees or one practitioner or
// department, in the organisation's time zone; "New appointment" books one for a new or
// existing client, with a practitioner or a department's waiting room, a personal message and
// guests or a group; each row has Open, Reschedule and Cancel. The appointment's own page is
// appointment.js.
//
// Self-contained like walkin.js: it builds its markup in script, follows the staff app's views
// through nav.js (`followViews`) and registers its own view. The server checks every rule (and
// answers in words); the page shows what it says. Names are set with textContent only.

import { api, ApiError } from './api.js';
import { h } from './dom.js';
import { navigate, registerView, followViews, currentView } from './nav.js';
import { openAppointment, initAppointmentPage, formatLocal, localInputValue } from './appointment.js';
import { t, errorText as apiErrorText } from './i18n.js';
import { tx } from './admin-common.js';

const DURATIONS = [10, 15, 20, 30, 45, 60];

/**
 * `me`: `GET /api/v1/me`; `directory`: `GET /api/v1/directory`; `timeZone`: the organisation's.
 * @type {{ me: any, directory: any, timeZone: string, mode: 'day' | 'week', idempotencyKey: string }}
 */
const state = { me: null, directory: null, timeZone: 'UTC', mode: 'day', idempotencyKey: '' };

const pageBtn = tx('button', 'staff.sched.title', { type: 'button', id: 'schedule-page-btn', class: 'btn btn-quiet', hidden: true });
document.querySelector('.topbar-right')?.insertBefore(pageBtn, document.getElementById('walkin-toggle'));

const el = {
  error: h('div', { id: 'schedule-error', class: 'alert alert-error', role: 'alert', hidden: true }),
  status: h('p', { id: 'schedule-status', class: 'hint', role: 'status', 'aria-live': 'polite' }),
  mode: /** @type {HTMLSelectElement} */ (h('select', { id: 'schedule-mode' },
    tx('option', 'staff.day', { value: 'day' }), tx('option', 'staff.sched.week', { value: 'week' }))),
  date: /** @type {HTMLInputElement} */ (h('input', { id: 'schedule-date', type: 'date', required: true })),
  practitioner: /** @type {HTMLSelectElement} */ (h('select', { id: 'schedule-practitioner' })),
  department: /** @type {HTMLSelectElement} */ (h('select', { id: 'schedule-department' })),
  zone: h('p', { id: 'schedule-zone', class: 'hint' }),
  list: h('ul', { id: 'schedule-list', class: 'people-list schedule-list', 'aria-label': t('staff.sched.title'), 'data-i18n-attr': 'aria-label:staff.sched.title' }),
  empty: tx('p', 'staff.sched.empty', { id: 'schedule-empty', class: 'hint', hidden: true }),
  newBtn: tx('button', 'staff.sched.new', { type: 'button', id: 'schedule-new-btn', class: 'btn btn-primary' }),
};

const view = h('section', { id: 'schedule-view', class: 'settings-page schedule-page', 'aria-labelledby': 'schedule-title', hidden: true },
  h('div', { class: 'page-head' },
    tx('h1', 'staff.sched.title', { id: 'schedule-title', tabindex: '-1' }),
    tx('button', 'staff.back_to_the_waiting_room', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => navigate('dashboard-view', { focus: false }) })),
  el.error,
  h('div', { class: 'panel schedule-filters' },
    field('schedule-mode', 'staff.sched.show', el.mode),
    field('schedule-date', 'staff.date', el.date),
    field('schedule-practitioner', 'staff.practitioner', el.practitioner),
    field('schedule-department', 'staff.ann.department', el.department),
    el.newBtn),
  el.zone, el.status, el.empty, el.list);
document.getElementById('main')?.append(view);

/**
 * @param {string} id
 * @param {string} label a catalogue key
 * @param {HTMLElement} control
 */
function field(id, label, control) {
  return h('div', { class: 'field' }, tx('label', label, { for: id }), control);
}

// ---------------------------------------------------------------- the new-appointment dialog

const f = {
  form: /** @type {HTMLFormElement} */ (h('form', { id: 'appt-form', novalidate: true })),
  error: h('div', { id: 'appt-error', class: 'alert alert-error', role: 'alert', hidden: true }),
  existing: /** @type {HTMLInputElement} */ (h('input', { type: 'radio', name: 'appt-client-kind', id: 'appt-client-existing', value: 'existing', checked: true })),
  fresh: /** @type {HTMLInputElement} */ (h('input', { type: 'radio', name: 'appt-client-kind', id: 'appt-client-new', value: 'new' })),
  search: /** @type {HTMLInputElement} */ (h('input', { id: 'appt-client-search', type: 'search', autocomplete: 'off', maxlength: 200 })),
  client: /** @type {HTMLSelectElement} */ (h('select', { id: 'appt-client' })),
  name: /** @type {HTMLInputElement} */ (h('input', { id: 'appt-new-name', autocomplete: 'off', maxlength: 200 })),
  email: /** @type {HTMLInputElement} */ (h('input', { id: 'appt-new-email', type: 'email', autocomplete: 'off', maxlength: 254 })),
  phone: /** @type {HTMLInputElement} */ (h('input', { id: 'appt-new-phone', type: 'tel', autocomplete: 'off', maxlength: 32 })),
  number: /** @type {HTMLInputElement} */ (h('input', { id: 'appt-new-number', autocomplete: 'off', maxlength: 64 })),
  dob: /** @type {HTMLInputElement} */ (h('input', { id: 'appt-new-dob', type: 'date' })),
  language: /** @type {HTMLSelectElement} */ (h('select', { id: 'appt-new-language' },
    tx('option', 'staff.lang.en', { value: 'en' }), tx('option', 'staff.lang.nl', { value: 'nl' }), tx('option', 'staff.lang.de', { value: 'de' }))),
  with: /** @type {HTMLSelectElement} */ (h('select', { id: 'appt-with' })),
  start: /** @type {HTMLInputElement} */ (h('input', { id: 'appt-start', type: 'datetime-local', required: true })),
  duration: /** @type {HTMLSelectElement} */ (h('select', { id: 'appt-duration' }, ...DURATIONS.map((m) => h('option', { value: String(m), selected: m === 15 }, t('staff.quick.minutes', { count: m }))))),
  message: /** @type {HTMLTextAreaElement} */ (h('textarea', { id: 'appt-message', rows: 3, maxlength: 2000 })),
  guests: /** @type {HTMLInputElement} */ (h('input', { id: 'appt-guests', autocomplete: 'off', maxlength: 1000 })),
  group: /** @type {HTMLSelectElement} */ (h('select', { id: 'appt-group' })),
  submit: tx('button', 'staff.sched.book', { type: 'submit', class: 'btn btn-primary' }),
  existingBox: h('div'),
  newBox: h('div', { hidden: true }),
  startHint: h('p', { id: 'appt-start-hint', class: 'hint field-hint' }),
};
f.existingBox.append(field('appt-client-search', 'staff.sched.find_client', f.search), field('appt-client', 'staff.client', f.client));
f.newBox.append(
  field('appt-new-name', 'staff.profile.name', f.name), field('appt-new-email', 'staff.e_mail', f.email), field('appt-new-phone', 'staff.profile.phone', f.phone),
  field('appt-new-dob', 'staff.date_of_birth', f.dob), field('appt-new-number', 'staff.sched.client_number', f.number), field('appt-new-language', 'common.language', f.language));
f.start.setAttribute('aria-describedby', 'appt-start-hint');
f.form.append(
  f.error,
  h('fieldset', {}, tx('legend', 'staff.client'),
    h('label', { class: 'settings-check' }, f.existing, ' ', tx('span', 'staff.sched.existing_client')),
    h('label', { class: 'settings-check' }, f.fresh, ' ', tx('span', 'staff.sched.new_client')),
    f.existingBox, f.newBox),
  field('appt-with', 'staff.sched.with', f.with),
  h('div', { class: 'field' }, tx('label', 'staff.sched.date_time', { for: 'appt-start' }), f.start, f.startHint),
  field('appt-duration', 'staff.sched.duration', f.duration),
  field('appt-message', 'staff.sched.message', f.message),
  field('appt-guests', 'staff.sched.guests', f.guests),
  field('appt-group', 'staff.sched.group', f.group),
  h('div', { class: 'dialog-actions' },
    tx('button', 'common.cancel', { type: 'button', class: 'btn btn-quiet', onclick: () => dialog.close() }), f.submit));
const dialog = h('dialog', { id: 'appt-dialog', class: 'dialog', 'aria-labelledby': 'appt-title' },
  tx('h2', 'staff.sched.new', { id: 'appt-title' }), f.form);
document.body.append(dialog);

for (const r of [f.existing, f.fresh]) {
  r.addEventListener('change', () => {
    f.existingBox.hidden = !f.existing.checked;
    f.newBox.hidden = f.existing.checked;
  });
}
let searchTimer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);
f.search.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => loadClients(f.search.value).catch(() => {}), 200);
});

/**
 * Fills the client choice with the first matches of `q`.
 * @param {string} q
 * @param {string} [select] a client id to select
 */
async function loadClients(q, select) {
  const data = await api(`/api/v1/clients?limit=50&q=${encodeURIComponent(q.trim())}`);
  const clients = (data && data.clients) || [];
  f.client.replaceChildren(...clients.map((/** @type {any} */ c) => h('option', { value: c.id, selected: c.id === select },
    `${c.name}${c.client_number ? ` (${c.client_number})` : ''}${c.date_of_birth ? `, born ${c.date_of_birth}` : ''}`)));
}

/**
 * Opens "New appointment", optionally for a client (F84: "Schedule appointment" from the list).
 * @param {{ id: string, name: string } | null} [client]
 */
export async function openNewAppointment(client = null) {
  await ensureLoaded();
  f.form.reset();
  showFormError('');
  state.idempotencyKey = crypto.randomUUID(); // one booking per opened form, however often sent
  f.existingBox.hidden = false;
  f.newBox.hidden = true;
  f.search.value = client ? client.name : '';
  fillWith();
  fillGroups().catch(() => {});
  const soon = new Date(Date.now() + 30 * 60_000);
  f.start.value = localInputValue(soon, state.timeZone);
  f.startHint.textContent = t('staff.sched.in_zone', { zone: state.timeZone });
  if (!dialog.open) dialog.showModal();
  await loadClients(client ? client.name : '', client ? client.id : undefined).catch(() => {});
  if (client) f.client.value = client.id;
  f.search.focus();
}

function fillWith() {
  const d = state.directory || { practitioners: [], departments: [] };
  const me = state.me;
  const mine = me && me.role === 'practitioner';
  const people = (d.practitioners || []).filter((/** @type {any} */ p) => !mine || p.id === me.id);
  f.with.replaceChildren(
    ...people.map((/** @type {any} */ p) => h('option', { value: `p:${p.id}`, selected: me && p.id === me.id }, p.name)),
    ...(d.departments || []).map((/** @type {any} */ dep) => h('option', { value: `d:${dep.id}` }, t('staff.sched.department_room', { name: dep.name }))));
}

async function fillGroups() {
  const data = await api('/api/v1/participant-groups').catch(() => /** @type {any} */ (null));
  const groups = (data && data.groups) || [];
  f.group.replaceChildren(h('option', { value: '' }, t('staff.sched.no_group')),
    ...groups.map((/** @type {any} */ g) => h('option', { value: g.id }, g.name)));
}

f.form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showFormError('');
  f.submit.disabled = true;
  try {
    /** @type {Record<string, any>} */
    const body = {
      local_start: f.start.value,
      duration_minutes: Number(f.duration.value),
      personal_message: f.message.value,
      guests: [
        ...f.guests.value.split(',').map((n) => n.trim()).filter(Boolean).map((name) => ({ name })),
        ...(f.group.value ? [{ group_id: f.group.value }] : []),
      ],
    };
    if (f.fresh.checked) {
      // Created with the booking, in one transaction: a refused booking leaves no client behind.
      body.new_client = {
        name: f.name.value, email: f.email.value || null, phone: f.phone.value || null,
        date_of_birth: f.dob.value || null, client_number: f.number.value || null, language: f.language.value,
      };
    } else {
      if (!f.client.value) throw new ApiError(422, 'invalid_input', t('staff.sched.choose_client'));
      body.client_id = f.client.value;
    }
    const [kind, id] = f.with.value.split(':');
    if (kind === 'p') body.practitioner_id = id;
    if (kind === 'd') {
      body.department_id = id;
      body.waiting_room = 'department';
    }
    const booked = await api('/api/v1/appointments', { method: 'POST', body, headers: { 'Idempotency-Key': state.idempotencyKey } });
    dialog.close();
    el.status.textContent = t('staff.sched.booked', { when: formatLocal(booked.appointment.starts_at, state.timeZone) });
    await openAppointment(booked.appointment.id);
  } catch (err) {
    showFormError(errorText(err));
  } finally {
    f.submit.disabled = false;
  }
});

/** @param {string} text */
function showFormError(text) {
  f.error.textContent = text;
  f.error.hidden = !text;
}

/** @param {unknown} err */
function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 401) return t('staff.session_ended');
    if (err.status === 404) return t('staff.sched.not_found', { reason: apiErrorText(err) });
    return err.message ? apiErrorText(err) : t('staff.sched.did_not_work');
  }
  return t('staff.login.unreachable');
}

// ---------------------------------------------------------------- the overview

async function ensureLoaded() {
  if (!state.me) state.me = await api('/api/v1/me');
  if (!state.directory) state.directory = await api('/api/v1/directory').catch(() => /** @type {any} */ ({ practitioners: [], departments: [] }));
  const settings = await api('/api/v1/organisation/settings').catch(() => /** @type {any} */ (null));
  state.timeZone = (settings && settings.time_zone) || state.timeZone;
}

async function showPage() {
  el.error.hidden = true;
  try {
    await ensureLoaded();
  } catch (err) {
    el.error.textContent = errorText(err);
    el.error.hidden = false;
    return;
  }
  const d = state.directory;
  el.practitioner.replaceChildren(h('option', { value: '' }, t('staff.sched.everyone')),
    ...(d.practitioners || []).map((/** @type {any} */ p) => h('option', { value: p.id }, p.name)));
  el.department.replaceChildren(h('option', { value: '' }, t('staff.sched.all_departments')),
    ...(d.departments || []).map((/** @type {any} */ dep) => h('option', { value: dep.id }, dep.name)));
  if (!el.date.value) el.date.value = localInputValue(new Date(), state.timeZone).slice(0, 10);
  await refresh();
}

/** Reloads the list for the chosen period and filters. */
export async function refresh() {
  const params = new URLSearchParams();
  params.set(el.mode.value === 'week' ? 'week' : 'day', el.date.value);
  if (el.practitioner.value) params.set('practitioner_id', el.practitioner.value);
  if (el.department.value) params.set('department_id', el.department.value);
  let data;
  try {
    data = await api(`/api/v1/appointments?${params}`);
  } catch (err) {
    el.error.textContent = errorText(err);
    el.error.hidden = false;
    return;
  }
  state.timeZone = data.time_zone || state.timeZone;
  el.zone.textContent = t('staff.sched.times_in', { zone: state.timeZone });
  const items = data.appointments || [];
  el.empty.hidden = items.length > 0;
  el.list.replaceChildren(...items.map((/** @type {any} */ a) => row(a)));
}

/** @param {any} a an appointment */
function row(a) {
  const when = formatLocal(a.starts_at, state.timeZone, el.mode.value === 'week');
  const scheduled = a.status === 'scheduled';
  const who = a.client && a.client.name;
  return h('li', { class: 'people-item schedule-item', dataset: { appointmentId: a.id, status: a.status } },
    h('span', { class: 'schedule-time' }, when),
    h('span', { class: 'people-name' }, who),
    h('span', { class: 'people-meta' }, `${t('staff.sched.row_meta', { name: (a.practitioner && a.practitioner.name) || '', n: String(a.duration_minutes) })}${scheduled ? '' : ` (${a.status})`}`),
    h('span', { class: 'people-actions' },
      h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => openAppointment(a.id) }, t('staff.sched.open'), h('span', { class: 'visually-hidden' }, ` ${t('staff.sched.the_appointment_of', { name: who || '' })}`)),
      scheduled ? h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => openAppointment(a.id, { reschedule: true }) }, t('staff.sched.reschedule'), h('span', { class: 'visually-hidden' }, ` ${who}`)) : null,
      scheduled ? h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => openAppointment(a.id, { cancel: true }) }, t('common.cancel'), h('span', { class: 'visually-hidden' }, ` ${t('staff.sched.the_appointment_of', { name: who || '' })}`)) : null));
}

for (const c of [el.mode, el.date, el.practitioner, el.department]) c.addEventListener('change', () => refresh());
el.newBtn.addEventListener('click', () => openNewAppointment().catch((err) => { el.error.textContent = errorText(err); el.error.hidden = false; }));
pageBtn.addEventListener('click', () => {
  if (currentView() === 'room-view') return; // never hide a running consultation
  navigate('schedule-view');
});

registerView('schedule-view', { enter: () => { showPage(); } });
initAppointmentPage({ back: () => navigate('schedule-view'), timeZone: () => state.timeZone });

/** Shown while signed in (the views of the staff app), hidden after logout. */
followViews((v) => {
  if (v === 'login-view' || v === 'boot-view') {
    pageBtn.hidden = true;
    state.me = null;
    state.directory = null;
  } else {
    pageBtn.hidden = false;
  }
});

// "Schedule appointment" from the client list (F84): clients.js dispatches this event.
document.addEventListener('schedule-appointment', (ev) => {
  const detail = /** @type {CustomEvent} */ (ev).detail;
  openNewAppointment(detail && detail.client).catch(() => {});
});
