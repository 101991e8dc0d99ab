// @ts-check
// The set-password page (`/set-password#<token>`, issue #12; F15, F24): a new staff member's
// invitation or a password reset. The token is in the fragment (never sent in a URL, so never in
// a log or a Referer). Opening the page only asks whom the link is for (`POST
// /api/v1/auth/set-password/check`, which uses nothing up: mail scanners open links); only
// submitting the form uses the link (`POST /api/v1/auth/set-password`), which signs the person
// in, and the page then goes to the staff app.

import { api, ApiError } from './api.js';
import { $ } from './dom.js';

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

/** @param {string} text */
function fail(text) {
  el.error.textContent = text;
  el.error.hidden = false;
}

/** @param {unknown} err */
function linkProblem(err) {
  if (err instanceof ApiError && (err.code === 'link_expired' || err.status === 404)) {
    return err.code === 'link_expired'
      ? 'This link has expired or was already used. Ask your administrator for a new one.'
      : 'This link is not valid. Check that you copied all of it, or ask your administrator for a new one.';
  }
  return 'The server could not be reached. Try again in a moment.';
}

async function start() {
  if (!token) {
    fail('This page needs the link from your invitation or password-reset message.');
    return;
  }
  try {
    const who = await api('/api/v1/auth/set-password/check', { method: 'POST', body: { token } });
    el.who.textContent = `${who.purpose === 'reset' ? 'New password' : 'Welcome'}, ${who.name} (${who.email}).`;
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
    el.passwordError.textContent = 'The password must have at least 10 characters.';
    el.passwordError.hidden = false;
    el.password.focus();
    return;
  }
  if (el.password.value !== el.repeat.value) {
    el.repeatError.textContent = 'The two passwords are not the same.';
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
      el.passwordError.textContent = err.message;
      el.passwordError.hidden = false;
    } else {
      fail(linkProblem(err));
    }
  }
});

void start();
