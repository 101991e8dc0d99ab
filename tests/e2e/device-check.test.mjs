// The patient's connection check before the waiting room (issue #4, F33/F37): a check-only
// signalling connection and connectivity probes in which our SFU echoes the patient's own camera
// and microphone, directly and through coturn (relay only). Run through tests/e2e/run.sh (coturn
// and ICE-TCP on), or alone as root:
//   source tests/e2e/lib/server.sh && CR_WITH_TURN=1 CR_WITH_MEDIA_TCP=1 cr_start_server "$PWD" \
//     && ip netns exec "$NETNS" node --test tests/e2e/device-check.test.mjs
// Blocked networks are made with nft inside the test's own namespace (only its loopback; the
// namespace's ephemeral port range is moved above coturn's relay ports meanwhile).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { launchBrowser, newContext, captureConsole, requireEnv, snap, signIn, seedOrganisation } from './lib/harness.mjs';
import { bookAppointment } from './lib/clinic-api.mjs';
import { verdictOf, serverCandidates, portsText, relayText, LIMITS } from '../../web-client/js/netcheck.js';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD', 'CONSULTROOM_SERVER_LOG');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('device-check'); });
const withTurn = !!process.env.E2E_TURN_URLS;
let browser;

before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** The SFU's UDP and ICE-TCP ports, from its start-up log lines. */
function sfuPorts() {
  // eslint-disable-next-line no-control-regex
  const log = readFileSync(env.CONSULTROOM_SERVER_LOG, 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
  const lines = [...log.matchAll(/sfu media loop started[^\n]*/g)].map((m) => m[0]);
  const udp = [...new Set(lines.flatMap((l) => [...l.matchAll(/udp=[^ ]*?:(\d+)/g)].map((m) => Number(m[1]))))];
  const tcp = [...new Set(lines.flatMap((l) => [...l.matchAll(/tcp=Some\([^)]*?:(\d+)\)/g)].map((m) => Number(m[1]))))];
  assert.ok(udp.length > 0, 'found the SFU UDP ports in the server log');
  return { udp, tcp };
}

function nft(...args) {
  return execFileSync('nft', args, { encoding: 'utf8' });
}

/**
 * Runs `fn` with the browser's packets to the given ports dropped (coturn's relayed packets,
 * which leave from its relay ports 40000-40999, still pass). Returns `fn`'s value and the number
 * of packets dropped.
 */
async function withBlocked({ udp = [], tcp = [] }, fn) {
  const table = 'cr_e2e_device_check';
  // The browser's own sockets must not get a source port in coturn's relay range, or the rule
  // below would let them through: ephemeral ports of this namespace start above it meanwhile.
  const range = '/proc/sys/net/ipv4/ip_local_port_range';
  const oldRange = readFileSync(range, 'utf8').trim();
  writeFileSync(range, '41000 60999\n');
  nft('add', 'table', 'inet', table);
  try {
    nft('add', 'chain', 'inet', table, 'out', '{ type filter hook output priority 0 ; }');
    if (udp.length) nft('add', 'rule', 'inet', table, 'out', 'udp', 'sport', '!=', '40000-40999', 'udp', 'dport', `{ ${udp.join(', ')} }`, 'counter', 'drop');
    if (tcp.length) nft('add', 'rule', 'inet', table, 'out', 'tcp', 'dport', `{ ${tcp.join(', ')} }`, 'counter', 'drop');
    const value = await fn();
    const listing = nft('list', 'table', 'inet', table);
    const dropped = [...listing.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    return { value, dropped };
  } finally {
    nft('delete', 'table', 'inet', table);
    writeFileSync(range, `${oldRange}\n`);
  }
}

/** The patient opens the link and starts the camera; resolves with the shown verdict. */
async function checkedPatient(patient, invitationUrl) {
  await patient.goto(invitationUrl);
  await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
  await patient.waitForFunction(() => ['good', 'poor', 'unreachable'].includes(document.body.dataset.netCheck), null, { timeout: 60_000 });
  return patient.evaluate(() => {
    const r = document.getElementById('net-result');
    return {
      level: r.dataset.level,
      title: document.getElementById('net-title').textContent,
      details: [...document.querySelectorAll('#net-details li')].map((li) => li.textContent),
      advice: document.getElementById('net-advice').textContent,
      rttMs: r.dataset.rttMs === '' ? null : Number(r.dataset.rttMs),
      lossPercent: r.dataset.lossPercent === '' ? null : Number(r.dataset.lossPercent),
      echoFrames: r.dataset.echoFrames === '' ? null : Number(r.dataset.echoFrames),
      echoPackets: r.dataset.echoPackets,
      path: r.dataset.path,
      direct: r.dataset.direct,
      relay: r.dataset.relay,
      verdictMark: document.querySelector('#verdict-connection').dataset.state,
      visible: !r.hidden,
    };
  });
}

/** A staff page signed in and a patient page for a fresh appointment named `name`. */
async function setUp(name) {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const patientCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const staff = await staffCtx.newPage();
  const patient = await patientCtx.newPage();
  const lines = [staff, patient].map(captureConsole);
  await signIn(staff, org.email);
  const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: name, inMinutes: 3 });
  assert.ok(!booked.error, booked.error);
  return {
    staff, patient, lines, invitationUrl: booked.invitationUrl,
    close: async () => { await staffCtx.close(); await patientCtx.close(); },
  };
}

