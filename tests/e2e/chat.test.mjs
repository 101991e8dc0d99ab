// Chat channels (issue #5) in two real browsers: the patient writes from the waiting room, the
// practitioner sees the unread badge and answers from the Messages dialog; they chat during the
// consultation; after it the invitation link opens a chat-only connection (F146) with the history.
// Text is shown as text (no HTML), links are clickable with rel="noopener noreferrer", and the
// "not meant for emergencies" notice is shown (F144).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, captureConsole, requireEnv, snap, signIn, seedOrganisation, endConsultation } from './lib/harness.mjs';
import { bookAppointment } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('chat'); });
let browser;

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

async function step(name, pages, fn) {
  try {
    return await fn();
  } catch (e) {
    for (const [label, page] of Object.entries(pages)) await snap(page, `fail-chat-${name.replace(/\W+/g, '-')}-${label}`);
    e.message = `[${name}] ${e.message}`;
    throw e;
  }
}

const HOSTILE = 'Is this ok? <img src=x onerror="window.__pwned=1"> see https://example.org/info.';

test('practitioner and patient chat before, during and after a consultation', { timeout: 150_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const patientCtx = await newContext(browser, { baseURL: env.BASE_URL, viewport: { width: 900, height: 900 } });
  const staff = await staffCtx.newPage();
  let patient = await patientCtx.newPage();
  const pages = { staff, patient };
  const consoles = [captureConsole(staff), captureConsole(patient)];
  let invitationUrl;
  try {
    await step('login and book', pages, async () => {
      await staff.goto('/');
      await staff.getByLabel('Email address').fill(org.email);
      await staff.getByLabel('Password').fill(org.password);
      await staff.getByRole('button', { name: 'Sign in' }).click();
      await staff.locator('body[data-signalling="joined"]').waitFor();
      const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Chat Testpatiënt', inMinutes: 2 });
      assert.ok(!booked.error, booked.error);
      invitationUrl = booked.invitationUrl;
      await staff.getByRole('button', { name: 'Refresh' }).click();
    });

    await step('before: the waiting patient asks', pages, async () => {
      await patient.goto(invitationUrl);
      await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
      await patient.getByRole('button', { name: 'Enter waiting room' }).click();
      await patient.locator('#waiting-view:not([hidden])').waitFor();
      await patient.locator('#patient-chat:not([hidden])').waitFor({ timeout: 10_000 });
      await patient.locator('#patient-chat summary').click();
      await patient.getByText('Chat is not meant for emergencies', { exact: false }).waitFor();
      await patient.getByLabel('Your message').fill(HOSTILE);
      await patient.getByRole('button', { name: 'Send' }).click();
      await patient.locator('#patient-chat .chat-msg.mine:not(.pending)').waitFor();
    });

    await step('before: unread badge, the practitioner answers', pages, async () => {
      await staff.locator('#messages-btn .badge:not([hidden])').waitFor({ timeout: 10_000 });
      assert.equal(await staff.locator('#messages-btn .badge').innerText(), '1');
      await staff.locator('#messages-btn').click();
      const dialog = staff.locator('#chat-dialog');
      await dialog.waitFor();
      await dialog.getByRole('button', { name: /Chat Testpatiënt/ }).click();
      const msg = dialog.locator('.chat-msg', { hasText: 'Is this ok?' });
      await msg.waitFor();
      assert.equal(await msg.locator('img').count(), 0, 'no HTML from a message');
      assert.match(await msg.locator('.chat-text').innerText(), /<img src=x onerror=/);
      const link = msg.locator('a');
      assert.equal(await link.getAttribute('href'), 'https://example.org/info');
      assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
      assert.equal(await staff.evaluate(() => window.__pwned), undefined);
      await dialog.getByText('Chat is not meant for emergencies', { exact: false }).waitFor();
      await dialog.getByLabel('Your message').fill('Hello, I will let you in shortly.');
      await dialog.getByRole('button', { name: 'Send' }).click();
      await patient.locator('#patient-chat .chat-msg', { hasText: 'let you in shortly' }).waitFor();
      await staff.locator('#messages-btn .badge').waitFor({ state: 'hidden' });
      await dialog.getByRole('button', { name: 'Close' }).click();
    });

    await step('during the consultation', pages, async () => {
      // Other tests share the server: admit this test's patient by name.
      await staff.locator('#waiting-list button.waiting-entry', { hasText: 'Chat Testpatiënt' }).click();
      await patient.locator('#room-view:not([hidden])').waitFor();
      await patient.locator('#patient-chat:not([hidden])').waitFor();
      await patient.getByLabel('Your message').fill('Can you see me?');
      await patient.getByLabel('Your message').press('Enter');
      await staff.locator('#messages-btn .badge:not([hidden])').waitFor({ timeout: 10_000 });
      await staff.locator('#messages-btn').click();
      const dialog = staff.locator('#chat-dialog');
      await dialog.locator('.chat-msg', { hasText: 'Can you see me?' }).waitFor();
      await dialog.getByLabel('Your message').fill('Yes, clearly.');
      await dialog.getByRole('button', { name: 'Send' }).click();
      await patient.locator('#patient-chat .chat-msg', { hasText: 'Yes, clearly.' }).waitFor();
      await dialog.getByRole('button', { name: 'Close' }).click();
      await snap(patient, 'chat-patient-room');
    });

    await step('after: the link opens the chat', pages, async () => {
      await endConsultation(staff);
      await patient.getByText('Your consultation has ended. You can close this window.').waitFor();
      await patient.getByRole('button', { name: 'Chat with your practitioner' }).click();
      const history = patient.locator('#patient-chat:not([hidden]) .chat-msg');
      await patient.locator('#patient-chat .chat-msg', { hasText: 'Yes, clearly.' }).waitFor({ timeout: 15_000 });
      assert.ok(await history.count() >= 4, 'the whole conversation is there');
      await patient.locator('#patient-chat').getByLabel('Your message').fill('One more question after the visit.');
      await patient.locator('#patient-chat').getByRole('button', { name: 'Send' }).click();
      await staff.locator('#messages-btn .badge:not([hidden])').waitFor({ timeout: 10_000 });
      await staff.locator('#messages-btn').click();
      await staff.locator('#chat-dialog .chat-msg', { hasText: 'One more question after the visit.' }).waitFor();
      await snap(staff, 'chat-staff-dialog');
    });

    await step('a reload keeps the conversation, without duplicates', pages, async () => {
      await staff.reload();
      await staff.locator('body[data-signalling="joined"]').waitFor();
      await staff.locator('#messages-btn').click();
      const dialog = staff.locator('#chat-dialog');
      await dialog.getByRole('button', { name: /Chat Testpatiënt/ }).click();
      await dialog.locator('.chat-msg', { hasText: 'One more question after the visit.' }).waitFor();
      assert.equal(await dialog.locator('.chat-msg', { hasText: 'Yes, clearly.' }).count(), 1);
      assert.equal(await dialog.locator('.chat-msg').count(), 5);
    });

    const problems = consoles.flat().filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l));
    assert.deepEqual(problems, [], 'no uncaught errors or CSP violations');
  } finally {
    await staffCtx.close();
    await patientCtx.close();
  }
});

