// @ts-check
// "Add participant…" in the staff consultation room (issue #4, F116): invite a colleague, a family
// member or an interpreter to the appointment of the current consultation by link. The dialog
// asks for a name, creates the guest (POST /api/v1/appointments/{id}/guests), shows the link with
// a Copy button, lists the appointment's guests and revokes them. A guest who opens the link
// comes in while the client is in the consultation (and waits for the client otherwise); they
// then appear as one more tile of the room. The same dialog opens from the appointment list
// ("Guests…", to invite before the consultation), and can invite an external participant or a
// whole group of them from the organisation's records (F16, F17, F74). Built in script (static markup only; names are set
// with textContent), so index.html needs nothing.

import { api } from './api.js';
import { h } from './dom.js';
import { invitables } from './external.js';
import { t, errorText as apiErrorText } from './i18n.js';

/** @param {any} err an ApiError (or anything thrown) */
function errorText(err) {
  if (err && err.status === 422) return err.message && !/name/.test(err.message) ? apiErrorText(err) : t('staff.guest.name_rule');
  if (err && err.status === 409) return err.message ? apiErrorText(err) : t('staff.guest.no_more');
  if (err && err.status === 404) return t('staff.guest.gone');
  return err && err.message ? t('staff.guest.failed_reason', { reason: apiErrorText(err) }) : t('staff.guest.failed');
}

export class GuestPanel {
  /** @param {HTMLElement} roomRoot the staff consultation room (its `.room-actions` bar gets the button) */
  constructor(roomRoot) {
    this.roomRoot = roomRoot;
    this.appointmentId = null;
    /** The appointment the dialog is open for (the room's, or one from the list). */
    this.target = null;
    this.button = null;
    this.dialog = this.#buildDialog();
    document.body.append(this.dialog);
  }

