// @ts-check
// One appointment's page in the staff app (issue #12): when, who, the personal message, the
// patient link with "Copy link", Reschedule (a new local date and time) and Cancel (asks once
// more). Opened from the Appointments page (schedule.js) and after booking. Times are shown and
// typed in the organisation's time zone.

import { api, ApiError } from './api.js';
import { h } from './dom.js';
import { navigate, registerView } from './nav.js';

/**
 * `2030-03-04T10:30` for `<input type=datetime-local>`: `at` as a wall-clock time in `timeZone`.
 * @param {Date} at
 * @param {string} timeZone
 */
export function localInputValue(at, timeZone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', {
    timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(at).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

/**
 * A start as people read it, in `timeZone` ("Mon, 4 Mar 2030, 10:30"; the weekday only when
 * `withWeekday`).
 * @param {string} iso
 * @param {string} timeZone
 * @param {boolean} [withWeekday]
 */
export function formatLocal(iso, timeZone, withWeekday = true) {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone, weekday: withWeekday ? 'short' : undefined, day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).format(new Date(iso));
}

const el = {
  error: h('div', { id: 'appointment-error', class: 'alert alert-error', role: 'alert', hidden: true }),
  status: h('p', { id: 'appointment-status', class: 'hint', role: 'status', 'aria-live': 'polite' }),
  when: h('p', { id: 'appointment-when', class: 'appointment-when' }),
  who: h('p', { id: 'appointment-who' }),
  state: h('p', { id: 'appointment-state' }),
  message: h('p', { id: 'appointment-message', class: 'hint' }),
  mail: h('p', { id: 'appointment-mail', class: 'hint' }),
  link: /** @type {HTMLInputElement} */ (h('input', { id: 'appointment-link', readonly: true, class: 'link-input' })),
  copy: h('button', { type: 'button', id: 'appointment-copy', class: 'btn btn-secondary btn-small' }, 'Copy link'),
  linkBox: h('div', { class: 'field' }),
  newStart: /** @type {HTMLInputElement} */ (h('input', { id: 'appointment-new-start', type: 'datetime-local', required: true })),
  reschedule: h('button', { type: 'submit', class: 'btn btn-primary btn-small' }, 'Reschedule'),
  rescheduleForm: /** @type {HTMLFormElement} */ (h('form', { id: 'appointment-reschedule', class: 'panel', novalidate: true })),
  cancel: h('button', { type: 'button', id: 'appointment-cancel', class: 'btn btn-secondary' }, 'Cancel appointment'),
  confirm: h('div', { id: 'appointment-confirm', class: 'alert', hidden: true }),
  back: h('button', { type: 'button', class: 'btn btn-quiet btn-small' }, 'Back to the appointments'),
};
el.linkBox.append(h('label', { for: 'appointment-link' }, 'Patient link'), el.link, el.copy);
el.rescheduleForm.append(
  h('h2', {}, 'Reschedule'),
  h('div', { class: 'field' }, h('label', { for: 'appointment-new-start' }, 'New date and time'), el.newStart),
  el.reschedule);
const yes = h('button', { type: 'button', class: 'btn btn-primary btn-small' }, 'Yes, cancel it');
const no = h('button', { type: 'button', class: 'btn btn-quiet btn-small' }, 'Keep it');
el.confirm.append(h('p', {}, 'Cancel this appointment? The patient link stops working.'), yes, no);

const view = h('section', { id: 'appointment-view', class: 'settings-page', 'aria-labelledby': 'appointment-title', hidden: true },
  h('div', { class: 'page-head' }, h('h1', { id: 'appointment-title', tabindex: '-1' }, 'Appointment'), el.back),
  el.error, el.status,
  h('div', { class: 'panel' }, el.when, el.who, el.state, el.message, el.mail, el.linkBox),
  el.rescheduleForm,
  h('div', {}, el.cancel, el.confirm));
document.getElementById('main')?.append(view);

/** @type {{ id: string | null, appointment: any, back: () => void, timeZone: () => string }} */
const state = { id: null, appointment: null, back: () => {}, timeZone: () => 'UTC' };

/**
 * Wires the page (once, from schedule.js).
 * @param {{ back: () => void, timeZone: () => string }} opts
 */
export function initAppointmentPage({ back, timeZone }) {
  state.back = back;
  state.timeZone = timeZone;
}

registerView('appointment-view');
el.back.addEventListener('click', () => state.back());

