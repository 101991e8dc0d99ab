// First run and staff administration (issue #12), on a server of its own over an EMPTY database
// (the shared demo server already has organisations): the login screen says there is no
// organisation; `consultroom admin create-organisation` prints a set-password link; a mail
// scanner opening it uses nothing up; the admin sets a password and is signed in; invites a
// practitioner from the Staff page, who opens the link, sets a password and is signed in;
// deactivating them signs their page out at once. The server sends its mail to the run's SMTP
// sink: the admin's link and the practitioner's invitation arrive by mail (the practitioner uses
// the mailed link), and the practitioner's first appointment invitation arrives with its calendar
// part; the patient follows the mailed link into the waiting room and is admitted — the issue's
// "done when", end to end. Run through tests/e2e/run.sh (it runs inside the test namespace; with
// E2E_DATABASE_URL set, the server gets a fresh PostgreSQL database).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { launchBrowser, newContext, requireEnv, waitFor, snap, endConsultation, captureConsole } from './lib/harness.mjs';
import { apiCall } from './lib/clinic-api.mjs';
import { waitForMail, linkIn } from './lib/mailbox.mjs';

const env = requireEnv('CONSULTROOM_BIN', 'E2E_MAILDIR', 'E2E_SMTP_PORT');
const run = promisify(execFile);
/** A 1 × 1 PNG. */
const TINY_PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

/** @type {{ proc: import('node:child_process').ChildProcess, base: string, dataDir: string, dbArgs: string[], log: string[], dropDb?: () => Promise<void> }} */
let server;
let browser;

/** A fresh PostgreSQL database next to E2E_DATABASE_URL's (same server and socket), or none. */
async function freshDatabase() {
  const shared = process.env.E2E_DATABASE_URL;
  if (!shared) return { args: [], drop: async () => {} };
  const url = new URL(shared);
  const name = `e2e_admin_${randomUUID().slice(0, 8)}`;
  const host = url.searchParams.get('host') || url.hostname;
  const user = decodeURIComponent(url.username || 'postgres');
  await run('psql', ['-h', host, '-U', user, '-d', 'postgres', '-c', `create database ${name}`]);
  url.pathname = `/${name}`;
  return {
    args: ['--database-url', url.toString()],
    drop: async () => { await run('psql', ['-h', host, '-U', user, '-d', 'postgres', '-c', `drop database if exists ${name} with (force)`]); },
  };
}

before(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'consultroom-admin-e2e-'));
  const db = await freshDatabase();
  const log = [];
  const proc = spawn(env.CONSULTROOM_BIN, ['serve', '--http', '127.0.0.1:0', '--admin', '127.0.0.1:0',
    '--media-bind', '127.0.0.1:0', '--media-announce', '127.0.0.1', '--data-dir', dataDir,
    '--drain-window-secs', '0', '--smtp-url', `smtp://127.0.0.1:${env.E2E_SMTP_PORT}?tls=none`,
    '--mail-from', 'Harbour Clinic <noreply@harbour.test>', ...db.args], { env: { ...process.env, RUST_LOG: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { log.push(String(d)); });
  await waitFor(() => /^consultroom ready http=(\S+)/m.test(out) || proc.exitCode !== null, { timeoutMs: 60_000, what: 'server ready' });
  const m = /^consultroom ready http=(\S+)/m.exec(out);
  assert.ok(m, `server did not start: ${log.join('')}`);
  server = { proc, base: m[1], dataDir, dbArgs: db.args, log, dropDb: db.drop };
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) {
    server.proc.kill('SIGTERM');
    await waitFor(() => server.proc.exitCode !== null || server.proc.signalCode !== null, { timeoutMs: 30_000, what: 'server exit' }).catch(() => server.proc.kill('SIGKILL'));
    await server.dropDb?.();
    rmSync(server.dataDir, { recursive: true, force: true });
  }
});

