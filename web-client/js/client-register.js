// @ts-check
// The client register's edit form in the staff app (issue #12; F67, F83): name, e-mail, phone,
// date of birth, the clinic's own client number, the language of the mails and, for admins, the
// department and practitioner the client is filed with (what the segregation settings F6–F9
// decide visibility by; from `GET /api/v1/directory`); Save
// (`PUT /api/v1/clients/{id}`) and, for admins, Delete (`DELETE /api/v1/clients/{id}`; refused
// while appointments or conversations refer to the client, with the server's reason). Opened
// from the client list (clients.js, "Edit…"). The server checks every rule and names the field.
// Below the form, "Communication" lists every mail sent to the client, newest first
// (`GET /api/v1/clients/{id}/communications`, F196); an entry the caller may read opens it on the
// "Sent mail" page (mail.js, through the document event `consultroom:open-mail`). Below that,
// the client's patients and timeline (client-records.js, issue #15). Texts come from the language
// catalogues (`staff.register.*` and shared staff keys); the form's fixed parts carry `data-i18n`.

import { api, ApiError } from './api.js';
import { h } from './dom.js';
import { recordsSection, showRecords } from './client-records.js';
import { t, formatDate, errorText as apiErrorText } from './i18n.js';
import { tx } from './admin-common.js';

const f = {
  error: h('div', { id: 'client-edit-error', class: 'alert alert-error', role: 'alert', hidden: true }),
  name: /** @type {HTMLInputElement} */ (h('input', { id: 'client-edit-name', autocomplete: 'off', maxlength: 200, required: true })),
  email: /** @type {HTMLInputElement} */ (h('input', { id: 'client-edit-email', type: 'email', autocomplete: 'off', maxlength: 254 })),
  phone: /** @type {HTMLInputElement} */ (h('input', { id: 'client-edit-phone', type: 'tel', autocomplete: 'off', maxlength: 32 })),
  dob: /** @type {HTMLInputElement} */ (h('input', { id: 'client-edit-dob', type: 'date' })),
  number: /** @type {HTMLInputElement} */ (h('input', { id: 'client-edit-number', autocomplete: 'off', maxlength: 64 })),
  language: /** @type {HTMLSelectElement} */ (h('select', { id: 'client-edit-language' },
    tx('option', 'staff.lang.en', { value: 'en' }), tx('option', 'staff.lang.nl', { value: 'nl' }), tx('option', 'staff.lang.de', { value: 'de' }))),
  department: /** @type {HTMLSelectElement} */ (h('select', { id: 'client-edit-department' })),
  practitioner: /** @type {HTMLSelectElement} */ (h('select', { id: 'client-edit-practitioner' })),
  filing: h('div', { id: 'client-edit-filing' }),
  save: tx('button', 'staff.register.save', { type: 'submit', class: 'btn btn-primary' }),
  remove: tx('button', 'staff.register.delete', { type: 'button', class: 'btn btn-secondary' }),
  form: /** @type {HTMLFormElement} */ (h('form', { id: 'client-edit-form', novalidate: true })),
};

/**
 * @param {string} id
 * @param {string} label a catalogue key
 * @param {HTMLElement} control
 */
function field(id, label, control) {
  return h('div', { class: 'field' }, tx('label', label, { for: id }), control);
}

f.form.append(f.error,
  field('client-edit-name', 'staff.profile.name', f.name), field('client-edit-email', 'staff.e_mail', f.email),
  field('client-edit-phone', 'staff.profile.phone', f.phone), field('client-edit-dob', 'staff.date_of_birth', f.dob),
  field('client-edit-number', 'staff.sched.client_number', f.number), field('client-edit-language', 'staff.register.language', f.language),
  f.filing,
  h('div', { class: 'dialog-actions' },
    tx('button', 'staff.close', { type: 'button', class: 'btn btn-quiet', onclick: () => dialog.close() }), f.remove, f.save));
f.filing.append(
  field('client-edit-department', 'staff.ann.department', f.department),
  field('client-edit-practitioner', 'staff.practitioner', f.practitioner),
  tx('p', 'staff.register.filing_hint', { class: 'hint field-hint' }));

/** @type {Promise<any> | null} the organisation's directory, loaded once */
let directory = null;

/**
 * Fills the filing selects from the directory, with the client's current values chosen.
 * @param {any} client
 */
async function fillFiling(client) {
  directory = directory || api('/api/v1/directory').catch(() => { directory = null; return /** @type {any} */ ({ practitioners: [], departments: [] }); });
  const d = await directory;
  if (state.client !== client) return;
  f.department.replaceChildren(tx('option', 'staff.admin.no_department', { value: '' }),
    ...(d.departments || []).map((/** @type {any} */ x) => h('option', { value: x.id }, x.name)));
  f.practitioner.replaceChildren(tx('option', 'staff.register.no_practitioner', { value: '' }),
    ...(d.practitioners || []).map((/** @type {any} */ x) => h('option', { value: x.id }, x.name)));
  f.department.value = client.department_id || '';
  f.practitioner.value = client.practitioner_id || '';
}

