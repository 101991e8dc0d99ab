// @ts-check
// The client register's edit form in the staff app (issue #12; F67, F83): name, e-mail, phone,
// date of birth, the clinic's own client number and the language of the mails; Save
// (`PUT /api/v1/clients/{id}`) and, for admins, Delete (`DELETE /api/v1/clients/{id}`; refused
// while appointments or conversations refer to the client, with the server's reason). Opened
// from the client list (clients.js, "Edit…"). The server checks every rule and names the field.

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
const dialog = h('dialog', { id: 'client-edit-dialog', class: 'dialog', 'aria-labelledby': 'client-edit-title' },
  h('h2', { id: 'client-edit-title' }, 'Client'), f.form);
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
