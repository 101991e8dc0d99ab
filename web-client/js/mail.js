// @ts-check
// "Sent mail" in the staff app (issue #12): organisation and department admins see the outbox
// (GET /api/v1/mail), each message as the recipient gets it (GET /api/v1/mail/{id}: headers, plain
// text, the .ics; the HTML through GET /api/v1/mail/{id}/html in an iframe with sandbox="" and a
// strict CSP, so a mail's HTML runs no script and loads nothing remote), and can send a test mail
// (POST /api/v1/mail/test). Permanent failures the admin is to act on show as a red count on the
// "Sent mail" button; "Mark as dealt with" (POST /api/v1/mail/{id}/acknowledge) takes a failed
// mail out of that count and shows who did it and when. Other screens open one message with the
// document event `consultroom:open-mail` (detail: the mail id), e.g. a client's communication
// history (client-register.js), so they need not import this module.
//
// Self-contained like org-settings.js: it builds its own button and page (so index.html only loads
// this script), follows the staff app's views through nav.js and shows its page as `mail-view`.

import { api, ApiError } from './api.js';
import { $, h, announce } from './dom.js';
import { navigate, registerView, followViews, currentView } from './nav.js';
import { t, formatDate, errorText as apiErrorText } from './i18n.js';
import { tx } from './admin-common.js';

/** Catalogue keys of the mail kinds. */
const KIND_KEY = /** @type {Record<string, string>} */ ({
  appointment_invitation: 'staff.mail.kind.appointment_invitation',
  appointment_update: 'staff.mail.kind.appointment_update',
  appointment_cancellation: 'staff.mail.kind.appointment_cancellation',
  appointment_reminder: 'staff.mail.kind.appointment_reminder',
  staff_invitation: 'staff.mail.kind.staff_invitation',
  password_reset: 'staff.mail.kind.password_reset',
  test: 'staff.mail.kind.test',
});
/** @param {string} kind */
const kindLabel = (kind) => (KIND_KEY[kind] ? t(KIND_KEY[kind]) : kind);

// ---------------------------------------------------------------- markup

const badge = h('span', { class: 'badge mail-failed-badge', hidden: true });
const pageBtn = h('button', { type: 'button', id: 'mail-page-btn', class: 'btn btn-quiet', hidden: true }, tx('span', 'staff.mail.title'), ' ', badge);
$('settings-page-btn').after(pageBtn);

const error = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
const status = h('p', { class: 'hint', role: 'status' });
const testTo = h('input', { id: 'mail-test-to', type: 'email', required: true, maxlength: '254', autocomplete: 'email' });
const testForm = h('form', { class: 'panel', novalidate: true },
  tx('h2', 'staff.mail.test_title'),
  tx('p', 'staff.mail.test_hint', { class: 'hint' }),
  h('div', { class: 'field' }, tx('label', 'staff.mail.test_address', { for: 'mail-test-to' }), testTo),
  tx('button', 'staff.mail.send_test', { type: 'submit', class: 'btn btn-primary' }));
const statusFilter = h('select', { id: 'mail-status-filter' },
  tx('option', 'staff.mail.all', { value: '' }),
  tx('option', 'staff.mail.failed', { value: 'failed' }),
  tx('option', 'staff.mail.queued', { value: 'queued' }),
  tx('option', 'staff.mail.sent', { value: 'sent' }),
  tx('option', 'staff.mail.held', { value: 'held' }),
  tx('option', 'staff.mail.no_server', { value: 'no_server' }));
const tableBody = h('tbody');
const table = h('table', { class: 'mail-table' },
  tx('caption', 'staff.mail.caption'),
  h('thead', {}, h('tr', {}, ...['staff.mail.recipient', 'staff.mail.subject', 'staff.mail.kind', 'staff.admin.status', 'staff.mail.when'].map((key) => tx('th', key, { scope: 'col' })))),
  tableBody);
const empty = tx('p', 'staff.mail.empty', { class: 'hint', hidden: true });
const more = tx('button', 'staff.mail.more', { type: 'button', class: 'btn btn-quiet btn-small', hidden: true });

