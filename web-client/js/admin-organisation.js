// @ts-check
// "Organisation" page (issue #12; F3, F10, F11) for organisation admins: the organisation's name,
// logo (scaled server-side), the contact details shown to patients and the practitioners' forms
// of address in English, Dutch and German. API: /api/v1/organisation/profile and
// /api/v1/organisation/logo (clinic/openapi.json).

import { api } from './api.js';
import { h } from './dom.js';
import { page, onMe, showError, clearErrors, field, alertBox, statusLine, uploadImage, refreshLogo, tx } from './admin-common.js';
import { t, setText, clearText } from './i18n.js';

const view = page({ id: 'organisation-view', title: 'staff.org.title', button: 'staff.org.title', onEnter: () => void load() });
onMe((m) => view.setAllowed(m?.role === 'organisation_admin'));

const alert = alertBox();
const status = statusLine();
const name = field({ id: 'org-name', label: 'staff.org.name', name: 'name', attrs: { maxlength: 100, required: true } });
const email = field({ id: 'org-contact-email', label: 'staff.org.email', name: 'contact.email', type: 'email', attrs: { maxlength: 254 } });
const phone = field({ id: 'org-contact-phone', label: 'staff.org.phone', name: 'contact.phone', type: 'tel', attrs: { maxlength: 32 } });
const website = field({ id: 'org-contact-website', label: 'staff.org.website', name: 'contact.website', type: 'url', attrs: { maxlength: 200 }, hint: 'staff.org.website_hint' });
const text = h('textarea', { id: 'org-contact-text', name: 'contact.text', rows: 3, maxlength: 1000, 'aria-describedby': 'org-contact-text-error' });
const forms = h('textarea', { id: 'org-forms', rows: 4, 'aria-describedby': 'org-forms-hint org-forms-error' });
const form = h('form', { class: 'panel', novalidate: true },
  alert,
  name.wrap,
  h('fieldset', {}, tx('legend', 'staff.org.contact'),
    email.wrap, phone.wrap, website.wrap,
    h('div', { class: 'field' }, tx('label', 'staff.org.address', { for: 'org-contact-text' }), text,
      h('p', { id: 'org-contact-text-error', class: 'field-error', 'data-error-for': 'contact.text', hidden: true }))),
  h('div', { class: 'field' }, tx('label', 'staff.org.forms', { for: 'org-forms' }), forms,
    tx('p', 'staff.org.forms_hint', { id: 'org-forms-hint', class: 'hint field-hint' }),
    h('p', { id: 'org-forms-error', class: 'field-error', 'data-error-for': 'forms_of_address', hidden: true })),
  tx('button', 'staff.org.save', { type: 'submit', class: 'btn btn-primary' }));

const logoImg = h('img', { alt: t('staff.org.logo_alt'), 'data-i18n-attr': 'alt:staff.org.logo_alt', class: 'admin-logo', hidden: true });
const logoInput = h('input', { id: 'org-logo', type: 'file', accept: 'image/png,image/jpeg,image/webp' });
const logoAlert = alertBox();
const logoRemove = tx('button', 'staff.remove_logo', { type: 'button', class: 'btn btn-quiet btn-small', hidden: true });
const logoPanel = h('section', { class: 'panel', 'aria-labelledby': 'org-logo-title' },
  tx('h2', 'staff.org.logo', { id: 'org-logo-title' }), logoAlert, logoImg,
  h('div', { class: 'field' }, tx('label', 'staff.org.upload_logo', { for: 'org-logo' }), logoInput),
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
  clearText(status);
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
    setText(status, 'staff.org.saved');
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
    setText(status, 'staff.org.logo_saved');
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
