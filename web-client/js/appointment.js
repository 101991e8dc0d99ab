// @ts-check
// One appointment's page in the staff app (issue #12): when, who, the personal message, the
// patient link with "Copy link", Reschedule (a new local date and time) and Cancel (asks once
// more). Opened from the Appointments page (schedule.js) and after booking. Times are shown and
// typed in the organisation's time zone.

import { api, ApiError } from './api.js';
import { h } from './dom.js';
import { navigate, registerView } from './nav.js';
import { t, currentLanguage, errorText as apiErrorText } from './i18n.js';
import { tx } from './admin-common.js';

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
  // English keeps the day-month order it always had ("Tue 24 Nov 2026, 14:05").
  const lang = currentLanguage();
  return new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : lang, {
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
  copy: tx('button', 'staff.admin.copy_link', { type: 'button', id: 'appointment-copy', class: 'btn btn-secondary btn-small' }),
  linkBox: h('div', { class: 'field' }),
  newStart: /** @type {HTMLInputElement} */ (h('input', { id: 'appointment-new-start', type: 'datetime-local', required: true })),
  reschedule: tx('button', 'staff.sched.reschedule', { type: 'submit', class: 'btn btn-primary btn-small' }),
  rescheduleForm: /** @type {HTMLFormElement} */ (h('form', { id: 'appointment-reschedule', class: 'panel', novalidate: true })),
  cancel: tx('button', 'staff.appt.cancel', { type: 'button', id: 'appointment-cancel', class: 'btn btn-secondary' }),
  confirm: h('div', { id: 'appointment-confirm', class: 'alert', hidden: true }),
  back: tx('button', 'staff.appt.back', { type: 'button', class: 'btn btn-quiet btn-small' }),
};
el.linkBox.append(tx('label', 'staff.appt.patient_link', { for: 'appointment-link' }), el.link, el.copy);
el.rescheduleForm.append(
  tx('h2', 'staff.sched.reschedule'),
  h('div', { class: 'field' }, tx('label', 'staff.appt.new_start', { for: 'appointment-new-start' }), el.newStart),
  el.reschedule);
const yes = tx('button', 'staff.appt.yes_cancel', { type: 'button', class: 'btn btn-primary btn-small' });
const no = tx('button', 'staff.appt.keep', { type: 'button', class: 'btn btn-quiet btn-small' });
el.confirm.append(tx('p', 'staff.appt.confirm_cancel'), yes, no);

const view = h('section', { id: 'appointment-view', class: 'settings-page', 'aria-labelledby': 'appointment-title', hidden: true },
  h('div', { class: 'page-head' }, tx('h1', 'staff.appt.title', { id: 'appointment-title', tabindex: '-1' }), el.back),
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
  for (const node of [el.when, el.who, el.state, el.message, el.mail]) node.textContent = '';
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
  el.when.textContent = t('staff.appt.when', { when: formatLocal(a.starts_at, tz), zone: tz, count: a.duration_minutes });
  el.who.textContent = a.waiting_room === 'department'
    ? t('staff.appt.who_department', { client: a.client.name, name: a.practitioner.name })
    : t('staff.appt.who', { client: a.client.name, name: a.practitioner.name });
  el.state.textContent = t(a.status === 'scheduled' ? 'status.scheduled' : a.status === 'cancelled' ? 'status.cancelled' : 'status.completed');
  el.state.dataset.status = a.status;
  el.message.textContent = a.personal_message ? t('staff.appt.message', { text: a.personal_message }) : '';
  // Where the invitation went: a practitioner must know whether to send the link themselves.
  if (a.status === 'scheduled') {
    el.mail.textContent = data.mailed_to
      ? t('staff.appt.mailed', { email: data.mailed_to })
      : t('staff.appt.no_email');
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
    el.status.textContent = t('staff.appt.copied');
  } catch {
    el.link.select();
    el.status.textContent = t('staff.appt.copy_by_hand');
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
    el.status.textContent = t('staff.appt.rescheduled', { when: formatLocal(data.appointment.starts_at, data.time_zone || state.timeZone()) });
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
    el.status.textContent = t('staff.appt.cancelled');
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
    if (err.status === 401) return t('staff.session_ended');
    if (err.status === 404) return t('staff.appt.not_found');
    return err.message ? apiErrorText(err) : t('staff.sched.did_not_work');
  }
  return t('staff.login.unreachable');
}
