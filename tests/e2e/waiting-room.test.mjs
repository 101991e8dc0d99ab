// Waiting rooms against the real server (issue #4): arrival and queue position, two practitioner
// pages racing for a department patient, force start, transfer (out of a waiting room and out of
// a consultation), announcements with expiry, and a patient's reload keeping one entry.
// Run through tests/e2e/run.sh (demo server in a lo-only netns; BASE_URL, DEMO_PASSWORD; the file seeds its own organisation).
//
// The file's own organisation (seedOrganisation: the demo clinic's shape) has ONE practitioner (Dr. Anna de Vries, department "General practice")
// and an organisation admin without a waiting room. So "two practitioners of the department" are
// two independent sessions of the demo practitioner (two browsers), and transfers go to the
// department's room. Patients left waiting linger 30 s (reconnect grace), so every test finishes
// its patients through a consultation and entries are always found by name.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launchBrowser, newContext, captureConsole, requireEnv, assertMediaFlowing, snap, waitFor, seedOrganisation, endConsultation } from './lib/harness.mjs';
import { bookAppointment, apiCall } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('waiting-room'); });
let browser;

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Runs one named step; on failure saves screenshots of the given pages first. */
async function step(name, pages, fn) {
  try {
    return await fn();
  } catch (e) {
    for (const [label, page] of Object.entries(pages)) if (page && !page.isClosed()) await snap(page, `fail-wr-${name.replace(/\W+/g, '-')}-${label}`);
    e.message = `[${name}] ${e.message}`;
    throw e;
  }
}

/** page → the signalling frames it sent and received (JSON), recorded from its login on. */
const signallingFrames = new WeakMap();

async function staffLogin(browserCtx) {
  const page = await browserCtx.newPage();
  const frames = { sent: [], received: [] };
  const parse = (payload) => { try { return JSON.parse(payload); } catch { return null; } };
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => frames.sent.push(parse(f.payload)));
    ws.on('framereceived', (f) => frames.received.push(parse(f.payload)));
  });
  signallingFrames.set(page, frames);
  await page.goto('/');
  await page.getByLabel('Email address').fill(org.email);
  await page.getByLabel('Password').fill(org.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('body[data-signalling="joined"]').waitFor();
  return page;
}

async function patientEnters(page, invitationUrl) {
  await page.goto(invitationUrl);
  await page.getByRole('button', { name: 'Start camera and microphone' }).click();
  await page.waitForFunction(() => document.getElementById('preview-video').videoWidth > 0, null, { timeout: 10_000 });
  await page.getByRole('button', { name: 'Enter waiting room' }).click();
  await page.locator('#waiting-view:not([hidden])').waitFor();
  await page.locator('body[data-connection="connected"]').waitFor();
}

const entryLi = (staff, name) => staff.locator('#waiting-list li.waiting-item').filter({ has: staff.locator('.we-name', { hasText: name }) });

async function finishConsultation(staff, patient) {
  await endConsultation(staff);
  if (patient) await patient.getByText('Your consultation has ended. You can close this window.').waitFor();
  await staff.locator('#dashboard-view:not([hidden])').waitFor();
}

function noPageErrors(lines) {
  return lines.filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l));
}

