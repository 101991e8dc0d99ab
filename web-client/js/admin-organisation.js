// @ts-check
// "Organisation" page (issue #12; F3, F10, F11) for organisation admins: the organisation's name,
// logo (scaled server-side), the contact details shown to patients and the practitioners' forms
// of address in English, Dutch and German. API: /api/v1/organisation/profile and
// /api/v1/organisation/logo (clinic/openapi.json).

import { api } from './api.js';
import { h } from './dom.js';
import { page, onMe, showError, clearErrors, field, alertBox, statusLine, uploadImage, refreshLogo } from './admin-common.js';

const view = page({ id: 'organisation-view', title: 'Organisation', button: 'Organisation', onEnter: () => void load() });
onMe((m) => view.setAllowed(m?.role === 'organisation_admin'));

const alert = alertBox();
const status = statusLine();
const name = field({ id: 'org-name', label: 'Organisation name', name: 'name', attrs: { maxlength: 100, required: true } });
const email = field({ id: 'org-contact-email', label: 'Contact email for patients', name: 'contact.email', type: 'email', attrs: { maxlength: 254 } });
const phone = field({ id: 'org-contact-phone', label: 'Contact phone for patients', name: 'contact.phone', type: 'tel', attrs: { maxlength: 32 } });
const website = field({ id: 'org-contact-website', label: 'Website', name: 'contact.website', type: 'url', attrs: { maxlength: 200 }, hint: 'Starts with https://' });
const text = h('textarea', { id: 'org-contact-text', name: 'contact.text', rows: 3, maxlength: 1000, 'aria-describedby': 'org-contact-text-error' });
const forms = h('textarea', { id: 'org-forms', rows: 4, 'aria-describedby': 'org-forms-hint org-forms-error' });
const form = h('form', { class: 'panel', novalidate: true },
  alert,
  name.wrap,
  h('fieldset', {}, h('legend', {}, 'Contact information shown to patients'),
    email.wrap, phone.wrap, website.wrap,
    h('div', { class: 'field' }, h('label', { for: 'org-contact-text' }, 'Address and opening hours'), text,
      h('p', { id: 'org-contact-text-error', class: 'field-error', 'data-error-for': 'contact.text', hidden: true }))),
  h('div', { class: 'field' }, h('label', { for: 'org-forms' }, 'Forms of address'), forms,
    h('p', { id: 'org-forms-hint', class: 'hint field-hint' }, 'One per line: English | Dutch | German, e.g. "Doctor | Dokter | Doktor".'),
    h('p', { id: 'org-forms-error', class: 'field-error', 'data-error-for': 'forms_of_address', hidden: true })),
  h('button', { type: 'submit', class: 'btn btn-primary' }, 'Save organisation'));

const logoImg = h('img', { alt: 'Organisation logo', class: 'admin-logo', hidden: true });
const logoInput = h('input', { id: 'org-logo', type: 'file', accept: 'image/png,image/jpeg,image/webp' });
const logoAlert = alertBox();
const logoRemove = h('button', { type: 'button', class: 'btn btn-quiet btn-small', hidden: true }, 'Remove logo');
const logoPanel = h('section', { class: 'panel', 'aria-labelledby': 'org-logo-title' },
  h('h2', { id: 'org-logo-title' }, 'Logo'), logoAlert, logoImg,
  h('div', { class: 'field' }, h('label', { for: 'org-logo' }, 'Upload a logo (PNG, JPEG or WebP; it is scaled down to fit 180 × 50)'), logoInput),
  logoRemove);

view.body.append(status, form, logoPanel);

/** @param {any} p `OrganisationProfile` */
function fill(p) {
  name.input.value = p.name;
  email.input.value = p.contact.email;
  phone.input.value = p.contact.phone;
  website.input.value = p.contact.website;
  text.value = p.contact.text;
  forms.value = (p.forms_of_address || []).map((/** @type {any} */ f) => `${f.en} | ${f.nl} | ${f.de}`).join('\n');
  logoImg.hidden = !p.has_logo;
  logoRemove.hidden = !p.has_logo;
  if (p.has_logo) logoImg.src = `/api/v1/organisation/logo?v=${Date.now()}`;
}

async function load() {
  clearErrors(alert, form);
  try {
    fill(await api('/api/v1/organisation/profile'));
  } catch (err) {
    showError(err, alert);
  }
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(alert, form);
  status.textContent = '';
  const lines = forms.value.split('\n').map((l) => l.trim()).filter(Boolean);
  const parsed = lines.map((l) => {
    const [en = '', nl = '', de = ''] = l.split('|').map((s) => s.trim());
    return { en, nl, de };
  });
  try {
    fill(await api('/api/v1/organisation/profile', {
      method: 'PUT',
      body: {
        name: name.input.value,
        contact: { email: email.input.value, phone: phone.input.value, website: website.input.value, text: text.value },
        forms_of_address: parsed,
      },
    }));
    status.textContent = 'Saved.';
  } catch (err) {
    showError(err, alert, form);
  }
});

logoInput.addEventListener('change', async () => {
  const file = logoInput.files?.[0];
  if (!file) return;
  clearErrors(logoAlert);
  try {
    fill(await uploadImage('/api/v1/organisation/logo', file));
    status.textContent = 'Logo saved.';
    void refreshLogo();
  } catch (err) {
    showError(err, logoAlert);
  }
  logoInput.value = '';
});

logoRemove.addEventListener('click', async () => {
  clearErrors(logoAlert);
  try {
    await api('/api/v1/organisation/logo', { method: 'DELETE' });
    await load();
    void refreshLogo();
  } catch (err) {
    showError(err, logoAlert);
  }
});
