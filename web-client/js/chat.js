// @ts-check
// Chat channels (issue #5; docs/protocol.md `chat_*`): one practitioner and one client per
// channel. Used by the staff app (Messages dialog, unread badge in the top bar, a chat button on
// appointments) and the patient page (a chat panel while waiting and in the consultation, and a
// chat-only connection from the invitation link outside its window, F146).
//
// Delivery: every message gets a client_msg_id (a UUID) before it is sent and stays in the
// outbox until its `chat_ack`; after a reconnect the outbox is sent again with the same ids
// (the server stores each once) and every open channel asks for what it missed with
// `chat_sync {after_seq}`. Messages are kept by seq, so nothing shows twice.
// Text is only ever inserted with textContent; links (http/https only) become <a> elements
// with rel="noopener noreferrer". Message texts are never logged.

import { api } from './api.js';
import { h } from './dom.js';
import { SignallingClient, connectWithRetry } from './signalling.js';
import { t, formatTime, errorText, setText } from './i18n.js';

const MAX_TEXT = 4000;
const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;

/** @typedef {import('./signalling.js').SignallingClient} SignallingClient_ */
/** @typedef {import('./protocol.js').ChatChannelInfo} ChatChannelInfo */
/**
 * A message as the chat keeps it: a stored one (`ChatMessageInfo`), our own just acknowledged
 * (`mine`), or one still in the outbox (`pending`, no seq yet).
 * @typedef {Partial<import('./protocol.js').ChatMessageInfo> & { channel_id: string, text: string,
 *   mine?: boolean, pending?: boolean }} ChatEntry
 */

/**
 * Text with clickable http(s) links, as DOM nodes (never HTML).
 * @param {string} text
 */
export function linkify(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    // Trailing punctuation is more likely the sentence's than the link's.
    const raw = m[0].replace(/[.,;:!?)\]]+$/, '');
    let url = null;
    try {
      url = new URL(raw);
    } catch { /* not a URL after all */ }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) continue;
    frag.append(document.createTextNode(text.slice(last, m.index)));
    frag.append(h('a', { href: url.href, target: '_blank', rel: 'noopener noreferrer' }, raw));
    last = m.index + raw.length;
  }
  frag.append(document.createTextNode(text.slice(last)));
  return frag;
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

/** @param {string | undefined} iso */
function timeOf(iso) {
  return formatTime(iso);
}

/**
 * The protocol side: channels, messages by seq, the outbox, and catching up after reconnects.
 * Views subscribe with `onChange`.
 */
export class ChatSession {
  /** @param {{ mine: (m: ChatEntry) => boolean }} opts */
  constructor({ mine }) {
    /** (message) => true when the message is the caller's own. */
    this.mine = mine;
    /** @type {SignallingClient_ | null} */
    this.signalling = null;
    /** @type {Map<string, ChatChannelInfo>} channel_id → info from chat_channel_list (+ unread) */
    this.channels = new Map();
    /** @type {Map<string, Map<number, ChatEntry>>} channel_id → Map(seq → message) */
    this.messages = new Map();
    /** @type {Set<string>} */
    this.opened = new Set();
    /** @type {Map<string, { channel_id: string, text: string }>} client_msg_id → unsent message */
    this.outbox = new Map();
    /** @type {Set<(channelId: string | null) => void>} */
    this.listeners = new Set();
    /** @type {string | null} reason text when the server refuses chat */
    this.unavailable = null;
    /** @type {string | null} why the last message could not be sent */
    this.failed = null;
    /** @type {import('./protocol.js').ChatSender | undefined} set by the owner */
    this.selfKind = undefined;
    /** @type {((channelId: string) => boolean) | undefined} set by the owner: the channel is on screen */
    this.isVisible = undefined;
  }

  /** @param {(channelId: string | null) => void} f */
  onChange(f) {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /** @param {string | null} channelId */
  #changed(channelId) {
    for (const f of this.listeners) f(channelId);
  }

  get totalUnread() {
    let n = 0;
    for (const c of this.channels.values()) n += c.unread || 0;
    return n;
  }