function noPageProblems(lines) {
  const problems = lines.flat().filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l));
  assert.deepEqual(problems, [], 'no uncaught errors or CSP violations');
}

test('connection check: our own picture comes back through the SFU and through coturn; staff do not see the patient until they enter', { timeout: 150_000 }, async () => {
  const name = 'Netcheck Goodpatiënt';
  const s = await setUp(name);
  try {
    const v = await checkedPatient(s.patient, s.invitationUrl);
    console.log(`connection check: ${JSON.stringify(v)}`);
    assert.equal(v.level, 'good', `verdict: ${v.title} ${v.details.join(' ')}`);
    assert.equal(v.title, 'Your connection is good.');
    assert.equal(v.visible, true);
    assert.equal(v.verdictMark, 'ok');
    assert.equal(v.direct, 'host/udp', 'the direct leg reached the SFU over UDP');
    assert.equal(v.path, 'host/udp');
    assert.ok(v.rttMs !== null && v.rttMs < LIMITS.rttMs, `round trip measured: ${v.rttMs} ms`);
    assert.ok(v.lossPercent !== null && v.lossPercent <= LIMITS.lossPercent, `loss: ${v.lossPercent}%`);
    assert.ok(v.echoFrames > 10, `our own video came back and was decoded: ${v.echoFrames} frames`);
    if (withTurn) {
      assert.equal(v.relay, 'relay/udp', 'the relay-only leg went through coturn');
      assert.ok(v.details.includes('The relay server works too.'), v.details.join(' | '));
    } else {
      assert.equal(v.relay, 'skipped');
    }
    // Run again on request (a new check-only connection; the camera stays on).
    await s.patient.getByRole('button', { name: 'Test my connection again' }).click();
    await s.patient.waitForFunction(() => document.body.dataset.netCheck === 'running');
    await s.patient.waitForFunction(() => document.body.dataset.netCheck === 'good', null, { timeout: 60_000 });
    assert.match(await s.patient.locator('#check-status').innerText(), /working, and so is the connection\. You can enter the waiting room\./);
    // Nobody was told: the practitioner's list does not show the patient during the check...
    const entry = s.staff.locator('#waiting-list button.waiting-entry', { hasText: name });
    assert.equal(await entry.count(), 0, 'a checking patient is not in the waiting list');
    // ...and does once they enter (so the list above was really watching).
    await s.patient.getByRole('button', { name: 'Enter waiting room' }).click();
    await s.patient.locator('#waiting-view:not([hidden])').waitFor();
    // A self-view while waiting: the device check's camera, playing.
    await s.patient.locator('#waiting-self-box:not([hidden])').waitFor();
    await s.patient.waitForFunction(() => {
      const v = /** @type {HTMLVideoElement} */ (document.getElementById('waiting-self'));
      return v && v.videoWidth > 0 && !v.paused;
    }, null, { timeout: 10_000 });
    await entry.waitFor();
    noPageProblems(s.lines);
  } catch (e) {
    await snap(s.patient, 'fail-device-check-good');
    await snap(s.staff, 'fail-device-check-good-staff');
    throw e;
  } finally {
    await s.close();
  }
});

