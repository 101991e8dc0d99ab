// UI behaviour of the web client against a FAKE server: the pages are served from web-client/
// by a tiny static server, and `/api/v1/...` and `/ws` are answered inside the browser by
// Playwright routes. This checks screens, texts, accessibility attributes and the frames the
// client sends, without the Rust server and without media (consultation.test.mjs does that).
// Runs anywhere: `node --test tests/e2e/ui-mocked.test.mjs`.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, captureConsole, snap, endConsultation } from './lib/harness.mjs';
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
async function fakeSignalling(page, { onJoin, onRequest }) {
  const frames = [];
  let socket = null;
  let waiters = [];
  await page.routeWebSocket(/\/ws$/, (ws) => {
    socket = ws;
    ws.onMessage((text) => {
      const msg = JSON.parse(text);
      frames.push(msg);
      const send = (m) => ws.send(JSON.stringify(m));
      if (msg.type === 'join') onJoin(msg, send);
      else if (onRequest && onRequest(msg, send)) { /* answered by the test */ }
      else if (['admit', 'end_consultation', 'force_start', 'transfer'].includes(msg.type) && msg.id) send({ reply_to: msg.id, type: 'ok' });
      waiters = waiters.filter((w) => !w(msg));
    });
  });
  return {
    frames,
    push: (m) => socket.send(JSON.stringify(m)),
    /** Closes the current socket from the server side (an unexpected drop for the client). */
    drop: (code = 1011) => socket.close({ code, reason: 'test drop' }),
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
    const me = { id: 's1', name: PRACTITIONER, email: 'anna@example.test', role: 'practitioner', organisation_id: 'o1', department_id: null };
    if (url.pathname === '/api/v1/auth/session') {
      return json(route, 200, loggedIn ? { signed_in: true, me } : { signed_in: false });
    }
    if (url.pathname === '/api/v1/setup/status') return json(route, 200, { organisation_exists: true });
    if (url.pathname === '/api/v1/me') {
      if (!loggedIn) return json(route, 401, { error: { code: 'unauthenticated', message: 'sign in' } });
      return json(route, 200, me);
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
  // Loading signed out asks /auth/session (always 200): no failed request in the console.
  await page.waitForLoadState('networkidle');
  assert.deepEqual(consoleLines.filter((l) => /Failed to load resource|status of 4\d\d/.test(l)), [], 'no failed request on a signed-out load');

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
  // The clock runs: it shows another second within a few seconds.
  await page.waitForFunction((before) => document.getElementById('room-clock').innerText !== before, clock1, { timeout: 5000 });

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

  // "End consultation" asks first: "Keep going" keeps it (nothing is sent), "Yes, end it" ends it.
  await page.getByRole('button', { name: 'End consultation' }).click();
  await page.getByRole('button', { name: 'Keep going' }).click();
  await page.getByRole('button', { name: 'End consultation' }).waitFor();
  assert.equal(await page.locator('#end-confirm').isHidden(), true);
  // A passing error during the consultation…
  sig.push({ type: 'error', code: 'internal', message: 'Something failed in the consultation.' });
  await page.locator('#toast:not([hidden])').filter({ hasText: 'Something failed in the consultation.' }).waitFor();
  await endConsultation(page);
  const end = await sig.next((m) => m.type === 'end_consultation');
  assert.ok(end, 'ended only after the confirmation');
  sig.push({ type: 'consultation_ended', consultation_id: 'c1', reason: 'ended' });
  await page.locator('#dashboard-view:not([hidden])').waitFor();
  assert.equal(await page.evaluate(() => window.__consultroom.pc()), null);
  // …does not stay on after it (issue #14).
  assert.equal(await page.locator('#toast').isHidden(), true, 'the consultation\'s error toast went with it');

  // Server error frames are shown, not fatal.
  sig.push({ type: 'error', code: 'rate_limited', message: 'Too many messages; slow down.' });
  await page.locator('#toast').filter({ hasText: 'Too many messages' }).waitFor();

  // A reload keeps the session (cookie): straight back to the dashboard.
  await page.reload();
  await page.locator('body[data-signalling="joined"]').waitFor();
  await page.getByRole('heading', { name: "Today's appointments" }).waitFor();

  // The top bar's buttons stay readable on hover (issue #14: the general hover rule overrode
  // the top bar's, white on light grey, 1.16:1): WCAG AA needs 4.5:1 for this text.
  const logout = page.getByRole('button', { name: 'Log out' });
  await logout.hover();
  const ratio = await logout.evaluate((b) => {
    const rgb = (c) => (c.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
    const lum = ([r, g, bl]) => {
      const f = (v) => { const x = v / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(bl);
    };
    const cs = getComputedStyle(b);
    const a = lum(rgb(cs.color));
    const bg = lum(rgb(cs.backgroundColor));
    return (Math.max(a, bg) + 0.05) / (Math.min(a, bg) + 0.05);
  });
  assert.ok(ratio >= 4.5, `top-bar button contrast on hover ${ratio.toFixed(2)}:1`);
  await logout.click();
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
      settings: { after_consultation_text: 'Your prescription is at the pharmacy.\n<b>Call us</b> with questions.' },
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
  // (The connection check's own `join` has `check: true`; it started with the camera.)
  const join = await sig.next((m) => m.type === 'join' && !m.check);
  assert.equal(join.token, `sig-${resolves}`, 'a fresh signalling token is resolved right before connecting');
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
  // The organisation's message after the consultation (F119), as text (no markup), lines kept.
  assert.equal(await page.locator('#after-message').innerText(), 'Your prescription is at the pharmacy.\n<b>Call us</b> with questions.');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'invitation token forgotten');
  const leaked = consoleLines.filter((l) => l.includes(PATIENT) || l.includes('good-token'));
  assert.deepEqual(leaked, []);
  await context.close();
});

// ---------------------------------------------------------------- waiting rooms (issue #4)

const ME = { id: 's1', name: PRACTITIONER, email: 'anna@example.test', role: 'practitioner', organisation_id: 'o1', department_id: 'd1' };
const DIRECTORY = {
  practitioners: [
    { id: 's1', name: PRACTITIONER, department_id: 'd1' },
    { id: 's2', name: 'Dr. Bob Bakker', department_id: 'd1' },
  ],
  departments: [{ id: 'd1', name: 'Cardiology' }, { id: 'd2', name: 'Dermatology' }],
};

/** A logged-in staff page against fake API routes; `extra(route, url, method)` may answer first. */
async function staffPage({ appointments = [], extra, timezoneId = 'UTC' } = {}) {
  const context = await newContext(browser, { baseURL: server.url, timezoneId });
  const page = await context.newPage();
  const consoleLines = captureConsole(page);
  await page.route('**/api/v1/**', async (route) => {
    const url = new URL(route.request().url());
    const method = route.request().method();
    if (extra && (await extra(route, url, method))) return undefined;
    if (url.pathname === '/api/v1/me') return json(route, 200, ME);
    if (url.pathname === '/api/v1/auth/session') return json(route, 200, { signed_in: true, me: ME });
    if (url.pathname === '/api/v1/directory') return json(route, 200, DIRECTORY);
    if (url.pathname === '/api/v1/appointments') return json(route, 200, { appointments });
    if (url.pathname === '/api/v1/announcements' && method === 'GET') return json(route, 200, { announcements: [] });
    if (url.pathname === '/api/v1/signalling/token') return json(route, 200, { token: 'staff-token' });
    return json(route, 404, { error: { code: 'not_found', message: 'no route' } });
  });
  return { context, page, consoleLines };
}

const entry = (id, name, queue, extra = {}) => ({
  participant_id: id, display_name: name, appointment_id: null, appointment_starts_at: null,
  arrived_at: new Date().toISOString(), punctuality: 'walk_in', queue, reconnecting: false, ...extra,
});

test('staff: room labels, reconnecting entries in place, transfer with not_found, force start, transfer from the room', { timeout: 60_000 }, async () => {
  const startsAt = new Date(Date.now() + 10 * 60000).toISOString();
  const { context, page, consoleLines } = await staffPage({ appointments: [
    { id: 'a1', client: { id: 'c1', name: PATIENT }, practitioner: { id: 's1', name: PRACTITIONER }, starts_at: startsAt, duration_minutes: 15, status: 'scheduled' },
    { id: 'a0', client: { id: 'c0', name: 'Cancelled Person' }, practitioner: { id: 's1', name: PRACTITIONER }, starts_at: startsAt, duration_minutes: 15, status: 'cancelled' },
  ] });
  let refuseTransfer = true;
  const sig = await fakeSignalling(page, {
    onJoin: (msg, send) => {
      send({ reply_to: msg.id, type: 'joined', protocol: 1, participant_id: 'p-staff', role: 'staff', display_name: PRACTITIONER });
      send({ type: 'waiting_snapshot', entries: [
        entry('p1', 'Own Room Patient', { kind: 'practitioner', id: 's1' }),
        entry('p2', 'Department Patient', { kind: 'department', id: 'd1' }),
      ] });
    },
    onRequest: (msg, send) => {
      if (msg.type === 'transfer' && refuseTransfer) {
        send({ reply_to: msg.id, type: 'error', code: 'not_found', message: 'no one of your organisation is online for that waiting room' });
        return true;
      }
      return false;
    },
  });
  await page.goto('/');
  await page.locator('body[data-signalling="joined"]').waitFor();
  await page.mouse.click(5, 300); // a user gesture unlocks the doorbell
  const p1 = page.locator('#waiting-list li[data-participant-id="p1"]');
  const p2 = page.locator('#waiting-list li[data-participant-id="p2"]');
  await p1.locator('.we-queue:not([hidden])').filter({ hasText: 'You' }).waitFor();
  await p2.locator('.we-queue:not([hidden])').filter({ hasText: 'Cardiology' }).waitFor();
  assert.equal(await p2.locator('.we-queue').getAttribute('data-queue-kind'), 'department');

  // waiting_arrived rings; waiting_updated does not, and updates in place.
  sig.push({ type: 'waiting_arrived', entry: entry('p3', 'Third Patient', { kind: 'department', id: 'd1' }) });
  await page.locator('#waiting-count[data-count="3"]').waitFor();
  await page.waitForFunction(() => window.__consultroom.doorbells === 1, null, { timeout: 3000 });
  const p1Node = await p1.elementHandle();
  sig.push({ type: 'waiting_updated', entry: entry('p1', 'Own Room Patient', { kind: 'practitioner', id: 's1' }, { reconnecting: true }) });
  await page.locator('#waiting-list li[data-participant-id="p1"][data-reconnecting="true"]').waitFor();
  const admitP1 = p1.locator('button.waiting-entry');
  assert.equal(await admitP1.isDisabled(), true, 'a reconnecting patient cannot be let in');
  assert.match(await admitP1.innerText(), /Reconnecting…/);
  assert.equal(await page.locator('#waiting-list li').count(), 3, 'no duplicate entry');
  assert.equal(await page.evaluate((n) => n.isConnected, p1Node), true, 'the same <li> was updated in place');
  assert.deepEqual(await page.locator('#waiting-list li').evaluateAll((l) => l.map((li) => li.dataset.participantId)), ['p1', 'p2', 'p3'], 'same place in the list');
  const grey = await admitP1.evaluate((b) => getComputedStyle(b).backgroundColor);
  assert.equal(grey, 'rgb(238, 241, 244)', 'greyed out');
  await snap(page, 'mock-staff-waiting-reconnecting');
  sig.push({ type: 'waiting_updated', entry: entry('p1', 'Own Room Patient', { kind: 'practitioner', id: 's1' }, { reconnecting: false }) });
  await page.locator('#waiting-list li[data-participant-id="p1"][data-reconnecting="false"]').waitFor();
  assert.equal(await admitP1.isDisabled(), false);
  assert.equal(await page.evaluate(() => window.__consultroom.doorbells), 1, 'no doorbell for waiting_updated');
  // An update for an entry we never saw is added silently (no doorbell).
  sig.push({ type: 'waiting_updated', entry: entry('p4', 'Fourth Patient', { kind: 'practitioner', id: 's1' }) });
  await page.locator('#waiting-count[data-count="4"]').waitFor();
  assert.equal(await page.evaluate(() => window.__consultroom.doorbells), 1);

  // Transfer a waiting patient: the current room is not offered; not_found is explained.
  await p2.getByRole('button', { name: /Transfer/ }).click();
  const dialog = page.getByRole('dialog', { name: 'Transfer patient' });
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'transfer-target', 'focus moves into the dialog');
  const options = await page.locator('#transfer-target option').evaluateAll((o) => o.map((x) => [x.value, x.textContent]));
  assert.deepEqual(options.map((o) => o[0]), ['department:d2', 'practitioner:s1', 'practitioner:s2'], 'Cardiology (current room) is not offered');
  assert.match(options[1][1], /your own waiting room/);
  await page.getByLabel('New waiting room').selectOption('practitioner:s2');
  await dialog.getByRole('button', { name: 'Transfer' }).click();
  const t1 = await sig.next((m) => m.type === 'transfer');
  assert.deepEqual({ p: t1.participant_id, to: t1.to }, { p: 'p2', to: { kind: 'practitioner', id: 's2' } });
  await dialog.getByRole('alert').filter({ hasText: 'No one is online for that waiting room' }).waitFor();
  assert.equal(await dialog.isVisible(), true, 'stays open after an error');
  await snap(page, 'mock-staff-transfer-not-found');
  refuseTransfer = false;
  await page.getByLabel('New waiting room').selectOption('practitioner:s1');
  await dialog.getByRole('button', { name: 'Transfer' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await page.locator('#status').filter({ hasText: 'Department Patient was transferred to' }).waitFor();
  // The server moves the entry (left + arrived in our own room): no doorbell for our own move.
  sig.push({ type: 'waiting_left', participant_id: 'p2' });
  sig.push({ type: 'waiting_arrived', entry: entry('p2', 'Department Patient', { kind: 'practitioner', id: 's1' }) });
  await p2.locator('.we-queue-name').filter({ hasText: 'You' }).waitFor();
  // An absence check, so a window is what is measured: a doorbell counts at most 250 ms after its
  // frame was handled (doorbell.js waits that long for the audio context), and the page exposes
  // no later sign that a doorbell was decided against.
  await page.waitForTimeout(400);
  assert.equal(await page.evaluate(() => window.__consultroom.doorbells), 1, 'no doorbell for a patient we transferred ourselves');
  // Escape closes the dialog too.
  await p1.getByRole('button', { name: /Transfer/ }).click();
  await dialog.waitFor();
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });

  // Force start: only for today's appointments still to come.
  const rows = page.locator('#appointments-list li');
  await rows.first().waitFor();
  assert.equal(await page.locator('#appointments-list li[data-appointment-id="a0"] .appt-start').count(), 0, 'no Start now for a cancelled one');
  await page.getByRole('button', { name: `Start now with ${PATIENT}` }).click();
  const fs = await sig.next((m) => m.type === 'force_start');
  assert.equal(fs.appointment_id, 'a1');
  sig.push({ type: 'consultation_started', consultation_id: 'c9', started_at: new Date().toISOString(), participants: [
    { participant_id: 'p-staff', display_name: PRACTITIONER, role: 'staff', audio: true, video: true },
  ] });
  await page.locator('#room-view[data-waiting-for="true"]').waitFor();
  await page.locator('#remote-placeholder-text').filter({ hasText: `Waiting for ${PATIENT} to join` }).waitFor();
  assert.equal(await page.locator('#remote-placeholder').isVisible(), true);
  assert.equal(await page.getByRole('button', { name: 'Transfer patient…' }).isVisible(), false, 'nobody to transfer yet');
  await sig.next((m) => m.type === 'media_offer');
  await snap(page, 'mock-staff-force-start-waiting');
  sig.push({ type: 'participant_joined', participant: { participant_id: 'p9', display_name: PATIENT, role: 'patient', audio: true, video: true } });
  await page.locator('#remote-name').filter({ hasText: PATIENT }).waitFor();
  assert.equal(await page.locator('#room-view').getAttribute('data-waiting-for'), null);
  assert.doesNotMatch(await page.locator('#remote-placeholder-text').innerText(), /Waiting for/);
  await page.locator('#room-status').filter({ hasText: `${PATIENT} joined.` }).waitFor();

  // Transfer from the consultation room: then the (now empty) consultation is closed.
  await page.getByRole('button', { name: 'Transfer patient…' }).click();
  await dialog.waitFor();
  await page.getByLabel('New waiting room').selectOption('department:d1');
  await dialog.getByRole('button', { name: 'Transfer' }).click();
  const t2 = await sig.next((m) => m.type === 'transfer' && m.participant_id === 'p9');
  assert.deepEqual(t2.to, { kind: 'department', id: 'd1' });
  await sig.next((m) => m.type === 'end_consultation');
  sig.push({ type: 'consultation_ended', consultation_id: 'c9', reason: 'ended' });
  await page.locator('#dashboard-view:not([hidden])').waitFor();
  assert.deepEqual(consoleLines.filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l)), []);
  assert.deepEqual(consoleLines.filter((l) => l.includes(PATIENT) || l.includes('Patient')), [], 'no names in the console');
  await context.close();
});

