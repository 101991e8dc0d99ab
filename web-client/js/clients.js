// @ts-check
// The client list (issue #5; F137–F139, F142) in the staff app: a "Clients" button in the top
// bar opens a dialog with the organisation's clients, searchable by name. Each row has a chat
// button with that client's unread count (F139: the client-list balloon; it opens the
// conversation, or starts one between the caller and the client, F136) and "Conversations…":
// the client's channels the caller may see (F138), each with Open, Join for a colleague's
// channel with a client the caller treats too (F137), and for department and organisation
// admins whether the patient may chat between visits, with Allow / Stop (F142). The server
// decides who sees and may do what.
//
// Built in script (static markup only; names are set with textContent), so index.html needs
// nothing. The server checks every rule; the UI only hides what the caller may not do. Texts come
// from the language catalogues (`staff.clients.*`); fixed parts carry `data-i18n` (`tx`), rows
// are built afresh on every opening.

import { api } from './api.js';
import { h } from './dom.js';
import { editClient } from './client-register.js';
import { t, setText, errorText as apiErrorText } from './i18n.js';
import { tx } from './admin-common.js';

/** Rows shown at once; the search narrows the rest. */
const MAX_ROWS = 200;

/** @param {any} err an ApiError (or anything thrown) */
function errorText(err) {
  if (err && err.status === 403) return t('staff.clients.forbidden');
  if (err && err.status === 404) return t('staff.people.deleted_meanwhile');
  if (err && err.status === 422) return err.message ? apiErrorText(err) : t('staff.clients.not_possible');
  return err && err.message ? t('staff.guest.failed_reason', { reason: apiErrorText(err) }) : t('staff.guest.failed');
}

/** @param {any} entry a channel with its patient access (`GET /api/v1/chat/access`) */
function accessText(entry) {
  const state = t(entry.open_between_visits ? 'staff.clients.open_between_visits' : 'staff.clients.closed_between_visits');
  if (entry.patient_access === 'granted') return t('staff.clients.allowed_by_admin', { state });
  if (entry.patient_access === 'stopped') return t('staff.clients.stopped_by_admin', { state });
  return t('staff.clients.organisation_default', { state });
}

export class ClientList {
  /**
   * @param {{role: string}} me the signed-in staff member
   * @param {() => import('./chat.js').StaffChat | null} chat the staff chat, when connected
   */
  constructor(me, chat) {
    this.admin = me && (me.role === 'organisation_admin' || me.role === 'department_admin');
    this.chat = chat;
    /** @type {any[]} the client list (`GET /api/v1/clients`), read defensively */
    this.clients = [];
    /** matches in all pages */
    this.total = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.searchTimer = undefined;
    this.button = tx('button', 'staff.clients.title', { type: 'button', id: 'clients-btn', class: 'btn btn-quiet', 'aria-haspopup': 'dialog', onclick: () => this.open() });
    const right = document.querySelector('.topbar-right');
    right?.insertBefore(this.button, document.getElementById('walkin-toggle'));
    this.#build();
    document.body.append(this.dialog);
  }

  destroy() {
    this.button.remove();
    this.dialog.remove();
  }

