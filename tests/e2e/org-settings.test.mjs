// Organisation settings through the admin's Settings page, and what patients see of them: the
// disclaimer that must be accepted before entering (F102) and the waiting-room text with its
// placeholders filled in (F97). Run through tests/e2e/run.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, requireEnv, snap, signIn, seedOrganisation } from './lib/harness.mjs';
import { bookAppointment, apiCall } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('org-settings'); });
let browser;

before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('admin sets a disclaimer and waiting text; the patient must accept, then sees the text', { timeout: 120_000 }, async () => {
  const adminCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const patientCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const admin = await adminCtx.newPage();
  const staff = await staffCtx.newPage();
  const patient = await patientCtx.newPage();
  try {
    await signIn(admin, org.adminEmail);
    await admin.getByRole('button', { name: 'Settings' }).click();
    await admin.getByRole('heading', { name: 'Organisation settings' }).waitFor();
    // The practitioner has no Settings button.
    await signIn(staff, org.email);
    await staff.locator('#walkin-toggle:not([hidden])').waitFor();
    assert.equal(await staff.getByRole('button', { name: 'Settings' }).isVisible(), false);

    // An unknown placeholder is refused next to its field; nothing is saved.
    await admin.getByLabel('Text for waiting patients', { exact: true }).fill('Hello {patient}');
    await admin.getByRole('button', { name: 'Save settings' }).click();
    await admin.locator('#settings-waiting-room-text-error:not([hidden])').waitFor();
    assert.match(await admin.locator('#settings-waiting-room-text-error').innerText(), /placeholder/);
    assert.equal((await apiCall(admin, 'GET', '/api/v1/organisation/settings')).body.waiting_room_text, '');

    // Without continuous chat, "kept" cannot be chosen.
    await admin.getByLabel(/Continuous chat/).uncheck();
    assert.equal(await admin.locator('input[name="chat_after_consultation"][value="keep"]').isDisabled(), true);
    assert.equal(await admin.locator('input[name="chat_after_consultation"][value="delete"]').isChecked(), true);
    await admin.getByLabel(/Continuous chat/).check();
    await admin.locator('input[name="chat_after_consultation"][value="keep"]').check();

    await admin.getByLabel('Text for waiting patients', { exact: true }).fill('Dr. {practitioner} sees you at {appointment_time}.\nThe room opens at {opens_at}.');
    // The demo practitioner's appointments belong to "General practice": its own text wins.
    await admin.getByLabel('Text for waiting patients of General practice').fill('General practice: {practitioner} at {appointment_time}.\nThe room opens at {opens_at}.');
    await admin.getByLabel('Disclaimer patients must accept before entering').fill('This service is not for emergencies.\nCall 112 in an emergency.');
    await admin.getByRole('button', { name: 'Save settings' }).click();
    await admin.locator('#settings-saved:not([hidden])').waitFor();
    const saved = (await apiCall(admin, 'GET', '/api/v1/organisation/settings')).body;
    assert.equal(Object.keys(saved.department_waiting_room_texts).length, 1);
    assert.equal(saved.disclaimer, 'This service is not for emergencies.\nCall 112 in an emergency.');

    // The clinic's contact details from its profile (F11) are shown on the patient's page.
    const profile = await apiCall(admin, 'PUT', '/api/v1/organisation/profile', {
      contact: { phone: '+31 20 555 0100', email: 'desk@clinic.test', website: 'https://clinic.test/', text: 'Open 8-17' },
    });
    assert.equal(profile.status, 200, JSON.stringify(profile.body));
    const clinicName = profile.body.name;

    const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Dirk Disclaimer', inMinutes: 2 });
    assert.ok(!booked.error, booked.error);
    await patient.goto(booked.invitationUrl);
    await patient.getByRole('heading', { name: 'Before you enter' }).waitFor();
    // No logo: the clinic's name beside the product's words; its contact details at the foot.
    assert.equal(await patient.locator('.topbar #clinic-name').innerText(), clinicName);
    const contact = patient.getByRole('contentinfo');
    await contact.getByRole('heading', { name: `Questions? Contact ${clinicName}` }).waitFor();
    assert.equal(await contact.getByRole('link', { name: '+31 20 555 0100' }).getAttribute('href'), 'tel:+31205550100');
    assert.equal(await contact.getByRole('link', { name: 'desk@clinic.test' }).getAttribute('href'), 'mailto:desk@clinic.test');
    const site = contact.getByRole('link', { name: 'clinic.test', exact: true });
    assert.equal(await site.getAttribute('href'), 'https://clinic.test/');
    assert.equal(await site.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await contact.locator('#clinic-contact-text').innerText(), 'Open 8-17');
    assert.match(await patient.locator('#disclaimer-text').innerText(), /not for emergencies/);
    await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
    await patient.locator('body[data-device-check="ok"]').waitFor();
    const enter = patient.getByRole('button', { name: 'Enter waiting room' });
    assert.equal(await enter.isDisabled(), true, 'entering is blocked until the disclaimer is accepted');
    await patient.getByLabel('I have read this and I accept it').check();
    assert.equal(await enter.isDisabled(), false);
    await patient.getByLabel('I have read this and I accept it').uncheck();
    assert.equal(await enter.isDisabled(), true, 'un-accepting blocks again');
    await patient.getByLabel('I have read this and I accept it').check();
    await enter.click();
    await patient.locator('#waiting-view:not([hidden])').waitFor();
    const text = await patient.locator('#waiting-org-text').innerText();
    assert.match(text, /^General practice: Dr\. Anna de Vries at \d\d:\d\d\.\nThe room opens at \d\d:\d\d\.$/, text);
    assert.ok(!text.includes('{'), 'every placeholder is filled');
  } catch (e) {
    for (const [label, page] of Object.entries({ admin, staff, patient })) await snap(page, `fail-org-settings-${label}`);
    throw e;
  } finally {
    await apiCall(admin, 'PUT', '/api/v1/organisation/settings', { disclaimer: '', waiting_room_text: '', department_waiting_room_texts: {} }).catch(() => {});
    await adminCtx.close();
    await staffCtx.close();
    await patientCtx.close();
  }
});
