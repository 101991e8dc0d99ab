// Cross-site request forgery from a second origin (issue #10, src/csrf.rs): while the practitioner
// is signed in, a page served from another port of the same host (same *site*, so Chromium sends
// the SameSite=Strict session cookie; another *origin*) auto-submits a form POST and a
// `fetch(..., {mode: 'no-cors', credentials: 'include'})` to the appointment cancel endpoint and a
// form POST to logout. The appointment must still be scheduled and the session alive (checked
// through the API from the practitioner's own page); then the same cancel from our own page works.
// Run through tests/e2e/run.sh (BASE_URL, DEMO_PASSWORD; the file seeds its own organisation).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { launchBrowser, newContext, requireEnv, snap, waitFor, signIn, seedOrganisation } from './lib/harness.mjs';
import { apiCall, bookAppointment } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('csrf'); });
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
 * The attacker's site: on the server's host but another port (chosen by the OS). `pages` maps a
 * path to the HTML served there. Resolves the site's origin.
 */
function attackerSite(host, pages) {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      const page = pages[new URL(req.url, 'http://x').pathname];
      if (!page) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page);
    });
    servers.push(server);
    server.listen(0, host, () => resolve(`http://${host}:${server.address().port}`));
  });
}

/** A page that POSTs a form to `action` as soon as it loads (the classic CSRF page). */
function formPage(action) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>You won!</title></head><body>
<form id="f" method="POST" action="${action}"><input type="hidden" name="x" value="1"></form>
<script>document.getElementById('f').submit();</script></body></html>`;
}

/** A page that fires a credentialed no-cors POST (the response is opaque, the side effect is not). */
function fetchPage(url) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Cute cats</title></head><body>
<script>
window.__done = null;
fetch(${JSON.stringify(url)}, { method: 'POST', credentials: 'include', mode: 'no-cors' })
  .then(() => { window.__done = 'sent'; }, (e) => { window.__done = 'error: ' + e; });
</script></body></html>`;
}

async function appointmentStatus(page, id) {
  const res = await apiCall(page, 'GET', `/api/v1/appointments/${id}`);
  assert.equal(res.status, 200, `GET appointment → ${res.status}`);
  return res.body.appointment.status;
}

test('CSRF: a same-site, cross-origin page cannot cancel an appointment or log the practitioner out', { timeout: 120_000 }, async () => {
  const ctx = await newContext(browser, { baseURL: env.BASE_URL });
  const staff = await ctx.newPage();
  const attacker = await ctx.newPage();
  try {
    await signIn(staff, org.email, { until: '#dashboard-view:not([hidden])' });
    const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Carla Csrf', inMinutes: 90 });
    assert.ok(!booked.error, booked.error);
    const id = booked.appointment.id;
    assert.equal(await appointmentStatus(staff, id), 'scheduled');

    const server = new URL(env.BASE_URL);
    const cancelUrl = `${server.origin}/api/v1/appointments/${id}/cancel`;
    const site = await attackerSite(server.hostname, {
      '/form-cancel': formPage(cancelUrl),
      '/fetch-cancel': fetchPage(cancelUrl),
      '/form-logout': formPage(`${server.origin}/api/v1/auth/logout`),
    });
    assert.notEqual(new URL(site).origin, server.origin, 'the attacker is another origin');
    assert.equal(new URL(site).hostname, server.hostname, '... of the same site, so the cookie is sent');

    // 1. The fetch: wait until the browser has the (opaque) response, i.e. the server answered.
    await attacker.goto(`${site}/fetch-cancel`);
    const done = await waitFor(() => attacker.evaluate(() => window.__done), { what: 'the no-cors POST to finish' });
    assert.equal(done, 'sent');
    assert.equal(await appointmentStatus(staff, id), 'scheduled', 'no-cors fetch did not cancel');

    // 2. The form: the browser navigates to our answer, which must be the refusal.
    const answer = attacker.waitForResponse((r) => r.url() === cancelUrl);
    await attacker.goto(`${site}/form-cancel`);
    const res = await answer;
    assert.equal(res.status(), 403, 'the form POST is refused');
    assert.equal((await res.json()).error.code, 'cross_origin_request');
    assert.equal(await appointmentStatus(staff, id), 'scheduled', 'form POST did not cancel');

    // 3. Logout by form: refused, and the session still works.
    const logoutAnswer = attacker.waitForResponse((r) => r.url().endsWith('/api/v1/auth/logout'));
    await attacker.goto(`${site}/form-logout`);
    assert.equal((await logoutAnswer).status(), 403, 'the logout form POST is refused');
    const me = await apiCall(staff, 'GET', '/api/v1/me');
    assert.equal(me.status, 200, 'still signed in');

    // Control: the same cancel from our own page (same origin) works, with the same cookie.
    const own = await apiCall(staff, 'POST', `/api/v1/appointments/${id}/cancel`);
    assert.equal(own.status, 200, `own cancel → ${own.status} ${own.body?.error?.code || ''}`);
    assert.equal(await appointmentStatus(staff, id), 'cancelled');
  } catch (e) {
    await snap(staff, 'fail-csrf-staff');
    await snap(attacker, 'fail-csrf-attacker');
    throw e;
  } finally {
    await ctx.close();
  }
});
