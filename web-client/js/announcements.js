// @ts-check
// Service announcements panel (staff, F95–F96): publish a message to everyone waiting in a room
// (the practitioner's own or a department's), with an optional expiry; list them (optionally
// with expired ones, which stay in the history); delete one or all of a room.
// HTTP API: POST/GET/DELETE /api/v1/announcements. Texts go in via textContent only.

import { api, ApiError } from './api.js';
import { $, h, announce } from './dom.js';
import { hhmm, isToday, shortDate } from './format.js';

export const ANNOUNCEMENT_MAX = 500;
const CONFIRM_MS = 6000;

/** @typedef {import('./protocol.js').QueueRef} Scope a waiting room */
/**
 * An announcement of `GET /api/v1/announcements` (clinic/openapi.json).
 * @typedef {{ id: string, text: string, scope?: Scope, expires_at?: string | null, created_at?: string,
 *   created_by?: { name?: string } }} Announcement
 */

/**
 * "14:25" today, "Tue 24 Nov 14:25" on another day.
 * @param {string | null | undefined} iso
 */
function when(iso) {
  if (!iso) return '';
  return isToday(iso) ? hhmm(iso) : `${shortDate(iso)} ${hhmm(iso)}`;
}

/**
 * `<input type="datetime-local">` value (local time, no zone) → RFC 3339 in UTC, or '' .
 * @param {string} value
 */
export function localInputToRfc3339(value) {
  if (!value) return '';
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value);
  if (!m) return '';
  const d = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  if (Number.isNaN(d.getTime())) return '';
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * @param {unknown} err
 * @param {string} what
 */
function errorText(err, what) {
  if (!(err instanceof ApiError)) return `${what} failed. Try again.`;
  if (err.status === 0) return 'The server could not be reached. Check your connection and try again.';
  if (err.status === 403) return 'You may not manage announcements for that waiting room.';
  if (err.status === 404 && err.code === 'not_found' && what === 'Deleting') return 'That announcement no longer exists.';
  if (err.message) return `${what} failed: ${err.message}`;
  return `${what} failed (${err.code}). Try again in a moment.`;
}

