// UI behaviour of the web client against a FAKE server: the pages are served from web-client/
// by a tiny static server, and `/api/v1/...` and `/ws` are answered inside the browser by
// Playwright routes. This checks screens, texts, accessibility attributes and the frames the
// client sends, without the Rust server and without media (consultation.test.mjs does that).
// Runs anywhere: `node --test tests/e2e/ui-mocked.test.mjs`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, captureConsole, snap } from './lib/harness.mjs';
import { startStaticServer } from './lib/static-server.mjs';

const PATIENT = 'Jolien Testpatient';
const PRACTITIONER = 'Dr. Anna de Vries';
let browser;
let server;

before(async () => {
  server = await startStaticServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

const json = (route, status, body) => route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
const hhmmUtc = (iso) => new Date(iso).toISOString().slice(11, 16);

/** Fake signalling server for one page: records client frames, lets the test push frames. */
async function fakeSignalling(page, { onJoin }) {
  const frames = [];
  let socket = null;
  let waiters = [];
  await page.routeWebSocket(/\/ws$/, (ws) => {
    socket = ws;
    ws.onMessage((text) => {
      const msg = JSON.parse(text);
      frames.push(msg);
      if (msg.type === 'join') onJoin(msg, (m) => ws.send(JSON.stringify(m)));
      else if (['admit', 'end_consultation'].includes(msg.type) && msg.id) ws.send(JSON.stringify({ reply_to: msg.id, type: 'ok' }));
      waiters = waiters.filter((w) => !w(msg));
    });
  });
  return {
    frames,
    push: (m) => socket.send(JSON.stringify(m)),
    /** Resolves with the first (already sent or future) client frame matching `pred`. */
    next(pred, timeoutMs = 5000) {
      const found = frames.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('frame not sent in time')), timeoutMs);
        waiters.push((m) => (pred(m) ? (clearTimeout(t), resolve(m), true) : false));
      });
    },
  };
}

