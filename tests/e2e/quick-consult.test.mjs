// Quick consult (F77): the practitioner starts a consultation at once for a new client; the
// room shows the link to send, and the client who opens it comes straight in (no waiting room)
// with media both ways. Run through tests/e2e/run.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, requireEnv, assertMediaFlowing, snap, seedOrganisation, endConsultation } from './lib/harness.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('quick-consult'); });
let browser;

before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('quick consult: start now, send the link, the client comes straight in', { timeout: 120_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const patientCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const staff = await staffCtx.newPage();
  const patient = await patientCtx.newPage();
  try {
    await staff.goto('/');
    await staff.getByLabel('Email address').fill(org.email);
    await staff.getByLabel('Password').fill(org.password);
    await staff.getByRole('button', { name: 'Sign in' }).click();
    await staff.locator('body[data-signalling="joined"]').waitFor();

    await staff.getByRole('button', { name: 'Quick consult…' }).click();
    const dialog = staff.getByRole('dialog', { name: 'Quick consult' });
    await dialog.waitFor();
    // An empty name is refused in the dialog; nothing is created.
    await dialog.getByRole('button', { name: 'Start consultation' }).click();
    await dialog.getByText('Type the name of the client').waitFor();
    await dialog.getByLabel('Client').fill('Quirine Quick');
    await dialog.getByRole('button', { name: 'Start consultation' }).click();

    await staff.locator('#room-view:not([hidden])').waitFor();
    await staff.locator('#room-view[data-waiting-for="true"]').waitFor();
    await staff.locator('#room-invite:not([hidden])').waitFor();
    const link = await staff.locator('#room-invite-url').inputValue();
    const u = new URL(link);
    assert.equal(u.pathname, '/join');
    assert.ok(u.hash.length > 20, 'the link carries the token in the fragment');
    // The appointment is in today's list.
    await staff.locator('#appointments-list li', { hasText: 'Quirine Quick' }).count();

    await patient.goto(`${env.BASE_URL.replace(/\/$/, '')}${u.pathname}${u.hash}`);
    await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
    await patient.locator('body[data-device-check="ok"]').waitFor();
    await patient.getByRole('button', { name: 'Enter waiting room' }).click();
    // Straight in: the consultation, not the waiting room.
    await patient.locator('#room-view:not([hidden])').waitFor({ timeout: 15_000 });
    await staff.locator('#room-invite').waitFor({ state: 'hidden' });
    // (Other tests share this server: only this client matters.)
    assert.equal(await staff.locator('#waiting-list button.waiting-entry', { hasText: 'Quirine Quick' }).count(), 0, 'the client never waited');
    await Promise.all([
      assertMediaFlowing(staff, assert, 'practitioner'),
      assertMediaFlowing(patient, assert, 'patient'),
    ]);
    await endConsultation(staff);
    await staff.locator('#dashboard-view:not([hidden])').waitFor();
  } catch (e) {
    await snap(staff, 'fail-quick-staff');
    await snap(patient, 'fail-quick-patient');
    throw e;
  } finally {
    await staffCtx.close();
    await patientCtx.close();
  }
});
