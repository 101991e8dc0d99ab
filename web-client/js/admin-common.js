// @ts-check
// Shared pieces of the administration pages (issue #12): a page shell built in script (so
// index.html only gains a script tag per page), a top-bar button per page, the signed-in staff
// member (`GET /api/v1/me`), field errors from the `field` of an API error, and the first-run notice
// on the login screen when the server has no organisation yet (`GET /api/v1/setup/status`).
//
// Pages follow the staff app's views through nav.js like org-settings.js: they load `me` when a
// signed-in view is shown and forget it on the login view.

import { api, ApiError } from './api.js';
import { $, h } from './dom.js';
import { navigate, registerView, followViews } from './nav.js';
import { t, applyTranslations, onLanguageChange, errorText } from './i18n.js';

/** @typedef {{ id: string, name: string, email: string, role: string, organisation_id: string, department_id: string | null, language?: string | null }} Me */

/** The views of the signed-in staff app (any of them means a session exists). */
const SIGNED_OUT = new Set(['boot-view', 'login-view']);

/** @type {{ me: Me | null, loading: Promise<Me | null> | null }} */
const session = { me: null, loading: null };

/** @type {((me: Me | null) => void)[]} */
const meListeners = [];

/**
 * Calls `listener` with the signed-in staff member whenever it is (re)loaded, and with null on
 * sign-out.
 * @param {(me: Me | null) => void} listener
 */
export function onMe(listener) {
  meListeners.push(listener);
}

/** The signed-in staff member as last loaded. */
export function me() {
  return session.me;
}

followViews((view) => {
  if (SIGNED_OUT.has(view)) {
    if (session.me) {
      session.me = null;
      for (const l of meListeners) l(null);
    }
    if (view === 'login-view') void showFirstRunNotice();
    return;
  }
  if (!session.me && !session.loading) {
    session.loading = api('/api/v1/me')
      .then((m) => { session.me = m; for (const l of meListeners) l(m); return m; })
      .catch(/** @returns {null} */ () => null)
      .finally(() => { session.loading = null; });
  }
});

/**
 * A page of the staff app: a registered view with a heading and a "Back" button, in `<main>`
 * while someone is signed in, and a top-bar button that opens it (hidden until
 * `setAllowed(true)`). `title` and `button` are catalogue keys; the page's markup follows a
 * language switch (texts built with `tx` or `data-i18n`).
 * @param {{ id: string, title: string, button: string, onEnter: () => void }} spec
 */
export function page({ id, title, button, onEnter }) {
  const headingId = `${id}-title`;
  const back = h('button', { type: 'button', class: 'btn btn-quiet btn-small', 'data-i18n': 'staff.back_to_the_waiting_room' }, t('staff.back_to_the_waiting_room'));
  const body = h('div', { class: 'admin-body' });
  const section = h('section', { id, class: 'settings-page admin-page', 'aria-labelledby': headingId, hidden: true },
    h('div', { class: 'page-head' }, h('h1', { id: headingId, tabindex: '-1', 'data-i18n': title }, t(title)), back),
    body);
  // In the document only while someone is signed in: signed out, its forms (e-mail, password
  // fields) must not sit hidden beside the login form's.
  onMe((m) => {
    if (m && !section.isConnected) {
      $('main').append(section);
      applyTranslations(section); // built before the language was known
    }
    if (!m) section.remove();
  });
  onLanguageChange(() => { if (!section.isConnected) applyTranslations(section); });
  registerView(id, { enter: onEnter });
  back.addEventListener('click', () => navigate('dashboard-view'));
  const open = h('button', { type: 'button', class: 'btn btn-quiet', hidden: true, 'data-i18n': button }, t(button));
  open.addEventListener('click', () => navigate(id));
  $('staff-name').before(open);
  return {
    body,
    /** @param {boolean} allowed */
    setAllowed(allowed) { open.hidden = !allowed; },
  };
}

/**
 * Shows an API error: next to the field it names (an element with `data-field`), else in
 * `alert`.
 * @param {unknown} err
 * @param {HTMLElement} alert
 * @param {HTMLElement} [form]
 */
export function showError(err, alert, form) {
  const message = err instanceof ApiError
    ? errorText(err, 'staff.something_wrong')
    : t('staff.something_wrong');
  const field = err instanceof ApiError ? err.details.field : undefined;
  const target = field && form ? form.querySelector(`[data-error-for="${CSS.escape(String(field))}"]`) : null;
  if (target instanceof HTMLElement) {
    target.textContent = message;
    target.hidden = false;
    alert.hidden = true;
  } else {
    alert.textContent = message;
    alert.hidden = false;
  }
}