test('staff: announcements — validate, publish with expiry (local → RFC 3339), list, include expired, delete one, delete all', { timeout: 45_000 }, async () => {
  const now = Date.now();
  let list = [
    { id: 'n1', text: 'Running 10 minutes late <b>sorry</b>', scope: { kind: 'practitioner', id: 's1' }, expires_at: null, created_at: new Date(now - 60000).toISOString(), created_by: { id: 's1', name: PRACTITIONER } },
    { id: 'n2', text: 'Flu jabs this week', scope: { kind: 'department', id: 'd1' }, expires_at: new Date(now + 3600000).toISOString(), created_at: new Date(now - 120000).toISOString(), created_by: { id: 's2', name: 'Dr. Bob Bakker' } },
    { id: 'n3', text: 'Old one', scope: { kind: 'department', id: 'd1' }, expires_at: new Date(now - 3600000).toISOString(), created_at: new Date(now - 7200000).toISOString(), created_by: { id: 's2', name: 'Dr. Bob Bakker' } },
  ];
  const requests = [];
  const { context, page, consoleLines } = await staffPage({
    timezoneId: 'Europe/Amsterdam',
    extra: async (route, url, method) => {
      if (!url.pathname.startsWith('/api/v1/announcements')) return false;
      requests.push(`${method} ${url.pathname}${url.search}`);
      if (method === 'GET') {
        const include = url.searchParams.get('include_expired') === 'true';
        await json(route, 200, { announcements: list.filter((a) => include || !a.expires_at || Date.parse(a.expires_at) > Date.now()) });
        return true;
      }
      if (method === 'POST') {
        const body = route.request().postDataJSON();
        requests.push(JSON.stringify(body));
        if (body.text.includes('forbidden')) {
          await json(route, 403, { error: { code: 'forbidden', message: 'not your room' } });
          return true;
        }
        const a = { id: `n${list.length + 10}`, ...body, expires_at: body.expires_at || null, created_at: new Date().toISOString(), created_by: { id: 's1', name: PRACTITIONER } };
        list.push(a);
        await json(route, 201, { announcement: a });
        return true;
      }
      if (method === 'DELETE' && url.pathname === '/api/v1/announcements') {
        const kind = url.searchParams.get('scope_kind');
        const id = url.searchParams.get('scope_id');
        const before = list.length;
        list = list.filter((a) => !(a.scope.kind === kind && a.scope.id === id));
        await json(route, 200, { deleted: before - list.length });
        return true;
      }
      if (method === 'DELETE') {
        const id = url.pathname.split('/').pop();
        list = list.filter((a) => a.id !== id);
        await route.fulfill({ status: 204 });
        return true;
      }
      return false;
    },
  });
  await fakeSignalling(page, { onJoin: (msg, send) => {
    send({ reply_to: msg.id, type: 'joined', protocol: 1, participant_id: 'p-staff', role: 'staff', display_name: PRACTITIONER });
    send({ type: 'waiting_snapshot', entries: [] });
  } });
  await page.goto('/');
  const panel = page.getByRole('region', { name: 'Announcements' });
  await panel.locator('li[data-announcement-id="n1"]').waitFor();
  assert.equal(await panel.locator('li[data-announcement-id]').count(), 2, 'expired ones hidden by default');
  assert.equal(await panel.locator('li[data-announcement-id="n1"] b').count(), 0, 'text, never HTML');
  assert.match(await panel.locator('li[data-announcement-id="n1"] .ann-text').innerText(), /<b>sorry<\/b>/);
  assert.match(await panel.locator('li[data-announcement-id="n2"]').innerText(), /Shown until (\w{3}, \w{3} \d{1,2} )?\d\d:\d\d/); // a date when it crosses midnight
  assert.deepEqual(await panel.locator('.ann-group h4').allInnerTexts(), ['Your waiting room', 'Cardiology (department)']);
  const scopes = await page.locator('#ann-scope option').evaluateAll((o) => o.map((x) => [x.value, x.textContent]));
  assert.deepEqual(scopes, [['practitioner:s1', 'Your waiting room'], ['department:d1', 'Cardiology (department)']]);

  // Validation: empty text, expiry in the past.
  await panel.getByRole('button', { name: 'Publish announcement' }).click();
  await panel.getByText('Write a message.').waitFor();
  assert.equal(await page.getByLabel('Message', { exact: true }).getAttribute('aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'ann-text');
  assert.equal(await page.getByLabel('Message', { exact: true }).getAttribute('maxlength'), '500');
  await page.getByLabel('Message', { exact: true }).fill('Doors open at 9');
  await panel.locator('#ann-text-count').filter({ hasText: '15 / 500 characters' }).waitFor();
  await page.getByLabel(/Hide after/).fill('2020-01-01T10:00');
  await panel.getByRole('button', { name: 'Publish announcement' }).click();
  await panel.getByText('The end time has already passed').waitFor();
  assert.equal(requests.filter((r) => r.startsWith('POST')).length, 0, 'nothing sent while invalid');

  // Publish to the department with an expiry in local time (Amsterdam, CEST in May = UTC+2).
  await page.getByLabel(/Hide after/).fill('2031-05-06T14:30');
  await page.getByLabel('Show to patients waiting in').selectOption('department:d1');
  await panel.getByRole('button', { name: 'Publish announcement' }).click();
  await panel.locator('li[data-announcement-id]').filter({ hasText: 'Doors open at 9' }).waitFor();
  const posted = JSON.parse(requests.find((r) => r.startsWith('{')));
  assert.deepEqual(posted, { text: 'Doors open at 9', scope: { kind: 'department', id: 'd1' }, expires_at: '2031-05-06T12:30:00Z' });
  assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), '', 'form cleared');
  await page.locator('#status').filter({ hasText: 'published' }).waitFor();

  // Server errors are shown.
  await page.getByLabel('Message', { exact: true }).fill('forbidden one');
  await panel.getByRole('button', { name: 'Publish announcement' }).click();
  await panel.getByRole('alert').filter({ hasText: 'You may not manage announcements for that waiting room.' }).waitFor();
  await page.getByLabel('Message', { exact: true }).fill('');

  // Include expired.
  await page.getByLabel('Include expired').check();
  await panel.locator('li[data-announcement-id="n3"][data-expired="true"]').waitFor();
  assert.match(await panel.locator('li[data-announcement-id="n3"]').innerText(), /Expired/);
  assert.ok(requests.includes('GET /api/v1/announcements?include_expired=true'));
  await snap(page, 'mock-staff-announcements');

  // Delete one.
  await panel.getByRole('button', { name: /Delete announcement “Running 10 minutes late/ }).click();
  await panel.locator('li[data-announcement-id="n1"]').waitFor({ state: 'detached' });
  assert.ok(requests.includes('DELETE /api/v1/announcements/n1'));

  // Delete all for Cardiology: two presses.
  const delAll = panel.getByRole('button', { name: /Delete all for Cardiology/ });
  await delAll.click();
  const confirm = panel.getByRole('button', { name: /Press again to delete all 3 for Cardiology/ });
  await confirm.waitFor();
  assert.equal(requests.filter((r) => r.startsWith('DELETE /api/v1/announcements?')).length, 0, 'not yet');
  await confirm.click();
  await panel.getByText('No announcements yet.').waitFor();
  assert.ok(requests.includes('DELETE /api/v1/announcements?scope_kind=department&scope_id=d1'));
  await page.locator('#status').filter({ hasText: '3 announcements were deleted.' }).waitFor();
  assert.deepEqual(consoleLines.filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l)), []);
  await context.close();
});

