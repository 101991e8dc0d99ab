// "Sent mail" (issue #12): an organisation admin sends a test mail from the page. On the shared
// e2e server (run.sh gives it an SMTP sink, CR_WITH_SMTP=1) the mail is sent: listed as "sent",
// it arrives at the sink with the Message-ID the page shows, and the page shows it as the
// recipient gets it: the HTML in a sandboxed frame, the plain text and the headers. A demo server
// of this file's own, started without --smtp-url (a fresh SQLite database in a temp folder, also
// when the shared server runs on PostgreSQL), lists its test mail as "not sent: no mail server
// configured". A practitioner has no "Sent mail". "Do not send e-mails" is switched on from the
// Settings page. Run through tests/e2e/run.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchBrowser, newContext, requireEnv, snap, signIn, seedOrganisation, waitFor } from './lib/harness.mjs';
import { apiCall } from './lib/clinic-api.mjs';
import { readMailbox, waitForMail } from './lib/mailbox.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD', 'CONSULTROOM_BIN', 'E2E_MAILDIR');
/** The demo's organisation admin (clinic/src/demo.rs ADMIN_EMAIL); same password as the practitioner. */
const DEMO_ADMIN = 'admin@consultroom.test';
let org;
let browser;
before(async () => { org = await seedOrganisation('mail'); });
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/**
 * Starts `consultroom demo` of its own (no --smtp-url) on 127.0.0.1 port 0 over a temp data dir,
 * the way tests/e2e/lib/server.sh starts the shared one; resolves `{ base, stop }`.
 */
async function startOwnDemo(password) {
  const dataDir = mkdtempSync(join(tmpdir(), 'consultroom-mail-e2e-'));
  const log = [];
  const childEnv = { ...process.env, RUST_LOG: 'info' };
  delete childEnv.CONSULTROOM_SMTP_URL;
  const proc = spawn(env.CONSULTROOM_BIN, ['demo', '--http', '127.0.0.1:0', '--admin', '127.0.0.1:0',
    '--media-bind', '127.0.0.1:0', '--media-announce', '127.0.0.1', '--data-dir', dataDir,
    '--demo-password', password, '--drain-window-secs', '0'],
  { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { log.push(String(d)); });
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      await waitFor(() => proc.exitCode !== null || proc.signalCode !== null, { timeoutMs: 30_000, what: 'own demo exit' })
        .catch(() => proc.kill('SIGKILL'));
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor(() => /^consultroom ready .*http=(\S+)/m.test(out) || proc.exitCode !== null, { timeoutMs: 60_000, what: 'own demo ready' });
  } catch (e) {
    await stop();
    throw e;
  }
  const m = /^consultroom ready .*http=(\S+)/m.exec(out);
  if (!m) {
    await stop();
    throw new Error(`own demo did not start: ${log.join('').slice(-2000)}`);
  }
  assert.match(log.join(''), /no mail server configured/);
  const invitation = /^demo invitation_url=(\S+)/m.exec(out);
  return { base: m[1], stop, invitationUrl: invitation ? invitation[1] : '' };
}

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
    // Scoped to the Sent mail page: the template editor has a "Plain text" field too.
    const mailView = admin.locator('#mail-view');
    await mailView.getByRole('heading', { name: 'Sent mail' }).waitFor();
    await mailView.getByLabel('Test address').fill('reception@mail-test.example');
    await mailView.getByRole('button', { name: 'Send test mail' }).click();

    // Sent through the SMTP sink: listed as sent (the page shows the outcome once it is known)
    // and received there, with the same Message-ID.
    const row = mailView.locator('tr[data-status="sent"]', { hasText: 'reception@mail-test.example' });
    await row.waitFor({ timeout: 30_000 });
    assert.match(await row.innerText(), /sent/);
    assert.match(await row.innerText(), /Test/);
    const received = await waitForMail(env.E2E_MAILDIR, { to: 'reception@mail-test.example', subject: /Consultroom test message/, timeoutMs: 30_000 });
    assert.match(received.text, /This is a test message from Consultroom/);
    const listed = await apiCall(admin, 'GET', '/api/v1/mail');
    const entry = listed.body.mails.find((m) => m.to_address === 'reception@mail-test.example' && m.kind === 'test');
    assert.equal(entry.status, 'sent');
    assert.equal((await apiCall(admin, 'GET', `/api/v1/mail/${entry.id}`)).body.mail.message_id, received.messageId);

    await row.getByRole('button', { name: /Consultroom test message/ }).click();
    await mailView.getByRole('heading', { name: /Consultroom test message/ }).waitFor();
    assert.match(await mailView.getByLabel('Plain text', { exact: true }).innerText(), /This is a test message from Consultroom/);
    const frame = admin.getByTitle('Message as HTML');
    assert.equal(await frame.getAttribute('sandbox'), '');
    await admin.frameLocator('iframe[title="Message as HTML"]').getByRole('heading', { name: 'Test message' }).waitFor();
    assert.ok((await mailView.getByLabel('Headers', { exact: true }).textContent()).includes(`Message-ID: ${received.messageId}`));

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

test('without a mail server (a demo of its own) the demo invitation and the test mail are listed as not sent', { timeout: 120_000 }, async () => {
  const own = await startOwnDemo(env.DEMO_PASSWORD);
  const ctx = await newContext(browser, { baseURL: own.base });
  const admin = await ctx.newPage();
  try {
    await signIn(admin, DEMO_ADMIN);
    await admin.getByRole('button', { name: /^Sent mail/ }).click();
    const mailPage = admin.locator('#mail-view');
    await mailPage.getByRole('heading', { name: 'Sent mail' }).waitFor();
    // The demo's own invitation, as the patient would get it, with the link the demo printed.
    assert.ok(own.invitationUrl, 'the demo printed its invitation link');
    const invitation = mailPage.locator('tr[data-status="no_server"]', { hasText: 'jan.jansen@patients.consultroom.test' });
    await invitation.waitFor();
    await invitation.getByRole('button').first().click();
    await mailPage.getByLabel('Plain text', { exact: true }).getByText(own.invitationUrl, { exact: false }).waitFor();
    assert.match(await mailPage.getByLabel('Headers', { exact: true }).textContent(), /Message-ID: </);
    await mailPage.getByLabel('Test address').fill('frontdesk@mail-test.example');
    await mailPage.getByRole('button', { name: 'Send test mail' }).click();
    const row = mailPage.locator('tr[data-status="no_server"]', { hasText: 'frontdesk@mail-test.example' });
    await row.waitFor({ timeout: 30_000 });
    assert.match(await row.innerText(), /not sent: no mail server configured/);
    assert.match(await row.innerText(), /Test/);
  } catch (e) {
    await snap(admin, 'fail-mail-no-server');
    throw e;
  } finally {
    await ctx.close();
    await own.stop();
  }
  // Nothing of it reached the shared server's sink.
  assert.equal((await readMailbox(env.E2E_MAILDIR)).filter((m) => m.to.includes('frontdesk@mail-test.example')).length, 0);
});
