// Shared helpers for the browser tests (tests/e2e) and the join benchmark (loadtest/browser):
// Debian Chromium via playwright-core, fake camera/microphone, loopback-only WebRTC, and
// getStats() sampling through the page's `window.__consultroom.pc()` hook.

import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

export { chromium };

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** STACK.md §4.3: no background network, fake devices, loopback ICE candidates allowed. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
  // Several pages share the (small) machine; keep hidden/background pages running at full speed.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

export function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    timeout: 30_000,
  });
}

/** A fresh context (own cookies/storage) with camera and microphone granted for `baseURL`. */
export async function newContext(browser, { baseURL, viewport = { width: 1280, height: 800 }, timezoneId } = {}) {
  const context = await browser.newContext({ baseURL, viewport, timezoneId });
  await context.grantPermissions(['camera', 'microphone'], baseURL ? { origin: new URL(baseURL).origin } : undefined);
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(15_000);
  return context;
}

/** Collects console messages of a page (to check that no patient data is logged). */
export function captureConsole(page) {
  const lines = [];
  page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
  return lines;
}

/** Required environment variables, with a clear message when one is missing. */
export function requireEnv(...names) {
  const out = {};
  const missing = [];
  for (const n of names) {
    if (process.env[n]) out[n] = process.env[n];
    else missing.push(n);
  }
  if (missing.length) {
    throw new Error(`missing environment: ${missing.join(', ')} (run through tests/e2e/run.sh)`);
  }
  return out;
}

/**
 * One getStats() sample from the page's current peer connection: inbound video/audio counters and
 * the selected candidate pair's addresses. Returns null when there is no peer connection.
 */
export function sampleStats(page) {
  return page.evaluate(async () => {
    const pc = window.__consultroom && window.__consultroom.pc();
    if (!pc) return null;
    const report = await pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    const out = { video: null, audio: null, pair: null, connectionState: pc.connectionState };
    let selectedPairId = null;
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        // Several inbound video streams are possible after renegotiation; keep the busiest.
        if (!out.video || (s.framesDecoded || 0) > out.video.framesDecoded) {
          out.video = { framesDecoded: s.framesDecoded || 0, frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0, bytesReceived: s.bytesReceived || 0 };
        }
      }
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        if (!out.audio || (s.packetsReceived || 0) > out.audio.packetsReceived) {
          out.audio = { packetsReceived: s.packetsReceived || 0, bytesReceived: s.bytesReceived || 0 };
        }
      }
      if (s.type === 'transport' && s.selectedCandidatePairId) selectedPairId = s.selectedCandidatePairId;
    });
    let pair = selectedPairId ? byId.get(selectedPairId) : null;
    if (!pair) {
      report.forEach((s) => {
        if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
      });
    }
    if (pair) {
      const local = byId.get(pair.localCandidateId) || {};
      const remote = byId.get(pair.remoteCandidateId) || {};
      out.pair = {
        local: local.address || local.ip || null,
        remote: remote.address || remote.ip || null,
        localPort: local.port,
        remotePort: remote.port,
        protocol: local.protocol,
        state: pair.state,
      };
    }
    return out;
  });
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(fn, { timeoutMs = 15_000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Asserts that media really flows into `page`: two samples ≥ 1.2 s (at most ~9 s) apart, growing
 * framesDecoded and bytes, frameWidth > 0, growing audio packets, and a 127.0.0.1 ↔ 127.0.0.1 pair.
 * Returns both samples for the report.
 */
export async function assertMediaFlowing(page, assert, label) {
  const first = await waitFor(async () => {
    const s = await sampleStats(page);
    return s && s.video && s.video.framesDecoded > 0 && s.audio && s.audio.packetsReceived > 0 && s.pair ? s : null;
  }, { timeoutMs: 20_000, intervalMs: 250, what: `${label}: first decoded remote frame and audio packets` });
  // The second sample is ≥ 1.2 s later and waits (bounded, 8 s) for video and audio to have
  // grown: a layer switch can hold one stream for a moment under load, a broken one never grows.
  // The 1.2 s is part of what is measured (flow over an interval), not a wait for a condition.
  await new Promise((r) => setTimeout(r, 1200));
  let second = await sampleStats(page);
  const grown = (s) => s && s.video && s.audio && s.video.framesDecoded > first.video.framesDecoded
    && s.video.bytesReceived > first.video.bytesReceived && s.audio.packetsReceived > first.audio.packetsReceived;
  for (let i = 0; i < 20 && !grown(second); i++) {
    await new Promise((r) => setTimeout(r, 400));
    second = await sampleStats(page);
  }
  assert.ok(second && second.video && second.audio, `${label}: stats present in second sample`);
  assert.ok(second.video.framesDecoded > first.video.framesDecoded,
    `${label}: framesDecoded grows (${first.video.framesDecoded} → ${second.video.framesDecoded})`);
  assert.ok(second.video.bytesReceived > first.video.bytesReceived, `${label}: video bytesReceived grows`);
  assert.ok(second.video.frameWidth > 0, `${label}: frameWidth > 0 (got ${second.video.frameWidth})`);
  assert.ok(second.audio.packetsReceived > first.audio.packetsReceived,
    `${label}: audio packetsReceived grows (${first.audio.packetsReceived} → ${second.audio.packetsReceived})`);
  assert.equal(second.pair.local, '127.0.0.1', `${label}: local candidate is loopback`);
  assert.equal(second.pair.remote, '127.0.0.1', `${label}: remote candidate is loopback`);
  return { first, second };
}

/** Saves a screenshot for post-mortem debugging; never throws. */
export async function snap(page, name) {
  const dir = process.env.E2E_ARTIFACTS || new URL('../artifacts/', import.meta.url).pathname;
  try {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true, timeout: 5000 });
  } catch {
    /* best effort */
  }
}

