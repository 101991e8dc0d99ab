// The whole consultation through the real server: practitioner and patient in two Chromium
// contexts with fake camera/microphone, media through the SFU on 127.0.0.1 only.
// Run through tests/e2e/run.sh (it starts the demo server in a lo-only netns and sets
// BASE_URL, DEMO_PASSWORD); the file seeds its own organisation.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launchBrowser, newContext, captureConsole, requireEnv, assertMediaFlowing, snap, seedOrganisation, endConsultation } from './lib/harness.mjs';
import { bookAppointment } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('consultation'); });
let browser;

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const PATIENT_NAME = 'Eef Zuidema-Testpatiënt';

/** Runs one named step; on failure saves screenshots of the given pages first. */
async function step(name, pages, fn) {
  try {
    return await fn();
  } catch (e) {
    for (const [label, page] of Object.entries(pages)) await snap(page, `fail-${name.replace(/\W+/g, '-')}-${label}`);
    e.message = `[${name}] ${e.message}`;
    throw e;
  }
}

test('practitioner admits a patient; media flows both ways on loopback; mute, clock, end', { timeout: 150_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const patientCtx = await newContext(browser, { baseURL: env.BASE_URL, viewport: { width: 390, height: 844 } });
  const staff = await staffCtx.newPage();
  const patient = await patientCtx.newPage();
  const pages = { staff, patient };
  const staffConsole = captureConsole(staff);
  const patientConsole = captureConsole(patient);
  let invitationUrl;
  let patientName = PATIENT_NAME;

  try {
    await step('login', pages, async () => {
      await staff.goto('/');
      await staff.getByLabel('Email address').fill(org.email);
      await staff.getByLabel('Password').fill(org.password);
      await staff.getByRole('button', { name: 'Sign in' }).click();
      await staff.getByRole('heading', { name: "Today's appointments" }).waitFor();
    });

    await step('dashboard', pages, async () => {
      await staff.locator('#appointments-list li').first().waitFor();
      assert.ok(await staff.locator('#appointments-list li').count() >= 1, "today's appointments are listed");
      await staff.getByText('No one is waiting').waitFor();
      assert.equal(await staff.locator('#waiting-count').isVisible(), false);
      // Joined on the WebSocket (the display name comes from `joined`), so the arrival is live.
      await staff.locator('body[data-signalling="joined"]').waitFor();
    });

    await step('create appointment', pages, async () => {
      const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: PATIENT_NAME, inMinutes: 2 });
      if (booked.error) {
        console.log(`note: could not book through the API (${booked.error}); using the seeded invitation`);
        invitationUrl = org.invitationUrl;
        patientName = null;
      } else {
        invitationUrl = booked.invitationUrl;
      }
    });

    await step('patient device check', pages, async () => {
      await patient.goto(invitationUrl);
      await patient.getByRole('heading', { name: 'Check your camera and microphone' }).waitFor();
      assert.equal(new URL(patient.url()).hash, '', 'the token is taken out of the address bar');
      await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
      await patient.waitForFunction(() => document.getElementById('preview-video').videoWidth > 0, null, { timeout: 10_000 });
      await patient.getByRole('button', { name: 'Enter waiting room' }).click();
      await patient.getByText('You are on time; your practitioner will let you in').waitFor();
    });

    await step('waiting room entry', pages, async () => {
      const entry = staff.locator('#waiting-list button.waiting-entry', { hasText: PATIENT_NAME });
      await entry.waitFor();
      assert.equal(await entry.getAttribute('data-punctuality'), 'on_time');
      assert.match(await entry.innerText(), /On time/);
      const corner = await entry.locator('.corner').evaluate((e) => getComputedStyle(e).backgroundColor);
      assert.equal(corner, 'rgb(27, 127, 59)', 'green corner');
      assert.match(await entry.innerText(), /Appointment \d\d:\d\d/);
      assert.match(await entry.innerText(), /Arrived \d\d:\d\d/);
      await staff.locator('#waiting-count[data-count="1"]').waitFor();
      assert.equal(await staff.locator('#waiting-count-number').innerText(), '1');
      await staff.waitForFunction(() => window.__consultroom.doorbells >= 1, null, { timeout: 3000 });
      assert.equal(await staff.locator('body').getAttribute('data-doorbell-count'), '1');
      const shown = (await entry.locator('.we-name').innerText()).trim();
      if (patientName) assert.equal(shown, patientName);
      else patientName = shown;
    });

    await step('admit', pages, async () => {
      await staff.locator('#waiting-list button.waiting-entry', { hasText: PATIENT_NAME }).click();
      await staff.locator('#room-view:not([hidden])').waitFor();
      await patient.locator('#room-view:not([hidden])').waitFor();
    });

    await step('media flowing', pages, async () => {
      const [s, p] = await Promise.all([
        assertMediaFlowing(staff, assert, 'practitioner'),
        assertMediaFlowing(patient, assert, 'patient'),
      ]);
      console.log(`practitioner inbound video frames ${s.first.video.framesDecoded} → ${s.second.video.framesDecoded}, ${s.second.video.frameWidth}x${s.second.video.frameHeight}; pair ${s.second.pair.local} ↔ ${s.second.pair.remote}`);
      console.log(`patient inbound video frames ${p.first.video.framesDecoded} → ${p.second.video.framesDecoded}, ${p.second.video.frameWidth}x${p.second.video.frameHeight}; pair ${p.second.pair.local} ↔ ${p.second.pair.remote}`);
      await staff.waitForFunction(() => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 10_000 });
      await patient.waitForFunction(() => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 10_000 });
    });

    await step('mute', pages, async () => {
      const mic = patient.getByRole('button', { name: 'Mute microphone' });
      await mic.click();
      assert.equal(await mic.getAttribute('aria-pressed'), 'true');
      await staff.locator('#remote-mic-off:not([hidden])').waitFor({ timeout: 5000 });
      await mic.click();
      assert.equal(await mic.getAttribute('aria-pressed'), 'false');
      await staff.locator('#remote-mic-off').waitFor({ state: 'hidden', timeout: 5000 });
      const cam = staff.getByRole('button', { name: 'Turn camera off' });
      await cam.click();
      assert.equal(await cam.getAttribute('aria-pressed'), 'true');
      await patient.locator('#remote-cam-off:not([hidden])').waitFor({ timeout: 5000 });
      await cam.click();
      await patient.locator('#remote-cam-off').waitFor({ state: 'hidden', timeout: 5000 });
    });

    await step('clock', pages, async () => {
      const a = await staff.locator('#room-clock').innerText();
      assert.match(a, /^\d\d:\d\d$/);
      // The consultation clock runs: it shows another second within a few seconds.
      await staff.waitForFunction((before) => document.getElementById('room-clock').innerText !== before, a, { timeout: 5000 });
      assert.match(await patient.locator('#room-clock').innerText(), /^\d\d:\d\d$/);
      await snap(staff, 'real-staff-room');
      await snap(patient, 'real-patient-room');
    });

    await step('end', pages, async () => {
      await endConsultation(staff);
      await patient.getByText('Your consultation has ended. You can close this window.').waitFor();
      assert.match(await patient.locator('#after-appointment').innerText(), /\d\d:\d\d/);
      await staff.locator('#dashboard-view:not([hidden])').waitFor();
      assert.equal(await staff.evaluate(() => window.__consultroom.pc()), null);
    });

    const leaks = [...staffConsole, ...patientConsole].filter((l) => l.includes(patientName));
    assert.deepEqual(leaks, [], 'no patient name in the browser console');
    const problems = [...staffConsole, ...patientConsole].filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l));
    assert.deepEqual(problems, [], 'no uncaught errors or CSP violations');
  } finally {
    await staffCtx.close();
    await patientCtx.close();
  }
});