  /** Offers "Add participant…" for `appointmentId` (none for a walk-in: no button). */
  /** @param {string | null} appointmentId */
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
      }, t('staff.guest.add_ellipsis'));
      const end = bar.querySelector('#btn-end');
      bar.insertBefore(this.button, end);
    }
    this.button.hidden = !this.appointmentId;
  }

  /** The consultation is over. */
  stop() {
    if (this.dialog.open && this.target === this.appointmentId) this.dialog.close();
    this.appointmentId = null;
    if (this.button) this.button.hidden = true;
  }

  /** Opens the dialog for `appointmentId` (default: the current consultation's). */
  async open(appointmentId = this.appointmentId) {
    if (!appointmentId) return;
    this.target = appointmentId;
    this.#setError('');
    this.el.link.hidden = true;
    this.el.name.value = '';
    this.el.pick.value = '';
    this.#pickChanged();
    if (!this.dialog.open) this.dialog.showModal();
    this.el.name.focus();
    await Promise.all([this.#refresh(), this.#loadPicker()]);
  }

  /** "Guests…" for a scheduled appointment in the appointment list. */
  /** @param {any} appointment an appointment row (`GET /api/v1/appointments`) */
  listButton(appointment) {
    if (!appointment || appointment.status !== 'scheduled') return null;
    const who = (appointment.client && appointment.client.name) || t('staff.guest.the_client');
    return h('button', {
      type: 'button',
      class: 'btn btn-quiet btn-small appt-guests',
      'aria-haspopup': 'dialog',
      onclick: () => this.open(appointment.id),
    }, t('staff.guest.guests_ellipsis'), h('span', { class: 'visually-hidden' }, ` ${t('staff.guest.of_appointment_with', { name: who })}`));
  }

  async #loadPicker() {
    let lists;
    try {
      lists = await invitables();
    } catch {
      lists = { groups: [], people: [] };
    }
    const keep = this.el.pick.value;
    const groups = lists.groups.filter((/** @type {any} */ g) => g.member_count > 0);
    this.el.pick.replaceChildren(
      h('option', { value: '', 'data-i18n': 'staff.guest.someone_else' }, t('staff.guest.someone_else')),
      groups.length ? h('optgroup', { label: t('staff.guest.whole_group') },
        ...groups.map((/** @type {any} */ g) => h('option', { value: `group:${g.id}` }, t('staff.guest.everyone_in', { name: g.name, n: String(g.member_count) })))) : null,
      lists.people.length ? h('optgroup', { label: t('staff.guest.from_records') },
        ...lists.people.map((/** @type {any} */ p) => h('option', { value: `person:${p.id}` }, p.name))) : null);
    this.el.pick.value = [...this.el.pick.options].some((o) => o.value === keep) ? keep : '';
    this.el.pickField.hidden = groups.length === 0 && lists.people.length === 0;
    this.#pickChanged();
  }

  #pickChanged() {
    const picked = this.el.pick.value !== '';
    this.el.nameField.hidden = picked;
    this.el.name.required = !picked;
  }

  #buildDialog() {
    const name = h('input', { id: 'guest-name', name: 'name', maxlength: 100, required: true, autocomplete: 'off' });
    const error = h('div', { id: 'guest-error', class: 'alert alert-error', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', id: 'guest-submit', class: 'btn btn-primary', 'data-i18n': 'staff.guest.create_link' }, t('staff.guest.create_link'));
    const url = h('input', { id: 'guest-url', readonly: true, 'aria-label': t('staff.guest.new_link_label') });
    const copy = h('button', { type: 'button', id: 'guest-copy', class: 'btn btn-light btn-small', 'data-i18n': 'staff.admin.copy_link' }, t('staff.admin.copy_link'));
    const copied = h('span', { id: 'guest-copied', role: 'status', 'aria-live': 'polite' });
    const linkFor = h('span', { id: 'guest-link-name' });
    const link = h('div', { id: 'guest-link', class: 'guest-link', hidden: true },
      h('p', {}, t('staff.guest.send_to'), ' ', linkFor, t('staff.guest.send_to_after')),
      h('p', { class: 'guest-link-row' }, url, copy, copied));
    const list = h('ul', { id: 'guest-list', class: 'guest-list', 'aria-label': t('staff.guest.invited_list') });
    const pick = h('select', { id: 'guest-pick', name: 'pick' });
    const pickField = h('div', { class: 'field', hidden: true }, h('label', { for: 'guest-pick', 'data-i18n': 'staff.guest.who' }, t('staff.guest.who')), pick);
    const nameField = h('div', { class: 'field' }, h('label', { for: 'guest-name', 'data-i18n': 'staff.guest.name' }, t('staff.guest.name')), name);
    const more = h('ul', { id: 'guest-more-links', class: 'guest-list' });
    const close = h('button', { type: 'button', id: 'guest-close', class: 'btn btn-quiet', 'data-i18n': 'staff.close' }, t('staff.close'));
    const form = h('form', { id: 'guest-form', novalidate: true },
      h('h2', { id: 'guest-title', 'data-i18n': 'staff.guest.add' }, t('staff.guest.add')),
      h('p', { id: 'guest-help', 'data-i18n': 'staff.guest.help' }, t('staff.guest.help')),
      error,
      pickField,
      nameField,
      h('div', { class: 'actions' }, submit, close),
      link,
      more,
      h('h3', { 'data-i18n': 'staff.guest.invited' }, t('staff.guest.invited')),
      list);
    const dialog = h('dialog', { id: 'guest-dialog', class: 'dialog', 'aria-labelledby': 'guest-title', 'aria-describedby': 'guest-help' }, form);
    this.el = { name, error, submit, url, copy, copied, link, linkFor, list, pick, pickField, nameField, more };
    pick.addEventListener('change', () => this.#pickChanged());
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.#create();
    });
    close.addEventListener('click', () => dialog.close());
    copy.addEventListener('click', async () => {
      url.select();
      try {
        await navigator.clipboard.writeText(url.value);
        copied.textContent = t('staff.guest.copied');
      } catch {
        copied.textContent = t('staff.guest.copy_by_hand');
      }
    });
    return dialog;
  }

  /** @param {string} text */
  #setError(text) {
    this.el.error.textContent = text;
    this.el.error.hidden = !text;
  }

  async #create() {
    const [kind, id] = this.el.pick.value.split(':');
    let body;
    if (kind === 'group') body = { group_id: id };
    else if (kind === 'person') body = { external_participant_id: id };
    else {
      const name = this.el.name.value.trim();
      if (!name || name.length > 100) {
        this.#setError(t('staff.guest.enter_name'));
        this.el.name.focus();
        return;
      }
      body = { name };
    }
    this.#setError('');
    this.el.submit.disabled = true;
    try {
      const res = await api(`/api/v1/appointments/${encodeURIComponent(this.target)}/guests`, {
        method: 'POST',
        body,
      });
      // One link (a name or a record), or one per member of a group.
      const made = res.invitations || [res];
      const [first, ...rest] = made;
      this.el.linkFor.textContent = first.guest.name;
      this.el.url.value = first.invitation_url;
      // A guest with an address on their record got the invitation by mail too.
      const mailed = made.filter((/** @type {any} */ r) => r.emailed).length;
      this.el.copied.textContent = mailed === 0 ? ''
        : made.length === 1 ? t('staff.guest.emailed', { name: first.guest.name })
          : t('staff.guest.emailed_some', { count: mailed });
      this.el.link.hidden = false;
      this.el.more.replaceChildren(...rest.map((/** @type {any} */ r) => h('li', {},
        h('span', { class: 'guest-name' }, r.guest.name), ': ',
        h('input', { readonly: true, value: r.invitation_url, 'aria-label': t('staff.guest.link_for', { name: r.guest.name }) }))));
      this.el.name.value = '';
      this.el.pick.value = '';
      this.#pickChanged();
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
    const id = this.target;
    if (!id) return;
    try {
      const res = await api(`/api/v1/appointments/${encodeURIComponent(id)}/guests`);
      if (id !== this.target) return;
      const items = (res.guests || []).map((/** @type {any} */ g) => h('li', { dataset: { guestId: g.id } },
        h('span', { class: 'guest-name' }, g.name), ' ',
        h('button', {
          type: 'button',
          class: 'btn btn-quiet btn-small',
          onclick: () => this.#revoke(g),
        }, t('staff.guest.revoke'), h('span', { class: 'visually-hidden' }, ` ${t('staff.guest.of_name', { name: g.name })}`))));
      this.el.list.replaceChildren(...(items.length ? items : [h('li', { 'data-i18n': 'staff.guest.nobody' }, t('staff.guest.nobody'))]));
    } catch (err) {
      this.#setError(errorText(err));
    }
  }

  /** @param {any} guest */
  async #revoke(guest) {
    try {
      await api(`/api/v1/appointments/${encodeURIComponent(this.target)}/guests/${encodeURIComponent(guest.id)}`, { method: 'DELETE' });
      this.el.link.hidden = true;
      this.el.more.replaceChildren();
      await this.#refresh();
    } catch (err) {
      this.#setError(errorText(err));
    }
  }
}