test('patient: device check extras, queue position and estimate, live announcements, reconnect, transfer out of the room, reload', { timeout: 60_000 }, async () => {
  const context = await newContext(browser, { baseURL: server.url, timezoneId: 'UTC' });
  const page = await context.newPage();
  const consoleLines = captureConsole(page);
  const startsAt = new Date(Date.now() + 5 * 60000).toISOString();
  let resolves = 0;
  await page.route('**/api/v1/invitations/resolve', (route) => {
    resolves += 1;
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
  const verdict = (d) => page.locator(`#verdict-${d}`).getAttribute('data-state');
  assert.deepEqual([await verdict('camera'), await verdict('microphone'), await verdict('speakers')], ['unknown', 'unknown', 'unknown']);
  assert.equal((await page.locator('#check-verdict').innerText()).replace(/\s+/g, ' ').includes('Camera ?'), true);

  await page.getByRole('button', { name: 'Start camera and microphone' }).click();
  await page.locator('#verdict-camera[data-state="ok"]').waitFor({ timeout: 10_000 });
  await page.locator('#verdict-microphone[data-state="ok"]').waitFor({ timeout: 10_000 });
  // Speaker test: a tone, then the question.
  await page.getByRole('button', { name: 'Play test sound' }).click();
  await page.getByText('Did you hear it?').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'speaker-yes', 'focus on the answer');
  await page.getByRole('button', { name: 'No' }).click();
  await page.locator('#verdict-speakers[data-state="fail"]').waitFor();
  await page.getByText('Turn up the volume').waitFor();
  await page.getByRole('button', { name: 'Play test sound again' }).click();
  await page.getByRole('button', { name: 'Yes, I heard it' }).click();
  await page.locator('#verdict-speakers[data-state="ok"]').waitFor();
  const line = (await page.locator('#check-verdict').evaluate((e) => [...e.children].map((li) => `${li.firstChild.textContent.trim()} ${li.querySelector('.verdict-mark').textContent}`).join(' ')));
  // The connection check (netcheck.js; the fake server answers no probe) is tested against the
  // real server in device-check.test.mjs.
  assert.match(line, /^Camera ✓ Microphone ✓ Speakers ✓ Connection [?✓!✗]$/);
  assert.match(await page.locator('#verdict-camera .verdict-words').textContent(), /working/, 'words for screen readers');
  await snap(page, 'mock-patient-check-verdict');

  await page.getByRole('button', { name: 'Enter waiting room' }).click();
  await page.getByText('You are on time; your practitioner will let you in').waitFor();
  assert.equal(await page.locator('#queue-status').isVisible(), false, 'no position before the server sends one');

  // Queue position and the server's estimate (never one of our own).
  const est = new Date(Date.now() + 25 * 60000);
  est.setUTCSeconds(0, 0);
  sig.push({ type: 'queue_status', position: 3, estimated_start_at: est.toISOString() });
  await page.locator('#queue-position').filter({ hasText: '2 people before you' }).waitFor();
  assert.equal(await page.locator('#queue-estimate').innerText(), `Expected around ${hhmmUtc(est.toISOString())}`);
  assert.equal(await page.locator('#queue-status').getAttribute('aria-live'), 'polite');
  sig.push({ type: 'queue_status', position: 2, estimated_start_at: est.toISOString() });
  await page.locator('#queue-position').filter({ hasText: '1 person before you' }).waitFor();
  sig.push({ type: 'queue_status', position: 1 });
  await page.locator('#queue-position').filter({ hasText: 'You are next' }).waitFor();
  assert.equal(await page.locator('#queue-estimate').isVisible(), false, 'no estimate when the server has none');
  assert.equal(await page.locator('#queue-estimate').textContent(), '');

  // Announcements: plain text, live, gone at expiry (client-side too) and when removed.
  sig.push({ type: 'announcements', items: [
    { id: 'n1', text: 'Running late <img src=x onerror=alert(1)>', expires_at: null },
    { id: 'n2', text: 'Short notice', expires_at: new Date(Date.now() + 1500).toISOString() },
  ] });
  const box = page.getByRole('region', { name: 'Message from your clinic' });
  await box.locator('li[data-id="n2"]').waitFor();
  assert.equal(await box.locator('img').count(), 0, 'never HTML');
  assert.match(await box.locator('li[data-id="n1"]').innerText(), /<img src=x/);
  assert.equal(await page.locator('#announcements-list').getAttribute('aria-live'), 'polite');
  await snap(page, 'mock-patient-waiting-queue-announcements');
  await box.locator('li[data-id="n2"]').waitFor({ state: 'detached', timeout: 5000 });
  const n1Node = await box.locator('li[data-id="n1"]').elementHandle();
  sig.push({ type: 'announcements', items: [{ id: 'n1', text: 'Running late <img src=x onerror=alert(1)>' }, { id: 'n4', text: 'New one' }] });
  await box.locator('li[data-id="n4"]').waitFor();
  assert.equal(await page.evaluate((n) => n.isConnected, n1Node), true, 'unchanged items are kept (not re-read)');
  sig.push({ type: 'announcements', items: [] });
  await box.waitFor({ state: 'hidden' });

  // Unexpected close: "Reconnecting…", then back with a fresh token.
  const joinsBefore = sig.frames.filter((m) => m.type === 'join').length;
  sig.drop();
  await page.locator('body[data-connection="reconnecting"]').waitFor();
  await page.locator('#waiting-conn').filter({ hasText: 'Reconnecting…' }).waitFor();
  await page.locator('body[data-connection="connected"]').waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#waiting-conn').isVisible(), false);
  const joins = sig.frames.filter((m) => m.type === 'join');
  assert.equal(joins.length, joinsBefore + 1);
  assert.notEqual(joins.at(-1).token, joins.at(-2).token, 'fresh token from resolve');

  // Admitted, then transferred out by the practitioner: back to the waiting page, peer closed.
  sig.push({ type: 'consultation_started', consultation_id: 'c1', started_at: new Date().toISOString(), participants: [
    { participant_id: 'p-staff', display_name: PRACTITIONER, role: 'staff', audio: true, video: true },
    { participant_id: 'p1', display_name: PATIENT, role: 'patient', audio: true, video: true },
  ] });
  await page.locator('#room-view:not([hidden])').waitFor();
  await sig.next((m) => m.type === 'media_offer');
  assert.notEqual(await page.evaluate(() => window.__consultroom.pc()), null);
  sig.push({ type: 'waiting', appointment_starts_at: startsAt, punctuality: 'on_time' });
  sig.push({ type: 'queue_status', position: 1 });
  await page.locator('#waiting-view:not([hidden])').waitFor();
  assert.equal(await page.evaluate(() => window.__consultroom.pc()), null, 'peer connection closed');
  await page.locator('#queue-position').filter({ hasText: 'You are next' }).waitFor();
  await page.locator('#status').filter({ hasText: 'back in a waiting room' }).waitFor();

  // A reload goes straight back to the waiting room (no device check), with a new join.
  const joinsBeforeReload = sig.frames.filter((m) => m.type === 'join').length;
  await page.reload();
  await page.locator('#waiting-view:not([hidden])').waitFor();
  await page.locator('body[data-connection="connected"]').waitFor({ timeout: 10_000 });
  await page.getByText('You are on time; your practitioner will let you in').waitFor();
  assert.equal(sig.frames.filter((m) => m.type === 'join').length, joinsBeforeReload + 1);
  assert.equal(await page.locator('#check-view').isVisible(), false);
  // Camera comes back on its own (permission kept) so an admission works at once.
  sig.push({ type: 'consultation_started', consultation_id: 'c2', started_at: new Date().toISOString(), participants: [
    { participant_id: 'p-staff', display_name: PRACTITIONER, role: 'staff', audio: true, video: true },
    { participant_id: 'p1', display_name: PATIENT, role: 'patient', audio: true, video: true },
  ] });
  await page.locator('#room-view:not([hidden])').waitFor();
  sig.push({ type: 'consultation_ended', consultation_id: 'c2', reason: 'ended' });
  await page.getByText('Your consultation has ended. You can close this window.').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'token and resume flag forgotten');
  assert.deepEqual(consoleLines.filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l)), []);
  assert.deepEqual(consoleLines.filter((l) => l.includes(PATIENT) || l.includes('good-token')), []);
  await context.close();
});

