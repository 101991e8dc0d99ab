// @ts-check
// Quick consult (F77): start a consultation at once, without the patient waiting first. The
// practitioner picks a client (or types a new name), the app books an appointment that starts
// now and force-starts it (F78), and the room shows the invitation link to send, so the patient
// comes straight in when they open it.

import { api, ApiError } from './api.js';
import { $ } from './dom.js';
import { t, errorText } from './i18n.js';

const DURATIONS = [10, 15, 20, 30];

/**
 * Wires the "Quick consult" button and dialog.
 * @param {object} opts
 * @param {(appointment: any, invitationUrl: string) => Promise<void>} opts.onCreated starts the
 *   consultation for the new appointment (app.js force-starts it)
 */
export function initQuickConsult({ onCreated }) {
  const el = {
    open: $('quick-consult-btn', HTMLButtonElement),
    dialog: $('quick-dialog', HTMLDialogElement),
    form: $('quick-form', HTMLFormElement),
    client: $('quick-client', HTMLInputElement),
    clientList: $('quick-client-list', HTMLDataListElement),
    duration: $('quick-duration', HTMLSelectElement),
    error: $('quick-error'),
    cancel: $('quick-cancel', HTMLButtonElement),
    submit: $('quick-submit', HTMLButtonElement),
  };
  /** @type {any[]} the practitioner's clients (`GET /api/v1/clients`) */
  let clients = [];

  el.duration.replaceChildren(...DURATIONS.map((m) => {
    const o = document.createElement('option');
    o.value = String(m);
    o.textContent = t('staff.quick.minutes', { count: m });
    if (m === 15) o.selected = true;
    return o;
  }));

  el.open.addEventListener('click', async () => {
    showError('');
    el.form.reset();
    el.duration.value = '15';
    if (!el.dialog.open) el.dialog.showModal();
    el.client.focus();
    try {
      const data = await api('/api/v1/clients?limit=200'); // the register is paged (default 50)
      clients = (data && data.clients) || [];
      el.clientList.replaceChildren(...clients.map((c) => {
        const o = document.createElement('option');
        o.value = c.name;
        return o;
      }));
    } catch {
      clients = []; // typing a new name still works
    }
  });

  el.cancel.addEventListener('click', () => el.dialog.close());

  el.form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = el.client.value.trim();
    if (!name) {
      showError(t('staff.quick.type_name'));
      el.client.focus();
      return;
    }
    el.submit.disabled = true;
    el.submit.setAttribute('aria-busy', 'true');
    showError('');
    try {
      let client = clients.find((c) => c.name.trim().toLowerCase() === name.toLowerCase());
      if (!client) {
        const created = await api('/api/v1/clients', { method: 'POST', body: { name } });
        client = created.client;
      }
      const booked = await api('/api/v1/appointments', {
        method: 'POST',
        body: {
          client_id: client.id,
          starts_at: new Date().toISOString(),
          duration_minutes: Number(el.duration.value) || 15,
        },
      });
      el.dialog.close();
      const appointment = { ...booked.appointment, client: booked.appointment?.client || { name: client.name } };
      await onCreated(appointment, booked.invitation_url);
    } catch (err) {
      showError(err instanceof ApiError
        ? t('staff.quick.failed', { reason: errorText(err) })
        : t('staff.login.unreachable'));
    } finally {
      el.submit.disabled = false;
      el.submit.removeAttribute('aria-busy');
    }
  });

  /** @param {string} text */
  function showError(text) {
    el.error.textContent = text || '';
    el.error.hidden = !text;
  }
}