test('connection check: with UDP and TCP to the SFU blocked, the verdict names the relay route', { skip: !withTurn && 'needs coturn (E2E_TURN_URLS)', timeout: 150_000 }, async () => {
  const ports = sfuPorts();
  const s = await setUp('Netcheck Relaypatiënt');
  try {
    const { value: v, dropped } = await withBlocked(ports, () => checkedPatient(s.patient, s.invitationUrl));
    console.log(`relay only: ${JSON.stringify(v)}, dropped ${dropped}`);
    assert.ok(dropped > 0, 'the browser tried the blocked SFU ports');
    assert.equal(v.direct, 'failed');
    assert.equal(v.relay, 'relay/udp');
    assert.equal(v.level, 'good', v.title);
    assert.equal(v.path, 'relay/udp/udp', 'TURN over UDP');
    assert.ok(v.details.some((d) => d.includes('Your network blocks direct connections')), v.details.join(' | '));
    assert.ok(v.echoFrames > 10, `our picture came back through the relay: ${v.echoFrames}`);
    noPageProblems(s.lines);
  } catch (e) {
    await snap(s.patient, 'fail-device-check-relay');
    throw e;
  } finally {
    await s.close();
  }
});

test('connection check: with the SFU and the relay blocked, we say we cannot reach the video server and what IT must allow', { timeout: 150_000 }, async () => {
  const ports = sfuPorts();
  const turnPort = Number(process.env.E2E_TURN_PORT || 3478);
  const blocked = withTurn ? { udp: [...ports.udp, turnPort], tcp: [...ports.tcp, turnPort] } : ports;
  const s = await setUp('Netcheck Blockedpatiënt');
  try {
    const { value: v, dropped } = await withBlocked(blocked, () => checkedPatient(s.patient, s.invitationUrl));
    console.log(`blocked: ${JSON.stringify(v)}, dropped ${dropped}`);
    assert.ok(dropped > 0, 'the browser tried the blocked ports');
    assert.equal(v.level, 'unreachable', v.title);
    assert.equal(v.title, 'We cannot reach the video server: your network blocks the video connection.');
    assert.equal(v.verdictMark, 'fail');
    // One verdict: the line under the camera does not say "working, you can enter" under red.
    const summary = await s.patient.locator('#check-status').innerText();
    assert.match(summary, /but we cannot reach the video server/, summary);
    assert.doesNotMatch(summary, /working\. You can enter/, summary);
    assert.equal(v.direct, 'failed');
    assert.equal(v.relay, withTurn ? 'failed' : 'skipped');
    assert.match(v.advice, /^Ask your IT department to allow video calls to our video server/);
    // Every media loop's ports (a consultation may land on any of them), on the SFU's address.
    assert.match(v.advice, /\(127\.0\.0\.1, UDP ports? [\d, and]+, TCP ports? [\d, and]+\)/);
    for (const port of [...ports.udp, ...ports.tcp]) assert.match(v.advice, new RegExp(`\\b${port}\\b`), `advice names port ${port}: ${v.advice}`);
    if (withTurn) assert.match(v.advice, new RegExp(`and to the clinic's relay server \\(127\\.0\\.0\\.1 port ${turnPort} over UDP and TCP\\)`), v.advice);
    // The patient may still go on (the check informs, it does not lock anyone out).
    assert.equal(await s.patient.getByRole('button', { name: 'Enter waiting room' }).isEnabled(), true);
    noPageProblems(s.lines);
  } catch (e) {
    await snap(s.patient, 'fail-device-check-blocked');
    throw e;
  } finally {
    await s.close();
  }
});