test('garbage, tampered and expired links show the right message and no names', { timeout: 60_000 }, async () => {
  const ctx = await newContext(browser, { baseURL: env.BASE_URL });
  const page = await ctx.newPage();
  try {
    const token = new URL(org.invitationUrl).hash.slice(1);
    const check = async (hash, heading) => {
      await page.goto('about:blank');
      await page.goto(`/join#${hash}`);
      await page.getByRole('heading', { name: heading }).waitFor();
      assert.equal(await page.locator('#check-view').isVisible(), false);
      const text = await page.locator('body').innerText();
      assert.doesNotMatch(text, /Hello|with Dr|Appointment/i, 'no appointment details or names');
    };
    // Real server: unknown and tampered tokens are both "not valid" (404).
    await check('this-is-not-a-token', 'This link is not valid');
    await check(`${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`, 'This link is not valid');
    // Expired/cancelled/too early cannot be produced on demand by the demo data: answer the
    // resolve call with the documented error bodies instead.
    await page.route('**/api/v1/invitations/resolve', (route) => route.fulfill({
      status: 410, contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'invitation_expired', message: 'expired' } }),
    }));
    await check(token, 'This link has expired');
    await page.unroute('**/api/v1/invitations/resolve');
  } finally {
    await ctx.close();
  }
});

test('practitioner drops out mid-consultation: the patient goes back to the waiting room and is admitted again', { timeout: 90_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const patientCtx = await newContext(browser, { baseURL: env.BASE_URL });
  let staff = await staffCtx.newPage();
  const patient = await patientCtx.newPage();
  const pages = { staff, patient };
  try {
    await step('rejoin: setup', pages, async () => {
      await staff.goto('/');
      await staff.getByLabel('Email address').fill(org.email);
      await staff.getByLabel('Password').fill(org.password);
      await staff.getByRole('button', { name: 'Sign in' }).click();
      await staff.locator('body[data-signalling="joined"]').waitFor();
      const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Rejoin Testpatiënt', inMinutes: 3 });
      assert.ok(!booked.error, booked.error);
      await patient.goto(booked.invitationUrl);
      await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
      await patient.getByRole('button', { name: 'Enter waiting room' }).click();
      await patient.locator('#waiting-view:not([hidden])').waitFor();
      await staff.locator('#waiting-list button.waiting-entry', { hasText: 'Rejoin Testpatiënt' }).click();
      await patient.locator('#room-view:not([hidden])').waitFor();
    });
    await step('rejoin: practitioner closes the tab', pages, async () => {
      await staff.close();
      await patient.locator('#room-notice-box:not([hidden])').waitFor({ timeout: 10_000 });
      await patient.getByRole('button', { name: 'Back to the waiting room' }).click();
      await patient.getByText('You are on time; your practitioner will let you in').waitFor();
    });
    await step('rejoin: admitted again', pages, async () => {
      staff = await staffCtx.newPage(); // same session cookie
      await staff.goto('/');
      const entry = staff.locator('#waiting-list button.waiting-entry', { hasText: 'Rejoin Testpatiënt' });
      await entry.waitFor();
      await entry.click();
      await patient.locator('#room-view:not([hidden])').waitFor();
      await patient.waitForFunction(async () => {
        const pc = window.__consultroom.pc();
        if (!pc) return false;
        let frames = 0;
        (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') frames = Math.max(frames, s.framesDecoded || 0); });
        return frames > 0;
      }, null, { timeout: 20_000, polling: 250 });
      await endConsultation(staff);
      await patient.getByText('Your consultation has ended. You can close this window.').waitFor();
    });
  } finally {
    await staffCtx.close();
    await patientCtx.close();
  }
});