  /** After every (re)connect: list channels, catch up on open ones, resend the outbox. */
  /** @param {SignallingClient_} signalling */
  async connected(signalling) {
    this.signalling = signalling;
    await this.refresh();
    for (const id of this.opened) await this.#sync(id).catch(() => {});
    for (const [cid, m] of this.outbox) this.#send(cid, m);
  }

  async refresh() {
    if (!this.signalling?.isOpen) return;
    try {
      const r = await this.signalling.request({ type: 'chat_channels' });
      this.unavailable = null;
      // The server lists the most recently active first.
      this.channels = new Map((r.channels || []).map((/** @type {ChatChannelInfo} */ c) => [c.channel_id, c]));
    } catch (e) {
      this.unavailable = e.code === 'forbidden' ? errorText(e, 'chat.unavailable') : this.unavailable;
    }
    this.#changed(null);
  }

  /** @param {string} channelId */
  lastSeq(channelId) {
    const msgs = this.messages.get(channelId);
    let max = 0;
    if (msgs) for (const s of msgs.keys()) max = Math.max(max, s);
    return max;
  }

  /** Opens a channel: loads what is missing and receives its messages live from now on. */
  /** @param {string} channelId */
  async open(channelId) {
    this.opened.add(channelId);
    await this.#sync(channelId);
    this.markRead(channelId);
  }

  /** @param {string} channelId */
  async #sync(channelId) {
    if (!this.signalling?.isOpen) return;
    let after = this.lastSeq(channelId);
    for (let page = 0; page < 50; page += 1) {
      const r = await this.signalling.request({ type: 'chat_sync', channel_id: channelId, after_seq: after, limit: 200 });
      this.#clearThrough(channelId, r.cleared_through_seq || 0);
      for (const m of r.messages || []) this.#add(m);
      after = this.lastSeq(channelId);
      if (!r.has_more) break;
    }
    this.#changed(channelId);
  }

  /** @param {ChatEntry} m */
  #add(m) {
    if (!this.messages.has(m.channel_id)) this.messages.set(m.channel_id, new Map());
    this.messages.get(m.channel_id).set(m.seq, m);
    this.outbox.delete(m.client_msg_id && this.mine(m) ? m.client_msg_id : '');
  }

  /**
   * @param {string} channelId
   * @param {number} through
   */
  #clearThrough(channelId, through) {
    const msgs = this.messages.get(channelId);
    if (!msgs) return;
    for (const s of [...msgs.keys()]) if (s <= through) msgs.delete(s);
  }

  /** Queues a message; it is sent now if connected, or after the next reconnect. */
  /**
   * @param {string} channelId
   * @param {string} text
   */
  send(channelId, text) {
    const t = text.trim();
    if (!t) return null;
    const cid = uuid();
    this.outbox.set(cid, { channel_id: channelId, text: t.slice(0, MAX_TEXT) });
    this.#send(cid, this.outbox.get(cid));
    this.#changed(channelId);
    return cid;
  }

  /**
   * @param {string} cid
   * @param {{ channel_id: string, text: string }} m
   */
  #send(cid, m) {
    if (!this.signalling?.isOpen) return;
    this.signalling
      .request({ type: 'chat_send', channel_id: m.channel_id, client_msg_id: cid, text: m.text })
      .then((ack) => {
        this.outbox.delete(cid);
        this.#add({
          channel_id: m.channel_id, seq: ack.seq, text: m.text, client_msg_id: cid, sent_at: ack.sent_at,
          sender: this.selfKind, sender_name: t('chat.you'), mine: true,
        });
        this.#changed(m.channel_id);
      })
      .catch((e) => {
        // Refused for good (settings, bounds): drop it and say why; otherwise keep it for a resend.
        if (['forbidden', 'invalid_message', 'not_found'].includes(e.code)) {
          this.outbox.delete(cid);
          this.failed = errorText(e, 'chat.send_failed');
          this.#changed(m.channel_id);
        }
      });
  }

  /** @param {string} channelId */
  markRead(channelId) {
    const seq = this.lastSeq(channelId);
    const c = this.channels.get(channelId);
    if (c) c.unread = 0;
    this.#changed(channelId);
    if (seq > 0) this.signalling?.request({ type: 'chat_read', channel_id: channelId, seq }).catch(() => {});
  }

  /**
   * Pushed frames; returns true when consumed.
   * @param {import('./protocol.js').ServerMessage} msg
   */
  handle(msg) {
    switch (msg.type) {
      case 'chat_message': {
        const m = msg.message;
        if (!m) return true;
        this.#add(m);
        const c = this.channels.get(m.channel_id);
        if (c && !this.mine(m)) {
          if (this.isVisible?.(m.channel_id)) this.markRead(m.channel_id);
          else c.unread = (c.unread || 0) + 1;
        }
        this.#changed(m.channel_id);
        return true;
      }
      case 'chat_activity': {
        const c = this.channels.get(msg.channel_id);
        if (c) c.unread = (c.unread || 0) + 1;
        else this.refresh();
        this.#changed(msg.channel_id);
        return true;
      }
      case 'chat_cleared':
        this.#clearThrough(msg.channel_id, msg.through_seq);
        this.#changed(msg.channel_id);
        return true;
      case 'chat_channel_list':
      case 'chat_history':
      case 'chat_ack':
        return true;
      default:
        return false;
    }
  }

  /**
   * Messages of a channel in seq order, then the unacknowledged ones.
   * @param {string} channelId
   * @returns {ChatEntry[]}
   */
  list(channelId) {
    const msgs = [...(this.messages.get(channelId)?.values() || [])].sort((a, b) => a.seq - b.seq);
    const pending = [...this.outbox.entries()]
      .filter(([, m]) => m.channel_id === channelId)
      .map(([cid, m]) => ({ channel_id: channelId, text: m.text, client_msg_id: cid, pending: true, mine: true }));
    return [...msgs, ...pending];
  }
}