const comms = {
  list: h('ul', { class: 'client-communications' }),
  status: h('p', { class: 'hint', role: 'status' }),
};
const commsSection = h('section', { 'aria-labelledby': 'client-comms-title' },
  tx('h3', 'staff.register.communication', { id: 'client-comms-title' }), comms.status, comms.list);
const dialog = h('dialog', { id: 'client-edit-dialog', class: 'dialog', 'aria-labelledby': 'client-edit-title' },
  tx('h2', 'staff.client', { id: 'client-edit-title' }), f.form, commsSection, recordsSection);
document.body.append(dialog);

/** @type {{ client: any, admin: boolean, done: () => void }} */
const state = { client: null, admin: false, done: () => {} };

/**
 * Opens the form for `client` (a row of `GET /api/v1/clients`); `done` runs after a save or a
 * delete (the list reloads).
 * @param {any} client
 * @param {{ admin: boolean, done: () => void }} opts
 */
export function editClient(client, { admin, done }) {
  state.client = client;
  state.done = done;
  showError('');
  f.name.value = client.name || '';
  f.email.value = client.email || '';
  f.phone.value = client.phone || '';
  f.dob.value = client.date_of_birth || '';
  f.number.value = client.client_number || '';
  f.language.value = client.language || 'en';
  f.remove.hidden = !admin;
  // Filing is an admin's decision (a practitioner's clients are filed with them on creation).
  f.filing.hidden = !admin;
  state.admin = admin;
  if (admin) void fillFiling(client);
  if (!dialog.open) dialog.showModal();
  f.name.focus();
  void loadCommunications(client.id);
  void showRecords(client);
}

/** Catalogue keys of the mail kinds (the same words as "Sent mail"). */
const KIND_LABEL = /** @type {Record<string, string>} */ ({
  appointment_invitation: 'staff.mail.kind.appointment_invitation',
  appointment_update: 'staff.mail.kind.appointment_update',
  appointment_cancellation: 'staff.mail.kind.appointment_cancellation',
  appointment_reminder: 'staff.mail.kind.appointment_reminder',
  staff_invitation: 'staff.mail.kind.staff_invitation',
  password_reset: 'staff.mail.kind.password_reset',
  test: 'staff.mail.kind.test',
});

/** @param {string} iso */
function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : formatDate(d, { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * Shows the client's mails, newest first (the newest 50).
 * @param {string} id
 */
async function loadCommunications(id) {
  comms.list.replaceChildren();
  comms.status.textContent = t('staff.loading');
  try {
    const page = await api(`/api/v1/clients/${encodeURIComponent(id)}/communications?limit=50`);
    if (state.client?.id !== id) return; // another client was opened meanwhile
    comms.status.textContent = page.total === 0 ? t('staff.register.no_mail')
      : page.total > page.communications.length ? t('staff.register.newest_mails', { shown: page.communications.length, total: page.total }) : '';
    for (const m of page.communications) comms.list.append(entry(m));
  } catch (err) {
    comms.status.textContent = err instanceof ApiError && err.status === 404
      ? t('staff.register.gone')
      : t('staff.register.comms_failed');
  }
}

/**
 * One mail of the history: when, what, subject and status; a button to read it when allowed.
 * @param {any} m
 */
function entry(m) {
  const kind = KIND_LABEL[m.kind] ? t(KIND_LABEL[m.kind]) : m.kind;
  const text = `${when(m.sent_at || m.created_at)} · ${kind} · ${m.subject || t('staff.mail.no_subject')} · ${m.status_text}`;
  const li = h('li', { dataset: { mailId: m.id, status: m.status } }, text);
  if (m.viewable) {
    li.append(' ', h('button', {
      type: 'button', class: 'btn btn-quiet btn-small', 'aria-label': t('staff.register.open_mail', { subject: m.subject || t('staff.mail.no_subject') }),
      onclick: () => {
        dialog.close();
        document.dispatchEvent(new CustomEvent('consultroom:open-mail', { detail: m.id }));
      },
    }, t('staff.sched.open')));
  }
  return li;
}

f.form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError('');
  const c = state.client;
  try {
    await api(`/api/v1/clients/${encodeURIComponent(c.id)}`, {
      method: 'PUT',
      body: {
        name: f.name.value, email: f.email.value || null, phone: f.phone.value || null,
        date_of_birth: f.dob.value || null, client_number: f.number.value || null, language: f.language.value,
        // Admins file the client; for others the filing is kept as it is.
        department_id: state.admin ? f.department.value || null : c.department_id || null,
        practitioner_id: state.admin ? f.practitioner.value || null : c.practitioner_id || null,
      },
    });
    dialog.close();
    state.done();
  } catch (err) {
    showError(errorText(err));
  }
});

f.remove.addEventListener('click', async () => {
  showError('');
  try {
    await api(`/api/v1/clients/${encodeURIComponent(state.client.id)}`, { method: 'DELETE' });
    dialog.close();
    state.done();
  } catch (err) {
    showError(errorText(err));
  }
});

/** @param {string} text */
function showError(text) {
  f.error.textContent = text;
  f.error.hidden = !text;
}

/** @param {unknown} err */
function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 401) return t('staff.session_ended');
    if (err.status === 404) return t('staff.register.gone');
    return err.message ? apiErrorText(err) : t('staff.sched.did_not_work');
  }
  return t('staff.login.unreachable');
}
