// When video cannot connect, both sides are told in plain words (issue #14, "When something
// fails, say so"): the patient's connection check verdict reaches the practitioner's waiting
// list before admission (`connection_check`), and a consultation whose media does not connect
// within MEDIA_CONNECT_MS shows the patient what to try and the practitioner what is wrong
// (`media_state` → `participant_media`), instead of "Connecting video…" for 30 s.
// Run through tests/e2e/run.sh (real server in a lo-only netns).
//
// The patient's network is made to block video inside the patient's browser context only: an
// init script keeps every remote ICE candidate (in SDP and trickled) from reaching the
// browser's RTCPeerConnection, so its ICE agent has nothing to check — what a firewall that
// drops all UDP and TCP to the media server amounts to for the browser. The practitioner's
// browser context is untouched, so their own media connects (nft inside the namespace cannot
// tell two contexts of one browser apart).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, captureConsole, requireEnv, snap, signIn, seedOrganisation, endConsultation } from './lib/harness.mjs';
import { bookAppointment } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
let org;
let browser;
before(async () => {
  org = await seedOrganisation('media-failure');
  browser = await launchBrowser();
});
after(async () => { await browser?.close(); });

/** Keeps remote ICE candidates away from every RTCPeerConnection of the page (see above). */
function blockRemoteCandidates() {
  const Original = window.RTCPeerConnection;
  const strip = (d) => (d && typeof d.sdp === 'string'
    ? { type: d.type, sdp: d.sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:')).join('\r\n') }
    : d);
  window.RTCPeerConnection = class extends Original {
    setRemoteDescription(d) { return super.setRemoteDescription(strip(d)); }
    addIceCandidate() { return Promise.resolve(); }
  };
}

async function patientChecksAndEnters(patient, invitationUrl) {
  await patient.goto(invitationUrl);
  await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
  await patient.waitForFunction(() => ['good', 'poor', 'unreachable'].includes(document.body.dataset.netCheck), null, { timeout: 60_000 });
  const level = await patient.evaluate(() => document.body.dataset.netCheck);
  await patient.getByRole('button', { name: 'Enter waiting room' }).click();
  await patient.locator('#waiting-view:not([hidden])').waitFor();
  return level;
}

function noPageProblems(lines) {
  const problems = lines.flat().filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l));
  assert.deepEqual(problems, [], 'no uncaught errors or CSP violations');
}

test('video that cannot connect is explained on both sides; the check verdict reaches the waiting list', { timeout: 180_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const blockedCtx = await newContext(browser, { baseURL: env.BASE_URL, viewport: { width: 390, height: 844 } });
  const fineCtx = await newContext(browser, { baseURL: env.BASE_URL });
  await blockedCtx.addInitScript(blockRemoteCandidates);
  const staff = await staffCtx.newPage();
  const blocked = await blockedCtx.newPage();
  const fine = await fineCtx.newPage();
  const lines = [staff, blocked, fine].map(captureConsole);
  try {
    await signIn(staff, org.email);
    const a = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Blocked Netwerkpatiënt', inMinutes: 2 });
    const b = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Fine Netwerkpatiënt', inMinutes: 3 });
    assert.ok(!a.error && !b.error, a.error || b.error);

    // Before admission: the blocked patient's check says unreachable, and the practitioner sees it.
    assert.equal(await patientChecksAndEnters(blocked, a.invitationUrl), 'unreachable');
    const entry = staff.locator('#waiting-list li.waiting-item').filter({ hasText: 'Blocked Netwerkpatiënt' });
    await entry.locator('.we-check').filter({ hasText: 'Video check failed: video may not work' }).waitFor();
    assert.equal(await entry.getAttribute('data-connection-check'), 'unreachable');
    // A patient whose check was good carries no warning.
    assert.equal(await patientChecksAndEnters(fine, b.invitationUrl), 'good');
    const fineEntry = staff.locator('#waiting-list li.waiting-item').filter({ hasText: 'Fine Netwerkpatiënt' });
    await fineEntry.waitFor();
    await staff.waitForFunction(() => [...document.querySelectorAll('#waiting-list li.waiting-item')]
      .some((li) => li.textContent.includes('Fine Netwerkpatiënt') && li.dataset.connectionCheck === 'good'));
    assert.equal(await fineEntry.locator('.we-check').isHidden(), true);

    // Admitted: within MEDIA_CONNECT_MS (10 s) the patient reads what to try, the practitioner
    // what is wrong — not "Connecting video…".
    const admittedAt = Date.now();
    await entry.locator('button.waiting-entry').click();
    await blocked.locator('[data-media="failed"]').waitFor({ timeout: 20_000 });
    await blocked.locator('#remote-placeholder-text').filter({ hasText: 'Your video cannot connect. Your network may be blocking video calls.' }).waitFor();
    assert.match(await blocked.locator('#remote-placeholder-advice').innerText(), /^Try another network/);
    await blocked.locator('#btn-media-retry').filter({ hasText: 'Try again' }).waitFor();
    await staff.locator('#remote-placeholder-text').filter({ hasText: 'The video of Blocked Netwerkpatiënt cannot connect.' }).waitFor({ timeout: 10_000 });
    const told = Date.now() - admittedAt;
    console.log(`media failure shown on both sides ${told} ms after admission`);
    assert.ok(told >= 9_000, `not before the connection had its chance (${told} ms)`);
    assert.match(await staff.locator('#remote-placeholder-advice').innerText(), /^Ask them to try another network .* or call them by phone\.$/);
    // The practitioner's own media is fine: only the patient's side failed.
    await staff.locator('[data-media="connected"]').waitFor();
    // "Try again" restarts ICE; still blocked, so the verdict stays.
    await blocked.locator('#btn-media-retry').click();
    await blocked.waitForFunction(() => !document.getElementById('btn-media-retry').disabled, null, { timeout: 20_000 });
    assert.equal(await blocked.locator('[data-media="failed"]').count(), 1);
    await snap(blocked, 'media-failure-patient');
    await snap(staff, 'media-failure-practitioner');
    await endConsultation(staff);
    await staff.locator('#dashboard-view:not([hidden])').waitFor();

    // The fine patient: media connects, both sides report it, no failure words anywhere.
    await fineEntry.locator('button.waiting-entry').click();
    await fine.locator('[data-media="connected"]').waitFor({ timeout: 15_000 });
    await staff.locator('[data-media="connected"]').waitFor({ timeout: 15_000 });
    await fine.waitForFunction(() => document.getElementById('remote-video').videoWidth > 0, null, { timeout: 15_000 });
    for (const page of [staff, fine]) {
      assert.equal(await page.locator('#remote-placeholder-advice').isHidden(), true);
      assert.equal(await page.locator('#btn-media-retry').isHidden(), true);
    }
    await endConsultation(staff);
    noPageProblems(lines);
  } catch (e) {
    for (const [name, page] of Object.entries({ staff, blocked, fine })) if (!page.isClosed()) await snap(page, `fail-media-failure-${name}`);
    throw e;
  } finally {
    await staffCtx.close();
    await blockedCtx.close();
    await fineCtx.close();
  }
});
