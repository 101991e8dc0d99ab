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
// nothing. The server checks every rule; the UI only hides what the caller may not do.

import { api } from './api.js';
import { h } from './dom.js';
import { editClient } from './client-register.js';

/** Rows shown at once; the search narrows the rest. */
const MAX_ROWS = 200;

/** @param {any} err an ApiError (or anything thrown) */
function errorText(err) {
  if (err && err.status === 403) return 'Only the practitioner\'s department admin or an organisation admin may change that.';
  if (err && err.status === 404) return 'It was deleted meanwhile.';
  if (err && err.status === 422) return err.message || 'That is not possible now.';
  return `That did not work${err && err.message ? `: ${err.message}` : '.'} Try again.`;
}

/** @param {any} entry a channel with its patient access (`GET /api/v1/chat/access`) */
function accessText(entry) {
  const state = entry.open_between_visits ? 'open between visits' : 'closed between visits';
  if (entry.patient_access === 'granted') return `${state} (allowed by an admin)`;
  if (entry.patient_access === 'stopped') return `${state} (stopped by an admin)`;
  return `${state} (organisation default)`;
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
    this.button = h('button', { type: 'button', id: 'clients-btn', class: 'btn btn-quiet', 'aria-haspopup': 'dialog', onclick: () => this.open() }, 'Clients');
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
    this.list = h('ul', { id: 'clients-list', class: 'people-list clients-list', 'aria-label': 'Clients' });
    this.dialog = h('dialog', { id: 'clients-dialog', class: 'dialog people-dialog', 'aria-labelledby': 'clients-title' },
      h('div', { class: 'chat-dialog-head' },
        h('h2', { id: 'clients-title' }, 'Clients'),
        h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => this.dialog.close() }, 'Close')),
      this.error,
      h('div', { class: 'field' }, h('label', { for: 'clients-search' }, 'Find a client by name'), this.search),
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
    this.count.textContent = total > shown.length
      ? `${total} clients; showing the first ${shown.length}. Narrow the search.`
      : `${total} ${total === 1 ? 'client' : 'clients'}`;
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
    }, 'Conversations…', h('span', { class: 'visually-hidden' }, ` with ${c.name}`));
    return h('li', { class: 'people-item client-item', dataset: { clientId: c.id } },
      h('span', { class: 'people-name' }, c.name),
      c.date_of_birth ? h('span', { class: 'people-meta' }, `born ${c.date_of_birth}`) : null,
      c.client_number ? h('span', { class: 'people-meta client-number' }, `no. ${c.client_number}`) : null,
      h('span', { class: 'people-actions' }, chat ? chat.appointmentButton(c) : null, accessBtn,
        // F84: schedule.js listens and opens "New appointment" for this client.
        h('button', {
          type: 'button',
          class: 'btn btn-quiet btn-small',
          onclick: () => {
            this.dialog.close();
            document.dispatchEvent(new CustomEvent('schedule-appointment', { detail: { client: { id: c.id, name: c.name } } }));
          },
        }, 'Schedule appointment', h('span', { class: 'visually-hidden' }, ` for ${c.name}`)),
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
        }, 'Edit…', h('span', { class: 'visually-hidden' }, ` ${c.name}`))),
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
    box.replaceChildren(h('p', { class: 'hint' }, 'Loading…'));
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
        ? h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => chat.openDialog(client.id, e.channel_id) }, 'Open', h('span', { class: 'visually-hidden' }, ` the conversation with ${e.practitioner_name}`))
        : null;
      const join = e.can_join && chat
        ? h('button', {
          type: 'button',
          class: 'btn btn-secondary btn-small',
          onclick: () => chat.join(e.channel_id, client.id).catch((err) => { status.textContent = errorText(err); }),
        }, 'Join', h('span', { class: 'visually-hidden' }, ` ${e.practitioner_name}'s conversation`))
        : null;
      const actions = e.can_manage ? [
        e.open_between_visits
          ? h('button', { type: 'button', class: 'btn btn-secondary btn-small', onclick: () => set('stopped') }, 'Stop', h('span', { class: 'visually-hidden' }, ` chat with ${e.practitioner_name}`))
          : h('button', { type: 'button', class: 'btn btn-secondary btn-small', disabled: !r.continuous_chat, onclick: () => set('granted') }, 'Allow', h('span', { class: 'visually-hidden' }, ` chat with ${e.practitioner_name}`)),
        e.patient_access !== 'default'
          ? h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => set('default') }, 'Use the organisation default')
          : null,
      ] : [];
      const who = e.own ? 'With you' : `With ${e.practitioner_name}${e.joined ? ' (you joined)' : ''}`;
      return h('li', { dataset: { channelId: e.channel_id } },
        h('span', { class: 'people-name' }, `${who}: `), status, ' ', open, join, ...actions);
    });
    const note = !this.admin ? null : !r.continuous_chat
      ? 'This organisation offers chat only during consultations (Settings → Chat).'
      : r.continuous_chat_by_grant
        ? 'Patients chat between visits only where an admin allowed it.'
        : 'Patients chat between visits unless an admin stopped it.';
    const list = items.length
      ? h('ul', { class: 'client-access-list' }, ...items)
      : h('p', { class: 'hint' }, 'No conversations with this client that you can see yet. "Chat" starts one.');
    box.replaceChildren(...(note ? [h('p', { class: 'hint' }, note), list] : [list]));
  }
}