test('staff: login, appointments, live waiting room, admit, room controls, end', { timeout: 60_000 }, async () => {
  const context = await newContext(browser, { baseURL: server.url, timezoneId: 'UTC' });
  const page = await context.newPage();
  const consoleLines = captureConsole(page);
  let loggedIn = false;
  const now = new Date();
  const startsAt = new Date(Math.floor(now.getTime() / 60000) * 60000).toISOString();
  const lateStart = new Date(now.getTime() - 20 * 60000).toISOString();
  await page.route('**/api/v1/**', async (route) => {
    const url = new URL(route.request().url());
    const method = route.request().method();
    if (url.pathname === '/api/v1/me') {
      if (!loggedIn) return json(route, 401, { error: { code: 'unauthenticated', message: 'sign in' } });
      return json(route, 200, { id: 's1', name: PRACTITIONER, email: 'anna@example.test', role: 'practitioner', organisation_id: 'o1', department_id: null });
    }
    if (url.pathname === '/api/v1/appointments') {
      assert.ok(url.searchParams.get('from') && url.searchParams.get('to'), 'asks for the local day');
      if (!loggedIn) return json(route, 401, { error: { code: 'unauthenticated', message: 'sign in' } });
      return json(route, 200, { appointments: [
        { id: 'a2', client: { id: 'c2', name: 'Bram Later' }, practitioner: { id: 's1', name: PRACTITIONER }, starts_at: new Date(now.getTime() + 3600000).toISOString(), duration_minutes: 20, status: 'scheduled' },
        { id: 'a1', client: { id: 'c1', name: PATIENT }, practitioner: { id: 's1', name: PRACTITIONER }, starts_at: startsAt, duration_minutes: 15, status: 'scheduled' },
      ] });
    }
    if (url.pathname === '/api/v1/auth/login' && method === 'POST') {
      const body = route.request().postDataJSON();
      if (body.password !== 'right') return json(route, 401, { error: { code: 'invalid_credentials', message: 'no' } });
      loggedIn = true;
      return json(route, 200, { staff: { id: 's1', name: PRACTITIONER } });
    }
    if (url.pathname === '/api/v1/signalling/token' && method === 'POST') {
      return json(route, 200, { token: 'staff-token', expires_at: new Date(Date.now() + 120000).toISOString() });
    }
    if (url.pathname === '/api/v1/auth/logout') {
      loggedIn = false;
      return route.fulfill({ status: 204 });
    }
    return json(route, 404, { error: { code: 'not_found', message: 'no route' } });
  });
  const sig = await fakeSignalling(page, {
    onJoin: (msg, send) => {
      send({ reply_to: msg.id, type: 'joined', protocol: 1, participant_id: 'p-staff', role: 'staff', display_name: PRACTITIONER });
      send({ type: 'waiting_snapshot', entries: [] });
    },
  });

  await page.goto('/');
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'login-email', 'focus starts in the email field');

  // Empty submit: field errors, no request.
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Enter your email address.').waitFor();
  assert.equal(await page.getByLabel('Email address').getAttribute('aria-invalid'), 'true');

  await page.getByLabel('Email address').fill('anna@example.test');
  await page.getByLabel('Password').fill('wrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'The email address or password is not correct.' }).waitFor();

  // Keyboard only: Enter in the password field submits (and unlocks audio for the doorbell).
  await page.getByLabel('Password').fill('right');
  await page.getByLabel('Password').press('Enter');
  await page.getByRole('heading', { name: "Today's appointments" }).waitFor();
  await page.locator('#appointments-list li').first().waitFor();
  const appts = await page.locator('#appointments-list li').allInnerTexts();
  assert.equal(appts.length, 2);
  assert.match(appts[0], new RegExp(hhmmUtc(startsAt)), 'sorted by time, HH:MM local');
  assert.match(appts[0], /Jolien Testpatient/);
  await page.getByText('No one is waiting').waitFor();
  assert.equal(await page.locator('#waiting-count').isVisible(), false, 'no badge when nobody waits');
  await sig.next((m) => m.type === 'join' && m.token === 'staff-token');
  await page.locator('body[data-signalling="joined"]').waitFor();
  await page.locator('#staff-name').filter({ hasText: PRACTITIONER }).waitFor();

  // Arrivals: on time, late, walk-in.
  sig.push({ type: 'waiting_arrived', entry: { participant_id: 'p1', display_name: PATIENT, appointment_id: 'a1', appointment_starts_at: startsAt, arrived_at: now.toISOString(), punctuality: 'on_time' } });
  const entry = page.locator('#waiting-list button[data-participant-id="p1"]');
  await entry.waitFor();
  assert.equal(await entry.getAttribute('data-punctuality'), 'on_time');
  assert.match(await entry.innerText(), /On time/);
  assert.match(await entry.innerText(), new RegExp(`Appointment ${hhmmUtc(startsAt)}`));
  assert.match(await entry.innerText(), new RegExp(`Arrived ${hhmmUtc(now.toISOString())}`));
  const corner = await entry.locator('.corner').evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(corner, 'rgb(27, 127, 59)', 'green corner for on time');
  await page.locator('#waiting-count[data-count="1"]').waitFor();
  assert.equal(await page.locator('#waiting-count-number').innerText(), '1');
  await page.waitForFunction(() => window.__consultroom.doorbells === 1, null, { timeout: 3000 });
  assert.equal(await page.getByText('No one is waiting').isVisible(), false);
  assert.equal(await page.locator('#waiting-list').getAttribute('aria-live'), 'polite');

  sig.push({ type: 'waiting_arrived', entry: { participant_id: 'p2', display_name: 'Late Person', appointment_starts_at: lateStart, arrived_at: now.toISOString(), punctuality: 'late' } });
  sig.push({ type: 'waiting_arrived', entry: { participant_id: 'p3', display_name: 'Walk In', arrived_at: now.toISOString(), punctuality: 'walk_in' } });
  await page.locator('#waiting-count[data-count="3"]').waitFor();
  const lateCorner = await page.locator('button[data-participant-id="p2"] .corner').evaluate((e) => getComputedStyle(e).backgroundColor);
  const walkCorner = await page.locator('button[data-participant-id="p3"] .corner').evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(lateCorner, 'rgb(192, 37, 27)', 'red corner for late');
  assert.equal(walkCorner, 'rgb(242, 194, 0)', 'yellow corner for walk-in');
  assert.match(await page.locator('button[data-participant-id="p3"]').innerText(), /Walk-in/);
  await page.waitForFunction(() => window.__consultroom.doorbells === 3, null, { timeout: 3000 });
  await snap(page, 'mock-staff-dashboard-desktop');
  await page.setViewportSize({ width: 390, height: 844 });
  await snap(page, 'mock-staff-dashboard-phone');
  await page.setViewportSize({ width: 1280, height: 800 });

  sig.push({ type: 'waiting_left', participant_id: 'p3' });
  await page.locator('#waiting-count[data-count="2"]').waitFor();

  // Admit → consultation.
  await entry.click();
  const admit = await sig.next((m) => m.type === 'admit');
  assert.equal(admit.participant_id, 'p1');
  sig.push({ type: 'waiting_left', participant_id: 'p1' });
  sig.push({ type: 'consultation_started', consultation_id: 'c1', started_at: new Date(Date.now() - 65_000).toISOString(), participants: [
    { participant_id: 'p-staff', display_name: PRACTITIONER, role: 'staff', audio: true, video: true },
    { participant_id: 'p1', display_name: PATIENT, role: 'patient', audio: true, video: true },
  ] });
  await page.locator('#room-view:not([hidden])').waitFor();
  const offer = await sig.next((m) => m.type === 'media_offer');
  assert.match(offer.sdp, /^v=0/);
  assert.match(offer.sdp, /a=sendonly/);
  assert.ok(!('id' in offer) || typeof offer.id === 'string');
  const clock1 = await page.locator('#room-clock').innerText();
  assert.match(clock1, /^01:0\d$/, `clock counts from started_at (${clock1})`);
  await page.waitForTimeout(1100);
  assert.notEqual(await page.locator('#room-clock').innerText(), clock1, 'clock runs');

  const mic = page.getByRole('button', { name: 'Mute microphone' });
  assert.equal(await mic.getAttribute('aria-pressed'), 'false');
  await mic.click();
  assert.equal(await mic.getAttribute('aria-pressed'), 'true');
  const mute = await sig.next((m) => m.type === 'mute');
  assert.deepEqual({ audio: mute.audio, video: mute.video }, { audio: false, video: true });
  await page.locator('#self-mic-off:not([hidden])').waitFor();
  await page.getByRole('status').filter({ hasText: 'Your microphone is off.' }).waitFor();

  sig.push({ type: 'participant_muted', participant_id: 'p1', audio: false, video: true });
  await page.locator('#remote-mic-off:not([hidden])').waitFor();
  assert.equal(await page.locator('#room-view').getAttribute('data-remote-audio'), 'false');
  sig.push({ type: 'participant_left', participant_id: 'p1' });
  await page.locator('#room-notice-box:not([hidden])').waitFor();
  await snap(page, 'mock-staff-room');

  await page.getByRole('button', { name: 'End consultation' }).click();
  await sig.next((m) => m.type === 'end_consultation');
  sig.push({ type: 'consultation_ended', consultation_id: 'c1', reason: 'ended' });
  await page.locator('#dashboard-view:not([hidden])').waitFor();
  assert.equal(await page.evaluate(() => window.__consultroom.pc()), null);

  // Server error frames are shown, not fatal.
  sig.push({ type: 'error', code: 'rate_limited', message: 'Too many messages; slow down.' });
  await page.locator('#toast').filter({ hasText: 'Too many messages' }).waitFor();

  // A reload keeps the session (cookie): straight back to the dashboard.
  await page.reload();
  await page.locator('body[data-signalling="joined"]').waitFor();
  await page.getByRole('heading', { name: "Today's appointments" }).waitFor();

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();

  const leaked = consoleLines.filter((l) => l.includes(PATIENT) || l.includes('Late Person') || l.includes('staff-token'));
  assert.deepEqual(leaked, [], 'no patient data or tokens in the console');
  assert.deepEqual(consoleLines.filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l)), [], 'no uncaught errors or CSP violations');
  await context.close();
});

