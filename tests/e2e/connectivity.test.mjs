// Connectivity (issue #3): a consultation through a real coturn with the browsers forced to
// `iceTransportPolicy: 'relay'`, and one over ICE-TCP only (UDP to the SFU's media ports dropped
// inside the test namespace with nft). Run through tests/e2e/run.sh, which starts coturn in the
// namespace (E2E_TURN_URLS, E2E_TURN_LOG) and the server with --turn-url/--turn-secret-file and
// --media-tcp-bind.
//
// No test switch ships in the product: the relay-only policy is forced by an init script that
// wraps RTCPeerConnection in the test's browser contexts.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  launchBrowser, newContext, captureConsole, requireEnv, assertMediaFlowing, snap, waitFor, seedOrganisation, endConsultation } from './lib/harness.mjs';
import { bookAppointment } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD', 'CONSULTROOM_SERVER_LOG', 'E2E_TURN_URLS', 'E2E_TURN_LOG');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('connectivity'); });
let browser;

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Init script: every RTCPeerConnection of the page uses relay candidates only. */
function forceRelayOnly() {
  const Native = window.RTCPeerConnection;
  class RelayOnlyPeerConnection extends Native {
    constructor(config = {}, ...rest) {
      super({ ...config, iceTransportPolicy: 'relay' }, ...rest);
    }
  }
  window.RTCPeerConnection = RelayOnlyPeerConnection;
}

/** The selected candidate pair of the page's peer connection, with both candidates' details. */
function selectedPair(page) {
  return page.evaluate(async () => {
    const pc = window.__consultroom && window.__consultroom.pc();
    if (!pc) return null;
    const report = await pc.getStats();
    const byId = new Map();
    report.forEach((s) => byId.set(s.id, s));
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId) || pair;
    });
    if (!pair || pair.state !== 'succeeded') return null;
    const cand = (c) => c && {
      type: c.candidateType, protocol: c.protocol, relayProtocol: c.relayProtocol || null,
      address: c.address, port: c.port, tcpType: c.tcpType || null,
    };
    const local = [];
    report.forEach((s) => { if (s.type === 'local-candidate') local.push(s.candidateType); });
    return {
      local: cand(byId.get(pair.localCandidateId)),
      remote: cand(byId.get(pair.remoteCandidateId)),
      bytesSent: pair.bytesSent || 0,
      bytesReceived: pair.bytesReceived || 0,
      gatheredLocalTypes: [...new Set(local)],
      iceServers: pc.getConfiguration().iceServers.map((s) => ({ urls: s.urls, username: s.username })),
      policy: pc.getConfiguration().iceTransportPolicy,
    };
  });
}

/** Runs one named step; on failure saves screenshots of the given pages first. */
async function step(name, pages, fn) {
  try {
    return await fn();
  } catch (e) {
    for (const [label, page] of Object.entries(pages)) await snap(page, `fail-conn-${name.replace(/\W+/g, '-')}-${label}`);
    e.message = `[${name}] ${e.message}`;
    throw e;
  }
}

/**
 * Practitioner and patient (each in its own context, set up by `prepare(context)`) go through a
 * whole consultation; `check(staff, patient)` runs while media flows. Ends the consultation, then
 * runs `afterEnd()` while both browsers are still open.
 */
async function consultation(label, prepare, check, afterEnd = async () => {}) {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const patientCtx = await newContext(browser, { baseURL: env.BASE_URL });
  await prepare(staffCtx);
  await prepare(patientCtx);
  const staff = await staffCtx.newPage();
  const patient = await patientCtx.newPage();
  const pages = { staff, patient };
  const lines = [...[staff, patient].map(captureConsole)];
  try {
    await step(`${label}: admitted`, pages, async () => {
      await staff.goto('/');
      await staff.getByLabel('Email address').fill(org.email);
      await staff.getByLabel('Password').fill(org.password);
      await staff.getByRole('button', { name: 'Sign in' }).click();
      await staff.locator('body[data-signalling="joined"]').waitFor();
      const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: `${label} Testpatiënt`, inMinutes: 3 });
      assert.ok(!booked.error, booked.error);
      await patient.goto(booked.invitationUrl);
      await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
      await patient.getByRole('button', { name: 'Enter waiting room' }).click();
      await patient.locator('#waiting-view:not([hidden])').waitFor();
      const entry = staff.locator('#waiting-list button.waiting-entry', { hasText: `${label} Testpatiënt` });
      await entry.waitFor();
      await entry.click();
      await staff.locator('#room-view:not([hidden])').waitFor();
      await patient.locator('#room-view:not([hidden])').waitFor();
    });
    await step(`${label}: media`, pages, async () => {
      const [s, p] = await Promise.all([
        assertMediaFlowing(staff, assert, `${label} practitioner`),
        assertMediaFlowing(patient, assert, `${label} patient`),
      ]);
      console.log(`${label}: practitioner frames ${s.first.video.framesDecoded} → ${s.second.video.framesDecoded}, patient frames ${p.first.video.framesDecoded} → ${p.second.video.framesDecoded}`);
      await check(staff, patient);
    });
    await step(`${label}: end`, pages, async () => {
      await endConsultation(staff);
      await patient.getByText('Your consultation has ended. You can close this window.').waitFor();
      await staff.locator('#dashboard-view:not([hidden])').waitFor();
      await afterEnd();
    });
    const problems = lines.flat().filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l));
    assert.deepEqual(problems, [], 'no uncaught errors or CSP violations');
  } finally {
    await staffCtx.close();
    await patientCtx.close();
  }
}

