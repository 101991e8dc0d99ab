// Reconnection (issue #3) in Chromium: the patient's WebSocket drops in a running consultation;
// the practitioner's room shows the patient reconnecting, the patient's page resumes the seat on
// a new socket (fresh token, `join {resume}`), restarts ICE on the same RTCPeerConnection, and
// frames are decoded again on both sides with no extra tile.
// Run through tests/e2e/run.sh (BASE_URL, DEMO_PASSWORD; the file seeds its own organisation).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, requireEnv, snap, seedOrganisation, endConsultation } from './lib/harness.mjs';
import { bookAppointment } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('reconnect'); });
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
    for (const [label, page] of Object.entries(pages)) await snap(page, `fail-${name.replace(/\W+/g, '-')}-${label}`);
    e.message = `[${name}] ${e.message}`;
    throw e;
  }
}

/** Inbound video frames decoded so far on `page`'s peer connection, and its ICE ufrag. */
function mediaState(page) {
  return page.evaluate(async () => {
    const pc = window.__consultroom.pc();
    if (!pc) return null;
    let frames = 0;
    (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') frames = Math.max(frames, s.framesDecoded || 0); });
    const ufrag = (pc.localDescription?.sdp.match(/a=ice-ufrag:(\S+)/) || [])[1] || null;
    return { frames, ufrag, id: pc.__crId || (pc.__crId = Math.random().toString(36).slice(2)) };
  });
}

async function waitFramesGrow(page, from, label) {
  await page.waitForFunction(async (min) => {
    const pc = window.__consultroom.pc();
    if (!pc) return false;
    let frames = 0;
    (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') frames = Math.max(frames, s.framesDecoded || 0); });
    return frames > min + 20;
  }, from, { timeout: 20_000, polling: 250 }).catch((e) => { throw new Error(`${label}: frames do not grow beyond ${from}: ${e.message}`); });
}

test('patient socket drops mid-consultation: reconnecting shown, seat resumed, media again, no duplicate', { timeout: 120_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const patientCtx = await newContext(browser, { baseURL: env.BASE_URL });
  // Test-only: remember the page's WebSockets so the test can drop them.
  await patientCtx.addInitScript(() => {
    const Native = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.__sockets.push(this);
      }
    };
  });
  const staff = await staffCtx.newPage();
  const patient = await patientCtx.newPage();
  const pages = { staff, patient };
  try {
    await step('reconnect: setup', pages, async () => {
      await staff.goto('/');
      await staff.getByLabel('Email address').fill(org.email);
      await staff.getByLabel('Password').fill(org.password);
      await staff.getByRole('button', { name: 'Sign in' }).click();
      await staff.locator('body[data-signalling="joined"]').waitFor();
      const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Reconnect Testpatiënt', inMinutes: 3 });
      assert.ok(!booked.error, booked.error);
      await patient.goto(booked.invitationUrl);
      await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
      await patient.getByRole('button', { name: 'Enter waiting room' }).click();
      await patient.locator('#waiting-view:not([hidden])').waitFor();
      await staff.locator('#waiting-list button.waiting-entry', { hasText: 'Reconnect Testpatiënt' }).click();
      await patient.locator('#room-view:not([hidden])').waitFor();
      await waitFramesGrow(staff, 0, 'practitioner before the drop');
      await waitFramesGrow(patient, 0, 'patient before the drop');
    });

    const before = { staff: await mediaState(staff), patient: await mediaState(patient) };
    const tilesBefore = await staff.locator('#room-view video').count();

    await step('reconnect: the patient socket drops', pages, async () => {
      // Hold the patient's reconnect (its fresh token) until both sides have shown the gap.
      let release;
      const gap = new Promise((r) => { release = r; });
      await patientCtx.route('**/api/v1/invitations/resolve', async (route) => {
        await gap;
        await route.continue();
      });
      const closed = await patient.evaluate(() => {
        const open = window.__sockets.filter((s) => s.readyState === WebSocket.OPEN);
        open.forEach((s) => s.close());
        return open.length;
      });
      assert.equal(closed, 1, 'one open signalling socket');
      await patient.locator('#room-view[data-reconnecting="self"]').waitFor({ timeout: 5_000 });
      await patient.getByText('Connection lost. Reconnecting…').waitFor();
      await staff.locator('#room-view[data-reconnecting="other"]').waitFor({ timeout: 5_000 });
      await staff.getByText('is reconnecting…').waitFor();
      assert.equal(await staff.locator('#room-notice-box:not([hidden])').count(), 0, 'no "left" notice');
      release();
    });

    await step('reconnect: resumed', pages, async () => {
      await patient.locator('#room-view:not([hidden]):not([data-reconnecting])').waitFor({ timeout: 20_000 });
      await staff.locator('#room-view:not([data-reconnecting])').waitFor({ timeout: 20_000 });
      // The room clears "reconnecting" on `consultation_started {resumed}`; the ICE restart
      // follows asynchronously, and its first offer may meet the server's re-sent offer
      // (`invalid_state`: rolled back, the old ufrag again, retried 300 ms later). So wait for a
      // restart that completed: a new ufrag with the answer applied (signalling state stable).
      await patient.waitForFunction((old) => {
        const pc = window.__consultroom.pc();
        const ufrag = (pc?.localDescription?.sdp.match(/a=ice-ufrag:(\S+)/) || [])[1];
        return !!ufrag && ufrag !== old && pc?.signalingState === 'stable';
      }, before.patient.ufrag, { timeout: 10_000, polling: 100 })
        .catch((e) => { throw new Error(`the patient did not restart ICE (ufrag still ${before.patient.ufrag}): ${e.message}`); });
      const after = { staff: await mediaState(staff), patient: await mediaState(patient) };
      assert.equal(after.patient.id, before.patient.id, 'the patient kept its RTCPeerConnection');
      assert.notEqual(after.patient.ufrag, before.patient.ufrag, 'the patient restarted ICE');
      await waitFramesGrow(staff, after.staff.frames, 'practitioner after the resume');
      await waitFramesGrow(patient, after.patient.frames, 'patient after the resume');
      assert.equal(await staff.locator('#room-view video').count(), tilesBefore, 'no duplicate tile');
      console.log(`resume: practitioner frames ${before.staff.frames} → ${after.staff.frames}+, patient ${before.patient.frames} → ${after.patient.frames}+; ufrag ${before.patient.ufrag} → ${after.patient.ufrag}`);
    });

    await step('reconnect: end', pages, async () => {
      await endConsultation(staff);
      await patient.getByText('Your consultation has ended. You can close this window.').waitFor();
    });
  } finally {
    await staffCtx.close();
    await patientCtx.close();
  }
});
