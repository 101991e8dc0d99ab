// @ts-check
// "Forgot your password?" on the staff login screen (issue #12, F24): a link under the sign-in
// form opens a small form that asks for the e-mail address and sends it to
// `POST /api/v1/auth/forgot-password`. The server answers the same for every address (known,
// unknown or deactivated), so this page shows that one answer; an active staff member gets a
// set-password link by e-mail. Too many requests get the server's wait.
//
// Self-contained: it adds its link and form to the login card (index.html only loads the script).

import { api, ApiError } from './api.js';
import { $, h, announce } from './dom.js';
import { t, currentLanguage } from './i18n.js';

const loginForm = $('login-form', HTMLFormElement);
const loginEmail = $('login-email', HTMLInputElement);

const email = /** @type {HTMLInputElement} */ (h('input', {
  id: 'forgot-email', type: 'email', autocomplete: 'username', inputmode: 'email', required: true, maxlength: '254',
}));
const error = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
const done = h('p', { class: 'alert alert-info', role: 'status' });
const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-i18n': 'forgot.submit' }, t('forgot.submit'));
const backBtn = h('button', { type: 'button', class: 'btn btn-quiet btn-small', 'data-i18n': 'forgot.back' }, t('forgot.back'));
const form = /** @type {HTMLFormElement} */ (h('form', { id: 'forgot-form', novalidate: true, hidden: true },
  h('h2', { id: 'forgot-title', tabindex: '-1', 'data-i18n': 'forgot.title' }, t('forgot.title')),
  h('p', { class: 'hint', 'data-i18n': 'forgot.hint' }, t('forgot.hint')),
  error,
  h('div', { class: 'field' }, h('label', { for: 'forgot-email', 'data-i18n': 'forgot.email' }, t('forgot.email')), email),
  submit,
  done,
  backBtn));
const openBtn = h('button', { type: 'button', id: 'forgot-open', class: 'btn btn-quiet btn-small', 'data-i18n': 'forgot.title' }, t('forgot.title'));
loginForm.after(h('p', {}, openBtn), form);

/** @param {boolean} forgot show the forgot-password form instead of the sign-in form */
function show(forgot) {
  loginForm.hidden = forgot;
  openBtn.hidden = forgot;
  form.hidden = !forgot;
  if (forgot) {
    error.hidden = true;
    done.textContent = '';
    done.hidden = true;
    email.value = loginEmail.value.trim();
    email.focus();
  } else {
    loginEmail.focus();
  }
}

openBtn.addEventListener('click', () => show(true));
backBtn.addEventListener('click', () => show(false));

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const value = email.value.trim();
  if (!value) {
    showError(t('forgot.empty'));
    email.focus();
    return;
  }
  submit.setAttribute('disabled', '');
  try {
    const res = await api('/api/v1/auth/forgot-password', { method: 'POST', body: { email: value } });
    done.hidden = false;
    // The server's one answer for every address, in English; ours says the same.
    announce(done, currentLanguage() === 'en' && res && res.message ? res.message : t('forgot.done'));
  } catch (err) {
    showError(errorText(err));
  } finally {
    submit.removeAttribute('disabled');
  }
});

/** @param {string} text */
function showError(text) {
  error.textContent = text;
  error.hidden = false;
}

/** @param {unknown} err */
function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 422) return t('forgot.invalid');
    if (err.status === 429) {
      const minutes = Math.max(1, Math.ceil((Number(err.details.retry_after_seconds) || 60) / 60));
      return t('forgot.too_many', { count: minutes });
    }
    if (err.status === 0) return t('forgot.offline');
    return currentLanguage() === 'en' && err.message ? err.message : t('forgot.failed');
  }
  return t('error.unreachable');
}