/**
 * The selected pair once it carries media both ways (> 10 kB each), or after 15 s the last one
 * seen, for the assertions to report. The selected pair can still change right after media
 * starts (Chromium may nominate another pair after the first), so one early sample is not enough.
 */
async function busySelectedPair(page, who) {
  let last = null;
  const pair = await waitFor(async () => {
    last = (await selectedPair(page)) || last;
    return last && last.bytesReceived > 10_000 && last.bytesSent > 10_000 ? last : null;
  }, { timeoutMs: 15_000, intervalMs: 250, what: `${who}: a selected pair with media both ways` })
    .catch(() => last);
  assert.ok(pair, `${who}: a selected candidate pair`);
  return pair;
}

/**
 * coturn's account of finished sessions after `offset` in its log: per session, the client side
 * (`usage:`) and the relay↔peer side (`peer usage:`), packets and bytes received/sent.
 */
function turnUsage(offset) {
  const text = readFileSync(env.E2E_TURN_LOG, 'utf8').slice(offset);
  const sessions = [];
  const re = /session (\d+): (peer )?usage: realm=<[^>]*>, username=<([^>]*)>, rp=(\d+), rb=(\d+), sp=(\d+), sb=(\d+)/g;
  for (const m of text.matchAll(re)) {
    sessions.push({ session: m[1], side: m[2] ? 'peer' : 'client', username: m[3], rp: +m[4], rb: +m[5], sp: +m[6], sb: +m[7] });
  }
  return { text, sessions };
}

test('relay only: both browsers reach the SFU through coturn with our time-limited credentials', { timeout: 120_000 }, async () => {
  const logStart = readFileSync(env.E2E_TURN_LOG, 'utf8').length;
  const pairs = {};
  let usage;
  // coturn's own account (usage lines, logged every few seconds and when an allocation closes):
  // for each browser's credentials, media went through coturn both ways, browser side and peer
  // (SFU) side. Summed over that username's sessions: a browser may send on one relayed address
  // and be answered on another of its allocations (seen: Chromium's UDP and TCP allocations to
  // the same coturn, the SFU answering on the other one), which is still relayed media.
  const waitForRelayedUsage = () => {
    const usernames = [pairs.staff, pairs.patient].map((p) => p.iceServers[0].username);
    const totals = (u, username, side) => u.sessions
      .filter((s) => s.username === username && s.side === side)
      .reduce((a, s) => ({ rb: a.rb + s.rb, sb: a.sb + s.sb, sessions: a.sessions + 1 }), { rb: 0, sb: 0, sessions: 0 });
    const relayed = (t) => t.rb > 20_000 && t.sb > 20_000;
    return waitFor(() => {
      const u = turnUsage(logStart);
      const found = usernames.map((name) => ({ name, client: totals(u, name, 'client'), peer: totals(u, name, 'peer') }));
      return found.every((f) => relayed(f.client) && relayed(f.peer)) ? { text: u.text, found } : null;
    }, { timeoutMs: 20_000, intervalMs: 500, what: "coturn usage lines with relayed media both ways for both browsers' credentials" });
  };
  await consultation('relay', (ctx) => ctx.addInitScript(forceRelayOnly), async (staff, patient) => {
    for (const [who, page] of Object.entries({ staff, patient })) {
      const pair = await busySelectedPair(page, who);
      pairs[who] = pair;
      console.log(`relay ${who}: ${JSON.stringify(pair)}`);
      assert.equal(pair.policy, 'relay', `${who}: the init script forced relay-only`);
      assert.deepEqual(pair.gatheredLocalTypes, ['relay'], `${who}: only relay candidates gathered`);
      assert.equal(pair.local.type, 'relay', `${who}: the selected local candidate is a TURN relay`);
      assert.equal(pair.local.address, '127.0.0.1', `${who}: relayed from coturn's relay-ip`);
      assert.equal(pair.remote.type, 'host', `${who}: the remote candidate is the SFU's host candidate`);
      assert.ok(pair.bytesReceived > 10_000 && pair.bytesSent > 10_000, `${who}: media both ways on the relayed pair (${pair.bytesSent} sent, ${pair.bytesReceived} received)`);
      const urls = pair.iceServers.flatMap((s) => [].concat(s.urls));
      assert.deepEqual(urls, env.E2E_TURN_URLS.split(','), `${who}: the server's TURN URLs`);
      const expiry = Number(pair.iceServers[0].username.split(':')[0]);
      const inSeconds = expiry - Date.now() / 1000;
      assert.ok(inSeconds > 9 * 60 && inSeconds <= 10 * 60 + 5, `${who}: credentials expire in --turn-ttl-minutes 10 (${inSeconds.toFixed(0)} s)`);
    }
  }, async () => {
    // Waited for with the browsers still open: closing them at once after the peer connections
    // can cut off their TURN deallocations (Refresh, lifetime 0), and coturn then logs a cut-off
    // allocation's usage only when its 10-minute lifetime runs out.
    usage = await waitForRelayedUsage();
  });
  for (const f of usage.found) {
    console.log(`coturn relayed for ${f.name} (${f.client.sessions} usage lines): client rb=${f.client.rb} sb=${f.client.sb}, peer rb=${f.peer.rb} sb=${f.peer.sb}`);
  }
  // The first request of every allocation is challenged (401 for user <>); with a username,
  // coturn must accept our HMAC credentials.
  assert.doesNotMatch(usage.text, /user <[^>]+>: [^\n]*error 4\d\d/, 'coturn accepted every credential we issued');
});