  #build() {
    this.error = h('div', { id: 'clients-error', class: 'alert alert-error', role: 'alert', hidden: true });
    this.search = h('input', { id: 'clients-search', type: 'search', autocomplete: 'off', maxlength: 200 });
    // The register is searched on the server (name or client number), a page at a time.
    // The page already loaded is narrowed at once; the server's answer follows.
    this.search.addEventListener('input', () => {
      this.render();
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => this.load().catch(() => {}), 200);
    });
    this.count = h('p', { id: 'clients-count', class: 'hint', role: 'status', 'aria-live': 'polite' });
    this.list = h('ul', { id: 'clients-list', class: 'people-list clients-list', 'aria-label': t('staff.clients.title'), 'data-i18n-attr': 'aria-label:staff.clients.title' });
    this.dialog = h('dialog', { id: 'clients-dialog', class: 'dialog people-dialog', 'aria-labelledby': 'clients-title' },
      h('div', { class: 'chat-dialog-head' },
        tx('h2', 'staff.clients.title', { id: 'clients-title' }),
        tx('button', 'staff.close', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => this.dialog.close() })),
      this.error,
      h('div', { class: 'field' }, tx('label', 'staff.clients.find', { for: 'clients-search' }), this.search),
      this.count, this.list);
  }

  /** @param {string} text */
  #error(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  async open() {
    this.#error('');
    this.list.replaceChildren(); // fresh rows (chat counts) on every opening
    if (!this.dialog.open) this.dialog.showModal();
    try {
      await this.load();
    } catch (err) {
      this.#error(errorText(err));
      return;
    }
    this.search.focus();
  }

  /** Loads the first page of clients matching the search (`GET /api/v1/clients?q=`). */
  async load() {
    const q = this.search.value.trim();
    const data = await api(`/api/v1/clients?limit=${MAX_ROWS}&q=${encodeURIComponent(q)}`);
    if (q !== this.search.value.trim()) return; // a newer search is on its way
    this.clients = (data && data.clients) || [];
    this.total = (data && data.total) || this.clients.length;
    this.render();
  }

  render() {
    const q = this.search.value.trim().toLowerCase();
    const shown = this.clients.filter((c) => !q || (c.name || '').toLowerCase().includes(q) || (c.client_number || '').toLowerCase() === q);
    const total = shown.length < this.clients.length ? shown.length : Math.max(this.total || 0, shown.length);
    if (total > shown.length) setText(this.count, 'staff.clients.count_first', { total, shown: shown.length });
    else setText(this.count, 'staff.clients.count', { count: total });
    // Rows already shown are kept (an opened "Conversations…" stays open when the server's
    // answer to the search arrives).
    /** @type {Map<string, HTMLElement>} */
    const existing = new Map();
    for (const li of this.list.children) existing.set(/** @type {HTMLElement} */ (li).dataset.clientId || '', /** @type {HTMLElement} */ (li));
    this.list.replaceChildren(...shown.map((c) => existing.get(c.id) || this.#row(c)));
  }

  /** @param {any} c a client */
  #row(c) {
    const chat = this.chat();
    const access = h('div', { class: 'client-access', hidden: true });
    const accessBtn = h('button', {
      type: 'button',
      class: 'btn btn-quiet btn-small client-access-btn',
      'aria-expanded': 'false',
      onclick: () => this.#toggleAccess(c, accessBtn, access),
    }, t('staff.clients.conversations'), h('span', { class: 'visually-hidden' }, t('staff.clients.with_name', { name: c.name })));
    return h('li', { class: 'people-item client-item', dataset: { clientId: c.id } },
      h('span', { class: 'people-name' }, c.name),
      c.date_of_birth ? h('span', { class: 'people-meta' }, t('staff.clients.born', { date: c.date_of_birth })) : null,
      c.client_number ? h('span', { class: 'people-meta client-number' }, t('staff.clients.number', { number: c.client_number })) : null,
      h('span', { class: 'people-actions' }, chat ? chat.appointmentButton(c) : null, accessBtn,
        // F84: schedule.js listens and opens "New appointment" for this client.
        h('button', {
          type: 'button',
          class: 'btn btn-quiet btn-small',
          onclick: () => {
            this.dialog.close();
            document.dispatchEvent(new CustomEvent('schedule-appointment', { detail: { client: { id: c.id, name: c.name } } }));
          },
        }, t('staff.clients.schedule'), h('span', { class: 'visually-hidden' }, t('staff.clients.for_name', { name: c.name }))),
        h('button', {
          type: 'button',
          class: 'btn btn-quiet btn-small',
          onclick: () => editClient(c, {
            admin: !!this.admin,
            done: () => {
              this.list.replaceChildren(); // the row shows the saved fields
              this.load().catch((err) => this.#error(errorText(err)));
            },
          }),
        }, t('staff.clients.edit'), h('span', { class: 'visually-hidden' }, ` ${c.name}`))),
      access);
  }

  /** @param {any} client @param {HTMLButtonElement} button @param {HTMLElement} box */
  async #toggleAccess(client, button, box) {
    const open = box.hidden;
    box.hidden = !open;
    button.setAttribute('aria-expanded', String(open));
    if (open) await this.#loadAccess(client, box);
  }

  /** @param {any} client @param {HTMLElement} box */
  async #loadAccess(client, box) {
    box.replaceChildren(h('p', { class: 'hint' }, t('staff.loading')));
    let r;
    try {
      r = await api(`/api/v1/chat/access?client_id=${encodeURIComponent(client.id)}`);
    } catch (err) {
      box.replaceChildren(h('p', { class: 'field-error' }, errorText(err)));
      return;
    }
    const items = (r.channels || []).map((/** @type {any} */ e) => {
      const status = h('span', { class: 'client-access-state', dataset: { open: String(e.open_between_visits) } }, accessText(e));
      const set = async (/** @type {string} */ value) => {
        try {
          await api(`/api/v1/chat/channels/${encodeURIComponent(e.channel_id)}/patient-access`, { method: 'PUT', body: { patient_access: value } });
        } catch (err) {
          status.textContent = errorText(err);
          return;
        }
        await this.#loadAccess(client, box);
      };
      const chat = this.chat();
      const open = e.can_open && chat
        ? h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => chat.openDialog(client.id, e.channel_id) }, t('staff.sched.open'), h('span', { class: 'visually-hidden' }, t('staff.clients.the_conversation_with', { name: e.practitioner_name })))
        : null;
      const join = e.can_join && chat
        ? h('button', {
          type: 'button',
          class: 'btn btn-secondary btn-small',
          onclick: () => chat.join(e.channel_id, client.id).catch((err) => { status.textContent = errorText(err); }),
        }, t('staff.clients.join'), h('span', { class: 'visually-hidden' }, t('staff.clients.conversation_of', { name: e.practitioner_name })))
        : null;
      const actions = e.can_manage ? [
        e.open_between_visits
          ? h('button', { type: 'button', class: 'btn btn-secondary btn-small', onclick: () => set('stopped') }, t('staff.clients.stop'), h('span', { class: 'visually-hidden' }, t('staff.clients.chat_with', { name: e.practitioner_name })))
          : h('button', { type: 'button', class: 'btn btn-secondary btn-small', disabled: !r.continuous_chat, onclick: () => set('granted') }, t('staff.clients.allow'), h('span', { class: 'visually-hidden' }, t('staff.clients.chat_with', { name: e.practitioner_name }))),
        e.patient_access !== 'default'
          ? h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => set('default') }, t('staff.clients.use_default'))
          : null,
      ] : [];
      const who = e.own ? t('staff.clients.with_you')
        : t(e.joined ? 'staff.clients.with_joined' : 'staff.clients.with', { name: e.practitioner_name });
      return h('li', { dataset: { channelId: e.channel_id } },
        h('span', { class: 'people-name' }, t('staff.clients.who', { who })), status, ' ', open, join, ...actions);
    });
    const note = !this.admin ? null : !r.continuous_chat
      ? t('staff.clients.chat_only_during')
      : r.continuous_chat_by_grant
        ? t('staff.clients.chat_by_grant')
        : t('staff.clients.chat_unless_stopped');
    const list = items.length
      ? h('ul', { class: 'client-access-list' }, ...items)
      : h('p', { class: 'hint' }, t('staff.clients.no_conversations'));
    box.replaceChildren(...(note ? [h('p', { class: 'hint' }, note), list] : [list]));
  }
}