test('patient: link problems show the right message and no names', { timeout: 45_000 }, async () => {
  const context = await newContext(browser, { baseURL: server.url, timezoneId: 'UTC' });
  const page = await context.newPage();
  const opensAt = '2031-05-06T13:45:00Z';
  const cases = {
    early: [403, { error: { code: 'invitation_too_early', message: 'too early', opens_at: opensAt } }, `Too early — this link opens at ${hhmmUtc(opensAt)}`],
    expired: [410, { error: { code: 'invitation_expired', message: 'gone' } }, 'This link has expired'],
    cancelled: [410, { error: { code: 'invitation_cancelled', message: 'gone' } }, 'This appointment was cancelled'],
    garbage: [404, { error: { code: 'invitation_not_found', message: 'nope' } }, 'This link is not valid'],
  };
  const seen = [];
  await page.route('**/api/v1/invitations/resolve', (route) => {
    const { token } = route.request().postDataJSON();
    seen.push(token);
    const c = cases[token];
    return json(route, c[0], c[1]);
  });
  for (const [token, [, , text]] of Object.entries(cases)) {
    await page.goto(`/join#${token}`);
    await page.getByRole('heading', { name: text }).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'token removed from the address bar');
    const body = await page.locator('body').innerText();
    assert.ok(!body.includes(PRACTITIONER) && !body.includes(PATIENT), 'no names on a link-problem page');
  }
  assert.deepEqual(seen, Object.keys(cases), 'token sent in the POST body');
  // No fragment at all (and nothing stored): not valid, without calling the API.
  await page.evaluate(() => sessionStorage.clear());
  await page.goto('/join');
  await page.getByRole('heading', { name: 'This link is not valid' }).waitFor();
  assert.equal(seen.length, 4);
  await snap(page, 'mock-patient-invalid');
  await context.close();
});