/** Runs `consultroom admin …` on the server's database; returns its stdout as key=value pairs. */
async function admin(...args) {
  const { stdout } = await run(env.CONSULTROOM_BIN, ['admin', ...args, '--data-dir', server.dataDir,
    '--public-url', server.base, ...server.dbArgs], { env: { ...process.env, RUST_LOG: 'warn' }, timeout: 60_000 });
  return Object.fromEntries(stdout.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
}

/** Opens a set-password link, sets `password` and waits until the staff app is signed in. */
async function setPassword(page, link, password) {
  await page.goto(link);
  await page.getByLabel('New password').fill(password);
  await page.getByLabel('Repeat the password').fill(password);
  await page.getByRole('button', { name: 'Set password and sign in' }).click();
  await page.waitForURL((u) => u.pathname === '/');
  await page.locator('body[data-signalling="joined"]').waitFor({ timeout: 30_000 });
}

test('first run through the CLI link; invite a practitioner; deactivation signs them out', { timeout: 180_000 }, async () => {
  const adminCtx = await newContext(browser, { baseURL: server.base });
  const scannerCtx = await newContext(browser, { baseURL: server.base });
  const practCtx = await newContext(browser, { baseURL: server.base });
  const page = await adminCtx.newPage();
  const pract = await practCtx.newPage();
  try {
    // No organisation: the server logs how to create one and the login screen says so.
    assert.match(server.log.join(''), /no organisation yet: run `consultroom admin create-organisation/);
    const lines = captureConsole(page);
    await page.goto('/');
    await page.getByText('No organisation yet:').waitFor();
    await page.waitForLoadState('networkidle');
    assert.deepEqual(lines.filter((l) => /Failed to load resource/.test(l)), [], 'a signed-out load has no failed request (issue #14)');
    assert.match(await page.locator('#first-run-notice').innerText(), /consultroom admin create-organisation/);

    const created = await admin('create-organisation', '--name', 'Harbour Clinic', '--admin-email', 'head@harbour.test', '--admin-name', 'Hanna Head');
    assert.ok(created.set_password_url.startsWith(`${server.base}/set-password#`), JSON.stringify(created));
    // The running server sends the queued mail (at its next poll: the CLI is another process).
    const adminMail = await waitForMail(env.E2E_MAILDIR, { to: 'head@harbour.test', timeoutMs: 30_000 });
    assert.equal(linkIn(adminMail.text, '/set-password'), created.set_password_url);

    // A mail scanner opens the link in a real browser: it sees the form, and uses nothing up.
    const scanner = await scannerCtx.newPage();
    await scanner.goto(created.set_password_url);
    await scanner.getByText('Welcome, Hanna Head (head@harbour.test).').waitFor();
    await scanner.close();

    // A too-short password is refused at the field; then the admin sets one and is signed in.
    await page.goto(created.set_password_url);
    await page.getByLabel('New password').fill('short');
    await page.getByLabel('Repeat the password').fill('short');
    await page.getByRole('button', { name: 'Set password and sign in' }).click();
    await page.locator('#sp-password-error:not([hidden])').waitFor();
    await setPassword(page, created.set_password_url, 'harbour admin passphrase');
    // The link works once.
    const again = await scannerCtx.newPage();
    await again.goto(created.set_password_url);
    await again.getByText('This link has expired or was already used.').waitFor();

    // Invite a practitioner from the Staff page; the link is shown to hand over.
    await page.getByRole('button', { name: 'Staff', exact: true }).click();
    await page.getByRole('heading', { name: 'Staff', exact: true }).waitFor();
    await page.locator('tr', { hasText: 'head@harbour.test' }).waitFor();
    await page.getByRole('textbox', { name: 'Name' }).fill('Pieter Practitioner');
    await page.getByRole('textbox', { name: 'Email address' }).fill('not-an-address');
    await page.getByRole('button', { name: 'Send invitation' }).click();
    await page.locator('#invite-email-error:not([hidden])').waitFor();
    await page.getByRole('textbox', { name: 'Email address' }).fill('pieter@harbour.test');
    await page.getByRole('button', { name: 'Send invitation' }).click();
    const linkField = page.getByRole('textbox', { name: 'Set-password link' });
    await linkField.waitFor();
    const shown = await linkField.inputValue();
    assert.ok(shown.startsWith(`${server.base}/set-password#`), shown);
    // The practitioner gets it by mail too, and uses the mailed link.
    const invitationMail = await waitForMail(env.E2E_MAILDIR, { to: 'pieter@harbour.test' });
    const link = linkIn(invitationMail.text, '/set-password');
    assert.equal(link, shown);
    await page.locator('tr', { hasText: 'pieter@harbour.test' }).getByText('Invited').waitFor();

    // The organisation's logo (scaled server-side) shows top left.
    await page.getByRole('button', { name: 'Organisation', exact: true }).click();
    await page.getByLabel(/Upload a logo/).setInputFiles({ name: 'logo.png', mimeType: 'image/png', buffer: Buffer.from(TINY_PNG, 'base64') });
    await page.getByRole('img', { name: 'Harbour Clinic logo' }).waitFor();
    await waitFor(() => page.locator('.brand-logo').evaluate((img) => img instanceof HTMLImageElement && img.complete && img.naturalWidth === 1), { what: 'logo loaded' });

    // The practitioner opens the link, sets a password and is in.
    await setPassword(pract, link, 'pieter practitioner passphrase');
    assert.equal(await pract.getByRole('button', { name: 'Staff', exact: true }).isVisible(), false, 'a practitioner manages no staff');
    await page.getByRole('button', { name: 'Staff', exact: true }).click();
    await page.locator('tr', { hasText: 'pieter@harbour.test' }).getByText('Active').waitFor();

    // The practitioner books their first appointment; the invitation reaches the patient by mail,
    // with a calendar invite, and its link brings them into the waiting room, where they are admitted.
    const client = await apiCall(pract, 'POST', '/api/v1/clients', { name: 'Hugo Harbour', email: 'hugo@patients.harbour.test' });
    assert.equal(client.status, 201, JSON.stringify(client.body));
    const booked = await apiCall(pract, 'POST', '/api/v1/appointments', {
      client_id: client.body.client.id, starts_at: new Date(Date.now() + 2 * 60_000).toISOString(), duration_minutes: 15,
    });
    assert.equal(booked.status, 201, JSON.stringify(booked.body));
    assert.equal(booked.body.mailed_to, 'hugo@patients.harbour.test');
    const patientMail = await waitForMail(env.E2E_MAILDIR, { to: 'hugo@patients.harbour.test' });
    assert.equal(patientMail.calendar?.method, 'REQUEST');
    const patientLink = linkIn(patientMail.text, '/join');
    assert.equal(patientLink, booked.body.invitation_url);
    const patientCtx = await newContext(browser, { baseURL: server.base });
    try {
      const patient = await patientCtx.newPage();
      await patient.goto(patientLink);
      await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
      await patient.locator('body[data-device-check="ok"]').waitFor();
      await patient.getByRole('button', { name: 'Enter waiting room' }).click();
      const entry = pract.locator('#waiting-list button.waiting-entry', { hasText: 'Hugo Harbour' });
      await entry.waitFor({ timeout: 20_000 });
      await entry.click();
      await pract.locator('#room-view:not([hidden])').waitFor();
      await patient.locator('#room-view:not([hidden])').waitFor();
      await endConsultation(pract);
      await pract.locator('#dashboard-view:not([hidden])').waitFor();
    } finally {
      await patientCtx.close();
    }
    // The admin sees whom the client is filed with (the booking filed them with Pieter) and
    // can change it: the register's filing decides visibility under segregation (F6–F9).
    await page.getByRole('button', { name: 'Clients', exact: true }).click();
    const clients = page.getByRole('dialog', { name: 'Clients' });
    await clients.getByLabel('Find a client by name').fill('Hugo');
    await clients.getByRole('button', { name: 'Edit… Hugo Harbour' }).click();
    const edit = page.getByRole('dialog', { name: 'Client', exact: true });
    await waitFor(async () => (await edit.getByLabel('Practitioner').locator('option:checked').textContent()) === 'Pieter Practitioner', { what: 'filed with Pieter' });
    await edit.getByLabel('Practitioner').selectOption({ label: 'No practitioner' });
    await edit.getByRole('button', { name: 'Save client' }).click();
    await edit.waitFor({ state: 'hidden' });
    const refiled = await apiCall(page, 'GET', `/api/v1/clients/${client.body.client.id}`);
    assert.equal(refiled.body.client.practitioner_id, null);
    await clients.getByRole('button', { name: 'Close' }).click();

    // Deactivate: the practitioner's page is signed out at once (its WebSocket is closed).
    page.once('dialog', (d) => { void d.accept(); });
    await page.getByRole('button', { name: 'Deactivate Pieter Practitioner' }).click();
    await page.locator('tr', { hasText: 'pieter@harbour.test' }).getByText('Deactivated').waitFor();
    await pract.locator('body[data-view="login-view"]').waitFor({ timeout: 15_000 });
    await pract.getByText('Your session has ended').waitFor();
    // And cannot sign in again.
    await pract.getByLabel('Email address').fill('pieter@harbour.test');
    await pract.getByLabel('Password').fill('pieter practitioner passphrase');
    await pract.getByRole('button', { name: 'Sign in' }).click();
    await pract.locator('#login-error:not([hidden])').waitFor();
  } catch (err) {
    await snap(page, 'admin-admin').catch(() => {});
    await snap(pract, 'admin-practitioner').catch(() => {});
    throw err;
  } finally {
    await adminCtx.close();
    await scannerCtx.close();
    await practCtx.close();
  }
});