/** One conversation: notice, messages, and a send form. */
export class ChatPanel {
  /**
   * @param {ChatSession} session
   * @param {{ title?: string }} opts
   */
  constructor(session, { title }) {
    this.session = session;
    /** @type {string | null} */
    this.channelId = null;
    this.heading = h('h2', { class: 'chat-title', 'data-i18n': title ? undefined : 'chat.title' }, title || t('chat.title'));
    this.list = h('ol', { class: 'chat-messages', 'aria-live': 'polite', 'aria-label': t('chat.messages'), 'data-i18n-attr': 'aria-label:chat.messages' });
    this.input = h('textarea', {
      class: 'chat-input', rows: '2', maxlength: String(MAX_TEXT), 'aria-label': t('chat.your_message'), placeholder: t('chat.placeholder'),
      'data-i18n-attr': 'aria-label:chat.your_message;placeholder:chat.placeholder',
    });
    this.error = h('p', { class: 'field-error chat-error', role: 'alert', hidden: true });
    this.form = h('form', { class: 'chat-form', novalidate: true },
      this.input, h('button', { type: 'submit', class: 'btn btn-primary btn-small chat-send', 'data-i18n': 'chat.send' }, t('chat.send')));
    this.root = h('section', { class: 'chat-panel', 'aria-label': t('chat.title'), 'data-i18n-attr': 'aria-label:chat.title' },
      this.heading,
      h('p', { class: 'chat-notice', 'data-i18n': 'chat.emergency' }, t('chat.emergency')),
      this.list, this.error, this.form);
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!this.channelId) return;
      this.session.failed = null;
      if (this.session.send(this.channelId, this.input.value)) this.input.value = '';
    });
    this.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) {
        ev.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.unsubscribe = session.onChange((id) => { if (id === null || id === this.channelId) this.render(); });
  }

  /**
   * @param {string} channelId
   * @param {string} [title]
   */
  async show(channelId, title) {
    this.channelId = channelId;
    if (title) {
      delete this.heading.dataset.i18n;
      this.heading.textContent = title;
    }
    this.render();
    try {
      await this.session.open(channelId);
    } catch (e) {
      this.session.failed = errorText(e, 'chat.load_failed');
    }
    this.render();
  }

  render() {
    const items = this.channelId ? this.session.list(this.channelId) : [];
    this.list.replaceChildren(...items.map((m) => {
      const mine = m.mine || this.session.mine(m);
      return h('li', { class: `chat-msg${mine ? ' mine' : ''}${m.pending ? ' pending' : ''}`, dataset: { seq: m.seq ?? '' } },
        h('p', { class: 'chat-meta' }, mine ? t('chat.you') : (m.sender_name || ''), ' ', h('time', {}, m.pending ? t('chat.sending') : timeOf(m.sent_at))),
        h('p', { class: 'chat-text' }, linkify(m.text || '')));
    }));
    this.list.scrollTop = this.list.scrollHeight;
    const problem = this.session.failed || this.session.unavailable;
    this.error.textContent = problem || '';
    this.error.hidden = !problem;
  }
}