test('patient: device check, waiting room, consultation, after page', { timeout: 60_000 }, async () => {
  const context = await newContext(browser, { baseURL: server.url, timezoneId: 'UTC' });
  const page = await context.newPage();
  const consoleLines = captureConsole(page);
  const startsAt = new Date(Date.now() + 5 * 60000).toISOString();
  let resolves = 0;
  await page.route('**/api/v1/invitations/resolve', (route) => {
    resolves += 1;
    assert.equal(route.request().postDataJSON().token, 'good-token');
    return json(route, 200, {
      appointment: { starts_at: startsAt, duration_minutes: 15, practitioner_name: PRACTITIONER },
      patient_display_name: PATIENT,
      signalling_token: `sig-${resolves}`,
    });
  });
  const sig = await fakeSignalling(page, {
    onJoin: (msg, send) => {
      send({ reply_to: msg.id, type: 'joined', protocol: 1, participant_id: 'p1', role: 'patient', display_name: PATIENT });
      send({ type: 'waiting', appointment_starts_at: startsAt, punctuality: 'on_time' });
    },
  });
  await page.goto('/join#good-token');
  await page.getByRole('heading', { name: 'Check your camera and microphone' }).waitFor();
  assert.match(await page.locator('#appointment-summary').innerText(), new RegExp(`at ${hhmmUtc(startsAt)} with ${PRACTITIONER}`));
  assert.equal(new URL(page.url()).hash, '');
  assert.equal(await page.getByRole('button', { name: 'Enter waiting room' }).isDisabled(), true);

  await page.getByRole('button', { name: 'Start camera and microphone' }).click();
  await page.waitForFunction(() => document.getElementById('preview-video').videoWidth > 0, null, { timeout: 10_000 });
  await page.waitForFunction(() => document.getElementById('mic-meter').value > 0, null, { timeout: 10_000 });
  await snap(page, 'mock-patient-check-desktop');
  await page.setViewportSize({ width: 390, height: 844 });
  await snap(page, 'mock-patient-check-phone');

  await page.getByRole('button', { name: 'Enter waiting room' }).click();
  const join = await sig.next((m) => m.type === 'join');
  assert.equal(join.token, 'sig-2', 'a fresh signalling token is resolved right before connecting');
  await page.getByText('You are on time; your practitioner will let you in').waitFor();
  sig.push({ type: 'waiting', appointment_starts_at: startsAt, punctuality: 'late' });
  await page.getByText('You are late; your practitioner has been told you are here').waitFor();
  sig.push({ type: 'waiting', appointment_starts_at: startsAt, punctuality: 'on_time' });
  await page.getByText('You are on time; your practitioner will let you in').waitFor();
  await snap(page, 'mock-patient-waiting-phone');
  await page.setViewportSize({ width: 1280, height: 800 });

  sig.push({ type: 'consultation_started', consultation_id: 'c1', started_at: new Date().toISOString(), participants: [
    { participant_id: 'p-staff', display_name: PRACTITIONER, role: 'staff', audio: true, video: true },
    { participant_id: 'p1', display_name: PATIENT, role: 'patient', audio: true, video: true },
  ] });
  await page.locator('#room-view:not([hidden])').waitFor();
  await sig.next((m) => m.type === 'media_offer');
  assert.equal(await page.getByRole('button', { name: 'End consultation' }).isVisible(), false, 'patients cannot end');
  await page.getByRole('button', { name: 'Turn camera off' }).click();
  const mute = await sig.next((m) => m.type === 'mute');
  assert.deepEqual({ audio: mute.audio, video: mute.video }, { audio: true, video: false });
  await page.setViewportSize({ width: 390, height: 844 });
  await snap(page, 'mock-patient-room-phone');
  await page.setViewportSize({ width: 1280, height: 800 });

  // The practitioner drops out: the patient can go back to the waiting room (new connection).
  sig.push({ type: 'participant_left', participant_id: 'p-staff' });
  await page.locator('#room-notice-box:not([hidden])').waitFor();
  const joinsBefore = sig.frames.filter((m) => m.type === 'join').length;
  await page.getByRole('button', { name: 'Back to the waiting room' }).click();
  await page.getByText('You are on time; your practitioner will let you in').waitFor();
  assert.equal(sig.frames.filter((m) => m.type === 'join').length, joinsBefore + 1, 'joined again');
  assert.equal(await page.evaluate(() => window.__consultroom.pc()), null, 'old peer connection closed');
  sig.push({ type: 'consultation_started', consultation_id: 'c2', started_at: new Date().toISOString(), participants: [
    { participant_id: 'p-staff', display_name: PRACTITIONER, role: 'staff', audio: true, video: true },
    { participant_id: 'p1', display_name: PATIENT, role: 'patient', audio: true, video: true },
  ] });
  await page.locator('#room-view:not([hidden])').waitFor();
  assert.equal(await page.locator('#room-notice-box').isVisible(), false);

  sig.push({ type: 'consultation_ended', consultation_id: 'c2', reason: 'ended' });
  await page.getByText('Your consultation has ended. You can close this window.').waitFor();
  assert.match(await page.locator('#after-appointment').innerText(), new RegExp(hhmmUtc(startsAt)));
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'invitation token forgotten');
  const leaked = consoleLines.filter((l) => l.includes(PATIENT) || l.includes('good-token'));
  assert.deepEqual(leaked, []);
  await context.close();
});