/**
 * Hides the alert and every field error of `form`.
 * @param {HTMLElement} alert
 * @param {HTMLElement} [form]
 */
export function clearErrors(alert, form) {
  alert.hidden = true;
  alert.textContent = '';
  for (const e of form ? form.querySelectorAll('[data-error-for]') : []) {
    if (e instanceof HTMLElement) { e.hidden = true; e.textContent = ''; }
  }
}

/**
 * An element whose text is the catalogue's `key`, re-translated on a language switch.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} key
 * @param {Record<string, unknown>} [attrs]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function tx(tag, key, attrs = {}) {
  return h(tag, { ...attrs, 'data-i18n': key }, t(key));
}

/**
 * A labelled input with a field-error line (`data-error-for=name`); `label` and `hint` are
 * catalogue keys.
 * @param {{ id: string, label: string, name: string, type?: string, value?: string, attrs?: Record<string, unknown>, hint?: string }} spec
 */
export function field({ id, label, name, type = 'text', value = '', attrs = {}, hint }) {
  const input = h('input', { id, name, type, ...attrs, 'aria-describedby': `${id}-error` });
  input.value = value;
  const wrap = h('div', { class: 'field' },
    tx('label', label, { for: id }),
    input,
    hint ? tx('p', hint, { class: 'hint field-hint' }) : null,
    h('p', { id: `${id}-error`, class: 'field-error', 'data-error-for': name, hidden: true }));
  return { wrap, input };
}

/** An alert box for a page or form. */
export function alertBox() {
  return h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
}

/** A polite status line. */
export function statusLine() {
  return h('p', { class: 'hint', role: 'status' });
}

/**
 * Uploads an image file as a raw body (the API scales it server-side).
 * @param {string} path
 * @param {File} file
 * @returns {Promise<any>}
 */
export async function uploadImage(path, file) {
  const res = await fetch(path, {
    method: 'PUT',
    credentials: 'same-origin',
    headers: { 'Content-Type': file.type || 'application/octet-stream', Accept: 'application/json' },
    body: file,
  });
  const data = await res.json().catch(/** @returns {null} */ () => null);
  if (!res.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(res.status, e.code || `http_${res.status}`, e.message || '', e);
  }
  return data;
}

// ---------------------------------------------------------------- logo (F3)

/** The organisation's logo, top left on every screen of the staff app while signed in. */
const brandLogo = h('img', { class: 'brand-logo', alt: '', hidden: true });
document.querySelector('.topbar .brand')?.prepend(brandLogo);
/** The organisation's name beside the product's when it has no logo (F3, F11). */
const brandOrg = h('span', { class: 'brand-org', translate: 'no', hidden: true });
document.querySelector('.topbar .brand')?.append(brandOrg);

/** Shows the organisation's logo (or none); called on sign-in and when the logo changes. */
export async function refreshLogo() {
  if (!session.me) {
    brandLogo.hidden = true;
    brandLogo.removeAttribute('src');
    brandOrg.hidden = true;
    return;
  }
  try {
    const profile = await api('/api/v1/organisation/profile');
    brandLogo.hidden = !profile.has_logo;
    brandLogo.alt = profile.has_logo ? t('staff.org_logo', { name: profile.name }) : '';
    if (profile.has_logo) brandLogo.src = `/api/v1/organisation/logo?v=${Date.now()}`;
    brandOrg.textContent = profile.name || '';
    brandOrg.title = profile.name || '';
    brandOrg.hidden = !!profile.has_logo || !profile.name;
  } catch {
    brandLogo.hidden = true;
    brandOrg.hidden = true;
  }
}
onMe(() => { void refreshLogo(); });

// ---------------------------------------------------------------- first run

let firstRunChecked = false;

/** On the login screen: says plainly that no organisation exists yet, and how to create one. */
async function showFirstRunNotice() {
  if (firstRunChecked) return;
  let status;
  try {
    status = await api('/api/v1/setup/status');
  } catch {
    return;
  }
  firstRunChecked = true;
  if (status && status.organisation_exists === false) {
    const login = $('login-view');
    const notice = h('div', { id: 'first-run-notice', class: 'alert alert-info', role: 'status' },
      h('p', {}, h('strong', {}, t('staff.first_run.none')), ' ', t('staff.first_run.nobody')),
      h('p', {}, t('staff.first_run.run'), ' ',
        h('code', { translate: 'no' }, 'consultroom admin create-organisation --name "Your clinic" --admin-email you@example.org'), // i18n-exempt: a command
        ' ', t('staff.first_run.open_link')));
    login.querySelector('h1')?.after(notice);
  }
}
