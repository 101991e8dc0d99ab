// @ts-check
// "E-mail templates" in the staff app (issue #12, F169–F172): named template sets of the
// organisation (GET/POST/PUT/DELETE /api/v1/mail-template-sets…), which departments use a set,
// and per mail and language the subject, HTML and text with `*|CODE|*` placeholders, a list of
// the placeholders, and a live preview with sample data (POST /api/v1/mail-templates/preview; the
// HTML in an iframe with sandbox="", so a template's HTML runs no script).
//
// Organisation admins edit; department admins read and preview. Self-contained like mail.js: it
// builds its own button (after "Sent mail") and page, follows the views through nav.js and shows
// its page as `mail-templates-view`.

import { api, ApiError } from './api.js';
import { $, h, announce } from './dom.js';
import { navigate, registerView, followViews, currentView } from './nav.js';
import { t as tr, errorText as apiErrorText } from './i18n.js';
import { tx } from './admin-common.js';

const KIND_LABEL = /** @type {Record<string, string>} */ ({
  appointment_invitation: 'staff.tmpl.kind.appointment_invitation',
  appointment_update: 'staff.mail.kind.appointment_update',
  appointment_cancellation: 'staff.tmpl.kind.appointment_cancellation',
  appointment_reminder: 'staff.tmpl.kind.appointment_reminder',
  staff_invitation: 'staff.mail.kind.staff_invitation',
  password_reset: 'staff.mail.kind.password_reset',
});
const LANGUAGE_LABEL = /** @type {Record<string, string>} */ ({ en: 'staff.lang.en', nl: 'staff.lang.nl', de: 'staff.lang.de' });

// ---------------------------------------------------------------- markup

const pageBtn = tx('button', 'staff.tmpl.e_mail_templates', { type: 'button', id: 'mail-templates-page-btn', class: 'btn btn-quiet', hidden: true });
$('mail-page-btn').after(pageBtn); // mail.js (loaded before this module) made it

const error = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
const status = h('p', { class: 'hint', role: 'status' });
const readOnlyNote = tx('p', 'staff.tmpl.only_an_organisation_admin', { class: 'hint', hidden: true });

const setSelect = /** @type {HTMLSelectElement} */ (h('select', { id: 'tmpl-set' }));
const deleteSetBtn = tx('button', 'staff.tmpl.delete_this_set', { type: 'button', class: 'btn btn-quiet btn-small' });
const newName = /** @type {HTMLInputElement} */ (h('input', { id: 'tmpl-new-name', type: 'text', maxlength: '100', required: true }));
const newDefault = /** @type {HTMLInputElement} */ (h('input', { id: 'tmpl-new-default', type: 'checkbox' }));
const newForm = h('form', { class: 'panel', novalidate: true },
  tx('h2', 'staff.tmpl.new_template_set'),
  h('div', { class: 'field' }, tx('label', 'staff.tmpl.name_of_the_set', { for: 'tmpl-new-name' }), newName),
  h('label', { class: 'settings-check' }, newDefault, ' ', tx('span', 'staff.tmpl.default_for_departments')),
  tx('button', 'staff.tmpl.create_set', { type: 'submit', class: 'btn btn-primary' }));
const noSets = tx('p', 'staff.tmpl.no_template_sets_yet', { class: 'hint' });

const defaultBox = /** @type {HTMLInputElement} */ (h('input', { id: 'tmpl-is-default', type: 'checkbox' }));
const departmentsBox = h('fieldset', { class: 'tmpl-departments' }, tx('legend', 'staff.tmpl.departments_that_use_this'));
const saveSetBtn = tx('button', 'staff.tmpl.save_departments_and_default', { type: 'button', class: 'btn btn-quiet btn-small' });

const kindSelect = /** @type {HTMLSelectElement} */ (h('select', { id: 'tmpl-kind' }));
const langSelect = /** @type {HTMLSelectElement} */ (h('select', { id: 'tmpl-language' }));
const subject = /** @type {HTMLInputElement} */ (h('input', { id: 'tmpl-subject', type: 'text', maxlength: '200' }));
const html = /** @type {HTMLTextAreaElement} */ (h('textarea', { id: 'tmpl-html', rows: '14', spellcheck: 'false' }));
const text = /** @type {HTMLTextAreaElement} */ (h('textarea', { id: 'tmpl-text', rows: '10' }));
const origin = h('p', { class: 'hint' });
const saveBtn = tx('button', 'staff.tmpl.save_template', { type: 'button', class: 'btn btn-primary' });
const resetBtn = tx('button', 'staff.tmpl.use_the_default_text', { type: 'button', class: 'btn btn-quiet' });
const placeholderList = h('dl', { class: 'tmpl-placeholders' });

