// "Sent mail" (issue #12): an organisation admin sends a test mail from the page; with no mail
// server configured (the demo) it is listed as "not sent: no mail server configured" and shown as
// the recipient would get it: the HTML in a sandboxed frame, the plain text and the headers.
// A practitioner has no "Sent mail". "Do not send e-mails" is switched on from the Settings page. Run through tests/e2e/run.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, requireEnv, snap, signIn, seedOrganisation } from './lib/harness.mjs';
import { apiCall } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
let org;
let browser;
before(async () => { org = await seedOrganisation('mail'); });
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('an admin sends a test mail and sees it listed and rendered', { timeout: 90_000 }, async () => {
  const adminCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const admin = await adminCtx.newPage();
  const staff = await staffCtx.newPage();
  try {
    await signIn(staff, org.email);
    await staff.locator('#walkin-toggle:not([hidden])').waitFor();
    assert.equal(await staff.getByRole('button', { name: /^Sent mail/ }).isVisible(), false);

    await signIn(admin, org.adminEmail);
    await admin.getByRole('button', { name: /^Sent mail/ }).click();
    await admin.getByRole('heading', { name: 'Sent mail' }).waitFor();
    await admin.getByLabel('Test address').fill('reception@mail-test.example');
    await admin.getByRole('button', { name: 'Send test mail' }).click();

    const row = admin.locator('tr[data-status="no_server"]', { hasText: 'reception@mail-test.example' });
    await row.waitFor();
    assert.match(await row.innerText(), /not sent: no mail server configured/);
    assert.match(await row.innerText(), /Test/);

    await row.getByRole('button', { name: /Consultroom test message/ }).click();
    await admin.getByRole('heading', { name: /Consultroom test message/ }).waitFor();
    // Scoped to the Sent mail page: the template editor has a "Plain text" field too.
    const mailView = admin.locator('#mail-view');
    assert.match(await mailView.getByLabel('Plain text', { exact: true }).innerText(), /This is a test message from Consultroom/);
    const frame = admin.getByTitle('Message as HTML');
    assert.equal(await frame.getAttribute('sandbox'), '');
    await admin.frameLocator('iframe[title="Message as HTML"]').getByRole('heading', { name: 'Test message' }).waitFor();
    assert.match(await mailView.getByLabel('Headers', { exact: true }).textContent(), /Message-ID: </);

    // "Do not send e-mails" (F80) is an organisation setting on the Settings page.
    await admin.getByRole('button', { name: 'Settings' }).click();
    // The form is filled once the settings have loaded (screen sharing is on by default).
    await admin.locator('#settings-form input[name="screen_sharing"]:checked').waitFor();
    await admin.getByLabel(/Do not send e-mails/).check();
    await admin.getByRole('button', { name: 'Save settings' }).click();
    await admin.locator('#settings-saved:not([hidden])').waitFor();
    assert.equal((await apiCall(admin, 'GET', '/api/v1/organisation/settings')).body.do_not_send_emails, true);
  } catch (e) {
    await snap(admin, 'fail-mail-admin');
    throw e;
  } finally {
    await adminCtx.close();
    await staffCtx.close();
  }
});