/** The SFU's UDP media ports, from its start-up log lines (`sfu media loop started ... udp=`). */
function sfuUdpPorts() {
  // eslint-disable-next-line no-control-regex
  const log = readFileSync(env.CONSULTROOM_SERVER_LOG, 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
  const ports = [...log.matchAll(/sfu media loop started.*?udp=[^ ]*?:(\d+)/g)].map((m) => Number(m[1]));
  assert.ok(ports.length > 0, 'found the SFU UDP ports in the server log');
  return [...new Set(ports)];
}

function nft(...args) {
  return execFileSync('nft', args, { encoding: 'utf8' });
}

test('ICE-TCP only: UDP to the SFU is dropped, the browsers use its RFC 4571 TCP candidate', { timeout: 120_000 }, async () => {
  const ports = sfuUdpPorts();
  // This runs inside the test's own network namespace: only its loopback is affected.
  nft('add', 'table', 'inet', 'cr_e2e_block_udp');
  try {
    nft('add', 'chain', 'inet', 'cr_e2e_block_udp', 'out', '{ type filter hook output priority 0 ; }');
    nft('add', 'rule', 'inet', 'cr_e2e_block_udp', 'out', 'udp', 'dport', `{ ${ports.join(', ')} }`, 'counter', 'drop');
    console.log(`dropping UDP to the SFU's ports ${ports.join(', ')}`);
    await consultation('tcp', async () => {}, async (staff, patient) => {
      for (const [who, page] of Object.entries({ staff, patient })) {
        const pair = await busySelectedPair(page, who);
        console.log(`tcp ${who}: ${JSON.stringify(pair)}`);
        assert.equal(pair.local.protocol, 'tcp', `${who}: the selected local candidate is TCP`);
        assert.equal(pair.remote.protocol, 'tcp', `${who}: the SFU's candidate is TCP`);
        assert.equal(pair.remote.type, 'host', `${who}: the SFU's passive TCP host candidate`);
        assert.ok(!ports.includes(pair.remote.port), `${who}: not one of the blocked UDP ports`);
        assert.ok(pair.bytesReceived > 10_000 && pair.bytesSent > 10_000, `${who}: media both ways over TCP (${pair.bytesSent} sent, ${pair.bytesReceived} received)`);
      }
    });
    // The rule really dropped the browsers' UDP checks (otherwise this test proves nothing).
    const listing = nft('list', 'table', 'inet', 'cr_e2e_block_udp');
    const dropped = Number((listing.match(/counter packets (\d+)/) || [])[1] || 0);
    console.log(`nft dropped ${dropped} UDP packets to the SFU`);
    assert.ok(dropped > 0, 'UDP connectivity checks to the SFU were attempted and dropped');
  } finally {
    nft('delete', 'table', 'inet', 'cr_e2e_block_udp');
  }
});