const previewSubject = h('p', { 'aria-label': tr('staff.tmpl.preview_subject'), 'data-i18n-attr': 'aria-label:staff.tmpl.preview_subject' });
const previewFrame = /** @type {HTMLIFrameElement} */ (h('iframe', { title: tr('staff.tmpl.preview_html'), 'data-i18n-attr': 'title:staff.tmpl.preview_html', sandbox: '', referrerpolicy: 'no-referrer' }));
previewFrame.style.width = '100%';
previewFrame.style.minHeight = '22rem';
previewFrame.style.border = '1px solid #ccc';
previewFrame.style.background = '#fff';
const previewText = h('pre', { 'aria-label': tr('staff.tmpl.preview_text'), 'data-i18n-attr': 'aria-label:staff.tmpl.preview_text' });
previewText.style.whiteSpace = 'pre-wrap';
const previewError = h('p', { class: 'field-error', role: 'alert', hidden: true });
for (const area of [html, text]) {
  area.style.width = '100%';
  area.style.fontFamily = 'monospace';
}
subject.style.width = '100%';

const editor = h('div', { hidden: true },
  h('div', { class: 'panel' },
    h('div', { class: 'field' }, tx('label', 'staff.tmpl.template_set', { for: 'tmpl-set' }), setSelect),
    h('label', { class: 'settings-check' }, defaultBox, ' ', tx('span', 'staff.tmpl.default_set')),
    departmentsBox, saveSetBtn, ' ', deleteSetBtn),
  h('div', { class: 'panel' },
    tx('h2', 'staff.tmpl.edit_a_mail'),
    h('div', { class: 'field' }, tx('label', 'staff.tmpl.mail', { for: 'tmpl-kind' }), kindSelect),
    h('div', { class: 'field' }, tx('label', 'staff.tmpl.language', { for: 'tmpl-language' }), langSelect),
    origin,
    h('div', { class: 'field' }, tx('label', 'staff.tmpl.subject', { for: 'tmpl-subject' }), subject),
    h('div', { class: 'field' }, tx('label', 'staff.tmpl.html_body', { for: 'tmpl-html' }), html),
    h('div', { class: 'field' }, tx('label', 'staff.tmpl.plain_text', { for: 'tmpl-text' }), text),
    previewError,
    h('p', {}, saveBtn, ' ', resetBtn),
    h('details', { open: true }, tx('summary', 'staff.tmpl.placeholders'), placeholderList)),
  h('section', { class: 'panel', 'aria-labelledby': 'tmpl-preview-title' },
    tx('h2', 'staff.tmpl.preview_with_sample_data', { id: 'tmpl-preview-title' }),
    previewSubject, previewFrame,
    tx('h3', 'staff.tmpl.as_plain_text'), previewText));

const back = tx('button', 'staff.back_to_the_waiting_room', { type: 'button', class: 'btn btn-quiet btn-small' });
const view = h('section', { id: 'mail-templates-view', class: 'settings-page', 'aria-labelledby': 'mail-templates-title', hidden: true },
  h('div', { class: 'page-head' }, tx('h1', 'staff.tmpl.e_mail_templates', { id: 'mail-templates-title', tabindex: '-1' }), back),
  error, status, readOnlyNote, noSets, editor, newForm);
$('main').append(view);

// ---------------------------------------------------------------- state

/**
 * @typedef {{ kind: string, language: string, customised: boolean, subject: string, html_body: string, text_body: string }} Tmpl
 * @typedef {{ id: string, name: string, is_default: boolean, department_ids: string[], templates: Tmpl[] }} TmplSet
 */
/** @type {{ role: string | null, sets: any[], set: TmplSet | null, placeholders: any, departments: {id: string, name: string}[] }} */
const state = { role: null, sets: [], set: null, placeholders: { appointment: [], staff: [] }, departments: [] };
const canEdit = () => state.role === 'organisation_admin';