test('arrival: green entry, badge and doorbell; patients see their position and the estimate, live', { timeout: 120_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const aCtx = await newContext(browser, { baseURL: env.BASE_URL, viewport: { width: 390, height: 844 } });
  const bCtx = await newContext(browser, { baseURL: env.BASE_URL, viewport: { width: 390, height: 844 } });
  const pages = {};
  try {
    const staff = pages.staff = await staffLogin(staffCtx);
    const a = pages.a = await aCtx.newPage();
    const b = pages.b = await bCtx.newPage();
    const logs = [captureConsole(staff), captureConsole(a), captureConsole(b)];
    // The positions below assume nobody else waits in this practitioner's room: this file's
    // organisation is its own, so no patient of an earlier file can be left in it.
    assert.equal(await staff.locator('#waiting-list li.waiting-item').count(), 0, 'nobody waiting yet');
    const bookA = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Queue First', inMinutes: 2 });
    const bookB = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Queue Second', inMinutes: 3 });
    assert.ok(!bookA.error && !bookB.error, bookA.error || bookB.error);
    const bellsBefore = await staff.evaluate(() => window.__consultroom.doorbells);

    await step('first arrives', pages, async () => {
      await patientEnters(a, bookA.invitationUrl);
      const li = entryLi(staff, 'Queue First');
      await li.waitFor();
      const btn = li.locator('button.waiting-entry');
      assert.equal(await btn.getAttribute('data-punctuality'), 'on_time');
      assert.equal(await btn.locator('.corner').evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(27, 127, 59)');
      await staff.waitForFunction((n) => window.__consultroom.doorbells > n, bellsBefore, { timeout: 5000 });
      assert.ok(Number(await staff.locator('#waiting-count').getAttribute('data-count')) >= 1);
      assert.equal(await li.locator('.we-queue-name').innerText(), 'You', 'own room labelled (the practitioner also watches a department room)');
      await a.locator('#queue-position').filter({ hasText: 'You are next' }).waitFor();
      // A practitioner is online, so the server has an honest estimate.
      await a.locator('#queue-estimate').filter({ hasText: /^Expected around \d\d:\d\d$/ }).waitFor();
    });

    await step('second arrives behind the first', pages, async () => {
      await patientEnters(b, bookB.invitationUrl);
      await entryLi(staff, 'Queue Second').waitFor();
      await b.locator('#queue-position').filter({ hasText: '1 person before you' }).waitFor();
      await snap(b, 'real-patient-queue-position');
    });

    await step('first admitted: second moves up live', pages, async () => {
      await entryLi(staff, 'Queue First').locator('button.waiting-entry').click();
      await a.locator('#room-view:not([hidden])').waitFor();
      await b.locator('#queue-position').filter({ hasText: 'You are next' }).waitFor({ timeout: 10_000 });
      await finishConsultation(staff, a);
      await entryLi(staff, 'Queue Second').locator('button.waiting-entry').click();
      await b.locator('#room-view:not([hidden])').waitFor();
      await finishConsultation(staff, b);
    });
    assert.deepEqual(logs.flatMap(noPageErrors), []);
  } finally {
    await staffCtx.close();
    await aCtx.close();
    await bCtx.close();
  }
});

test('department room: two practitioner pages race to admit; exactly one gets the patient', { timeout: 120_000 }, async (t) => {
  const s1Ctx = await newContext(browser, { baseURL: env.BASE_URL });
  const s2Ctx = await newContext(browser, { baseURL: env.BASE_URL });
  const pCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const pages = {};
  try {
    const s1 = pages.s1 = await staffLogin(s1Ctx);
    const s2 = pages.s2 = await staffLogin(s2Ctx);
    const patient = pages.patient = await pCtx.newPage();
    const me = await apiCall(s1, 'GET', '/api/v1/me');
    assert.equal(me.status, 200);
    if (!me.body.department_id) {
      t.skip('the demo practitioner has no department');
      return;
    }
    const booked = await bookAppointment(s1, {
      baseUrl: env.BASE_URL, clientName: 'Dept Racer', inMinutes: 2,
      extra: { department_id: me.body.department_id, waiting_room: 'department' },
    });
    if (booked.error) {
      t.skip(`the API refused a department appointment (${booked.error}); clinic change not landed?`);
      return;
    }
    const dir = await apiCall(s1, 'GET', '/api/v1/directory');
    const deptName = dir.body?.departments?.find((d) => d.id === me.body.department_id)?.name;

    await step('both pages see the department entry', pages, async () => {
      await patientEnters(patient, booked.invitationUrl);
      for (const s of [s1, s2]) {
        const li = entryLi(s, 'Dept Racer');
        await li.waitFor();
        assert.equal(await li.locator('.we-queue').getAttribute('data-queue-kind'), 'department');
        if (deptName) assert.equal(await li.locator('.we-queue-name').innerText(), deptName);
      }
      await patient.locator('#queue-position').filter({ hasText: 'You are next' }).waitFor();
    });

    await step('race', pages, async () => {
      const b1 = entryLi(s1, 'Dept Racer').locator('button.waiting-entry');
      const b2 = entryLi(s2, 'Dept Racer').locator('button.waiting-entry');
      const h1 = await b1.elementHandle();
      const h2 = await b2.elementHandle();
      // Two synchronous DOM clicks, as close together as two pages allow.
      await Promise.all([h1.evaluate((b) => b.click()), h2.evaluate((b) => b.click())]);
      await patient.locator('#room-view:not([hidden])').waitFor();
      const inRoom = await waitFor(async () => {
        const v = await Promise.all([s1, s2].map((s) => s.evaluate(() => document.body.dataset.view)));
        return v.includes('room-view') ? v : null;
      }, { timeoutMs: 15_000, what: 'one practitioner page in the room' });
      // Both pages sent an admit (both clicks start one); wait until the server answered each, so
      // that the loser has had its chance to (wrongly) enter too.
      const admitsAnswered = (page) => {
        const f = signallingFrames.get(page);
        const ids = f.sent.filter((m) => m?.type === 'admit').map((m) => m.id);
        return ids.length > 0 && ids.every((id) => f.received.some((m) => m?.reply_to === id));
      };
      await waitFor(async () => admitsAnswered(s1) && admitsAnswered(s2), { timeoutMs: 15_000, what: 'both pages\' admits answered' });
      const views = await Promise.all([s1, s2].map((s) => s.evaluate(() => document.body.dataset.view)));
      assert.equal(views.filter((v) => v === 'room-view').length, 1, `exactly one page in the room (${views} / first ${inRoom})`);
      const winner = views[0] === 'room-view' ? s1 : s2;
      const loser = winner === s1 ? s2 : s1;
      await entryLi(loser, 'Dept Racer').waitFor({ state: 'detached' });
      const toast = await loser.locator('#toast:not([hidden])').innerText().catch(() => '');
      console.log(`race: winner ${winner === s1 ? 's1' : 's2'}; loser toast: ${toast || '(none: the entry left before its admit)'}`);
      if (toast) assert.match(toast, /no longer in the waiting room/);
      assert.equal(await loser.evaluate(() => window.__consultroom.pc()), null, 'the loser has no peer connection');
      await assertMediaFlowing(patient, assert, 'patient (department)');
      await finishConsultation(winner, patient);
    });
  } finally {
    await s1Ctx.close();
    await s2Ctx.close();
    await pCtx.close();
  }
});

test('force start: the practitioner waits in the room; the patient goes straight in with media', { timeout: 120_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const pCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const pages = {};
  try {
    const staff = pages.staff = await staffLogin(staffCtx);
    const patient = pages.patient = await pCtx.newPage();
    const logs = [captureConsole(staff), captureConsole(patient)];
    const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Forced Start', inMinutes: 4 });
    assert.ok(!booked.error, booked.error);

    await step('start now', pages, async () => {
      await staff.getByRole('button', { name: 'Refresh' }).click();
      const start = staff.getByRole('button', { name: 'Start now with Forced Start' });
      await start.waitFor();
      await start.click();
      await staff.locator('#room-view[data-waiting-for="true"]').waitFor();
      await staff.locator('#remote-placeholder-text').filter({ hasText: 'Waiting for Forced Start to join' }).waitFor();
      await snap(staff, 'real-staff-force-start-waiting');
    });

    await step('patient arrives and goes straight in', pages, async () => {
      await patient.goto(booked.invitationUrl);
      await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
      await patient.waitForFunction(() => document.getElementById('preview-video').videoWidth > 0, null, { timeout: 10_000 });
      await patient.getByRole('button', { name: 'Enter waiting room' }).click();
      await patient.locator('#room-view:not([hidden])').waitFor();
      await staff.locator('#remote-name').filter({ hasText: 'Forced Start' }).waitFor();
      assert.equal(await staff.locator('#room-view').getAttribute('data-waiting-for'), null);
      const [s, p] = await Promise.all([
        assertMediaFlowing(staff, assert, 'practitioner (force start)'),
        assertMediaFlowing(patient, assert, 'patient (force start)'),
      ]);
      console.log(`force start: practitioner frames ${s.second.video.framesDecoded}, patient frames ${p.second.video.framesDecoded}`);
      await finishConsultation(staff, patient);
    });
    assert.deepEqual(logs.flatMap(noPageErrors), []);
  } finally {
    await staffCtx.close();
    await pCtx.close();
  }
});

test('transfer: from the own room to the department room, and out of a consultation; admitted from there', { timeout: 150_000 }, async (t) => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const pCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const pages = {};
  try {
    const staff = pages.staff = await staffLogin(staffCtx);
    const patient = pages.patient = await pCtx.newPage();
    const me = await apiCall(staff, 'GET', '/api/v1/me');
    const dir = await apiCall(staff, 'GET', '/api/v1/directory');
    if (dir.status !== 200) {
      t.skip(`GET /api/v1/directory → ${dir.status}`);
      return;
    }
    const dept = dir.body.departments.find((d) => d.id === me.body.department_id);
    const others = dir.body.practitioners.filter((p) => p.id !== me.body.id);
    if (!dept) {
      t.skip('the demo practitioner has no department to transfer to');
      return;
    }
    console.log(`transfer: ${others.length} other practitioner(s) in the directory; using the department room "${dept.name}"`);
    const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Transfer Patient', inMinutes: 2 });
    assert.ok(!booked.error, booked.error);
    await patientEnters(patient, booked.invitationUrl);
    const li = entryLi(staff, 'Transfer Patient');

    await step('transfer a waiting patient', pages, async () => {
      await li.waitFor();
      assert.equal(await li.locator('.we-queue-name').innerText(), 'You');
      await li.locator('button.we-transfer').click();
      const dialog = staff.getByRole('dialog', { name: 'Transfer patient' });
      await dialog.waitFor();
      await staff.getByLabel('New waiting room').selectOption(`department:${dept.id}`);
      await dialog.getByRole('button', { name: 'Transfer' }).click();
      await dialog.waitFor({ state: 'hidden' });
      await li.locator('.we-queue-name').filter({ hasText: dept.name }).waitFor();
      assert.equal(await entryLi(staff, 'Transfer Patient').count(), 1, 'one entry');
      await patient.locator('#queue-position').filter({ hasText: /You are next|before you/ }).waitFor();
    });

    await step('admit from the department room, then transfer out of the consultation', pages, async () => {
      await li.locator('button.waiting-entry').click();
      await patient.locator('#room-view:not([hidden])').waitFor();
      await patient.waitForFunction(() => !!window.__consultroom.pc(), null, { timeout: 10_000 });
      await staff.getByRole('button', { name: 'Transfer patient…' }).click();
      const dialog = staff.getByRole('dialog', { name: 'Transfer patient' });
      await dialog.waitFor();
      await staff.getByLabel('New waiting room').selectOption(`department:${dept.id}`);
      await dialog.getByRole('button', { name: 'Transfer' }).click();
      // The patient is back in a waiting room with the peer connection closed ...
      await patient.locator('#waiting-view:not([hidden])').waitFor();
      assert.equal(await patient.evaluate(() => window.__consultroom.pc()), null);
      // ... and the practitioner back on the dashboard with the patient in the department room.
      await staff.locator('#dashboard-view:not([hidden])').waitFor();
      await li.locator('.we-queue-name').filter({ hasText: dept.name }).waitFor();
    });

    await step('admitted again with media', pages, async () => {
      await li.locator('button.waiting-entry').click();
      await patient.locator('#room-view:not([hidden])').waitFor();
      await assertMediaFlowing(patient, assert, 'patient (after transfer)');
      await finishConsultation(staff, patient);
    });
  } finally {
    await staffCtx.close();
    await pCtx.close();
  }
});