test('patient: blocked camera gives help for the browser in use', { timeout: 45_000 }, async () => {
  const cases = [
    ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36', 'In Chrome'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0', 'In Edge'],
    ['Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'In Firefox'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15', 'In Safari'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1', 'On iPhone or iPad'],
  ];
  for (const [userAgent, expected] of cases) {
    const context = await browser.newContext({ baseURL: server.url, userAgent });
    const page = await context.newPage();
    await page.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('denied', 'NotAllowedError'));
    });
    await page.route('**/api/v1/invitations/resolve', (route) => json(route, 200, {
      appointment: { starts_at: new Date().toISOString(), duration_minutes: 15, practitioner_name: PRACTITIONER },
      patient_display_name: PATIENT, signalling_token: 'sig',
    }));
    await page.goto('/join#good-token');
    await page.getByRole('button', { name: 'Start camera and microphone' }).click();
    const help = page.locator('#check-help');
    await help.waitFor();
    assert.match(await help.innerText(), new RegExp(expected), `${expected} for ${userAgent}`);
    assert.equal(await page.getByRole('alert').filter({ hasText: 'blocked' }).count(), 1);
    assert.equal(await page.locator('#verdict-camera').getAttribute('data-state'), 'fail');
    assert.equal(await page.getByRole('button', { name: 'Enter waiting room' }).isDisabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Try again' }).isVisible(), true);
    if (expected === 'In Firefox') await snap(page, 'mock-patient-blocked-firefox');
    await context.close();
  }
});