test('connection check: on a lossy network (nft drops a random 30 % of the media both ways) the verdict says video may be poor', { timeout: 150_000 }, async () => {
  // This kernel has no netem; nft's random number generator makes the loss instead.
  const ports = sfuPorts();
  const table = 'cr_e2e_device_check_loss';
  const s = await setUp('Netcheck Lossypatiënt');
  nft('add', 'table', 'inet', table);
  try {
    nft('add', 'chain', 'inet', table, 'out', '{ type filter hook output priority 0 ; }');
    const set = `{ ${ports.udp.join(', ')} }`;
    nft('add', 'rule', 'inet', table, 'out', 'udp', 'dport', set, 'numgen', 'random', 'mod', '100', '<', '30', 'counter', 'drop');
    nft('add', 'rule', 'inet', table, 'out', 'udp', 'sport', set, 'numgen', 'random', 'mod', '100', '<', '30', 'counter', 'drop');
    const v = await checkedPatient(s.patient, s.invitationUrl);
    const listing = nft('list', 'table', 'inet', table);
    const dropped = [...listing.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    console.log(`lossy: ${JSON.stringify(v)}, dropped ${dropped}`);
    assert.ok(dropped > 20, `packets were dropped (${dropped})`);
    assert.equal(v.level, 'poor', `${v.title} ${v.details.join(' ')}`);
    assert.match(v.title, /^Video may be poor: /);
    assert.ok(v.lossPercent > 5, `measured loss ${v.lossPercent} %`);
    assert.match(v.title, /lost on the way/);
    assert.equal(await s.patient.getByRole('button', { name: 'Enter waiting room' }).isEnabled(), true);
    noPageProblems(s.lines);
  } catch (e) {
    await snap(s.patient, 'fail-device-check-lossy');
    throw e;
  } finally {
    nft('delete', 'table', 'inet', table);
    await s.close();
  }
});

/** Whether `locator`'s element lies wholly inside the page's viewport (no scrolling needed). */
async function inView(page, locator) {
  const box = await locator.boundingBox();
  const vp = page.viewportSize();
  return !!box && !!vp && box.y >= 0 && box.y + box.height <= vp.height && box.x >= 0 && box.x + box.width <= vp.width;
}

test('on a phone (390×844) and a laptop (1280×800) the next button is on screen without scrolling, before and after the check', { timeout: 150_000 }, async () => {
  const s = await setUp('Netcheck Phonepatiënt');
  try {
    for (const viewport of [{ width: 390, height: 844 }, { width: 1280, height: 800 }]) {
      await s.patient.setViewportSize(viewport);
      await s.patient.goto(s.invitationUrl);
      const start = s.patient.getByRole('button', { name: 'Start camera and microphone' });
      await start.waitFor();
      assert.ok(await inView(s.patient, start), `"Start camera and microphone" on screen at ${viewport.width}×${viewport.height}`);
      await start.click();
      await s.patient.waitForFunction(() => ['good', 'poor', 'unreachable'].includes(document.body.dataset.netCheck), null, { timeout: 60_000 });
      const enter = s.patient.getByRole('button', { name: 'Enter waiting room' });
      await s.patient.evaluate(() => window.scrollTo(0, 0));
      assert.ok(await inView(s.patient, enter), `"Enter waiting room" on screen after the check at ${viewport.width}×${viewport.height}`);
    }
    noPageProblems(s.lines);
  } catch (e) {
    await snap(s.patient, 'fail-device-check-phone');
    throw e;
  } finally {
    await s.close();
  }
});

test('verdict table: measurements to plain words (no browser)', () => {
  const path = { type: 'host', protocol: 'udp', relayProtocol: null };
  const leg = (measured, connected = true) => ({
    connected,
    measured,
    candidates: serverCandidates('a=candidate:1 1 udp 2130706431 192.0.2.7 3479 typ host\r\na=candidate:2 1 tcp 2130706431 192.0.2.7 3480 typ host tcptype passive\r\n'),
    ports: { udp: [3478, 3479], tcp: [3480, 3481] },
  });
  const fine = { rttMs: 40, lossPercent: 0, echoFrames: 60, fps: 15, path };
  const base = { signalling: true, turnConfigured: false, hasVideo: true, relay: null };
  assert.equal(verdictOf({ ...base, direct: leg(fine) }).level, 'good');
  const slow = verdictOf({ ...base, direct: leg({ ...fine, rttMs: 640 }) });
  assert.equal(slow.level, 'poor');
  assert.equal(slow.title, 'Video may be poor: your connection is slow (round trip 640 ms).');
  const lossy = verdictOf({ ...base, direct: leg({ ...fine, lossPercent: 12.5 }) });
  assert.equal(lossy.title, 'Video may be poor: part of the video is lost on the way (12.5% of packets).');
  const noEcho = verdictOf({ ...base, direct: leg({ ...fine, echoFrames: 0, fps: 0 }) });
  assert.equal(noEcho.title, 'Video may be poor: your test picture did not come back from the video server.');
  const down = verdictOf({ ...base, direct: leg(null, false) });
  assert.equal(down.level, 'unreachable');
  assert.equal(down.advice, "Ask your IT department to allow video calls to our video server (192.0.2.7, UDP ports 3478 and 3479, TCP ports 3480 and 3481). Or try another network, such as your phone's mobile data.");
  assert.equal(relayText(['turn:turn.example.org:3478?transport=udp', 'turn:turn.example.org:3478?transport=tcp', 'turns:turn.example.org:443?transport=tcp']),
    'turn.example.org port 3478 over UDP and TCP; turn.example.org port 443 over TLS');
  assert.equal(portsText([{ protocol: 'udp', address: '192.0.2.7', port: 50000 }], { udp: [], tcp: [] }), '192.0.2.7, UDP port 50000');
  const noServer = verdictOf({ signalling: false });
  assert.equal(noServer.title, 'We cannot reach the video server: the connection to the server failed.');
});
