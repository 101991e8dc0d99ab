// A staff invitation by e-mail, end to end (issue #12): the organisation admin invites a staff
// member on the Staff page; the invitation mail (recorded in the outbox with the link, in one
// transaction) is sent by the server's job worker to the SMTP sink that run.sh starts in the
// namespace (CR_WITH_SMTP=1, read through lib/mailbox.mjs); the invited person follows the link
// from the received mail in a fresh browser, sets a password, and signs in with it. The mail is
// listed as sent, with the Message-ID that arrived. Run through tests/e2e/run.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { launchBrowser, newContext, requireEnv, snap, signIn, seedOrganisation, waitFor } from './lib/harness.mjs';
import { apiCall } from './lib/clinic-api.mjs';
import { waitForMail, linkIn } from './lib/mailbox.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD', 'E2E_MAILDIR');
let org;
let browser;
before(async () => { org = await seedOrganisation('staff-invite'); });
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('an invited staff member gets the mail, sets a password through its link and signs in', { timeout: 120_000 }, async () => {
  const adminCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const invitedCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const loginCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const admin = await adminCtx.newPage();
  const invited = await invitedCtx.newPage();
  const again = await loginCtx.newPage();
  const address = `ina-${randomUUID().slice(0, 8)}@staff-invite.example`;
  const password = 'ina invited passphrase';
  try {
    await signIn(admin, org.adminEmail);
    await admin.getByRole('button', { name: 'Staff', exact: true }).click();
    // Scoped to the Staff page: other pages have "Name" and "Email address" fields too.
    const view = admin.locator('#staff-admin-view');
    await view.getByRole('heading', { name: 'Staff', exact: true }).waitFor();
    await view.locator('tr', { hasText: org.adminEmail }).waitFor();
    await view.getByRole('textbox', { name: 'Name', exact: true }).fill('Ina Invited');
    await view.getByRole('textbox', { name: 'Email address', exact: true }).fill(address);
    await view.locator('#invite-department').selectOption({ label: 'General practice' });
    await view.getByRole('button', { name: 'Send invitation' }).click();
    const linkField = view.getByRole('textbox', { name: 'Set-password link' });
    await linkField.waitFor();
    const shown = await linkField.inputValue();
    assert.match(await view.locator('#set-password-link-note').innerText(), new RegExp(`e-mail with this link is on its way to ${address.replace(/[.]/g, '\\.')}`));
    await view.locator('tr', { hasText: address }).getByText('Invited', { exact: true }).waitFor();

    // The mail arrives at the SMTP sink: the built-in English invitation, to that address only.
    const mail = await waitForMail(env.E2E_MAILDIR, { to: address, subject: /You are invited to Consultroom/, timeoutMs: 30_000 });
    assert.deepEqual(mail.to, [address]);
    assert.match(mail.subject, new RegExp(org.organisation.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.match(mail.text, /Dear Ina Invited,/);
    assert.equal(mail.calendar, null);
    const link = linkIn(mail.text, '/set-password');
    assert.equal(link, shown, 'the mail carries the link the admin was shown');
    assert.ok(link.startsWith(`${env.BASE_URL}/set-password#`), link);
    assert.ok(mail.html.includes(link), 'the HTML part carries the link too');

    // Listed on "Sent mail" as sent, with the Message-ID that arrived.
    const row = await waitFor(async () => {
      const list = await apiCall(admin, 'GET', '/api/v1/mail');
      return list.body?.mails?.find((m) => m.to_address === address && m.kind === 'staff_invitation' && m.status === 'sent');
    }, { timeoutMs: 20_000, what: 'the invitation listed as sent' });
    const detail = await apiCall(admin, 'GET', `/api/v1/mail/${row.id}`);
    assert.equal(detail.body.mail.message_id, mail.messageId);

    // The invited person follows the link from the mail in a fresh browser and sets a password.
    await invited.goto(link);
    await invited.getByText(`Welcome, Ina Invited (${address}).`).waitFor();
    await invited.getByLabel('New password').fill(password);
    await invited.getByLabel('Repeat the password').fill(password);
    await invited.getByRole('button', { name: 'Set password and sign in' }).click();
    await invited.waitForURL((u) => u.pathname === '/');
    await invited.locator('body[data-signalling="joined"]').waitFor({ timeout: 30_000 });

    // The link worked once; the new password signs in (another fresh browser).
    await signIn(again, address, { password });
    const me = await apiCall(again, 'GET', '/api/v1/me');
    assert.equal(me.status, 200);
    assert.equal(me.body.email, address);
    const reused = await apiCall(again, 'POST', '/api/v1/auth/set-password/check', { token: new URL(link).hash.slice(1) });
    assert.equal(reused.status, 410, 'the link is used up');
    await admin.reload();
    await admin.getByRole('button', { name: 'Staff', exact: true }).click();
    await view.locator('tr', { hasText: address }).getByText('Active', { exact: true }).waitFor();
  } catch (e) {
    await snap(admin, 'fail-staff-invite-admin');
    await snap(invited, 'fail-staff-invite-invited');
    throw e;
  } finally {
    await adminCtx.close();
    await invitedCtx.close();
    await loginCtx.close();
  }
});