const msgTitle = h('h2', { id: 'mail-message-title', tabindex: '-1' });
const msgMeta = h('p', {});
const msgError = h('p', { class: 'alert alert-error', hidden: true });
const msgAck = h('p', { class: 'hint', role: 'status' });
const ackBtn = tx('button', 'staff.mail.ack', { type: 'button', class: 'btn btn-secondary btn-small', hidden: true });
const msgHeaders = h('pre', { 'aria-label': t('staff.mail.headers'), 'data-i18n-attr': 'aria-label:staff.mail.headers' });
const msgText = h('pre', { 'aria-label': t('staff.mail.plain_text'), 'data-i18n-attr': 'aria-label:staff.mail.plain_text' });
const msgIcs = h('pre', { 'aria-label': t('staff.mail.calendar_file'), 'data-i18n-attr': 'aria-label:staff.mail.calendar_file' });
const icsPart = h('details', {}, tx('summary', 'staff.mail.calendar_summary'), msgIcs);
const frame = /** @type {HTMLIFrameElement} */ (h('iframe', { title: t('staff.mail.as_html_title'), 'data-i18n-attr': 'title:staff.mail.as_html_title', sandbox: '', referrerpolicy: 'no-referrer' }));
frame.style.width = '100%';
frame.style.minHeight = '20rem';
frame.style.border = '1px solid #ccc';
frame.style.background = '#fff';
const message = h('section', { class: 'panel', 'aria-labelledby': 'mail-message-title', hidden: true },
  msgTitle, msgMeta, msgError, msgAck, ackBtn,
  tx('h3', 'staff.mail.as_html'), frame,
  tx('h3', 'staff.mail.as_plain_text'), msgText,
  icsPart,
  h('details', {}, tx('summary', 'staff.mail.headers'), msgHeaders));
for (const pre of [msgHeaders, msgText, msgIcs]) {
  pre.style.whiteSpace = 'pre-wrap';
  pre.style.overflowWrap = 'anywhere';
}

const back = tx('button', 'staff.back_to_the_waiting_room', { type: 'button', class: 'btn btn-quiet btn-small' });
const view = h('section', { id: 'mail-view', class: 'settings-page', 'aria-labelledby': 'mail-title', hidden: true },
  h('div', { class: 'page-head' }, tx('h1', 'staff.mail.title', { id: 'mail-title', tabindex: '-1' }), back),
  error, status, testForm,
  h('div', { class: 'panel' },
    h('div', { class: 'field' }, tx('label', 'staff.sched.show', { for: 'mail-status-filter' }), statusFilter),
    table, empty, more),
  message);
$('main').append(view);

// ---------------------------------------------------------------- state

const PAGE = 50;
/** @type {{ role: string | null, offset: number, total: number }} */
const state = { role: null, offset: 0, total: 0 };
/** @type {string | null} the message shown below the list */
let shown = null;

registerView('mail-view');
followViews(onViewChange);

/** @param {string} v the view just shown */
function onViewChange(v) {
  if (v === 'login-view') {
    state.role = null;
    pageBtn.hidden = true;
    return;
  }
  const signedIn = v === 'dashboard-view' || v === 'room-view' || v === 'walkin-view' || v === 'settings-view' || v === 'mail-view';
  if (signedIn && state.role === null) void start();
}

async function start() {
  try {
    const me = await api('/api/v1/me');
    state.role = me.role;
  } catch {
    return;
  }
  const admin = state.role === 'organisation_admin' || state.role === 'department_admin';
  pageBtn.hidden = !admin;
  if (admin) void refreshBadge();
}

async function refreshBadge() {
  try {
    const page = await api('/api/v1/mail?limit=1');
    showBadge(page.failed_mail_count);
  } catch { /* the page shows errors; the badge stays as it was */ }
}

/** @param {number} count */
function showBadge(count) {
  badge.hidden = !count;
  badge.textContent = count ? String(count) : '';
  pageBtn.setAttribute('aria-label', count ? t('staff.mail.badge_label', { count }) : t('staff.mail.title'));
}

// ---------------------------------------------------------------- the page

pageBtn.addEventListener('click', () => {
  if (currentView() === 'room-view') return; // never hide a running consultation
  navigate('mail-view');
  message.hidden = true;
  void load(true);
});
back.addEventListener('click', () => navigate('dashboard-view', { focus: false }));
statusFilter.addEventListener('change', () => void load(true));
more.addEventListener('click', () => void load(false));

/** @param {boolean} fresh start from the newest instead of appending older ones */
async function load(fresh) {
  showError('');
  if (fresh) state.offset = 0;
  const params = new URLSearchParams({ limit: String(PAGE), offset: String(state.offset) });
  if (statusFilter.value) params.set('status', statusFilter.value);
  try {
    const page = await api(`/api/v1/mail?${params}`);
    if (fresh) tableBody.replaceChildren();
    for (const m of page.mails) tableBody.append(row(m));
    state.total = page.total;
    state.offset += page.mails.length;
    empty.hidden = state.total > 0;
    table.hidden = state.total === 0;
    more.hidden = state.offset >= state.total;
    showBadge(page.failed_mail_count);
  } catch (err) {
    showError(errorText(err));
  }
}

