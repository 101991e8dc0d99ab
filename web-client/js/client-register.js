// @ts-check
// The client register's edit form in the staff app (issue #12; F67, F83): name, e-mail, phone,
// date of birth, the clinic's own client number and the language of the mails; Save
// (`PUT /api/v1/clients/{id}`) and, for admins, Delete (`DELETE /api/v1/clients/{id}`; refused
// while appointments or conversations refer to the client, with the server's reason). Opened
// from the client list (clients.js, "Edit…"). The server checks every rule and names the field.
// Below the form, "Communication" lists every mail sent to the client, newest first
// (`GET /api/v1/clients/{id}/communications`, F196); an entry the caller may read opens it on the
// "Sent mail" page (mail.js, through the document event `consultroom:open-mail`).

import { api, ApiError } from './api.js';
import { h } from './dom.js';

const f = {
  error: h('div', { id: 'client-edit-error', class: 'alert alert-error', role: 'alert', hidden: true }),
  name: /** @type {HTMLInputElement} */ (h('input', { id: 'client-edit-name', autocomplete: 'off', maxlength: 200, required: true })),
  email: /** @type {HTMLInputElement} */ (h('input', { id: 'client-edit-email', type: 'email', autocomplete: 'off', maxlength: 254 })),
  phone: /** @type {HTMLInputElement} */ (h('input', { id: 'client-edit-phone', type: 'tel', autocomplete: 'off', maxlength: 32 })),
  dob: /** @type {HTMLInputElement} */ (h('input', { id: 'client-edit-dob', type: 'date' })),
  number: /** @type {HTMLInputElement} */ (h('input', { id: 'client-edit-number', autocomplete: 'off', maxlength: 64 })),
  language: /** @type {HTMLSelectElement} */ (h('select', { id: 'client-edit-language' },
    h('option', { value: 'en' }, 'English'), h('option', { value: 'nl' }, 'Dutch'), h('option', { value: 'de' }, 'German'))),
  save: h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save client'),
  remove: h('button', { type: 'button', class: 'btn btn-secondary' }, 'Delete client'),
  form: /** @type {HTMLFormElement} */ (h('form', { id: 'client-edit-form', novalidate: true })),
};

/**
 * @param {string} id
 * @param {string} label
 * @param {HTMLElement} control
 */
function field(id, label, control) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), control);
}

f.form.append(f.error,
  field('client-edit-name', 'Name', f.name), field('client-edit-email', 'E-mail', f.email),
  field('client-edit-phone', 'Phone', f.phone), field('client-edit-dob', 'Date of birth', f.dob),
  field('client-edit-number', 'Client number', f.number), field('client-edit-language', 'Language of mails', f.language),
  h('div', { class: 'dialog-actions' },
    h('button', { type: 'button', class: 'btn btn-quiet', onclick: () => dialog.close() }, 'Close'), f.remove, f.save));
const comms = {
  list: h('ul', { class: 'client-communications' }),
  status: h('p', { class: 'hint', role: 'status' }),
};
const commsSection = h('section', { 'aria-labelledby': 'client-comms-title' },
  h('h3', { id: 'client-comms-title' }, 'Communication'), comms.status, comms.list);
const dialog = h('dialog', { id: 'client-edit-dialog', class: 'dialog', 'aria-labelledby': 'client-edit-title' },
  h('h2', { id: 'client-edit-title' }, 'Client'), f.form, commsSection);
document.body.append(dialog);

/** @type {{ client: any, done: () => void }} */
const state = { client: null, done: () => {} };

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
  if (!dialog.open) dialog.showModal();
  f.name.focus();
  void loadCommunications(client.id);
}

const KIND_LABEL = /** @type {Record<string, string>} */ ({
  appointment_invitation: 'Invitation',
  appointment_update: 'Appointment changed',
  appointment_cancellation: 'Cancellation',
  appointment_reminder: 'Reminder',
  staff_invitation: 'Staff invitation',
  password_reset: 'Password reset',
  test: 'Test',
});

/** @param {string} iso */
function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * Shows the client's mails, newest first (the newest 50).
 * @param {string} id
 */
async function loadCommunications(id) {
  comms.list.replaceChildren();
  comms.status.textContent = 'Loading…';
  try {
    const page = await api(`/api/v1/clients/${encodeURIComponent(id)}/communications?limit=50`);
    if (state.client?.id !== id) return; // another client was opened meanwhile
    comms.status.textContent = page.total === 0 ? 'No mail sent to this client yet.'
      : page.total > page.communications.length ? `The newest ${page.communications.length} of ${page.total} mails.` : '';
    for (const m of page.communications) comms.list.append(entry(m));
  } catch (err) {
    comms.status.textContent = err instanceof ApiError && err.status === 404
      ? 'This client was deleted meanwhile, or you cannot see it.'
      : 'The communication history could not be loaded.';
  }
}

/**
 * One mail of the history: when, what, subject and status; a button to read it when allowed.
 * @param {any} m
 */
function entry(m) {
  const text = `${when(m.sent_at || m.created_at)} · ${KIND_LABEL[m.kind] || m.kind} · ${m.subject || '(no subject)'} · ${m.status_text}`;
  const li = h('li', { dataset: { mailId: m.id, status: m.status } }, text);
  if (m.viewable) {
    li.append(' ', h('button', {
      type: 'button', class: 'btn btn-quiet btn-small', 'aria-label': `Open mail: ${m.subject || '(no subject)'}`,
      onclick: () => {
        dialog.close();
        document.dispatchEvent(new CustomEvent('consultroom:open-mail', { detail: m.id }));
      },
    }, 'Open'));
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
        // Kept as they are: the register's filing is changed through the API.
        department_id: c.department_id || null, practitioner_id: c.practitioner_id || null,
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
    if (err.status === 401) return 'Your session has ended. Please sign in again.';
    if (err.status === 404) return 'This client was deleted meanwhile, or you cannot see it.';
    return err.message || 'That did not work.';
  }
  return 'The server could not be reached. Check your connection and try again.';
}
