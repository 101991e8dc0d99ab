// @ts-check
// "My profile" page (issue #12; F24) for every staff member: name, phone (checked by the server,
// errors shown at the field), photo (scaled server-side), department and role (read-only), and
// password change (the current password is needed; other sessions are signed out). API:
// /api/v1/me/profile, /api/v1/me/photo, /api/v1/me/password (clinic/openapi.json).

import { api } from './api.js';
import { h } from './dom.js';
import { page, onMe, showError, clearErrors, field, alertBox, statusLine, uploadImage } from './admin-common.js';

const ROLE_NAMES = /** @type {Record<string, string>} */ ({
  organisation_admin: 'Organisation admin', department_admin: 'Department admin', practitioner: 'Practitioner',
});

const view = page({ id: 'profile-view', title: 'My profile', button: 'My profile', onEnter: () => void load() });
onMe((m) => view.setAllowed(!!m));

const status = statusLine();
const alert = alertBox();
const facts = h('p', { class: 'hint' });
const name = field({ id: 'profile-name', label: 'Name', name: 'name', attrs: { maxlength: 100, required: true, autocomplete: 'name' } });
const phone = field({ id: 'profile-phone', label: 'Phone', name: 'phone', type: 'tel', attrs: { maxlength: 32, autocomplete: 'tel' }, hint: 'For example +31 20 123 4567' });
const form = h('form', { class: 'panel', novalidate: true }, alert, facts, name.wrap, phone.wrap,
  h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save profile'));

const photo = h('img', { alt: 'Your profile photo', class: 'admin-photo', hidden: true });
const photoInput = h('input', { id: 'profile-photo', type: 'file', accept: 'image/png,image/jpeg,image/webp' });
const photoAlert = alertBox();
const photoPanel = h('section', { class: 'panel', 'aria-labelledby': 'profile-photo-title' },
  h('h2', { id: 'profile-photo-title' }, 'Photo'), photoAlert, photo,
  h('div', { class: 'field' }, h('label', { for: 'profile-photo' }, 'Upload a photo (PNG, JPEG or WebP)'), photoInput));

const pwAlert = alertBox();
const current = field({ id: 'profile-current-password', label: 'Current password', name: 'current_password', type: 'password', attrs: { autocomplete: 'current-password' } });
const next = field({ id: 'profile-new-password', label: 'New password', name: 'new_password', type: 'password', attrs: { autocomplete: 'new-password', minlength: 10 }, hint: 'At least 10 characters. Your other sessions are signed out.' });
const pwForm = h('form', { class: 'panel', novalidate: true, 'aria-labelledby': 'profile-password-title' },
  h('h2', { id: 'profile-password-title' }, 'Change password'), pwAlert, current.wrap, next.wrap,
  h('button', { type: 'submit', class: 'btn btn-secondary' }, 'Change password'));

view.body.append(status, form, photoPanel, pwForm);

/** @param {any} p `OwnProfile` */
function fill(p) {
  name.input.value = p.name;
  phone.input.value = p.phone;
  facts.textContent = `${p.email} · ${ROLE_NAMES[p.role] || p.role}${p.department_name ? ` · ${p.department_name}` : ''}`;
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
  status.textContent = '';
  try {
    fill(await api('/api/v1/me/profile', { method: 'PUT', body: { name: name.input.value, phone: phone.input.value } }));
    status.textContent = 'Profile saved.';
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
    status.textContent = 'Photo saved.';
  } catch (err) {
    showError(err, photoAlert);
  }
  photoInput.value = '';
});

pwForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(pwAlert, pwForm);
  status.textContent = '';
  try {
    await api('/api/v1/me/password', { method: 'POST', body: { current_password: current.input.value, new_password: next.input.value } });
    pwForm.reset();
    status.textContent = 'Password changed. Your other sessions were signed out.';
  } catch (err) {
    showError(err, pwAlert, pwForm);
  }
});
