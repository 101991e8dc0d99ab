// @ts-check
// "Services" in the staff app (issue #15): the organisation's services catalogue (e.g. "Rabies
// vaccination", "Annual exam"), which "Record a service" on a client's timeline offers
// (`GET/POST /api/v1/services`, `PUT/DELETE /api/v1/services/{id}`). Organisation admins add,
// rename, deactivate and delete services (a service that was recorded is deactivated instead of
// deleted; the server says so). Self-contained like mail-templates.js: its own button (after
// "E-mail templates"), its page `services-view`, following the views through nav.js. Texts come
// from the language catalogues (`staff.services.*`); the page's fixed parts carry `data-i18n`.

import { api, ApiError } from './api.js';
import { $, h, announce } from './dom.js';
import { navigate, registerView, followViews, currentView } from './nav.js';
import { t, errorText as apiErrorText } from './i18n.js';
import { tx } from './admin-common.js';

/** @typedef {{ id: string, name: string, code: string | null, active: boolean }} Service */

const pageBtn = tx('button', 'staff.services.title', { type: 'button', id: 'services-page-btn', class: 'btn btn-quiet', hidden: true });
$('mail-templates-page-btn').after(pageBtn); // mail-templates.js (loaded before this module) made it

const error = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
const status = h('p', { class: 'hint', role: 'status' });
const list = h('ul', { id: 'services-list', class: 'people-list' });
const name = h('input', { id: 'service-name', maxlength: 100, required: true, autocomplete: 'off' });
const code = h('input', { id: 'service-code', maxlength: 32, autocomplete: 'off' });
const form = h('form', { class: 'panel', novalidate: true },
  tx('h2', 'staff.services.new'),
  h('div', { class: 'field' }, tx('label', 'staff.profile.name', { for: 'service-name' }), name),
  h('div', { class: 'field' }, tx('label', 'staff.services.code_optional', { for: 'service-code' }), code),
  tx('button', 'staff.services.add', { type: 'submit', class: 'btn btn-primary' }));
const back = tx('button', 'staff.back_to_the_waiting_room', { type: 'button', class: 'btn btn-quiet btn-small' });
const view = h('section', { id: 'services-view', class: 'settings-page', 'aria-labelledby': 'services-title', hidden: true },
  h('div', { class: 'page-head' }, tx('h1', 'staff.services.title', { id: 'services-title', tabindex: '-1' }), back),
  tx('p', 'staff.services.help', { class: 'hint' }),
  error, status, list, form);
$('main').append(view);

/** @type {{ role: string | null }} */
const state = { role: null };

registerView('services-view');
followViews((v) => {
  if (v === 'login-view') {
    state.role = null;
    pageBtn.hidden = true;
    return;
  }
  if (state.role === null) void start();
});

async function start() {
  try {
    const me = await api('/api/v1/me');
    state.role = me.role;
  } catch {
    return;
  }
  pageBtn.hidden = state.role !== 'organisation_admin';
}

pageBtn.addEventListener('click', () => {
  if (currentView() === 'room-view') return; // never hide a running consultation
  navigate('services-view');
  void load();
});
back.addEventListener('click', () => navigate('dashboard-view', { focus: false }));

async function load() {
  showError('');
  try {
    const data = await api('/api/v1/services?include_inactive=true');
    /** @type {Service[]} */
    const services = data.services || [];
    list.replaceChildren(...services.map(row));
    if (!services.length) status.textContent = t('staff.services.none');
  } catch (err) {
    showError(errorText(err));
  }
}

/** @param {Service} s */
function row(s) {
  const rename = h('input', { 'aria-label': t('staff.services.name_of', { name: s.name }), maxlength: 100, value: s.name });
  const recode = h('input', { 'aria-label': t('staff.services.code_of', { name: s.name }), maxlength: 32, value: s.code || '' });
  const url = `/api/v1/services/${encodeURIComponent(s.id)}`;
  /** @param {boolean} active */
  const save = (active) => change(() => api(url, { method: 'PUT', body: { name: rename.value, code: recode.value || null, active } }), t('staff.org.saved'));
  return h('li', { class: 'people-item', dataset: { serviceId: s.id, active: String(s.active) } },
    rename, ' ', recode, ' ', s.active ? null : h('span', { class: 'people-meta' }, t('staff.services.inactive')), ' ',
    h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => save(s.active) }, t('staff.widget.save')), ' ',
    h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => save(!s.active) }, t(s.active ? 'staff.admin.deactivate' : 'staff.services.activate')), ' ',
    h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => change(() => api(url, { method: 'DELETE' }), t('staff.services.deleted')) }, t('staff.delete'), h('span', { class: 'visually-hidden' }, ` ${s.name}`)));
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void change(async () => {
    await api('/api/v1/services', { method: 'POST', body: { name: name.value, code: code.value || null } });
    form.reset();
  }, t('staff.services.added'));
});

/**
 * @param {() => Promise<unknown>} action
 * @param {string} done
 */
async function change(action, done) {
  showError('');
  try {
    await action();
  } catch (err) {
    showError(errorText(err));
    return;
  }
  announce(status, done);
  await load();
}

/** @param {string} text */
function showError(text) {
  error.textContent = text;
  error.hidden = !text;
}

/** @param {unknown} err */
function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 401) return t('staff.session_ended');
    if (err.status === 403) return t('staff.services.forbidden');
    if (err.status === 404) return t('staff.people.deleted_meanwhile');
    return err.message ? apiErrorText(err) : t('staff.sched.did_not_work');
  }
  return t('staff.login.unreachable');
}