/** @param {any} m a MailSummary (clinic/openapi.json) */
function row(m) {
  const open = h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => { void show(m.id); } }, m.subject || t('staff.mail.no_subject'));
  const st = h('td', {}, m.acknowledged ? t('staff.mail.status_dealt_with', { status: m.status_text }) : m.status_text);
  if (m.status === 'failed' && !m.acknowledged) st.classList.add('mail-failed');
  return h('tr', { dataset: { mailId: m.id, status: m.status } },
    h('td', {}, m.to_name ? `${m.to_name} <${m.to_address}>` : m.to_address),
    h('td', {}, open),
    h('td', {}, kindLabel(m.kind)),
    st,
    h('td', {}, when(m.sent_at || m.created_at)));
}

/** @param {string} iso */
function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : formatDate(d, { dateStyle: 'medium', timeStyle: 'short' });
}

// Another screen asks to open a message.
document.addEventListener('consultroom:open-mail', (ev) => {
  const id = /** @type {CustomEvent<string>} */ (ev).detail;
  if (typeof id !== 'string' || currentView() === 'room-view') return; // never hide a consultation
  navigate('mail-view');
  void load(true);
  void show(id);
});

/** @param {any} mail a Mail (clinic/openapi.json) */
function showAck(mail) {
  const ack = mail.acknowledged;
  msgAck.textContent = ack ? t('staff.mail.dealt_with_by', { name: ack.by_name || t('staff.mail.former_staff'), when: when(ack.at) }) : '';
  msgAck.hidden = !ack;
  ackBtn.hidden = mail.status !== 'failed' || Boolean(ack);
}

ackBtn.addEventListener('click', async () => {
  if (!shown) return;
  showError('');
  try {
    const res = await api(`/api/v1/mail/${encodeURIComponent(shown)}/acknowledge`, { method: 'POST' });
    showAck(res.mail);
    showBadge(res.failed_mail_count);
    await load(true);
    msgAck.focus();
  } catch (err) {
    showError(errorText(err));
  }
});
msgAck.setAttribute('tabindex', '-1');

/** @param {string} id */
async function show(id) {
  showError('');
  shown = id;
  try {
    const { mail } = await api(`/api/v1/mail/${encodeURIComponent(id)}`);
    msgTitle.textContent = mail.subject || t('staff.mail.no_subject');
    msgMeta.textContent = `${t('staff.mail.to', { to: mail.to_name ? `${mail.to_name} <${mail.to_address}>` : mail.to_address })} · ${kindLabel(mail.kind)} · ${mail.status_text}` +
      (mail.attempts ? ` · ${t('staff.mail.attempts', { count: mail.attempts })}` : '');
    msgError.hidden = !mail.last_error;
    msgError.textContent = mail.last_error ? t('staff.mail.last_error', { error: mail.last_error }) : '';
    showAck(mail);
    msgHeaders.textContent = mail.headers;
    msgText.textContent = mail.text_body;
    icsPart.hidden = !mail.calendar_ics;
    msgIcs.textContent = mail.calendar_ics || '';
    // The HTML comes from its own URL with a CSP of its own; the frame runs no script.
    frame.src = `/api/v1/mail/${encodeURIComponent(mail.id)}/html`;
    message.hidden = false;
    msgTitle.focus();
  } catch (err) {
    showError(errorText(err));
  }
}

testForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError('');
  const to = testTo.value.trim();
  if (!to) {
    showError(t('staff.mail.enter_address'));
    testTo.focus();
    return;
  }
  try {
    const { mail } = await api('/api/v1/mail/test', { method: 'POST', body: { to } });
    announce(status, t('staff.mail.test_recorded', { to }));
    testTo.value = '';
    await load(true);
    // The worker sends (or keeps) it in a moment: show the outcome once it is known.
    for (let i = 0; i < 20; i++) {
      const { mail: now } = await api(`/api/v1/mail/${encodeURIComponent(mail.id)}`);
      if (now.status !== 'queued' || now.attempts > 0) {
        await load(true);
        announce(status, t('staff.mail.test_status', { to, status: now.status_text }));
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } catch (err) {
    showError(errorText(err));
  }
});

/** @param {string} text */
function showError(text) {
  error.hidden = !text;
  error.textContent = text;
}

/** @param {unknown} err */
function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 403) return t('staff.mail.forbidden');
    if (err.status === 422) return err.message ? apiErrorText(err) : t('staff.mail.check_address');
    if (err.status === 429) return t('staff.mail.too_many');
    if (err.status === 0) return t('staff.mail.no_connection');
    return err.message ? apiErrorText(err) : t('staff.something_wrong');
  }
  return t('staff.something_wrong');
}
