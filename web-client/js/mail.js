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

const KIND_LABEL = /** @type {Record<string, string>} */ ({
  appointment_invitation: 'Invitation',
  appointment_update: 'Appointment changed',
  appointment_cancellation: 'Cancellation',
  appointment_reminder: 'Reminder',
  staff_invitation: 'Staff invitation',
  password_reset: 'Password reset',
  test: 'Test',
});

// ---------------------------------------------------------------- markup

const badge = h('span', { class: 'badge mail-failed-badge', hidden: true });
const pageBtn = h('button', { type: 'button', id: 'mail-page-btn', class: 'btn btn-quiet', hidden: true }, 'Sent mail ', badge);
$('settings-page-btn').after(pageBtn);

const error = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
const status = h('p', { class: 'hint', role: 'status' });
const testTo = h('input', { id: 'mail-test-to', type: 'email', required: true, maxlength: '254', autocomplete: 'email' });
const testForm = h('form', { class: 'panel', novalidate: true },
  h('h2', {}, 'Send a test mail'),
  h('p', { class: 'hint' }, 'Checks the mail set-up: the message is listed below, and sent when a mail server is configured.'),
  h('div', { class: 'field' }, h('label', { for: 'mail-test-to' }, 'Test address'), testTo),
  h('button', { type: 'submit', class: 'btn btn-primary' }, 'Send test mail'));
const statusFilter = h('select', { id: 'mail-status-filter' },
  h('option', { value: '' }, 'All'),
  h('option', { value: 'failed' }, 'Failed'),
  h('option', { value: 'queued' }, 'Queued'),
  h('option', { value: 'sent' }, 'Sent'),
  h('option', { value: 'held' }, 'Held'),
  h('option', { value: 'no_server' }, 'Not sent: no mail server'));
const tableBody = h('tbody');
const table = h('table', { class: 'mail-table' },
  h('caption', {}, 'Messages, newest first'),
  h('thead', {}, h('tr', {}, ...['Recipient', 'Subject', 'Kind', 'Status', 'When'].map((t) => h('th', { scope: 'col' }, t)))),
  tableBody);
const empty = h('p', { class: 'hint', hidden: true }, 'No messages yet.');
const more = h('button', { type: 'button', class: 'btn btn-quiet btn-small', hidden: true }, 'Show older messages');

const msgTitle = h('h2', { id: 'mail-message-title', tabindex: '-1' });
const msgMeta = h('p', {});
const msgError = h('p', { class: 'alert alert-error', hidden: true });
const msgAck = h('p', { class: 'hint', role: 'status' });
const ackBtn = h('button', { type: 'button', class: 'btn btn-secondary btn-small', hidden: true }, 'Mark as dealt with');
const msgHeaders = h('pre', { 'aria-label': 'Headers' });
const msgText = h('pre', { 'aria-label': 'Plain text' });
const msgIcs = h('pre', { 'aria-label': 'Calendar file' });
const icsPart = h('details', {}, h('summary', {}, 'Calendar file (invite.ics)'), msgIcs);
const frame = /** @type {HTMLIFrameElement} */ (h('iframe', { title: 'Message as HTML', sandbox: '', referrerpolicy: 'no-referrer' }));
frame.style.width = '100%';
frame.style.minHeight = '20rem';
frame.style.border = '1px solid #ccc';
frame.style.background = '#fff';
const message = h('section', { class: 'panel', 'aria-labelledby': 'mail-message-title', hidden: true },
  msgTitle, msgMeta, msgError, msgAck, ackBtn,
  h('h3', {}, 'As HTML'), frame,
  h('h3', {}, 'As plain text'), msgText,
  icsPart,
  h('details', {}, h('summary', {}, 'Headers'), msgHeaders));
for (const pre of [msgHeaders, msgText, msgIcs]) {
  pre.style.whiteSpace = 'pre-wrap';
  pre.style.overflowWrap = 'anywhere';
}

const back = h('button', { type: 'button', class: 'btn btn-quiet btn-small' }, 'Back to the waiting room');
const view = h('section', { id: 'mail-view', class: 'settings-page', 'aria-labelledby': 'mail-title', hidden: true },
  h('div', { class: 'page-head' }, h('h1', { id: 'mail-title', tabindex: '-1' }, 'Sent mail'), back),
  error, status, testForm,
  h('div', { class: 'panel' },
    h('div', { class: 'field' }, h('label', { for: 'mail-status-filter' }, 'Show'), statusFilter),
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
  pageBtn.setAttribute('aria-label', count ? `Sent mail, ${count} failed` : 'Sent mail');
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
  const open = h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => { void show(m.id); } }, m.subject || '(no subject)');
  const st = h('td', {}, m.acknowledged ? `${m.status_text} (dealt with)` : m.status_text);
  if (m.status === 'failed' && !m.acknowledged) st.classList.add('mail-failed');
  return h('tr', { dataset: { mailId: m.id, status: m.status } },
    h('td', {}, m.to_name ? `${m.to_name} <${m.to_address}>` : m.to_address),
    h('td', {}, open),
    h('td', {}, KIND_LABEL[m.kind] || m.kind),
    st,
    h('td', {}, when(m.sent_at || m.created_at)));
}

/** @param {string} iso */
function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
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
  msgAck.textContent = ack ? `Dealt with by ${ack.by_name || 'a former staff member'}, ${when(ack.at)}.` : '';
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
    msgTitle.textContent = mail.subject || '(no subject)';
    msgMeta.textContent = `To ${mail.to_name ? `${mail.to_name} <${mail.to_address}>` : mail.to_address} · ${KIND_LABEL[mail.kind] || mail.kind} · ${mail.status_text}` +
      (mail.attempts ? ` · ${mail.attempts} attempt${mail.attempts === 1 ? '' : 's'}` : '');
    msgError.hidden = !mail.last_error;
    msgError.textContent = mail.last_error ? `Last error: ${mail.last_error}` : '';
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
    showError('Enter the address to send the test mail to.');
    testTo.focus();
    return;
  }
  try {
    const { mail } = await api('/api/v1/mail/test', { method: 'POST', body: { to } });
    announce(status, `Test mail to ${to} recorded.`);
    testTo.value = '';
    await load(true);
    // The worker sends (or keeps) it in a moment: show the outcome once it is known.
    for (let i = 0; i < 20; i++) {
      const { mail: now } = await api(`/api/v1/mail/${encodeURIComponent(mail.id)}`);
      if (now.status !== 'queued' || now.attempts > 0) {
        await load(true);
        announce(status, `Test mail to ${to}: ${now.status_text}.`);
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
    if (err.status === 403) return 'Only organisation and department admins see the sent mail.';
    if (err.status === 422) return err.message || 'Check the address.';
    if (err.status === 429) return 'Too many test mails. Wait a minute and try again.';
    if (err.status === 0) return 'No connection to the server. Try again.';
    return err.message || 'Something went wrong.';
  }
  return 'Something went wrong.';
}