registerView('mail-templates-view');
followViews((v) => {
  if (v === 'login-view') {
    state.role = null;
    pageBtn.hidden = true;
    return;
  }
  if (v !== 'login-view' && state.role === null) void start();
});

async function start() {
  try {
    const me = await api('/api/v1/me');
    state.role = me.role;
  } catch {
    return;
  }
  pageBtn.hidden = !(state.role === 'organisation_admin' || state.role === 'department_admin');
}

pageBtn.addEventListener('click', () => {
  if (currentView() === 'room-view') return; // never hide a running consultation
  navigate('mail-templates-view');
  void loadSets(null);
});
back.addEventListener('click', () => navigate('dashboard-view', { focus: false }));

for (const [k, label] of Object.entries(KIND_LABEL)) kindSelect.append(tx('option', label, { value: k }));
for (const [l, label] of Object.entries(LANGUAGE_LABEL)) langSelect.append(tx('option', label, { value: l }));

/** @param {string | null} selectId the set to show (null: keep the current one, or the first) */
async function loadSets(selectId) {
  showError('');
  const edit = canEdit();
  readOnlyNote.hidden = edit;
  newForm.hidden = !edit;
  for (const el of [subject, html, text, defaultBox, saveBtn, resetBtn, saveSetBtn, deleteSetBtn]) {
    /** @type {HTMLInputElement} */ (el).disabled = !edit;
  }
  try {
    const list = await api('/api/v1/mail-template-sets');
    state.sets = list.sets;
    state.placeholders = list.placeholders;
    try {
      const dir = await api('/api/v1/directory');
      state.departments = (dir.departments || []).map((/** @type {any} */ d) => ({ id: d.id, name: d.name }));
    } catch { state.departments = []; }
    const keep = selectId || state.set?.id || '';
    setSelect.replaceChildren(...state.sets.map((s) => h('option', { value: s.id }, s.is_default ? `${s.name} (default)` : s.name)));
    noSets.hidden = state.sets.length > 0;
    editor.hidden = state.sets.length === 0;
    if (!state.sets.length) {
      state.set = null;
      return;
    }
    setSelect.value = state.sets.some((s) => s.id === keep) ? keep : state.sets[0].id;
    await loadSet(setSelect.value);
  } catch (err) {
    showError(errorText(err));
  }
}

/** @param {string} id */
async function loadSet(id) {
  const { set } = await api(`/api/v1/mail-template-sets/${encodeURIComponent(id)}`);
  showSet(set);
}

/** @param {TmplSet} set */
function showSet(set) {
  state.set = set;
  defaultBox.checked = set.is_default;
  departmentsBox.replaceChildren(tx('legend', 'staff.tmpl.departments_that_use_this'));
  if (!state.departments.length) departmentsBox.append(h('p', { class: 'hint' }, tr('staff.tmpl.no_departments')));
  for (const d of state.departments) {
    const box = h('input', { type: 'checkbox', value: d.id, disabled: !canEdit() });
    /** @type {HTMLInputElement} */ (box).checked = set.department_ids.includes(d.id);
    departmentsBox.append(h('label', { class: 'settings-check' }, box, ` ${d.name}`));
  }
  showTemplate();
}

function current() {
  return state.set?.templates.find((t) => t.kind === kindSelect.value && t.language === langSelect.value) || null;
}

function showTemplate() {
  const t = current();
  if (!t) return;
  subject.value = t.subject;
  html.value = t.html_body;
  text.value = t.text_body;
  origin.textContent = t.customised
    ? tr('staff.tmpl.own_text')
    : tr('staff.tmpl.default_shown');
  /** @type {HTMLButtonElement} */ (resetBtn).disabled = !canEdit() || !t.customised;
  const family = kindSelect.value.startsWith('appointment_') ? state.placeholders.appointment : state.placeholders.staff;
  placeholderList.replaceChildren(...family.flatMap((/** @type {any} */ p) => [
    h('dt', {}, h('code', {}, `*|${p.code}|*`)),
    h('dd', {}, `${p.description} (e.g. ${p.example})`),
  ]));
  void preview();
}

setSelect.addEventListener('change', async () => {
  try {
    await loadSet(setSelect.value);
  } catch (err) {
    showError(errorText(err));
  }
});
kindSelect.addEventListener('change', showTemplate);
langSelect.addEventListener('change', showTemplate);