// ------------------------------------------------------------------------------ staff app

/**
 * Staff chat: a "Messages" button with the total unread count in the top bar, a dialog with
 * the channels (unread per patient, F140) and the conversation, and chat buttons for
 * appointment rows (F139).
 */
export class StaffChat {
  /** @param {{ selfStaffId?: string | null }} [opts] */
  constructor({ selfStaffId } = {}) {
    this.selfStaffId = selfStaffId || null;
    this.session = new ChatSession({ mine: (m) => m.mine || (m.sender === 'staff' && m.sender_id === this.selfStaffId) });
    this.session.selfKind = 'staff';
    this.session.isVisible = (/** @type {string} */ id) => this.dialog.open && this.panel.channelId === id;
    this.badge = h('span', { class: 'badge chat-badge', hidden: true });
    this.button = h('button', { type: 'button', id: 'messages-btn', class: 'btn btn-quiet', onclick: () => this.openDialog() },
      t('staff.chat.messages'), ' ', this.badge);
    document.querySelector('.topbar-right')?.prepend(this.button);
    this.channelList = h('ul', { class: 'chat-channels', 'aria-label': t('staff.chat.conversations') });
    this.panel = new ChatPanel(this.session, { title: t('staff.chat') });
    // F143: the practitioner or a colleague with access deletes the history (everyone's copy).
    this.clearBtn = h('button', { type: 'button', id: 'chat-clear-btn', class: 'btn btn-quiet btn-small chat-clear', onclick: () => this.clearHistory(), 'data-i18n': 'staff.chat.delete_history' }, t('staff.chat.delete_history'));
    this.panel.heading.after(this.clearBtn);
    this.dialog = h('dialog', { id: 'chat-dialog', class: 'dialog chat-dialog', 'aria-label': t('staff.chat.messages') },
      h('div', { class: 'chat-dialog-head' }, h('h2', { 'data-i18n': 'staff.chat.messages' }, t('staff.chat.messages')),
        h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => this.dialog.close(), 'data-i18n': 'staff.close' }, t('staff.close'))),
      h('div', { class: 'chat-dialog-body' }, this.channelList, this.panel.root));
    document.body.append(this.dialog);
    this.session.onChange(() => this.render());
    /** @type {Map<string, Set<HTMLButtonElement>>} client id → buttons to update */
    this.appointmentButtons = new Map();
  }

  /** @param {string | null | undefined} staffId */
  setSelf(staffId) {
    this.selfStaffId = staffId;
  }

  /** @param {import('./protocol.js').ServerMessage} msg */
  handle(msg) {
    return this.session.handle(msg);
  }

  /** @param {SignallingClient_} signalling */
  connected(signalling) {
    return this.session.connected(signalling);
  }

  destroy() {
    this.button.remove();
    this.dialog.remove();
  }

  /**
   * @param {string | null} [clientId]
   * @param {string | null} [channelId]
   */
  async openDialog(clientId = null, channelId = null) {
    await this.session.refresh();
    if (!this.dialog.open) this.dialog.showModal();
    const channels = [...this.session.channels.values()];
    const first = channelId && this.session.channels.has(channelId)
      ? this.session.channels.get(channelId)
      : clientId
      ? channels.find((c) => c.client_id === clientId)
      : channels.find((c) => c.unread > 0) || this.session.channels.get(this.panel.channelId) || channels[0];
    if (first) this.panel.show(first.channel_id, `${first.client_name} — ${first.practitioner_name}`);
    this.render();
  }

  render() {
    this.clearBtn.hidden = !this.panel.channelId;
    const total = this.session.totalUnread;
    this.badge.textContent = String(total);
    this.badge.hidden = total === 0;
    this.button.setAttribute('aria-label', total ? t('staff.chat.messages_unread', { count: total }) : t('staff.chat.messages'));
    const items = [...this.session.channels.values()].map((c) => {
      const active = c.channel_id === this.panel.channelId;
      return h('li', {},
        h('button', {
          type: 'button',
          class: `chat-channel${active ? ' active' : ''}`,
          'aria-current': active ? 'true' : false,
          onclick: () => this.panel.show(c.channel_id, `${c.client_name} — ${c.practitioner_name}`),
        },
        h('span', { class: 'chat-channel-name' }, c.client_name),
        h('span', { class: 'chat-channel-with' }, ` ${t('staff.with_name', { name: c.practitioner_name })}`),
        c.unread ? h('span', { class: 'badge' }, String(c.unread), h('span', { class: 'visually-hidden' }, ` ${t('staff.chat.unread')}`)) : null));
    });
    this.channelList.replaceChildren(...items);
    for (const [clientId, buttons] of this.appointmentButtons) {
      const n = [...this.session.channels.values()].filter((c) => c.client_id === clientId).reduce((a, c) => a + (c.unread || 0), 0);
      for (const b of buttons) {
        /** @type {HTMLElement} */
        const badge = b.querySelector('.badge');
        badge.textContent = String(n);
        badge.hidden = n === 0;
      }
    }
  }

  /** F143: deletes the open conversation's history for everyone, after a confirmation. */
  async clearHistory() {
    const id = this.panel.channelId;
    const c = id && this.session.channels.get(id);
    if (!c) return;
    if (!window.confirm(t('staff.chat.confirm_clear', { name: c.client_name }))) return;
    try {
      await api(`/api/v1/chat/channels/${encodeURIComponent(id)}/messages`, { method: 'DELETE' });
      this.session.failed = null;
    } catch (err) {
      this.session.failed = err && err.message ? t('staff.chat.clear_failed_reason', { reason: errorText(err) }) : t('staff.chat.clear_failed');
    }
    this.panel.render();
  }

  /** F137: joins a colleague's conversation with a client, then opens it. */
  /**
   * @param {string} channelId
   * @param {string} clientId
   */
  async join(channelId, clientId) {
    await api(`/api/v1/chat/channels/${encodeURIComponent(channelId)}/join`, { method: 'POST' });
    await this.session.refresh();
    await this.openDialog(clientId, channelId);
  }

  /**
   * F136/F139: the conversation with `client` — a channel the caller may use, or else a new one
   * between the caller and the client (a practitioner can add only themselves).
   * @param {{ id?: string, name?: string }} client
   */
  async openForClient(client) {
    await this.session.refresh();
    const known = [...this.session.channels.values()].some((c) => c.client_id === client.id);
    if (!known) {
      await api('/api/v1/chat/channels', { method: 'POST', body: { client_id: client.id } });
    }
    await this.openDialog(client.id);
  }

  /**
   * A "Chat" button with the client's unread count, for appointment and client rows (F139).
   * @param {{ id?: string, name?: string } | null | undefined} client
   */
  appointmentButton(client) {
    if (!client || !client.id) return null;
    const b = h('button', {
      type: 'button',
      class: 'btn btn-quiet btn-small appt-chat',
      onclick: () => this.openForClient(client).catch(() => this.openDialog(client.id)),
    }, t('staff.chat'), h('span', { class: 'visually-hidden' }, ` ${t('staff.start_with', { name: client.name || t('staff.guest.the_client') })}`), ' ', h('span', { class: 'badge', hidden: true }));
    if (!this.appointmentButtons.has(client.id)) this.appointmentButtons.set(client.id, new Set());
    const set = this.appointmentButtons.get(client.id);
    for (const old of set) if (!old.isConnected) set.delete(old);
    set.add(b);
    queueMicrotask(() => this.render());
    return b;
  }
}

