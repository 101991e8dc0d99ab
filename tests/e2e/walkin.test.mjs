// Walk-in hours through the real server (issue #4): the practitioner switches walk-in on, a host
// page on another local origin frames the demo widget and shows them, a visitor fills the intake,
// lands in the waiting room marked yellow, is admitted and has media both ways. Framing rules:
// the widget framed by an origin that is not allowed does not render, and the staff app cannot
// be framed at all. Run through tests/e2e/run.sh (BASE_URL, DEMO_PASSWORD; the file seeds its own organisation).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  launchBrowser, newContext, captureConsole, requireEnv, assertMediaFlowing, snap, waitFor, signIn, seedOrganisation, endConsultation } from './lib/harness.mjs';
import { apiCall } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('walkin'); });
const PRACTITIONER = 'Dr. Anna de Vries';
const VISITOR = 'Walter Walk-in';
let browser;
const servers = [];

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  for (const s of servers) s.close();
});

/**
 * A host website on `host` (port chosen by the OS) serving one page that frames `src` and records
 * the widget's postMessages (with their origins) in `window.__messages`.
 */
function hostSite(host, src) {
  const page = `<!doctype html><html><head><meta charset="utf-8"><title>Clinic website</title></head>
<body><h1>Our clinic</h1>
<iframe id="w" src="${src}" title="Walk-in widget" style="width:100%;height:640px;border:0"></iframe>
<script>
window.__messages = [];
window.addEventListener('message', function (e) {
  window.__messages.push({ origin: e.origin, data: e.data });
});
</script></body></html>`;
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page);
    });
    servers.push(server);
    server.listen(0, host, () => resolve(`http://${host}:${server.address().port}/`));
  });
}

async function step(name, pages, fn) {
  try {
    return await fn();
  } catch (e) {
    for (const [label, page] of Object.entries(pages)) await snap(page, `fail-walkin-${name.replace(/\W+/g, '-')}-${label}`);
    e.message = `[${name}] ${e.message}`;
    throw e;
  }
}