test('client list: chat from the client row (F139), and an admin stops chat between visits (F142)', { timeout: 120_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const adminCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const patientCtx = await newContext(browser, { baseURL: env.BASE_URL, viewport: { width: 900, height: 900 } });
  const staff = await staffCtx.newPage();
  const admin = await adminCtx.newPage();
  const patient = await patientCtx.newPage();
  const pages = { staff, admin, patient };
  const consoles = [captureConsole(staff), captureConsole(admin), captureConsole(patient)];
  const NAME = 'Clientlist Testpatiënt';
  let invitationUrl;
  try {
    await step('the practitioner writes from the client list', pages, async () => {
      await signIn(staff, org.email);
      // Tomorrow: the link is outside its window, so it opens the chat only (F146).
      const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: NAME, inMinutes: 24 * 60 });
      assert.ok(!booked.error, booked.error);
      invitationUrl = booked.invitationUrl;
      await staff.getByRole('button', { name: 'Clients' }).click();
      const dialog = staff.locator('#clients-dialog');
      await dialog.getByLabel('Find a client by name').fill('Clientlist');
      const row = dialog.locator('.client-item', { hasText: NAME });
      await row.waitFor();
      assert.equal(await dialog.locator('.client-item').count(), 1, 'the search narrows the list');
      // Their conversations with this client: theirs, open between visits, nothing to manage.
      await row.getByRole('button', { name: /^Conversations/ }).click();
      await row.locator('.client-access-list li', { hasText: 'With you' }).waitFor();
      assert.match(await row.locator('.client-access-state').innerText(), /open between visits/);
      assert.equal(await row.getByRole('button', { name: /^(Stop|Allow)/ }).count(), 0, 'a practitioner does not manage access');
      await row.getByRole('button', { name: new RegExp(`^Chat with ${NAME}`) }).click();
      const chat = staff.locator('#chat-dialog');
      await chat.locator('.chat-title', { hasText: NAME }).waitFor();
      await chat.getByLabel('Your message').fill('Please send me your measurements before tomorrow.');
      await chat.getByRole('button', { name: 'Send' }).click();
      await chat.locator('.chat-msg.mine:not(.pending)', { hasText: 'measurements' }).waitFor();
      await chat.getByRole('button', { name: 'Close' }).click();
    });

    await step('the patient reads it from the link', pages, async () => {
      await patient.goto(invitationUrl);
      await patient.getByRole('button', { name: 'Chat with your practitioner' }).click();
      await patient.locator('#patient-chat .chat-msg', { hasText: 'measurements' }).waitFor({ timeout: 15_000 });
    });

    await step('an admin stops chat between visits', pages, async () => {
      await signIn(admin, org.adminEmail);
      await admin.getByRole('button', { name: 'Clients' }).click();
      const dialog = admin.locator('#clients-dialog');
      await dialog.getByLabel('Find a client by name').fill('Clientlist');
      const row = dialog.locator('.client-item', { hasText: NAME });
      await row.getByRole('button', { name: /^Conversations/ }).click();
      const state = row.locator('.client-access-state');
      await state.waitFor();
      assert.match(await state.innerText(), /open between visits/);
      await row.getByRole('button', { name: /^Stop/ }).click();
      await row.locator('.client-access-state[data-open="false"]').waitFor();
      assert.match(await state.innerText(), /stopped by an admin/);
      await snap(admin, 'clients-access-stopped');
    });

    await step('the patient is told, and the link no longer opens the chat', pages, async () => {
      await patient.getByText('The clinic has closed this chat between visits', { exact: false }).waitFor({ timeout: 10_000 });
      // The offer is made only when the server grants a chat token: wait for its answer.
      const asked = patient.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/invitations/chat' && r.request().method() === 'POST');
      await patient.reload();
      await patient.getByText(/too early|not open yet|opens/i).first().waitFor();
      const answer = await asked;
      assert.ok(answer.status() >= 400, `no chat token for a stopped chat (got ${answer.status()})`);
      assert.equal(await patient.getByRole('button', { name: 'Chat with your practitioner' }).count(), 0);
    });

    await step('allowed again', pages, async () => {
      const row = admin.locator('#clients-dialog .client-item', { hasText: NAME });
      await row.getByRole('button', { name: /^Allow/ }).click();
      await row.locator('.client-access-state[data-open="true"]').waitFor();
      await patient.reload();
      await patient.getByRole('button', { name: 'Chat with your practitioner' }).click();
      await patient.locator('#patient-chat .chat-msg', { hasText: 'measurements' }).waitFor({ timeout: 15_000 });
    });

    await step('the practitioner deletes the history (F143), for the patient too', pages, async () => {
      await staff.locator('#clients-dialog').getByRole('button', { name: 'Close' }).click();
      await staff.locator('#messages-btn').click();
      const chat = staff.locator('#chat-dialog');
      await chat.getByRole('button', { name: new RegExp(NAME) }).click();
      await chat.locator('.chat-msg', { hasText: 'measurements' }).waitFor();
      staff.once('dialog', (d) => d.accept());
      await chat.getByRole('button', { name: 'Delete history…' }).click();
      await chat.locator('.chat-msg', { hasText: 'measurements' }).waitFor({ state: 'detached' });
      await patient.locator('#patient-chat .chat-msg', { hasText: 'measurements' }).waitFor({ state: 'detached', timeout: 10_000 });
      await chat.getByRole('button', { name: 'Close' }).click();
    });

    const problems = consoles.flat().filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l));
    assert.deepEqual(problems, [], 'no uncaught errors or CSP violations');
  } finally {
    await staffCtx.close();
    await adminCtx.close();
    await patientCtx.close();
  }
});
