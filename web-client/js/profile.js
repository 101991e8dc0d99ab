// @ts-check
// "My profile" page (issue #12; F24) for every staff member: name, phone (checked by the server,
// errors shown at the field), the staff app's language (issue #14: English, Dutch, German, or
// none chosen = the browser's; applied at once), photo (scaled server-side), department and role
// (read-only), and password change (the current password is needed; other sessions are signed
// out). API:
// /api/v1/me/profile, /api/v1/me/photo, /api/v1/me/password (clinic/openapi.json).

import { api } from './api.js';
import { h } from './dom.js';
import { page, onMe, showError, clearErrors, field, alertBox, statusLine, uploadImage, tx } from './admin-common.js';
import { t, setText, clearText, setLanguage, chooseLanguage, asLanguage, LANGUAGES, LANGUAGE_NAMES } from './i18n.js';

/** Catalogue keys of the roles. */
export const ROLE_KEYS = /** @type {Record<string, string>} */ ({
  organisation_admin: 'staff.role.organisation_admin', department_admin: 'staff.role.department_admin', practitioner: 'staff.role.practitioner',
});

const view = page({ id: 'profile-view', title: 'staff.profile.title', button: 'staff.profile.title', onEnter: () => void load() });
onMe((m) => view.setAllowed(!!m));

const status = statusLine();
const alert = alertBox();
const facts = h('p', { class: 'hint' });
const name = field({ id: 'profile-name', label: 'staff.profile.name', name: 'name', attrs: { maxlength: 100, required: true, autocomplete: 'name' } });
const phone = field({ id: 'profile-phone', label: 'staff.profile.phone', name: 'phone', type: 'tel', attrs: { maxlength: 32, autocomplete: 'tel' }, hint: 'staff.profile.phone_hint' });
// The staff app's language: '' = none chosen (the browser's languages decide).
const language = h('select', { id: 'profile-language', name: 'language', 'aria-describedby': 'profile-language-hint' },
  h('option', { value: '', 'data-i18n': 'staff.profile.language_browser' }, t('staff.profile.language_browser')),
  ...LANGUAGES.map((l) => h('option', { value: l, lang: l, translate: 'no' }, LANGUAGE_NAMES[l])));
const languageField = h('div', { class: 'field' },
  tx('label', 'staff.profile.language', { for: 'profile-language' }), language,
  tx('p', 'staff.profile.language_hint', { id: 'profile-language-hint', class: 'hint field-hint' }),
  h('p', { class: 'field-error', 'data-error-for': 'language', hidden: true }));
const form = h('form', { class: 'panel', novalidate: true }, alert, facts, name.wrap, phone.wrap, languageField,
  tx('button', 'staff.profile.save', { type: 'submit', class: 'btn btn-primary' }));

const photo = h('img', { alt: t('staff.profile.photo_alt'), 'data-i18n-attr': 'alt:staff.profile.photo_alt', class: 'admin-photo', hidden: true });
const photoInput = h('input', { id: 'profile-photo', type: 'file', accept: 'image/png,image/jpeg,image/webp' });
const photoAlert = alertBox();
const photoPanel = h('section', { class: 'panel', 'aria-labelledby': 'profile-photo-title' },
  tx('h2', 'staff.profile.photo', { id: 'profile-photo-title' }), photoAlert, photo,
  h('div', { class: 'field' }, tx('label', 'staff.profile.upload_photo', { for: 'profile-photo' }), photoInput));

const pwAlert = alertBox();
const current = field({ id: 'profile-current-password', label: 'staff.profile.current_password', name: 'current_password', type: 'password', attrs: { autocomplete: 'current-password' } });
const next = field({ id: 'profile-new-password', label: 'staff.profile.new_password', name: 'new_password', type: 'password', attrs: { autocomplete: 'new-password', minlength: 10 }, hint: 'staff.profile.new_password_hint' });
const pwForm = h('form', { class: 'panel', novalidate: true, 'aria-labelledby': 'profile-password-title' },
  tx('h2', 'staff.profile.change_password', { id: 'profile-password-title' }), pwAlert, current.wrap, next.wrap,
  tx('button', 'staff.profile.change_password', { type: 'submit', class: 'btn btn-secondary' }));

view.body.append(status, form, photoPanel, pwForm);

/** @param {any} p `OwnProfile` */
function fill(p) {
  name.input.value = p.name;
  phone.input.value = p.phone;
  const role = ROLE_KEYS[p.role] ? t(ROLE_KEYS[p.role]) : p.role;
  facts.textContent = `${p.email} · ${role}${p.department_name ? ` · ${p.department_name}` : ''}`;
  language.value = asLanguage(p.language) || '';
  photo.hidden = !p.has_photo;
  if (p.has_photo) photo.src = `/api/v1/staff/${p.id}/photo?v=${Date.now()}`;
}

async function load() {
  clearErrors(alert, form);
  try {
    fill(await api('/api/v1/me/profile'));
  } catch (err) {
    showError(err, alert);
  }
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(alert, form);
  clearText(status);
  try {
    const chosen = asLanguage(language.value);
    const saved = await api('/api/v1/me/profile', { method: 'PUT', body: { name: name.input.value, phone: phone.input.value, language: chosen } });
    // The app follows the choice at once (none chosen: the browser's languages).
    await setLanguage(asLanguage(saved.language) || chooseLanguage());
    fill(saved);
    setText(status, 'staff.profile.saved');
  } catch (err) {
    showError(err, alert, form);
  }
});

photoInput.addEventListener('change', async () => {
  const file = photoInput.files?.[0];
  if (!file) return;
  clearErrors(photoAlert);
  try {
    fill(await uploadImage('/api/v1/me/photo', file));
    setText(status, 'staff.profile.photo_saved');
  } catch (err) {
    showError(err, photoAlert);
  }
  photoInput.value = '';
});

pwForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(pwAlert, pwForm);
  clearText(status);
  try {
    await api('/api/v1/me/password', { method: 'POST', body: { current_password: current.input.value, new_password: next.input.value } });
    pwForm.reset();
    setText(status, 'staff.profile.password_changed');
  } catch (err) {
    showError(err, pwAlert, pwForm);
  }
});