/**
 * Seeds an organisation of its own for one test file (`consultroom demo-organisation`, the same
 * shape as the demo clinic: department "General practice", practitioner Dr. Anna de Vries, an
 * organisation admin, two clients, the demo walk-in widget, an appointment starting now) into the
 * running server's database, so that no state (waiting patients, settings, widgets) leaks between
 * files. Runs in the test's network namespace, like the server (PostgreSQL through its unix
 * socket). Both logins have DEMO_PASSWORD. Resolves `{ organisation, department, email,
 * practitionerName, adminEmail, password, invitationUrl }`.
 */
export async function seedOrganisation(label) {
  const env = requireEnv('CONSULTROOM_BIN', 'CR_DATA_DIR', 'BASE_URL', 'DEMO_PASSWORD');
  const args = ['demo-organisation', '--data-dir', env.CR_DATA_DIR, '--public-url', env.BASE_URL,
    '--name', `E2E ${label} ${randomUUID().slice(0, 8)}`, '--json'];
  if (process.env.E2E_DATABASE_URL) args.push('--database-url', process.env.E2E_DATABASE_URL);
  // The password goes through the environment, not the command line.
  const { stdout } = await promisify(execFile)(env.CONSULTROOM_BIN, args, {
    env: { ...process.env, CONSULTROOM_DEMO_PASSWORD: env.DEMO_PASSWORD, RUST_LOG: 'warn' },
    timeout: 60_000,
  });
  const o = JSON.parse(stdout);
  return {
    organisation: o.organisation,
    department: o.department,
    email: o.practitioner_email,
    practitionerName: o.practitioner_name,
    adminEmail: o.admin_email,
    password: o.password,
    invitationUrl: o.invitation_url,
  };
}

/**
 * Signs `page` in to the staff app as `email` (the demo practitioner by default; every seeded
 * account has DEMO_PASSWORD) and waits for `until` (by default: the signalling connection has
 * joined, i.e. the dashboard is live).
 */
export async function signIn(page, email = process.env.DEMO_EMAIL, { until = 'body[data-signalling="joined"]', password = process.env.DEMO_PASSWORD } = {}) {
  await page.goto('/');
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator(until).waitFor();
}

/**
 * Ends the running consultation from a staff page: "End consultation", then "Yes, end it" in
 * the confirmation the room asks (issue #14).
 */
export async function endConsultation(page) {
  await page.getByRole('button', { name: 'End consultation' }).click();
  await page.getByRole('button', { name: 'Yes, end it' }).click();
}
