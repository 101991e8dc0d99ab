// "Add participant…" in the staff consultation room (issue #4, F116): invite a colleague, a family
// member or an interpreter to the appointment of the current consultation by link. The dialog
// asks for a name, creates the guest (POST /api/v1/appointments/{id}/guests), shows the link with
// a Copy button, lists the appointment's guests and revokes them. A guest who opens the link
// comes in while the client is in the consultation (and waits for the client otherwise); they
// then appear as one more tile of the room. Built in script (static markup only; names are set
// with textContent), so index.html needs nothing.

import { api } from './api.js';
import { h } from './dom.js';

function errorText(err) {
  if (err && err.status === 422) return 'Enter a name of at most 100 characters.';
  if (err && err.status === 409) return 'No more guests can be added to this appointment.';
  if (err && err.status === 404) return 'This appointment can no longer be found.';
  return `That did not work${err && err.message ? `: ${err.message}` : '.'} Try again.`;
}

export class GuestPanel {
  /** @param {HTMLElement} roomRoot the staff consultation room (its `.room-actions` bar gets the button) */
  constructor(roomRoot) {
    this.roomRoot = roomRoot;
    this.appointmentId = null;
    this.button = null;
    this.dialog = this.#buildDialog();
    document.body.append(this.dialog);
  }

  /** Offers "Add participant…" for `appointmentId` (none for a walk-in: no button). */
  start(appointmentId) {
    this.appointmentId = appointmentId || null;
    if (!this.button || !this.button.isConnected) {
      const bar = this.roomRoot.querySelector('.room-actions');
      if (!bar) return;
      this.button = h('button', {
        type: 'button',
        id: 'btn-add-guest',
        class: 'btn btn-toggle',
        'aria-haspopup': 'dialog',
        onclick: () => this.open(),
      }, 'Add participant…');
      const end = bar.querySelector('#btn-end');
      bar.insertBefore(this.button, end);
    }
    this.button.hidden = !this.appointmentId;
  }

  /** The consultation is over. */
  stop() {
    this.appointmentId = null;
    if (this.button) this.button.hidden = true;
    if (this.dialog.open) this.dialog.close();
  }

  async open() {
    if (!this.appointmentId) return;
    this.#setError('');
    this.el.link.hidden = true;
    this.el.name.value = '';
    if (!this.dialog.open) this.dialog.showModal();
    this.el.name.focus();
    await this.#refresh();
  }

  #buildDialog() {
    const name = h('input', { id: 'guest-name', name: 'name', maxlength: 100, required: true, autocomplete: 'off' });
    const error = h('div', { id: 'guest-error', class: 'alert alert-error', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', id: 'guest-submit', class: 'btn btn-primary' }, 'Create link');
    const url = h('input', { id: 'guest-url', readonly: true, 'aria-label': 'Link for the new participant' });
    const copy = h('button', { type: 'button', id: 'guest-copy', class: 'btn btn-light btn-small' }, 'Copy link');
    const copied = h('span', { id: 'guest-copied', role: 'status', 'aria-live': 'polite' });
    const linkFor = h('span', { id: 'guest-link-name' });
    const link = h('div', { id: 'guest-link', class: 'guest-link', hidden: true },
      h('p', {}, 'Send this link to ', linkFor, '. They come in while the client is in the consultation:'),
      h('p', { class: 'guest-link-row' }, url, copy, copied));
    const list = h('ul', { id: 'guest-list', class: 'guest-list', 'aria-label': 'Invited participants' });
    const close = h('button', { type: 'button', id: 'guest-close', class: 'btn btn-quiet' }, 'Close');
    const form = h('form', { id: 'guest-form', novalidate: true },
      h('h2', { id: 'guest-title' }, 'Add participant'),
      h('p', { id: 'guest-help' }, 'Invite a colleague, a family member or an interpreter. They get their own link and join this consultation while the client is in it.'),
      error,
      h('div', { class: 'field' }, h('label', { for: 'guest-name' }, 'Name of the participant'), name),
      h('div', { class: 'actions' }, submit, close),
      link,
      h('h3', {}, 'Invited'),
      list);
    const dialog = h('dialog', { id: 'guest-dialog', class: 'dialog', 'aria-labelledby': 'guest-title', 'aria-describedby': 'guest-help' }, form);
    this.el = { name, error, submit, url, copy, copied, link, linkFor, list };
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.#create();
    });
    close.addEventListener('click', () => dialog.close());
    copy.addEventListener('click', async () => {
      url.select();
      try {
        await navigator.clipboard.writeText(url.value);
        copied.textContent = 'Copied.';
      } catch {
        copied.textContent = 'Select the link and copy it.';
      }
    });
    return dialog;
  }

  #setError(text) {
    this.el.error.textContent = text;
    this.el.error.hidden = !text;
  }

  async #create() {
    const name = this.el.name.value.trim();
    if (!name || name.length > 100) {
      this.#setError('Enter the name of the participant (at most 100 characters).');
      this.el.name.focus();
      return;
    }
    this.#setError('');
    this.el.submit.disabled = true;
    try {
      const res = await api(`/api/v1/appointments/${encodeURIComponent(this.appointmentId)}/guests`, {
        method: 'POST',
        body: { name },
      });
      this.el.linkFor.textContent = res.guest.name;
      this.el.url.value = res.invitation_url;
      this.el.copied.textContent = '';
      this.el.link.hidden = false;
      this.el.name.value = '';
      this.el.url.focus();
      this.el.url.select();
      await this.#refresh();
    } catch (err) {
      this.#setError(errorText(err));
    } finally {
      this.el.submit.disabled = false;
    }
  }

  async #refresh() {
    const id = this.appointmentId;
    if (!id) return;
    try {
      const res = await api(`/api/v1/appointments/${encodeURIComponent(id)}/guests`);
      if (id !== this.appointmentId) return;
      const items = (res.guests || []).map((g) => h('li', { dataset: { guestId: g.id } },
        h('span', { class: 'guest-name' }, g.name), ' ',
        h('button', {
          type: 'button',
          class: 'btn btn-quiet btn-small',
          onclick: () => this.#revoke(g),
        }, 'Revoke link', h('span', { class: 'visually-hidden' }, ` of ${g.name}`))));
      this.el.list.replaceChildren(...(items.length ? items : [h('li', {}, 'Nobody yet.')]));
    } catch (err) {
      this.#setError(errorText(err));
    }
  }

  async #revoke(guest) {
    try {
      await api(`/api/v1/appointments/${encodeURIComponent(this.appointmentId)}/guests/${encodeURIComponent(guest.id)}`, { method: 'DELETE' });
      this.el.link.hidden = true;
      await this.#refresh();
    } catch (err) {
      this.#setError(errorText(err));
    }
  }
}