test('staff: "Today" overview colours appointments by practitioner, with a legend naming them (F20)', { timeout: 45_000 }, async () => {
  const at = (min) => new Date(Date.now() + min * 60000).toISOString();
  const { context, page } = await staffPage({ appointments: [
    { id: 'b1', client: { id: 'c1', name: 'First Client' }, practitioner: { id: 's1', name: 'Dr. One' }, starts_at: at(10), duration_minutes: 15, status: 'scheduled' },
    { id: 'b2', client: { id: 'c2', name: 'Second Client' }, practitioner: { id: 's2', name: 'Dr. Two' }, starts_at: at(20), duration_minutes: 15, status: 'scheduled' },
    { id: 'b3', client: { id: 'c3', name: 'Third Client' }, practitioner: { id: 's1', name: 'Dr. One' }, starts_at: at(30), duration_minutes: 15, status: 'scheduled' },
  ] });
  await fakeSignalling(page, {
    onJoin: (msg, send) => {
      send({ reply_to: msg.id, type: 'joined', protocol: 1, participant_id: 'p-staff', role: 'staff', display_name: 'Dr. One' });
      send({ type: 'waiting_snapshot', entries: [] });
    },
  });
  try {
    await page.goto('/');
    await page.locator('#appointments-list li').nth(2).waitFor();
    const legend = page.locator('#appointments-legend');
    await legend.waitFor();
    assert.deepEqual(await legend.locator('li').allInnerTexts(), ['Dr. One', 'Dr. Two']);
    const borders = await page.locator('#appointments-list li').evaluateAll((lis) => lis.map((li) => getComputedStyle(li).borderLeftColor));
    assert.equal(borders[0], borders[2], 'same practitioner, same colour');
    assert.notEqual(borders[0], borders[1], 'different practitioners, different colours');
    // The name is on every row too: colour is never the only cue.
    assert.match(await page.locator('#appointments-list li').nth(1).innerText(), /with Dr\. Two/);
  } finally {
    await context.close();
  }
});
