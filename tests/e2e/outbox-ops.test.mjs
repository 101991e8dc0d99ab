// The outbox's operations in the staff app (issue #12): "Forgot your password?" on the login
// screen answers the same for a staff member's address and an unknown one; the client dialog has
// a "Communication" list (F196), empty for a client nobody has written to yet. Run through
// tests/e2e/run.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, requireEnv, snap, signIn, seedOrganisation } from './lib/harness.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
let org;
let browser;
before(async () => { org = await seedOrganisation('outbox-ops'); });
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('forgot password answers the same for a known and an unknown address', { timeout: 60_000 }, async () => {
  const ctx = await newContext(browser, { baseURL: env.BASE_URL });
  const page = await ctx.newPage();
  try {
    await page.goto('/');
    await page.getByLabel('Email address').fill(org.email);
    await page.getByRole('button', { name: 'Forgot your password?' }).click();
    await page.getByRole('heading', { name: 'Forgot your password?' }).waitFor();
    // The address typed for signing in is carried over.
    assert.equal(await page.getByLabel('Your e-mail address').inputValue(), org.email);
    const ask = async () => {
      const response = page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/forgot-password'));
      await page.getByRole('button', { name: 'Send me a link' }).click();
      const r = await response;
      return { status: r.status(), body: await r.text() };
    };
    const known = await ask();
    assert.equal(known.status, 202);
    const answer = page.getByRole('status').filter({ hasText: /If this address belongs to an active account/ });
    await answer.waitFor();

    await page.getByLabel('Your e-mail address').fill('nobody-here@outbox-ops.example');
    assert.deepEqual(await ask(), known, 'the same answer for an unknown address');
    await answer.waitFor();

    await page.getByLabel('Your e-mail address').fill('not an address');
    await page.getByRole('button', { name: 'Send me a link' }).click();
    await page.getByRole('alert').filter({ hasText: 'This is not an e-mail address' }).waitFor();

    await page.getByRole('button', { name: 'Back to the login' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.equal(await page.locator('#forgot-form').isHidden(), true);
  } catch (e) {
    await snap(page, 'fail-forgot-password');
    throw e;
  } finally {
    await ctx.close();
  }
});

test('the client dialog lists the client\'s communication', { timeout: 60_000 }, async () => {
  const ctx = await newContext(browser, { baseURL: env.BASE_URL });
  const page = await ctx.newPage();
  try {
    await signIn(page, org.adminEmail);
    await page.getByRole('button', { name: 'Clients' }).click();
    const clients = page.getByRole('dialog', { name: 'Clients' });
    await clients.getByLabel('Find a client by name').fill('Jan Jansen');
    await clients.getByRole('button', { name: 'Edit… Jan Jansen' }).click();
    const edit = page.getByRole('dialog', { name: 'Client', exact: true });
    await edit.getByRole('heading', { name: 'Communication' }).waitFor();
    // The seeded appointment's invitation to Jan is his first mail (demo-organisation records it).
    await edit.locator('.client-communications li', { hasText: 'Invitation' }).first().waitFor();
    assert.equal(await edit.getByText('No mail sent to this client yet.').count(), 0);
  } catch (e) {
    await snap(page, 'fail-client-communication');
    throw e;
  } finally {
    await ctx.close();
  }
});