export class AnnouncementsPanel {
  /**
   * @param {object} opts
   * @param {import('./directory.js').Directory} opts.directory
   * @param {() => import('./directory.js').StaffMe | null} opts.me the signed-in staff member (`/api/v1/me`)
   * @param {HTMLElement} opts.status polite live region for confirmations
   * @param {(err: unknown) => boolean} opts.onAuthError returns true when it handled a 401
   */
  constructor({ directory, me, status, onAuthError }) {
    this.directory = directory;
    this.me = me;
    this.status = status;
    this.onAuthError = onAuthError;
    /** @type {Announcement[]} */
    this.items = [];
    /** @type {{ key: string, button: HTMLButtonElement, text: string, timer: ReturnType<typeof setTimeout> } | null} */
    this.confirming = null;
    this.el = {
      form: $('ann-form', HTMLFormElement),
      error: $('ann-error'),
      text: $('ann-text', HTMLTextAreaElement),
      textError: $('ann-text-error'),
      count: $('ann-text-count'),
      scope: $('ann-scope', HTMLSelectElement),
      expires: $('ann-expires', HTMLInputElement),
      expiresError: $('ann-expires-error'),
      submit: $('ann-submit', HTMLButtonElement),
      includeExpired: $('ann-include-expired', HTMLInputElement),
      state: $('ann-state'),
      groups: $('ann-groups'),
    };
    this.el.text.maxLength = ANNOUNCEMENT_MAX;
    this.el.text.addEventListener('input', () => this.#updateCount());
    this.el.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.#create();
    });
    this.el.includeExpired.addEventListener('change', () => this.load());
    this.#updateCount();
  }

  /**
   * Rooms this staff member may address (mirrors the server's rule): their own room; their
   * department's; a department admin also their department's practitioners; an organisation
   * admin every room of the organisation.
   */
  scopes() {
    const me = this.me();
    if (!me) return [];
    /** @type {(Scope & { label: string })[]} */
    const out = [];
    const orgAdmin = me.role === 'organisation_admin';
    if (!orgAdmin) out.push({ kind: 'practitioner', id: me.id, label: 'Your waiting room' });
    const deps = orgAdmin
      ? this.directory.departments
      : this.directory.departments.filter((d) => d.id === me.department_id);
    for (const d of deps) out.push({ kind: 'department', id: d.id, label: `${d.name} (department)` });
    if (me.department_id && !orgAdmin && !deps.length) {
      out.push({ kind: 'department', id: me.department_id, label: 'Your department' });
    }
    const colleagues = this.directory.practitioners.filter((p) => p.id !== me.id
      && (orgAdmin || (me.role === 'department_admin' && me.department_id && p.department_id === me.department_id)));
    for (const p of colleagues) out.push({ kind: 'practitioner', id: p.id, label: `${p.name}'s waiting room` });
    return out;
  }

  /** @param {Scope | undefined} scope */
  scopeLabel(scope) {
    const me = this.me();
    if (!scope) return '';
    if (scope.kind === 'practitioner' && me && scope.id === me.id) return 'Your waiting room';
    if (scope.kind === 'department') {
      const name = this.directory.departmentName(scope.id);
      return name ? `${name} (department)` : 'Department';
    }
    return this.directory.practitionerName(scope.id) || 'Another waiting room';
  }

  /** Fills the room choice (keeps the current selection when still possible). */
  renderScopes() {
    const before = this.el.scope.value;
    const opts = this.scopes().map((s) => h('option', { value: `${s.kind}:${s.id}` }, s.label));
    this.el.scope.replaceChildren(...opts);
    if (opts.some((o) => o.value === before)) this.el.scope.value = before;
    const none = opts.length === 0;
    this.el.scope.disabled = none;
    this.el.submit.disabled = none;
  }

  reset() {
    this.items = [];
    this.el.groups.replaceChildren();
    this.el.form.reset();
    this.#updateCount();
    this.#showError('');
    this.#cancelConfirm();
  }

  async load() {
    this.renderScopes();
    const include = this.el.includeExpired.checked;
    try {
      const data = await api(`/api/v1/announcements?include_expired=${include ? 'true' : 'false'}`);
      this.items = Array.isArray(data?.announcements) ? data.announcements : [];
      this.render();
    } catch (err) {
      if (this.onAuthError(err)) return;
      this.el.state.textContent = err instanceof ApiError && err.status === 404
        ? 'Announcements are not available on this server yet.'
        : 'The announcements could not be loaded.';
      this.el.state.hidden = false;
    }
  }

  render() {
    this.#cancelConfirm();
    const now = Date.now();
    /** @type {Map<string, { scope: Scope | undefined, items: Announcement[] }>} */
    const groups = new Map();
    for (const a of this.items) {
      const key = `${a.scope?.kind}:${a.scope?.id}`;
      if (!groups.has(key)) groups.set(key, { scope: a.scope, items: [] });
      groups.get(key).items.push(a);
    }
    const sections = [...groups.entries()].map(([key, g]) => {
      const label = this.scopeLabel(g.scope);
      const headingId = `ann-group-${key.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
      const list = h('ul', { class: 'ann-items' }, g.items.map((a) => this.#item(a, now)));
      const delAll = h('button', {
        type: 'button',
        class: 'btn btn-quiet btn-small ann-delete-all',
        dataset: { scopeKind: g.scope?.kind || '', scopeId: g.scope?.id || '' },
        onclick: (/** @type {MouseEvent} */ ev) => this.#deleteAll(key, g.scope, label, /** @type {HTMLButtonElement} */ (ev.currentTarget)),
      }, `Delete all for ${label}`);
      return h('section', { class: 'ann-group', 'aria-labelledby': headingId, dataset: { scopeKind: g.scope?.kind || '', scopeId: g.scope?.id || '' } },
        h('div', { class: 'ann-group-head' }, h('h4', { id: headingId }, label), delAll),
        list);
    });
    this.el.groups.replaceChildren(...sections);
    const n = this.items.length;
    this.el.state.textContent = n ? '' : (this.el.includeExpired.checked ? 'No announcements yet.' : 'No current announcements.');
    this.el.state.hidden = n > 0;
  }

  /**
   * @param {Announcement} a
   * @param {number} now
   */
  #item(a, now) {
    const exp = a.expires_at ? Date.parse(a.expires_at) : NaN;
    const expired = Number.isFinite(exp) && exp <= now;
    const meta = [];
    if (a.expires_at) meta.push(expired ? `Expired ${when(a.expires_at)}` : `Shown until ${when(a.expires_at)}`);
    else meta.push('Shown until deleted');
    if (a.created_at) meta.push(`posted ${when(a.created_at)}`);
    if (a.created_by?.name) meta.push(`by ${a.created_by.name}`);
    const short = (a.text || '').length > 40 ? `${a.text.slice(0, 40)}…` : a.text || '';
    return h('li', { class: `ann-item${expired ? ' expired' : ''}`, dataset: { announcementId: a.id, expired: String(expired) } },
      h('p', { class: 'ann-text' }, a.text || ''),
      h('p', { class: 'ann-meta' }, expired ? h('span', { class: 'ann-expired-tag' }, 'Expired') : null, meta.join(' · ')),
      h('button', {
        type: 'button',
        class: 'btn btn-quiet btn-small ann-delete',
        onclick: (/** @type {MouseEvent} */ ev) => this.#deleteOne(a, /** @type {HTMLButtonElement} */ (ev.currentTarget)),
      }, 'Delete', h('span', { class: 'visually-hidden' }, ` announcement “${short}”`)));
  }

  #updateCount() {
    const n = this.el.text.value.length;
    this.el.count.textContent = `${n} / ${ANNOUNCEMENT_MAX} characters`;
  }

  /** @param {string} text */
  #showError(text) {
    this.el.error.textContent = text;
    this.el.error.hidden = !text;
  }

  /**
   * @param {HTMLElement} input
   * @param {HTMLElement} errEl
   * @param {string} text
   */
  #fieldError(input, errEl, text) {
    errEl.textContent = text || '';
    errEl.hidden = !text;
    if (text) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }

  async #create() {
    this.#showError('');
    const text = this.el.text.value.trim();
    /** @type {HTMLElement | null} */
    let bad = null;
    if (!text) {
      this.#fieldError(this.el.text, this.el.textError, 'Write a message.');
      bad = bad || this.el.text;
    } else if (text.length > ANNOUNCEMENT_MAX) {
      this.#fieldError(this.el.text, this.el.textError, `The message is too long (at most ${ANNOUNCEMENT_MAX} characters).`);
      bad = bad || this.el.text;
    } else {
      this.#fieldError(this.el.text, this.el.textError, '');
    }
    const expiresAt = localInputToRfc3339(this.el.expires.value);
    if (this.el.expires.value && !expiresAt) {
      this.#fieldError(this.el.expires, this.el.expiresError, 'Enter a valid date and time, or leave it empty.');
      bad = bad || this.el.expires;
    } else if (expiresAt && Date.parse(expiresAt) <= Date.now()) {
      this.#fieldError(this.el.expires, this.el.expiresError, 'The end time has already passed. Choose a later time, or leave it empty.');
      bad = bad || this.el.expires;
    } else {
      this.#fieldError(this.el.expires, this.el.expiresError, '');
    }
    if (bad) {
      bad.focus();
      return;
    }
    const value = this.el.scope.value;
    const sep = value.indexOf(':');
    if (sep < 0) return;
    const scope = { kind: value.slice(0, sep), id: value.slice(sep + 1) };
    /** @type {{ text: string, scope: { kind: string, id: string }, expires_at?: string }} */
    const body = { text, scope };
    if (expiresAt) body.expires_at = expiresAt;
    this.el.submit.disabled = true;
    this.el.submit.textContent = 'Publishing…';
    try {
      await api('/api/v1/announcements', { method: 'POST', body });
      this.el.text.value = '';
      this.el.expires.value = '';
      this.#updateCount();
      announce(this.status, 'The announcement was published to the waiting patients.');
      await this.load();
      this.el.text.focus();
    } catch (err) {
      if (this.onAuthError(err)) return;
      this.#showError(errorText(err, 'Publishing'));
    } finally {
      this.el.submit.disabled = this.el.scope.disabled;
      this.el.submit.textContent = 'Publish announcement';
    }
  }

  /**
   * @param {Announcement} a
   * @param {HTMLButtonElement} button
   */
  async #deleteOne(a, button) {
    button.disabled = true;
    this.#showError('');
    try {
      await api(`/api/v1/announcements/${encodeURIComponent(a.id)}`, { method: 'DELETE' });
      announce(this.status, 'The announcement was deleted.');
    } catch (err) {
      if (this.onAuthError(err)) return;
      if (!(err instanceof ApiError && err.status === 404)) this.#showError(errorText(err, 'Deleting'));
    }
    await this.load();
    this.el.includeExpired.focus();
  }

  #cancelConfirm() {
    if (!this.confirming) return;
    clearTimeout(this.confirming.timer);
    const b = this.confirming.button;
    if (b.isConnected) {
      b.textContent = this.confirming.text;
      b.classList.remove('confirming');
      b.removeAttribute('aria-describedby');
    }
    this.confirming = null;
  }

  /**
   * Two clicks: the first asks for confirmation (for 6 s), the second deletes.
   * @param {string} key the room (`kind:id`)
   * @param {Scope} scope
   * @param {string} label
   * @param {HTMLButtonElement} button
   */
  async #deleteAll(key, scope, label, button) {
    if (!this.confirming || this.confirming.key !== key) {
      this.#cancelConfirm();
      const n = this.items.filter((a) => `${a.scope?.kind}:${a.scope?.id}` === key).length;
      const text = button.textContent;
      button.textContent = `Press again to delete all ${n} for ${label}`;
      button.classList.add('confirming');
      announce(this.status, `Press the button again to delete all announcements for ${label}.`);
      this.confirming = { key, button, text, timer: setTimeout(() => this.#cancelConfirm(), CONFIRM_MS) };
      return;
    }
    this.#cancelConfirm();
    button.disabled = true;
    this.#showError('');
    try {
      const q = `scope_kind=${encodeURIComponent(scope.kind)}&scope_id=${encodeURIComponent(scope.id)}`;
      const res = await api(`/api/v1/announcements?${q}`, { method: 'DELETE' });
      const n = res && typeof res.deleted === 'number' ? res.deleted : 0;
      announce(this.status, n === 1 ? '1 announcement was deleted.' : `${n} announcements were deleted.`);
    } catch (err) {
      if (this.onAuthError(err)) return;
      this.#showError(errorText(err, 'Deleting'));
    }
    await this.load();
    this.el.includeExpired.focus();
  }
}
