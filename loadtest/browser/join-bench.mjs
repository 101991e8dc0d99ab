// Join benchmark: how long from the practitioner's click on a waiting patient ("admit") until the
// patient's browser decodes the first remote video frame. Repeated BENCH_RUNS times (default 20)
// against the demo server; reports p50/p95 and writes the section
// "Join → first remote frame (Chromium, loopback)" into docs/benchmarks.md (replacing an older one).
//
// Run with loadtest/browser/run.sh (root; starts the server in a lo-only netns). It reuses the
// helpers and node_modules of tests/e2e.
//
// Timing: both timestamps are Date.now() in pages of the same Chromium on the same machine:
//   start = capture-phase click listener in the practitioner's page (before the app sends admit)
//   end   = first getStats() poll (every 20 ms) in the patient's page with inbound video
//           framesDecoded > 0
// So the result includes admit → consultation_started → offer/answer → ICE/DTLS → first keyframe
// → decode, plus up to 20 ms polling granularity.

import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, newContext, requireEnv, snap } from '../../tests/e2e/lib/harness.mjs';
import { bookAppointment } from '../../tests/e2e/lib/clinic-api.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const env = requireEnv('BASE_URL', 'DEMO_EMAIL', 'DEMO_PASSWORD', 'DEMO_INVITATION_URL');
const RUNS = Number(process.env.BENCH_RUNS || 20);
const DOC = process.env.BENCH_DOC || path.join(ROOT, 'docs/benchmarks.md');
const SECTION = 'Join → first remote frame (Chromium, loopback)';
const STEP_TIMEOUT = 20_000;

function percentile(sorted, p) {
  // Nearest-rank percentile.
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

function nproc() {
  try {
    return Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    return os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  }
}

function machine(chromiumVersion) {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = (cpuinfo.match(/^model name\s*:\s*(.+)$/m) || [])[1] || os.cpus()[0]?.model || 'unknown CPU';
  const meminfo = existsSync('/proc/meminfo') ? readFileSync('/proc/meminfo', 'utf8') : '';
  const memKb = Number((meminfo.match(/^MemTotal:\s*(\d+)/m) || [])[1] || os.totalmem() / 1024);
  return {
    nproc: nproc(),
    model: model.trim(),
    memGiB: (memKb / 1024 / 1024).toFixed(1),
    chromium: chromiumVersion,
    node: process.version,
    kernel: os.release(),
  };
}

async function loginStaff(browser) {
  const ctx = await newContext(browser, { baseURL: env.BASE_URL });
  const page = await ctx.newPage();
  await page.goto('/');
  await page.getByLabel('Email address').fill(env.DEMO_EMAIL);
  await page.getByLabel('Password').fill(env.DEMO_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: "Today's appointments" }).waitFor();
  await page.locator('body[data-signalling="joined"]').waitFor();
  return { ctx, page };
}

async function oneRun(browser, staff, i) {
  const ctx = await newContext(browser, { baseURL: env.BASE_URL, viewport: { width: 640, height: 480 } });
  const patient = await ctx.newPage();
  try {
    // A fresh appointment per run (an invitation may not be reusable after its consultation).
    const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: `Bench Patient ${i}`, inMinutes: 5 });
    if (booked.error && i === 1) console.log(`note: booking failed (${booked.error}); reusing DEMO_INVITATION_URL`);
    await patient.goto(booked.invitationUrl || env.DEMO_INVITATION_URL);
    await patient.getByRole('button', { name: 'Start camera and microphone' }).click({ timeout: STEP_TIMEOUT });
    await patient.getByRole('button', { name: 'Enter waiting room' }).click({ timeout: STEP_TIMEOUT });
    await patient.locator('#waiting-view:not([hidden])').waitFor({ timeout: STEP_TIMEOUT });

    const entry = staff.locator('#waiting-list button.waiting-entry').first();
    await entry.waitFor({ timeout: STEP_TIMEOUT });

    await patient.evaluate(() => {
      // roomAt: the patient handled consultation_started (the room creates its peer connection
      // synchronously); connectedAt: ICE + DTLS done; firstFrameAt: first decoded remote frame.
      // remoteAt: the server's renegotiation (media_offer with the other side's video) is applied.
      window.__bench = { roomAt: null, connectedAt: null, remoteAt: null, firstFrameAt: null };
      const timer = setInterval(async () => {
        const pc = window.__consultroom.pc();
        if (!pc || window.__bench.firstFrameAt) return;
        const b = window.__bench;
        if (!b.roomAt) b.roomAt = Date.now();
        if (!b.connectedAt && pc.connectionState === 'connected') b.connectedAt = Date.now();
        if (!b.remoteAt && pc.getTransceivers().some((t) => t.currentDirection === 'recvonly' && t.receiver.track.kind === 'video')) b.remoteAt = Date.now();
        const stats = await pc.getStats();
        stats.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'video' && s.framesDecoded > 0 && !window.__bench.firstFrameAt) {
            window.__bench.firstFrameAt = Date.now();
            clearInterval(timer);
          }
        });
      }, 20);
    });
    await staff.evaluate(() => {
      window.__benchClickAt = null;
      document.addEventListener('click', () => { window.__benchClickAt = Date.now(); }, { capture: true, once: true });
    });
    await entry.click({ timeout: STEP_TIMEOUT });
    await patient.waitForFunction(() => window.__bench.firstFrameAt, null, { timeout: STEP_TIMEOUT, polling: 50 });
    const clickAt = await staff.evaluate(() => window.__benchClickAt);
    const b = await patient.evaluate(() => window.__bench);
    const ms = b.firstFrameAt - clickAt;
    // Milliseconds after the admit click (a missed 20 ms poll counts as the frame time).
    const phases = {
      started: b.roomAt - clickAt,
      connected: (b.connectedAt || b.firstFrameAt) - clickAt,
      remote: (b.remoteAt || b.firstFrameAt) - clickAt,
    };

    await staff.getByRole('button', { name: 'End consultation' }).click({ timeout: STEP_TIMEOUT });
    await staff.getByRole('button', { name: 'Yes, end it' }).click({ timeout: STEP_TIMEOUT });
    await patient.locator('#after-view:not([hidden])').waitFor({ timeout: STEP_TIMEOUT });
    await staff.locator('#dashboard-view:not([hidden])').waitFor({ timeout: STEP_TIMEOUT });
    return { ms, phases };
  } catch (e) {
    await snap(patient, `bench-fail-${i}-patient`);
    await snap(staff, `bench-fail-${i}-staff`);
    throw e;
  } finally {
    await ctx.close();
  }
}