// ----------------------------------------------------------------------------- patient page

/** The patient's chat panel (waiting room and consultation): their channel with the practitioner. */
export class PatientChat {
  constructor() {
    this.session = new ChatSession({ mine: (m) => m.mine || m.sender === 'patient' });
    this.session.selfKind = 'patient';
    this.session.isVisible = () => !this.root.hidden && this.body.open;
    this.panel = new ChatPanel(this.session, {});
    setText(this.panel.heading, 'chat.with_practitioner');
    this.badge = h('span', { class: 'badge', hidden: true });
    this.summary = h('summary', {}, h('span', { 'data-i18n': 'chat.title' }, t('chat.title')), ' ', this.badge);
    this.body = h('details', { class: 'patient-chat-details' }, this.summary, this.panel.root);
    this.root = h('aside', { id: 'patient-chat', class: 'patient-chat', hidden: true }, this.body);
    // One chat panel per page: a chat-only connection after the visit replaces the visit's.
    document.getElementById('patient-chat')?.remove();
    document.body.append(this.root);
    this.body.addEventListener('toggle', () => {
      if (this.body.open && this.panel.channelId) this.session.markRead(this.panel.channelId);
    });
    this.session.onChange(() => {
      const n = this.session.totalUnread;
      this.badge.textContent = String(n);
      this.badge.hidden = n === 0;
    });
  }

