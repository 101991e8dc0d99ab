// "Always show the settings first" (F36): a practitioner who ticks it sees the camera and
// microphone check after signing in, before the waiting list. Run through tests/e2e/run.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, requireEnv, snap, seedOrganisation } from './lib/harness.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('staff-check'); });
let browser;

before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

async function signIn(page) {
  await page.getByLabel('Email address').fill(org.email);
  await page.getByLabel('Password').fill(org.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('camera check first: chosen once, shown after the next sign-in before the waiting list', { timeout: 90_000 }, async () => {
  const ctx = await newContext(browser, { baseURL: env.BASE_URL });
  const page = await ctx.newPage();
  try {
    await page.goto('/');
    await signIn(page);
    await page.locator('#dashboard-view:not([hidden])').waitFor();
    assert.equal(await page.locator('#staff-check-view').isVisible(), false, 'off by default');
    await page.getByLabel('Check my camera and microphone after signing in').check();

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.locator('#login-view:not([hidden])').waitFor();
    await signIn(page);
    await page.getByRole('heading', { name: 'Check your camera and microphone' }).waitFor();
    assert.equal(await page.locator('#waiting-list').isVisible(), false, 'the waiting list waits');
    await page.waitForFunction(() => document.getElementById('staff-check-video').videoWidth > 0, null, { timeout: 10_000 });
    await page.getByRole('button', { name: 'Continue to the waiting room' }).click();
    await page.locator('#dashboard-view:not([hidden])').waitFor();
    await page.locator('#waiting-list').waitFor({ state: 'attached' });
    assert.equal(await page.locator('#staff-check-view').isVisible(), false);
    // The camera is released again.
    assert.equal(await page.evaluate(() => document.getElementById('staff-check-video').srcObject), null);
    await page.getByLabel('Check my camera and microphone after signing in').uncheck();

    // "Check devices" in the top bar, any time outside a consultation: camera and the connection
    // through our SFU (F33), with a plain verdict.
    await page.getByRole('button', { name: 'Check devices' }).click();
    await page.getByRole('heading', { name: 'Check your camera and microphone' }).waitFor();
    await page.waitForFunction(() => ['good', 'poor', 'unreachable'].includes(document.body.dataset.staffNetCheck), null, { timeout: 60_000 });
    assert.equal(await page.locator('#staff-net-result').getAttribute('data-level'), 'good',
      await page.locator('#staff-net-result').innerText());
    assert.equal(await page.locator('#staff-net-title').textContent(), 'Your connection is good.');
    // ("good" needs the own picture back: without echoed frames the verdict is "poor".)
    assert.equal(await page.getByRole('button', { name: 'Check devices' }).isVisible(), false, 'hidden while checking');
    await page.getByRole('button', { name: 'Continue to the waiting room' }).click();
    await page.locator('#dashboard-view:not([hidden])').waitFor();
    await page.getByRole('button', { name: 'Check devices' }).waitFor();
  } catch (e) {
    await snap(page, 'fail-staff-check');
    throw e;
  } finally {
    await ctx.close();
  }
});