function writeSection(result) {
  const m = result.machine;
  const body = [
    `## ${SECTION}`,
    '',
    `Measured ${result.date} with \`loadtest/browser/run.sh\` (\`loadtest/browser/join-bench.mjs\`): ${result.runs} times a`,
    'patient enters the waiting room and the practitioner admits them; the time runs from the',
    "practitioner's click on the waiting entry to the first decoded remote video frame in the patient's",
    'browser (`getStats()` inbound video `framesDecoded > 0`, polled every 20 ms). Demo server and both',
    'Chromium contexts (fake camera and microphone) run in one network namespace with only `lo`, so',
    'media goes over 127.0.0.1.',
    '',
    '| runs | p50 | p95 | min | max | mean |',
    '|---:|---:|---:|---:|---:|---:|',
    `| ${result.runs} | ${result.p50} ms | ${result.p95} ms | ${result.min} ms | ${result.max} ms | ${result.mean} ms |`,
    '',
    `All samples (ms, in order): ${result.samples.join(', ')}`,
    '',
    'Where the time goes (medians in ms after the admit click, patient side, 20 ms polling):',
    `\`consultation_started\` handled ${result.phaseMedians.started}; peer connection \`connected\``,
    `(offer/answer, ICE, DTLS) ${result.phaseMedians.connected}; the server's renegotiation with the`,
    `practitioner's video applied ${result.phaseMedians.remote}; first decoded frame ${result.p50}.`,
    '',
    `Machine: ${m.nproc} CPUs (\`nproc\`), ${m.model}, ${m.memGiB} GiB RAM, Linux ${m.kernel};`,
    `Chromium ${m.chromium} (headless), Node ${m.node}; server binary \`${result.binary}\`.`,
    '',
  ].join('\n');
  mkdirSync(path.dirname(DOC), { recursive: true });
  let doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n\n';
  const start = doc.indexOf(`## ${SECTION}`);
  if (start >= 0) {
    const rest = doc.slice(start + 3);
    const next = rest.search(/^## /m);
    const end = next >= 0 ? start + 3 + next : doc.length;
    doc = doc.slice(0, start) + body + (end < doc.length ? `\n${doc.slice(end)}` : '');
  } else {
    doc = `${doc.replace(/\n*$/, '\n\n')}${body}`;
  }
  writeFileSync(DOC, doc);
}

async function main() {
  const browser = await launchBrowser();
  try {
    const staff = await loginStaff(browser);
    const samples = [];
    const phases = { started: [], connected: [], remote: [] };
    for (let i = 1; i <= RUNS; i++) {
      const r = await oneRun(browser, staff.page, i);
      samples.push(r.ms);
      for (const k of Object.keys(phases)) phases[k].push(r.phases[k]);
      console.log(`run ${String(i).padStart(2)}/${RUNS}: ${r.ms} ms (after the click: started ${r.phases.started}, connected ${r.phases.connected}, remote video negotiated ${r.phases.remote})`);
    }
    const median = (xs) => percentile([...xs].sort((a, b) => a - b), 50);
    const sorted = [...samples].sort((a, b) => a - b);
    const result = {
      date: new Date().toISOString().slice(0, 10),
      runs: samples.length,
      samples,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      min: sorted[0],
      max: sorted[sorted.length - 1],
      mean: Math.round(samples.reduce((a, b) => a + b, 0) / samples.length),
      phaseMedians: { started: median(phases.started), connected: median(phases.connected), remote: median(phases.remote) },
      machine: machine(browser.version()),
      binary: path.relative(ROOT, process.env.CONSULTROOM_BIN || 'target/debug/consultroom') || process.env.CONSULTROOM_BIN,
    };
    console.log(`join → first remote frame: p50 ${result.p50} ms, p95 ${result.p95} ms (n=${result.runs}, min ${result.min}, max ${result.max})`);
    if (!process.env.BENCH_NO_WRITE) {
      writeSection(result);
      console.log(`wrote section "${SECTION}" in ${path.relative(process.cwd(), DOC)}`);
    }
    await staff.ctx.close();
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(`join benchmark failed: ${e.message}`);
  process.exit(1);
});