  /** @param {import('./protocol.js').ServerMessage} msg */
  handle(msg) {
    return this.session.handle(msg);
  }

  /**
   * @param {SignallingClient_} signalling
   * @param {{ open?: boolean }} [opts]
   */
  async connected(signalling, { open = false } = {}) {
    await this.session.connected(signalling);
    const first = [...this.session.channels.values()][0];
    if (!first) {
      this.root.hidden = !this.session.unavailable;
      if (this.session.unavailable) this.panel.render();
      return;
    }
    this.root.hidden = false;
    if (open) this.body.open = true;
    if (this.panel.channelId !== first.channel_id) {
      await this.panel.show(first.channel_id);
      setText(this.panel.heading, 'chat.with_name', { name: first.practitioner_name });
    }
  }

  hide() {
    this.root.hidden = true;
  }
}

/**
 * F146: outside the invitation window, the link still opens the chat (when the organisation has
 * continuous chat): a chat-only connection that never enters a waiting room.
 * @param {string} invitationToken
 * @param {HTMLElement | null} container
 */
export async function offerInvitationChat(invitationToken, container) {
  if (!invitationToken || !container || container.querySelector('.invitation-chat')) return;
  // Only an appointment's own invitation has a chat between visits: guest (`g.`) and walk-in
  // (`w.`) links are always refused (404), so asking would only leave a failed request.
  if (/^[gw]\./.test(invitationToken)) return;
  const getToken = async () => (await api('/api/v1/invitations/chat', { method: 'POST', body: { token: invitationToken } })).chat_token;
  try {
    await getToken();
  } catch {
    return; // no chat for this link (setting off, cancelled, long ago)
  }
  const chat = new PatientChat();
  const client = new SignallingClient({
    getToken,
    onMessage: (msg) => chat.handle(msg),
    onClose: ({ reason }) => {
      retry?.stop();
      if (reason === 'chat_closed') {
        // F142: the clinic stopped chat between visits for this conversation; retrying would
        // only be refused. Say so in the panel, keep what was shown.
        chat.session.unavailable = t('chat.closed_between_visits');
        chat.panel.render();
        return;
      }
      retry = connectWithRetry(client, { onConnected: () => chat.connected(client) });
    },
  });
  /** @type {{ stop(): void } | null} */
  let retry = null;
  const button = h('button', {
    type: 'button',
    class: 'btn btn-secondary invitation-chat',
    onclick: () => {
      button.hidden = true;
      retry = connectWithRetry(client, { onConnected: () => chat.connected(client, { open: true }) });
    },
    'data-i18n': 'chat.with_practitioner',
  }, t('chat.with_practitioner'));
  container.append(button);
}
