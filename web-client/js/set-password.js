// @ts-check
// The set-password page (`/set-password#<token>`, issue #12; F15, F24): a new staff member's
// invitation or a password reset. The token is in the fragment (never sent in a URL, so never in
// a log or a Referer). Opening the page only asks whom the link is for (`POST
// /api/v1/auth/set-password/check`, which uses nothing up: mail scanners open links); only
// submitting the form uses the link (`POST /api/v1/auth/set-password`), which signs the person
// in, and the page then goes to the staff app.

import { api, ApiError } from './api.js';
import { $ } from './dom.js';
import { t, setText, currentLanguage, chooseLanguage, setLanguage, languageSwitcher } from './i18n.js';

const el = {
  who: $('sp-who'),
  error: $('sp-error'),
  form: $('sp-form', HTMLFormElement),
  password: $('sp-password', HTMLInputElement),
  passwordError: $('sp-password-error'),
  repeat: $('sp-repeat', HTMLInputElement),
  repeatError: $('sp-repeat-error'),
  submit: $('sp-submit', HTMLButtonElement),
  done: $('sp-done'),
};

const token = decodeURIComponent(location.hash.replace(/^#/, ''));

/** @param {string} key */
function fail(key) {
  setText(el.error, key);
  el.error.hidden = false;
}

/** @param {unknown} err */
function linkProblem(err) {
  if (err instanceof ApiError && (err.code === 'link_expired' || err.status === 404)) {
    return err.code === 'link_expired' ? 'sp.link_expired' : 'sp.link_invalid';
  }
  return 'error.unreachable';
}

async function start() {
  if (!token) {
    fail('sp.no_token');
    return;
  }
  try {
    const who = await api('/api/v1/auth/set-password/check', { method: 'POST', body: { token } });
    setText(el.who, who.purpose === 'reset' ? 'sp.who_reset' : 'sp.who_welcome', { name: who.name, email: who.email });
    el.who.hidden = false;
    el.form.hidden = false;
    el.password.focus();
  } catch (err) {
    fail(linkProblem(err));
  }
}

el.form.addEventListener('submit', async (e) => {
  e.preventDefault();
  el.error.hidden = true;
  el.passwordError.hidden = true;
  el.repeatError.hidden = true;
  if ([...el.password.value].length < 10) {
    setText(el.passwordError, 'sp.too_short');
    el.passwordError.hidden = false;
    el.password.focus();
    return;
  }
  if (el.password.value !== el.repeat.value) {
    setText(el.repeatError, 'sp.not_same');
    el.repeatError.hidden = false;
    el.repeat.focus();
    return;
  }
  el.submit.disabled = true;
  try {
    await api('/api/v1/auth/set-password', { method: 'POST', body: { token, password: el.password.value } });
    el.form.hidden = true;
    el.done.hidden = false;
    // The link is used up: drop it from the address bar and history, then go to the app.
    history.replaceState(null, '', '/set-password');
    location.assign('/');
  } catch (err) {
    el.submit.disabled = false;
    if (err instanceof ApiError && err.details.field === 'password') {
      // The server's reason in English; the length rule (the one it checks) in other languages.
      const tooLong = new TextEncoder().encode(el.password.value).length > 1024;
      el.passwordError.textContent = currentLanguage() === 'en' && err.message ? err.message : t(tooLong ? 'sp.too_long' : 'sp.too_short');
      el.passwordError.hidden = false;
    } else {
      fail(linkProblem(err));
    }
  }
});

$('language-slot').append(languageSwitcher());
await setLanguage(chooseLanguage());
void start();
