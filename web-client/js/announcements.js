// @ts-check
// Service announcements panel (staff, F95–F96): publish a message to everyone waiting in a room
// (the practitioner's own or a department's), with an optional expiry; list them (optionally
// with expired ones, which stay in the history); delete one or all of a room.
// HTTP API: POST/GET/DELETE /api/v1/announcements. Texts go in via textContent only.

import { api, ApiError } from './api.js';
import { $, h, announce } from './dom.js';
import { hhmm, isToday, shortDate } from './format.js';
import { t, setText, clearText } from './i18n.js';

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

/** Catalogue keys of a failed operation, by operation. */
const FAILED = {
  publish: { plain: 'staff.ann.publish_failed', reason: 'staff.ann.publish_failed_reason', code: 'staff.ann.publish_failed_code' },
  delete: { plain: 'staff.ann.delete_failed', reason: 'staff.ann.delete_failed_reason', code: 'staff.ann.delete_failed_code' },
};

/**
 * @param {unknown} err
 * @param {'publish' | 'delete'} what
 */
function errorText(err, what) {
  const keys = FAILED[what];
  if (!(err instanceof ApiError)) return t(keys.plain);
  if (err.status === 0) return t('staff.login.unreachable');
  if (err.status === 403) return t('staff.ann.forbidden');
  if (err.status === 404 && err.code === 'not_found' && what === 'delete') return t('staff.ann.gone');
  if (err.message) return t(keys.reason, { reason: err.message });
  return t(keys.code, { code: err.code });
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
    if (!orgAdmin) out.push({ kind: 'practitioner', id: me.id, label: t('staff.ann.your_room') });
    const deps = orgAdmin
      ? this.directory.departments
      : this.directory.departments.filter((d) => d.id === me.department_id);
    for (const d of deps) out.push({ kind: 'department', id: d.id, label: `${d.name} (department)` });
    if (me.department_id && !orgAdmin && !deps.length) {
      out.push({ kind: 'department', id: me.department_id, label: t('staff.ann.your_department') });
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
    if (scope.kind === 'practitioner' && me && scope.id === me.id) return t('staff.ann.your_room');
    if (scope.kind === 'department') {
      const name = this.directory.departmentName(scope.id);
      return name ? t('staff.ann.name_department', { name }) : t('staff.ann.department');
    }
    return this.directory.practitionerName(scope.id) || t('staff.ann.another_room');
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
      setText(this.el.state, err instanceof ApiError && err.status === 404
        ? 'staff.ann.unavailable'
        : 'staff.ann.load_failed');
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
      }, t('staff.ann.delete_all', { label }));
      return h('section', { class: 'ann-group', 'aria-labelledby': headingId, dataset: { scopeKind: g.scope?.kind || '', scopeId: g.scope?.id || '' } },
        h('div', { class: 'ann-group-head' }, h('h4', { id: headingId }, label), delAll),
        list);
    });
    this.el.groups.replaceChildren(...sections);
    const n = this.items.length;
    if (n) clearText(this.el.state);
    else setText(this.el.state, this.el.includeExpired.checked ? 'staff.ann.none_yet' : 'staff.ann.none_current');
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
    if (a.expires_at) meta.push(expired ? t('staff.ann.expired_at', { time: when(a.expires_at) }) : t('staff.ann.shown_until', { time: when(a.expires_at) }));
    else meta.push(t('staff.ann.shown_until_deleted'));
    if (a.created_at) meta.push(t('staff.ann.posted', { time: when(a.created_at) }));
    if (a.created_by?.name) meta.push(t('staff.ann.by', { name: a.created_by.name }));
    const short = (a.text || '').length > 40 ? `${a.text.slice(0, 40)}…` : a.text || '';
    return h('li', { class: `ann-item${expired ? ' expired' : ''}`, dataset: { announcementId: a.id, expired: String(expired) } },
      h('p', { class: 'ann-text' }, a.text || ''),
      h('p', { class: 'ann-meta' }, expired ? h('span', { class: 'ann-expired-tag' }, t('staff.ann.expired')) : null, meta.join(' · ')),
      h('button', {
        type: 'button',
        class: 'btn btn-quiet btn-small ann-delete',
        onclick: (/** @type {MouseEvent} */ ev) => this.#deleteOne(a, /** @type {HTMLButtonElement} */ (ev.currentTarget)),
      }, t('staff.delete'), h('span', { class: 'visually-hidden' }, ` ${t('staff.ann.announcement_quoted', { text: short })}`)));
  }

  #updateCount() {
    const n = this.el.text.value.length;
    setText(this.el.count, 'staff.ann.count', { n: String(n), max: String(ANNOUNCEMENT_MAX) });
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
      this.#fieldError(this.el.text, this.el.textError, t('staff.ann.write_message'));
      bad = bad || this.el.text;
    } else if (text.length > ANNOUNCEMENT_MAX) {
      this.#fieldError(this.el.text, this.el.textError, t('staff.ann.too_long', { max: String(ANNOUNCEMENT_MAX) }));
      bad = bad || this.el.text;
    } else {
      this.#fieldError(this.el.text, this.el.textError, '');
    }
    const expiresAt = localInputToRfc3339(this.el.expires.value);
    if (this.el.expires.value && !expiresAt) {
      this.#fieldError(this.el.expires, this.el.expiresError, t('staff.ann.invalid_expiry'));
      bad = bad || this.el.expires;
    } else if (expiresAt && Date.parse(expiresAt) <= Date.now()) {
      this.#fieldError(this.el.expires, this.el.expiresError, t('staff.ann.expiry_past'));
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
    setText(this.el.submit, 'staff.ann.publishing');
    try {
      await api('/api/v1/announcements', { method: 'POST', body });
      this.el.text.value = '';
      this.el.expires.value = '';
      this.#updateCount();
      announce(this.status, t('staff.ann.published'));
      await this.load();
      this.el.text.focus();
    } catch (err) {
      if (this.onAuthError(err)) return;
      this.#showError(errorText(err, 'publish'));
    } finally {
      this.el.submit.disabled = this.el.scope.disabled;
      setText(this.el.submit, 'staff.publish_announcement');
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
      announce(this.status, t('staff.ann.deleted'));
    } catch (err) {
      if (this.onAuthError(err)) return;
      if (!(err instanceof ApiError && err.status === 404)) this.#showError(errorText(err, 'delete'));
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
      button.textContent = t('staff.ann.press_again', { count: n, label });
      button.classList.add('confirming');
      announce(this.status, t('staff.ann.press_again_announce', { label }));
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
      announce(this.status, t('staff.ann.n_deleted', { count: n }));
    } catch (err) {
      if (this.onAuthError(err)) return;
      this.#showError(errorText(err, 'delete'));
    }
    await this.load();
    this.el.includeExpired.focus();
  }
}