test('walk-in: switch on → framed widget → intake → yellow entry → admitted with media', { timeout: 180_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const adminCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const visitorCtx = await newContext(browser, { baseURL: env.BASE_URL, viewport: { width: 420, height: 900 } });
  const staff = await staffCtx.newPage();
  const admin = await adminCtx.newPage();
  const visitor = await visitorCtx.newPage();
  const pages = { staff, admin, visitor };
  const consoles = [captureConsole(staff), captureConsole(admin), captureConsole(visitor)];
  /** @type {string[]} */
  const failed = [];
  let widgetId;
  let patient;

  try {
    await step('admin finds the widget and its snippet', pages, async () => {
      await signIn(admin, org.adminEmail, { until: '#dashboard-view:not([hidden])' });
      const res = await apiCall(admin, 'GET', '/api/v1/widgets');
      assert.equal(res.status, 200);
      const demo = res.body.widgets.find((w) => w.name === 'Demo walk-in widget');
      assert.ok(demo, 'the demo seed created a widget');
      widgetId = demo.id;
      await admin.getByRole('button', { name: 'Walk-in hours' }).click();
      await admin.getByRole('heading', { name: 'Walk-in widgets' }).waitFor();
      await admin.getByRole('button', { name: 'Edit Demo walk-in widget' }).click();
      await admin.locator('#widget-preview:not([hidden])').waitFor();
      const snippet = await admin.locator('#widget-snippet').inputValue();
      assert.match(snippet, new RegExp(`<iframe id="consultroom-widget-${widgetId}" src="[^"]+/widget/${widgetId}"`));
      // The live preview is the real widget page (same origin, preview mode).
      await admin.frameLocator('#widget-preview').locator('#cr-title').waitFor();
      // Wizard steps: step 2 shows the texts; a draft title reaches the preview at once.
      await admin.getByRole('button', { name: 'Save and continue' }).click();
      await admin.getByLabel('Title', { exact: true }).fill('Walk-in now (draft)');
      await admin.frameLocator('#widget-preview').getByRole('heading', { name: 'Walk-in now (draft)' }).waitFor();
    });

    await step('practitioner switches walk-in on', pages, async () => {
      await signIn(staff, org.email, { until: '#dashboard-view:not([hidden])' });
      const toggle = staff.locator('#walkin-toggle');
      await toggle.waitFor();
      if ((await toggle.getAttribute('aria-pressed')) === 'true') {
        await toggle.click();
        await staff.locator('#walkin-toggle[aria-pressed="false"]').waitFor();
      }
      await toggle.click();
      await staff.locator('#walkin-toggle[aria-pressed="true"]').waitFor();
      assert.match(await toggle.innerText(), /Walk-in: on/);
      await staff.locator('body[data-signalling="joined"]').waitFor();
    });

    const allowedHost = await hostSite('127.0.0.1', `${env.BASE_URL}/widget/${widgetId}`);
    await step('the allowed host page frames the widget and shows the practitioner', pages, async () => {
      await visitor.goto(allowedHost);
      const frame = visitor.frameLocator('#w');
      await frame.getByRole('button', { name: `Start a walk-in consultation with ${PRACTITIONER}` }).waitFor({ timeout: 15_000 });
      assert.equal(await frame.locator('.cr-department h2').first().innerText(), 'General practice');
      // The widget told its (allowed) host its height, addressed to the host's origin only.
      const msg = await waitFor(() => visitor.evaluate(() => window.__messages.filter((m) => m.data && m.data.type === 'consultroom:widget-height').pop()),
        { what: 'a height message' });
      assert.equal(msg.origin, new URL(env.BASE_URL).origin);
      assert.ok(msg.data.height > 50, `height ${msg.data.height}`);
    });

    await step('intake with inline errors, then the waiting room link', pages, async () => {
      const frame = visitor.frameLocator('#w');
      await frame.getByRole('button', { name: `Start a walk-in consultation with ${PRACTITIONER}` }).click();
      await frame.getByRole('heading', { name: `Walk-in consultation with ${PRACTITIONER}` }).waitFor();
      await frame.getByRole('button', { name: 'Go to the waiting room' }).click();
      await frame.getByText('Name is required').waitFor();
      assert.equal(await frame.locator('#cr-name').getAttribute('aria-invalid'), 'true');
      await frame.getByLabel('Full name').fill(VISITOR);
      await frame.getByRole('button', { name: 'Go to the waiting room' }).click();
      await frame.getByText('Please accept the terms to continue').waitFor();
      await frame.getByLabel('I accept the terms').check();
      await frame.getByRole('button', { name: 'Go to the waiting room' }).click();
      const link = frame.getByRole('link', { name: 'Enter the waiting room' });
      await link.waitFor();
      assert.match(await link.getAttribute('href'), /\/join#w\.[A-Za-z0-9_-]{43}$/);
      await waitFor(() => visitor.evaluate(() => window.__messages.some((m) => m.data && m.data.type === 'consultroom:visitor-entered')),
        { what: 'the visitor-entered message' });
      const [popup] = await Promise.all([visitorCtx.waitForEvent('page'), link.click()]);
      patient = popup;
      pages.patient = patient;
      consoles.push(captureConsole(patient));
      // Every answer the visitor's page gets is a success: a walk-in link has no chat between
      // visits, so the after page must not ask for one (it was a 404 in the console).
      patient.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${new URL(r.url()).pathname}`); });
    });

    await step('walk-in visitor enters the waiting room', pages, async () => {
      await patient.getByRole('heading', { name: 'Check your camera and microphone' }).waitFor();
      assert.equal(new URL(patient.url()).hash, '', 'the visit token is taken out of the address bar');
      assert.match(await patient.locator('#appointment-summary').innerText(), new RegExp(`Your walk-in consultation with ${PRACTITIONER}`));
      await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
      await patient.waitForFunction(() => document.getElementById('preview-video').videoWidth > 0, null, { timeout: 10_000 });
      await patient.getByRole('button', { name: 'Enter waiting room' }).click();
      await patient.getByText('You are in the waiting room; the practitioner will let you in soon.').waitFor();
    });

    await step('yellow walk-in entry, admitted, media both ways', pages, async () => {
      const entry = staff.locator('#waiting-list button.waiting-entry[data-punctuality="walk_in"]').filter({ hasText: VISITOR });
      await entry.waitFor();
      assert.match(await entry.innerText(), /Walk-in/);
      const corner = await entry.locator('.corner').evaluate((e) => getComputedStyle(e).backgroundColor);
      assert.equal(corner, 'rgb(242, 194, 0)', 'yellow corner');
      await entry.click();
      await staff.locator('#room-view:not([hidden])').waitFor();
      await patient.locator('#room-view:not([hidden])').waitFor();
      const [s, p] = await Promise.all([
        assertMediaFlowing(staff, assert, 'practitioner'),
        assertMediaFlowing(patient, assert, 'walk-in visitor'),
      ]);
      console.log(`walk-in: practitioner frames ${s.first.video.framesDecoded} → ${s.second.video.framesDecoded}; visitor frames ${p.first.video.framesDecoded} → ${p.second.video.framesDecoded}`);
      // The switch stays reachable in the consultation room.
      assert.equal(await staff.locator('#walkin-toggle').isVisible(), true);
      await endConsultation(staff);
      await patient.getByText('Your consultation has ended. You can close this window.').waitFor();
      await staff.locator('#dashboard-view:not([hidden])').waitFor();
    });

    await step('switch off: the widget shows the absent text live', pages, async () => {
      await staff.locator('#walkin-toggle').click();
      await staff.locator('#walkin-toggle[aria-pressed="false"]').waitFor();
      await visitor.goto(allowedHost);
      const frame = visitor.frameLocator('#w');
      await frame.locator('#cr-absent-text:not([hidden])').waitFor({ timeout: 15_000 });
      assert.equal(await frame.locator('.cr-practitioner').count(), 0);
    });

    assert.deepEqual(failed, [], 'no failed request on the visitor\'s page');
    const leaks = consoles.flat().filter((l) => l.includes(VISITOR));
    assert.deepEqual(leaks, [], 'no visitor name in any console');
    const problems = consoles.flat().filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l));
    assert.deepEqual(problems, [], 'no uncaught errors or CSP violations');
  } finally {
    await staffCtx.close();
    await adminCtx.close();
    await visitorCtx.close();
  }
});

/** Frames `src` from a host page on `host` and reports whether `selector` rendered inside. */
async function frameRenders(host, src, selector) {
  const url = await hostSite(host, src);
  const ctx = await newContext(browser);
  const page = await ctx.newPage();
  const lines = captureConsole(page);
  try {
    await page.goto(url);
    // Until the outcome is known: the frame renders `selector`, or Chromium reports the block.
    const renderedIn = async (frame) => {
      try {
        return !!frame && (await frame.locator(selector).count()) > 0;
      } catch {
        return false;
      }
    };
    const frameOf = () => page.frames().find((f) => f !== page.mainFrame());
    await waitFor(async () => (await renderedIn(frameOf())) || lines.some((l) => /frame-ancestors|X-Frame-Options/.test(l)),
      { timeoutMs: 10_000, what: `${src} framed on ${host}: rendered or blocked` });
    const frame = frameOf();
    return { rendered: await renderedIn(frame), frameUrl: frame ? frame.url() : null, console: lines.join('\n') };
  } finally {
    await ctx.close();
  }
}

test('framing rules: widget blocked on a disallowed origin, staff app never framed', { timeout: 60_000 }, async () => {
  const adminCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const admin = await adminCtx.newPage();
  await signIn(admin, org.adminEmail, { until: '#dashboard-view:not([hidden])' });
  const res = await apiCall(admin, 'GET', '/api/v1/widgets');
  const widgetId = res.body.widgets.find((w) => w.name === 'Demo walk-in widget').id;
  await adminCtx.close();

  // 127.0.0.1:* is allowed (control), 127.0.0.2 is not.
  const allowed = await frameRenders('127.0.0.1', `${env.BASE_URL}/widget/${widgetId}`, '#cr-title');
  assert.equal(allowed.rendered, true, `widget renders on an allowed origin (${allowed.console})`);
  const blocked = await frameRenders('127.0.0.2', `${env.BASE_URL}/widget/${widgetId}`, '#cr-title');
  assert.equal(blocked.rendered, false, 'the widget does not render on a disallowed origin');
  assert.match(blocked.console, /frame-ancestors/, 'Chromium reports the frame-ancestors violation');
  const staffApp = await frameRenders('127.0.0.1', `${env.BASE_URL}/`, '#login-form');
  assert.equal(staffApp.rendered, false, 'the staff app cannot be framed');
  assert.match(staffApp.console, /frame-ancestors 'none'|X-Frame-Options/);
});