/**
 * Shows appointment `id`; `reschedule` focuses the new time, `cancel` asks to confirm.
 * @param {string} id
 * @param {{ reschedule?: boolean, cancel?: boolean }} [opts]
 */
export async function openAppointment(id, { reschedule = false, cancel = false } = {}) {
  state.id = id;
  // Never show the previous appointment while this one loads.
  view.dataset.loaded = 'false';
  for (const t of [el.when, el.who, el.state, el.message, el.mail]) t.textContent = '';
  el.link.value = '';
  el.linkBox.hidden = true;
  el.rescheduleForm.hidden = true;
  el.cancel.hidden = true;
  navigate('appointment-view');
  showError('');
  el.status.textContent = '';
  el.confirm.hidden = true;
  await load();
  if (reschedule) el.newStart.focus();
  if (cancel && !el.cancel.hidden) askCancel();
}

async function load() {
  let data;
  try {
    data = await api(`/api/v1/appointments/${encodeURIComponent(state.id || '')}`);
  } catch (err) {
    showError(errorText(err));
    return;
  }
  render(data);
}

/** @param {any} data `GET /api/v1/appointments/{id}` */
function render(data) {
  const a = data.appointment;
  const tz = data.time_zone || state.timeZone();
  state.appointment = a;
  el.when.textContent = `${formatLocal(a.starts_at, tz)} (${tz}), ${a.duration_minutes} minutes`;
  el.who.textContent = `${a.client.name} with ${a.practitioner.name}${a.waiting_room === 'department' ? ' (department waiting room)' : ''}`;
  el.state.textContent = a.status === 'scheduled' ? 'Scheduled' : a.status === 'cancelled' ? 'Cancelled' : 'Completed';
  el.state.dataset.status = a.status;
  el.message.textContent = a.personal_message ? `Message: ${a.personal_message}` : '';
  // Where the invitation went: a practitioner must know whether to send the link themselves.
  if (a.status === 'scheduled') {
    el.mail.textContent = data.mailed_to
      ? `Invitation e-mailed to ${data.mailed_to}, with a calendar invite; changes and the reminder go there too.`
      : 'This client has no e-mail address: copy the link and send it to them yourself.';
  }
  el.link.value = data.invitation_url || '';
  el.linkBox.hidden = !data.invitation_url || a.status !== 'scheduled';
  const scheduled = a.status === 'scheduled';
  el.rescheduleForm.hidden = !scheduled;
  el.cancel.hidden = !scheduled;
  el.newStart.value = localInputValue(new Date(a.starts_at), tz);
  view.dataset.appointmentId = a.id;
  view.dataset.loaded = 'true';
}

el.copy.addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(el.link.value);
    el.status.textContent = 'Link copied. Send it to the patient.';
  } catch {
    el.link.select();
    el.status.textContent = 'Select the link and copy it (Ctrl+C).';
  }
});

el.rescheduleForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError('');
  el.reschedule.disabled = true;
  try {
    const data = await api(`/api/v1/appointments/${encodeURIComponent(state.id || '')}/reschedule`, {
      method: 'POST', body: { local_start: el.newStart.value },
    });
    render(data);
    el.status.textContent = `Rescheduled to ${formatLocal(data.appointment.starts_at, data.time_zone || state.timeZone())}.`;
  } catch (err) {
    showError(errorText(err));
  } finally {
    el.reschedule.disabled = false;
  }
});

function askCancel() {
  el.confirm.hidden = false;
  yes.focus();
}
el.cancel.addEventListener('click', askCancel);
no.addEventListener('click', () => { el.confirm.hidden = true; });
yes.addEventListener('click', async () => {
  showError('');
  try {
    await api(`/api/v1/appointments/${encodeURIComponent(state.id || '')}/cancel`, { method: 'POST' });
    el.confirm.hidden = true;
    await load();
    el.status.textContent = 'Cancelled. The patient link no longer works.';
  } catch (err) {
    showError(errorText(err));
  }
});

/** @param {string} text */
function showError(text) {
  el.error.textContent = text;
  el.error.hidden = !text;
}

/** @param {unknown} err */
function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 401) return 'Your session has ended. Please sign in again.';
    if (err.status === 404) return 'This appointment does not exist, or you cannot see it.';
    return err.message || 'That did not work.';
  }
  return 'The server could not be reached. Check your connection and try again.';
}