test('announcements: shown live to the waiting patient, gone at expiry and after deletion', { timeout: 120_000 }, async (t) => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const pCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const pages = {};
  try {
    const staff = pages.staff = await staffLogin(staffCtx);
    const patient = pages.patient = await pCtx.newPage();
    const probe = await apiCall(staff, 'GET', '/api/v1/announcements?include_expired=false');
    if (probe.status === 404 || probe.status === 405) {
      t.skip(`announcements API not available (${probe.status})`);
      return;
    }
    const me = await apiCall(staff, 'GET', '/api/v1/me');
    const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Announce Patient', inMinutes: 2 });
    assert.ok(!booked.error, booked.error);
    await patientEnters(patient, booked.invitationUrl);
    const box = patient.getByRole('region', { name: 'Message from your clinic' });

    await step('published from the panel (with an expiry in an hour)', pages, async () => {
      const inAnHour = new Date(Date.now() + 3600_000);
      // datetime-local is local time: build it from the page's own clock and zone.
      const local = await staff.evaluate((ms) => {
        const d = new Date(ms);
        const p = (n) => String(n).padStart(2, '0');
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
      }, inAnHour.getTime());
      await staff.getByLabel('Message', { exact: true }).fill('Running about 10 minutes late <b>sorry</b>');
      await staff.getByLabel('Show to patients waiting in').selectOption(`practitioner:${me.body.id}`);
      await staff.getByLabel(/Hide after/).fill(local);
      await staff.getByRole('button', { name: 'Publish announcement' }).click();
      await staff.locator('#ann-groups li').filter({ hasText: 'Running about 10 minutes late' }).waitFor();
      await box.getByText('Running about 10 minutes late <b>sorry</b>').waitFor({ timeout: 10_000 });
      assert.equal(await box.locator('b').count(), 0, 'plain text');
      await snap(patient, 'real-patient-announcement');
    });

    await step('an announcement expiring in 6 s disappears by itself', pages, async () => {
      const created = await apiCall(staff, 'POST', '/api/v1/announcements', {
        text: 'Short-lived notice', scope: { kind: 'practitioner', id: me.body.id },
        expires_at: new Date(Date.now() + 6000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      await box.getByText('Short-lived notice').waitFor({ timeout: 10_000 });
      await box.getByText('Short-lived notice').waitFor({ state: 'detached', timeout: 15_000 });
      // Still in the history with "include expired".
      await staff.getByLabel('Include expired').check();
      await staff.locator('#ann-groups li[data-expired="true"]').filter({ hasText: 'Short-lived notice' }).waitFor();
    });

    await step('deleted from the panel: gone for the patient', pages, async () => {
      await staff.getByRole('button', { name: /Delete announcement “Running about 10 minutes late/ }).click();
      await box.waitFor({ state: 'hidden', timeout: 10_000 });
      // Clean up the rest of this room, then finish the patient.
      const delAll = staff.getByRole('button', { name: /^Delete all for Your waiting room/ });
      if (await delAll.count()) {
        await delAll.click();
        await staff.getByRole('button', { name: /Press again/ }).click();
      }
      await entryLi(staff, 'Announce Patient').locator('button.waiting-entry').click();
      await patient.locator('#room-view:not([hidden])').waitFor();
      await finishConsultation(staff, patient);
    });
  } finally {
    await staffCtx.close();
    await pCtx.close();
  }
});

test("a patient's reload keeps one entry: reconnecting, then back, without a new doorbell", { timeout: 120_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const pCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const pages = {};
  try {
    const staff = pages.staff = await staffLogin(staffCtx);
    const patient = pages.patient = await pCtx.newPage();
    const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Reload Patient', inMinutes: 2 });
    assert.ok(!booked.error, booked.error);
    await patientEnters(patient, booked.invitationUrl);
    const li = entryLi(staff, 'Reload Patient');
    await li.waitFor();
    await staff.evaluate(() => {
      // Record every state of the entry (the reconnecting phase may be short).
      window.__seen = [];
      const record = () => {
        const items = [...document.querySelectorAll('#waiting-list li.waiting-item')]
          .filter((x) => x.querySelector('.we-name')?.textContent === 'Reload Patient');
        window.__seen.push(`${items.length}:${items.map((x) => x.dataset.reconnecting).join(',')}`);
      };
      new MutationObserver(record).observe(document.getElementById('waiting-list'), { subtree: true, childList: true, attributes: true });
    });
    const bells = await staff.evaluate(() => window.__consultroom.doorbells);

    await step('reload', pages, async () => {
      await patient.reload();
      await patient.locator('#waiting-view:not([hidden])').waitFor();
      await patient.locator('body[data-connection="connected"]').waitFor({ timeout: 15_000 });
      await staff.locator('#waiting-list li.waiting-item[data-reconnecting="false"]').filter({ hasText: 'Reload Patient' }).waitFor();
      const seen = await staff.evaluate(() => window.__seen);
      console.log(`reload: entry states seen by the practitioner: ${[...new Set(seen)].join(' → ')}`);
      assert.ok(seen.some((s) => s === '1:true'), 'shown as reconnecting meanwhile');
      assert.ok(seen.every((s) => s.startsWith('1:')), 'never two entries, never gone');
      assert.equal(await entryLi(staff, 'Reload Patient').count(), 1);
      assert.equal(await staff.evaluate(() => window.__consultroom.doorbells), bells, 'no new doorbell');
      await patient.locator('#queue-position').filter({ hasText: /You are next|before you/ }).waitFor();
    });

    await step('admitted after the reload, with media', pages, async () => {
      await li.locator('button.waiting-entry').click();
      await patient.locator('#room-view:not([hidden])').waitFor();
      await assertMediaFlowing(patient, assert, 'patient (after reload)');
      await finishConsultation(staff, patient);
    });
  } finally {
    await staffCtx.close();
    await pCtx.close();
  }
});
