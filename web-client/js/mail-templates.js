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

const KIND_LABEL = /** @type {Record<string, string>} */ ({
  appointment_invitation: 'Appointment invitation',
  appointment_update: 'Appointment changed',
  appointment_cancellation: 'Appointment cancelled',
  appointment_reminder: 'Appointment reminder',
  staff_invitation: 'Staff invitation',
  password_reset: 'Password reset',
});
const LANGUAGE_LABEL = /** @type {Record<string, string>} */ ({ en: 'English', nl: 'Dutch', de: 'German' });

// ---------------------------------------------------------------- markup

const pageBtn = h('button', { type: 'button', id: 'mail-templates-page-btn', class: 'btn btn-quiet', hidden: true }, 'E-mail templates');
$('mail-page-btn').after(pageBtn); // mail.js (loaded before this module) made it

const error = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
const status = h('p', { class: 'hint', role: 'status' });
const readOnlyNote = h('p', { class: 'hint', hidden: true }, 'Only an organisation admin can change the templates; you can read and preview them.');

const setSelect = /** @type {HTMLSelectElement} */ (h('select', { id: 'tmpl-set' }));
const deleteSetBtn = h('button', { type: 'button', class: 'btn btn-quiet btn-small' }, 'Delete this set');
const newName = /** @type {HTMLInputElement} */ (h('input', { id: 'tmpl-new-name', type: 'text', maxlength: '100', required: true }));
const newDefault = /** @type {HTMLInputElement} */ (h('input', { id: 'tmpl-new-default', type: 'checkbox' }));
const newForm = h('form', { class: 'panel', novalidate: true },
  h('h2', {}, 'New template set'),
  h('div', { class: 'field' }, h('label', { for: 'tmpl-new-name' }, 'Name of the set'), newName),
  h('label', { class: 'settings-check' }, newDefault, ' Default set of the organisation (for departments without a set)'),
  h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create set'));
const noSets = h('p', { class: 'hint' }, 'No template sets yet: every mail uses the built-in texts. Create a set to change them.');

const defaultBox = /** @type {HTMLInputElement} */ (h('input', { id: 'tmpl-is-default', type: 'checkbox' }));
const departmentsBox = h('fieldset', { class: 'tmpl-departments' }, h('legend', {}, 'Departments that use this set'));
const saveSetBtn = h('button', { type: 'button', class: 'btn btn-quiet btn-small' }, 'Save departments and default');

const kindSelect = /** @type {HTMLSelectElement} */ (h('select', { id: 'tmpl-kind' }));
const langSelect = /** @type {HTMLSelectElement} */ (h('select', { id: 'tmpl-language' }));
const subject = /** @type {HTMLInputElement} */ (h('input', { id: 'tmpl-subject', type: 'text', maxlength: '200' }));
const html = /** @type {HTMLTextAreaElement} */ (h('textarea', { id: 'tmpl-html', rows: '14', spellcheck: 'false' }));
const text = /** @type {HTMLTextAreaElement} */ (h('textarea', { id: 'tmpl-text', rows: '10' }));
const origin = h('p', { class: 'hint' });
const saveBtn = h('button', { type: 'button', class: 'btn btn-primary' }, 'Save template');
const resetBtn = h('button', { type: 'button', class: 'btn btn-quiet' }, 'Use the default text');
const placeholderList = h('dl', { class: 'tmpl-placeholders' });

const previewSubject = h('p', { 'aria-label': 'Preview subject' });
const previewFrame = /** @type {HTMLIFrameElement} */ (h('iframe', { title: 'Preview as HTML', sandbox: '', referrerpolicy: 'no-referrer' }));
previewFrame.style.width = '100%';
previewFrame.style.minHeight = '22rem';
previewFrame.style.border = '1px solid #ccc';
previewFrame.style.background = '#fff';
const previewText = h('pre', { 'aria-label': 'Preview as plain text' });
previewText.style.whiteSpace = 'pre-wrap';
const previewError = h('p', { class: 'field-error', role: 'alert', hidden: true });
for (const area of [html, text]) {
  area.style.width = '100%';
  area.style.fontFamily = 'monospace';
}
subject.style.width = '100%';

const editor = h('div', { hidden: true },
  h('div', { class: 'panel' },
    h('div', { class: 'field' }, h('label', { for: 'tmpl-set' }, 'Template set'), setSelect),
    h('label', { class: 'settings-check' }, defaultBox, ' Default set of the organisation'),
    departmentsBox, saveSetBtn, ' ', deleteSetBtn),
  h('div', { class: 'panel' },
    h('h2', {}, 'Edit a mail'),
    h('div', { class: 'field' }, h('label', { for: 'tmpl-kind' }, 'Mail'), kindSelect),
    h('div', { class: 'field' }, h('label', { for: 'tmpl-language' }, 'Language'), langSelect),
    origin,
    h('div', { class: 'field' }, h('label', { for: 'tmpl-subject' }, 'Subject'), subject),
    h('div', { class: 'field' }, h('label', { for: 'tmpl-html' }, 'HTML'), html),
    h('div', { class: 'field' }, h('label', { for: 'tmpl-text' }, 'Plain text'), text),
    previewError,
    h('p', {}, saveBtn, ' ', resetBtn),
    h('details', { open: true }, h('summary', {}, 'Placeholders'), placeholderList)),
  h('section', { class: 'panel', 'aria-labelledby': 'tmpl-preview-title' },
    h('h2', { id: 'tmpl-preview-title' }, 'Preview with sample data'),
    previewSubject, previewFrame,
    h('h3', {}, 'As plain text'), previewText));

const back = h('button', { type: 'button', class: 'btn btn-quiet btn-small' }, 'Back to the waiting room');
const view = h('section', { id: 'mail-templates-view', class: 'settings-page', 'aria-labelledby': 'mail-templates-title', hidden: true },
  h('div', { class: 'page-head' }, h('h1', { id: 'mail-templates-title', tabindex: '-1' }, 'E-mail templates'), back),
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

for (const [k, label] of Object.entries(KIND_LABEL)) kindSelect.append(h('option', { value: k }, label));
for (const [l, label] of Object.entries(LANGUAGE_LABEL)) langSelect.append(h('option', { value: l }, label));

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
  departmentsBox.replaceChildren(h('legend', {}, 'Departments that use this set'));
  if (!state.departments.length) departmentsBox.append(h('p', { class: 'hint' }, 'No departments.'));
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
    ? 'This set has its own text for this mail.'
    : 'Not changed in this set: the default text is shown. Saving makes it this set\'s own.';
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
    previewSubject.textContent = `Subject: ${out.subject}`;
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
    announce(status, `Saved: ${KIND_LABEL[kindSelect.value]} (${LANGUAGE_LABEL[langSelect.value]}).`);
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
    announce(status, 'The default text is used again.');
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
    announce(status, 'Saved.');
  } catch (err) {
    showError(errorText(err));
  }
});

deleteSetBtn.addEventListener('click', async () => {
  if (!state.set || !window.confirm(`Delete the template set "${state.set.name}"? Its departments use the default set again.`)) return;
  try {
    await api(`/api/v1/mail-template-sets/${encodeURIComponent(state.set.id)}`, { method: 'DELETE' });
    state.set = null;
    await loadSets(null);
    announce(status, 'Template set deleted.');
  } catch (err) {
    showError(errorText(err));
  }
});

newForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError('');
  const name = newName.value.trim();
  if (!name) {
    showError('Enter a name for the set.');
    newName.focus();
    return;
  }
  try {
    const { set } = await api('/api/v1/mail-template-sets', { method: 'POST', body: { name, is_default: newDefault.checked } });
    newName.value = '';
    newDefault.checked = false;
    await loadSets(set.id);
    announce(status, `Template set "${set.name}" created.`);
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
    if (err.status === 403) return 'Only organisation and department admins see the e-mail templates.';
    if (err.status === 409) return 'A template set with this name already exists.';
    if (err.status === 0) return 'No connection to the server. Try again.';
    return err.message || 'Something went wrong.';
  }
  return 'Something went wrong.';
}