/** @type {number | undefined} */
let previewTimer;
let previewSeq = 0;
for (const el of [subject, html, text]) {
  el.addEventListener('input', () => {
    window.clearTimeout(previewTimer);
    previewTimer = window.setTimeout(() => { void preview(); }, 300); // debounce typing, not a wait for a condition
  });
}

async function preview() {
  const seq = ++previewSeq;
  try {
    const out = await api('/api/v1/mail-templates/preview', {
      method: 'POST',
      body: { kind: kindSelect.value, language: langSelect.value, subject: subject.value, html_body: html.value, text_body: text.value },
    });
    if (seq !== previewSeq) return;
    showFieldError('');
    previewSubject.textContent = tr('staff.tmpl.subject_is', { subject: out.subject });
    previewFrame.srcdoc = out.html_body;
    previewText.textContent = out.text_body;
  } catch (err) {
    if (seq !== previewSeq) return;
    showFieldError(errorText(err));
  }
}

saveBtn.addEventListener('click', async () => {
  if (!state.set) return;
  showError('');
  try {
    const { set } = await api(`/api/v1/mail-template-sets/${encodeURIComponent(state.set.id)}/templates/${kindSelect.value}/${langSelect.value}`, {
      method: 'PUT',
      body: { subject: subject.value, html_body: html.value, text_body: text.value },
    });
    showSet(set);
    announce(status, tr('staff.tmpl.saved_what', { kind: tr(KIND_LABEL[kindSelect.value]), language: tr(LANGUAGE_LABEL[langSelect.value]) }));
  } catch (err) {
    showFieldError(errorText(err));
    showError(errorText(err));
  }
});

resetBtn.addEventListener('click', async () => {
  if (!state.set) return;
  showError('');
  try {
    const { set } = await api(`/api/v1/mail-template-sets/${encodeURIComponent(state.set.id)}/templates/${kindSelect.value}/${langSelect.value}`, { method: 'DELETE' });
    showSet(set);
    announce(status, tr('staff.tmpl.default_again'));
  } catch (err) {
    showError(errorText(err));
  }
});

saveSetBtn.addEventListener('click', async () => {
  if (!state.set) return;
  showError('');
  const ids = [...departmentsBox.querySelectorAll('input:checked')].map((b) => /** @type {HTMLInputElement} */ (b).value);
  try {
    const id = state.set.id;
    if (defaultBox.checked !== state.set.is_default) {
      await api(`/api/v1/mail-template-sets/${encodeURIComponent(id)}`, { method: 'PUT', body: { name: state.set.name, is_default: defaultBox.checked } });
    }
    await api(`/api/v1/mail-template-sets/${encodeURIComponent(id)}/departments`, { method: 'PUT', body: { department_ids: ids } });
    await loadSets(id);
    announce(status, tr('staff.org.saved'));
  } catch (err) {
    showError(errorText(err));
  }
});

deleteSetBtn.addEventListener('click', async () => {
  if (!state.set || !window.confirm(tr('staff.tmpl.confirm_delete', { name: state.set.name }))) return;
  try {
    await api(`/api/v1/mail-template-sets/${encodeURIComponent(state.set.id)}`, { method: 'DELETE' });
    state.set = null;
    await loadSets(null);
    announce(status, tr('staff.tmpl.deleted'));
  } catch (err) {
    showError(errorText(err));
  }
});

newForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError('');
  const name = newName.value.trim();
  if (!name) {
    showError(tr('staff.tmpl.enter_name'));
    newName.focus();
    return;
  }
  try {
    const { set } = await api('/api/v1/mail-template-sets', { method: 'POST', body: { name, is_default: newDefault.checked } });
    newName.value = '';
    newDefault.checked = false;
    await loadSets(set.id);
    announce(status, tr('staff.tmpl.created', { name: set.name }));
  } catch (err) {
    showError(errorText(err));
  }
});

/** @param {string} msg */
function showError(msg) {
  error.hidden = !msg;
  error.textContent = msg;
}

/** @param {string} msg */
function showFieldError(msg) {
  previewError.hidden = !msg;
  previewError.textContent = msg;
}

/** @param {unknown} err */
function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 403) return tr('staff.tmpl.forbidden');
    if (err.status === 409) return tr('staff.tmpl.name_taken');
    if (err.status === 0) return tr('staff.mail.no_connection');
    return err.message ? apiErrorText(err) : tr('staff.something_wrong');
  }
  return tr('staff.something_wrong');
}
