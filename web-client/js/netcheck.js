// @ts-check
// Network check of the device-check page (issue #4, F33/F37): can this browser reach our own
// video server (the SFU), directly or through the clinic's TURN relay, and how well?
//
// It opens a *check-only* signalling connection (`join` with `check: true`: in no waiting room,
// nobody sees it), and runs one or two connectivity probes (docs/protocol.md, "Connectivity
// probe"): a short private media session in which the SFU sends our own camera and microphone
// back to us. From `getStats()` it reads whether ICE connected and over which path (host/relay,
// UDP/TCP), the round-trip time, packet loss both ways and the echoed video frames, and turns that
// into a plain verdict (`verdictOf`, pure). Measurements never leave the browser; nothing is logged.

import { signallingUrl } from './signalling.js';
import { t } from './i18n.js';

const JOIN_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** How long ICE + DTLS may take before a leg counts as "not reachable". */
const CONNECT_TIMEOUT_MS = 10_000;
/** How long media is measured once connected (the server ends a probe after 20 s). */
const MEASURE_MS = 4_000;
/** Above these, video may be poor. */
export const LIMITS = { rttMs: 300, lossPercent: 5, minFps: 8 };

/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */
/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {{ protocol: string, address: string, port: number, type: string }} Candidate an SFU ICE candidate */
/** @typedef {{ type: string, protocol: string, relayProtocol: string | null }} Path the selected local candidate */
/**
 * @typedef {object} Sample one getStats() sample, reduced
 * @property {number} at
 * @property {number | null} rtt seconds
 * @property {Path | null} path
 * @property {{ packets: number, lost: number, frames: number, videoPackets: number, audioPackets: number }} inbound
 * @property {{ packets: number }} outbound
 * @property {number} remoteLost
 * @property {number | null} remoteRtt seconds
 */
/**
 * @typedef {object} Measured measurements over a window
 * @property {number | null} rttMs
 * @property {number} lossPercent
 * @property {number} echoPackets
 * @property {number} echoVideoPackets
 * @property {number} echoAudioPackets
 * @property {number} echoFrames
 * @property {number} fps
 * @property {Path | null} path
 */
/**
 * @typedef {object} Leg the result of one probe
 * @property {RTCIceTransportPolicy} policy
 * @property {boolean} connected
 * @property {Candidate[]} candidates
 * @property {string | null} error
 * @property {Measured | null} measured
 * @property {import('./protocol.js').ProbeEndReason} [ended]
 * @property {{ udp: number[], tcp: number[] }} [ports] all of the SFU's media ports
 */
/**
 * @typedef {object} NetworkCheck the result of `runNetworkCheck`
 * @property {boolean} signalling
 * @property {Leg | null} direct
 * @property {Leg | null} relay
 * @property {boolean} turnConfigured
 * @property {string[]} [turnUrls]
 * @property {boolean} hasVideo
 * @property {boolean} aborted
 */
/**
 * @typedef {{ connected: boolean, path: Path | null } | null} LegSummary
 * @typedef {object} ConnectionVerdict the verdict of `verdictOf`
 * @property {'good' | 'poor' | 'unreachable'} level
 * @property {string} title
 * @property {string[]} details
 * @property {string} advice
 * @property {Measured | {}} [measured]
 * @property {{ direct: LegSummary, relay: LegSummary }} [legs]
 */

/** A minimal client for the one check-only connection (request/reply by `id`, events). */
class CheckConnection {
  /** @param {WebSocket} ws */
  constructor(ws) {
    this.ws = ws;
    this.nextId = 1;
    /** @type {Map<string, { resolve: (msg: any) => void, reject: (err: Error) => void, timer: ReturnType<typeof setTimeout> }>} */
    this.pending = new Map();
    /** @type {(msg: ServerMessage) => void} */
    this.onEvent = () => {};
    ws.addEventListener('message', (ev) => this.#frame(ev.data));
    ws.addEventListener('close', () => {
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(Object.assign(new Error('closed'), { code: 'closed' }));
      }
      this.pending.clear();
    });
  }

  /**
   * @param {string} token
   * @param {string} [url]
   */
  static async open(token, url = signallingUrl()) {
    const ws = new WebSocket(url);
    await new Promise((/** @type {(v?: unknown) => void} */ resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timeout')), JOIN_TIMEOUT_MS);
      ws.addEventListener('open', () => { clearTimeout(t); resolve(); }, { once: true });
      ws.addEventListener('error', () => { clearTimeout(t); reject(new Error('network')); }, { once: true });
      ws.addEventListener('close', () => { clearTimeout(t); reject(new Error('closed')); }, { once: true });
    }).catch((e) => {
      try { ws.close(); } catch { /* already closed */ }
      throw e;
    });
    const conn = new CheckConnection(ws);
    const joined = await conn.request({ type: 'join', token, check: true }, JOIN_TIMEOUT_MS);
    if (joined.type !== 'joined') throw new Error('unexpected reply');
    return conn;
  }

  /** @param {ClientMessage} msg */
  send(msg) {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /**
   * The reply is typed `any` like SignallingClient.request's.
   * @param {ClientMessage} msg
   * @returns {Promise<any>}
   */
  request(msg, timeoutMs = REQUEST_TIMEOUT_MS) {
    const id = `n${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(Object.assign(new Error('timeout'), { code: 'timeout' }));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      if (!this.send({ id, ...msg })) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(Object.assign(new Error('closed'), { code: 'closed' }));
      }
    });
  }

  close() {
    try { this.ws.close(1000, 'check done'); } catch { /* ignore */ }
  }

  /** @param {string} data */
  #frame(data) {
    /** @type {any} */
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (!msg || typeof msg.type !== 'string') return;
    const p = msg.reply_to !== undefined && this.pending.get(msg.reply_to);
    if (p) {
      this.pending.delete(msg.reply_to);
      clearTimeout(p.timer);
      if (msg.type === 'error') p.reject(Object.assign(new Error(msg.message || msg.code), { code: msg.code }));
      else p.resolve(msg);
      return;
    }
    this.onEvent(msg);
  }
}

/**
 * The SFU's ICE candidates in an SDP answer: `{ protocol, address, port }` (for IT advice).
 * @param {string} sdp
 */
export function serverCandidates(sdp) {
  /** @type {Candidate[]} */
  const out = [];
  for (const line of String(sdp || '').split(/\r?\n/)) {
    const m = /^a=candidate:\S+ \d+ (udp|tcp) \d+ (\S+) (\d+) typ (\w+)/i.exec(line.trim());
    if (!m) continue;
    const c = { protocol: m[1].toLowerCase(), address: m[2], port: Number(m[3]), type: m[4] };
    if (!out.some((o) => o.protocol === c.protocol && o.address === c.address && o.port === c.port)) out.push(c);
  }
  return out;
}

/**
 * One getStats() sample, reduced to what the verdict needs (the stats are typed `any`: which
 * fields a report has depends on its `type` and the browser).
 * @param {RTCPeerConnection} pc
 * @returns {Promise<Sample>}
 */
async function sample(pc) {
  const report = await pc.getStats();
  /** @type {Map<string, any>} */
  const byId = new Map();
  report.forEach((/** @type {any} */ s) => byId.set(s.id, s));
  /** @type {any} */
  let pair = null;
  report.forEach((/** @type {any} */ s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((/** @type {any} */ s) => {
      if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s;
    });
  }
  const local = pair && byId.get(pair.localCandidateId);
  /** @type {Sample} */
  const out = {
    at: performance.now(),
    rtt: pair && typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime : null,
    path: local ? { type: local.candidateType, protocol: local.protocol, relayProtocol: local.relayProtocol || null } : null,
    inbound: { packets: 0, lost: 0, frames: 0, videoPackets: 0, audioPackets: 0 },
    outbound: { packets: 0 },
    remoteLost: 0,
    remoteRtt: null,
  };
  report.forEach((/** @type {any} */ s) => {
    if (s.type === 'inbound-rtp') {
      out.inbound.packets += s.packetsReceived || 0;
      out.inbound.lost += Math.max(0, s.packetsLost || 0);
      if (s.kind === 'video') {
        out.inbound.frames += s.framesDecoded || 0;
        out.inbound.videoPackets += s.packetsReceived || 0;
      } else {
        out.inbound.audioPackets += s.packetsReceived || 0;
      }
    } else if (s.type === 'outbound-rtp') {
      out.outbound.packets += s.packetsSent || 0;
    } else if (s.type === 'remote-inbound-rtp') {
      out.remoteLost += Math.max(0, s.packetsLost || 0);
      if (typeof s.roundTripTime === 'number') out.remoteRtt = Math.max(out.remoteRtt || 0, s.roundTripTime);
    }
  });
  return out;
}

/**
 * Measurements over the window between two samples.
 * @param {Sample} a
 * @param {Sample} b
 * @returns {Measured}
 */
function measure(a, b) {
  const seconds = Math.max(0.001, (b.at - a.at) / 1000);
  const received = b.inbound.packets - a.inbound.packets;
  const lostDown = Math.max(0, b.inbound.lost - a.inbound.lost);
  const sent = b.outbound.packets - a.outbound.packets;
  const lostUp = Math.max(0, b.remoteLost - a.remoteLost);
  /**
   * @param {number} lost
   * @param {number} total
   */
  const pct = (lost, total) => (total > 0 ? (100 * lost) / total : 0);
  const rtt = b.rtt ?? b.remoteRtt;
  return {
    rttMs: rtt === null ? null : Math.round(rtt * 1000),
    lossPercent: Math.round(10 * Math.max(pct(lostDown, received + lostDown), pct(lostUp, sent))) / 10,
    echoPackets: b.inbound.packets,
    echoVideoPackets: b.inbound.videoPackets,
    echoAudioPackets: b.inbound.audioPackets,
    echoFrames: b.inbound.frames,
    fps: Math.round((10 * (b.inbound.frames - a.inbound.frames)) / seconds) / 10,
    path: b.path,
  };
}

/** @param {number} ms */
function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Resolves true once `pc` is connected, false on failure or after `timeoutMs`.
 * @param {RTCPeerConnection} pc
 * @param {number} timeoutMs
 * @returns {Promise<boolean>}
 */
function connected(pc, timeoutMs) {
  return new Promise((resolve) => {
    /** @param {boolean} v */
    const done = (v) => { clearTimeout(t); pc.removeEventListener('connectionstatechange', check); resolve(v); };
    const check = () => {
      if (pc.connectionState === 'connected') done(true);
      else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') done(false);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    pc.addEventListener('connectionstatechange', check);
    check();
  });
}

/**
 * One probe over `conn`: our tracks go to the SFU and come back. Never throws; the result says
 * `connected` (bool), the server's candidates, and the measurements once connected.
 * @param {CheckConnection} conn
 * @param {{ tracks: MediaStreamTrack[], iceServers: RTCIceServer[], policy: RTCIceTransportPolicy,
 *   echoVideo: HTMLVideoElement | null, signal: AbortSignal | null }} leg
 * @returns {Promise<Leg>}
 */
async function runLeg(conn, { tracks, iceServers, policy, echoVideo, signal }) {
  /** @type {Leg} */
  const result = { policy, connected: false, candidates: [], error: null, measured: null };
  /** @type {RTCPeerConnection | undefined} */
  let pc;
  let sdpQueue = Promise.resolve();
  // Stopped from outside (the patient entered the waiting room): closing ends every wait.
  const stop = () => { try { pc?.close(); } catch { /* ignore */ } conn.close(); };
  signal?.addEventListener('abort', stop, { once: true });
  try {
    pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: policy });
    conn.onEvent = (msg) => {
      if (msg.type === 'probe_offer') {
        // The SFU adds the echo of our tracks; one SDP operation at a time.
        sdpQueue = sdpQueue.then(async () => {
          await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
          await pc.setLocalDescription(await pc.createAnswer());
          await conn.request({ type: 'probe_answer', sdp: pc.localDescription.sdp });
        }).catch(() => { /* the measurement shows the missing echo */ });
      } else if (msg.type === 'probe_ended') {
        result.ended = msg.reason;
      }
    };
    // The echo of our camera, shown (and so decoded) in `echoVideo` while the leg runs.
    pc.addEventListener('track', (e) => {
      if (echoVideo && e.track.kind === 'video') {
        echoVideo.srcObject = new MediaStream([e.track]);
        echoVideo.play().catch(() => {});
      }
    });
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate && e.candidate.candidate) conn.send({ type: 'probe_candidate', candidate: e.candidate.candidate });
    });
    for (const track of tracks) pc.addTransceiver(track, { direction: 'sendonly' });
    await pc.setLocalDescription(await pc.createOffer());
    const reply = await conn.request({ type: 'probe_offer', sdp: pc.localDescription.sdp });
    result.candidates = serverCandidates(reply.sdp);
    result.ports = {
      udp: Array.isArray(reply.udp_ports) ? reply.udp_ports.filter(Number.isInteger) : [],
      tcp: Array.isArray(reply.tcp_ports) ? reply.tcp_ports.filter(Number.isInteger) : [],
    };
    // In the SDP queue: the server's echo offer follows its answer at once.
    const answered = sdpQueue.then(() => pc.setRemoteDescription({ type: 'answer', sdp: reply.sdp }));
    sdpQueue = answered.catch(() => {});
    await answered;
    result.connected = await connected(pc, CONNECT_TIMEOUT_MS);
    if (result.connected) {
      // Let the echo start (the server's offer, a keyframe), then measure a window.
      await sleep(1_000);
      const first = await sample(pc);
      await sleep(MEASURE_MS);
      result.measured = measure(first, await sample(pc));
    }
  } catch (e) {
    result.error = (e && e.code) || 'failed';
  } finally {
    signal?.removeEventListener('abort', stop);
    conn.onEvent = () => {};
    if (echoVideo) echoVideo.srcObject = null;
    if (result.ended === undefined) await conn.request({ type: 'probe_stop' }).catch(() => {});
    try { pc?.close(); } catch { /* ignore */ }
  }
  return result;
}

/** A video track drawn on a canvas, for a check without a camera. */
function canvasTrack() {
  const canvas = document.createElement('canvas');
  canvas.width = 320;
  canvas.height = 180;
  const g = canvas.getContext('2d');
  let x = 0;
  const timer = setInterval(() => {
    g.fillStyle = '#1d4f91';
    g.fillRect(0, 0, canvas.width, canvas.height);
    g.fillStyle = '#ffffff';
    g.fillRect(x, 70, 40, 40);
    x = (x + 8) % canvas.width;
  }, 66);
  const track = canvas.captureStream(15).getVideoTracks()[0];
  track.addEventListener('ended', () => clearInterval(timer));
  return { track, stop: () => { clearInterval(timer); track.stop(); } };
}

/**
 * Runs the whole check. `getToken()` gives a fresh join token, `getIceServers()` the TURN
 * servers (may be empty), `stream` the local camera/microphone (optional: a drawn video is
 * used without it), `echoVideo` a <video> that shows the picture coming back, `signal` an
 * AbortSignal that stops the check (the result then has `aborted: true`). `onStep(text)` reports progress. Resolves with
 * `{ signalling, direct, relay, turnConfigured, hasVideo }` for `verdictOf`; never throws.
 * @param {{ getToken: () => Promise<string>, getIceServers: () => Promise<RTCIceServer[]>,
 *   stream?: MediaStream | null, echoVideo?: HTMLVideoElement | null, signal?: AbortSignal | null,
 *   onStep?: (text: string) => void }} check
 * @returns {Promise<NetworkCheck>}
 */
export async function runNetworkCheck({ getToken, getIceServers, stream, echoVideo = null, signal = null, onStep = () => {} }) {
  /** @type {NetworkCheck} */
  const out = { signalling: false, direct: null, relay: null, turnConfigured: false, hasVideo: false, aborted: false };
  let conn = null;
  let drawn = null;
  try {
    onStep(t('net.step_connecting'));
    let token;
    try {
      token = await getToken();
      conn = await CheckConnection.open(token);
    } catch {
      return out;
    }
    // Stopped while connecting (the patient entered the waiting room): an AbortSignal does not
    // fire for listeners added after the abort, so a leg started now would run to its end.
    if (signal?.aborted) return out;
    out.signalling = true;
    let tracks = stream ? stream.getTracks().filter((t) => t.readyState === 'live') : [];
    if (!tracks.some((t) => t.kind === 'video')) {
      drawn = canvasTrack();
      tracks = [...tracks, drawn.track];
    }
    out.hasVideo = true;
    onStep(t('net.step_echo'));
    out.direct = await runLeg(conn, { tracks, iceServers: [], policy: 'all', echoVideo, signal });
    if (signal?.aborted) return out;
    const iceServers = await getIceServers().catch(() => /** @type {RTCIceServer[]} */ ([]));
    /** @param {RTCIceServer} s */
    const urlsOf = (s) => /** @type {string[]} */ ([].concat(s.urls));
    const turn = iceServers.filter((s) => urlsOf(s).some((u) => /^turns?:/.test(u)));
    out.turnConfigured = turn.length > 0;
    out.turnUrls = turn.flatMap(urlsOf).filter((u) => typeof u === 'string');
    if (out.turnConfigured && !signal?.aborted) {
      onStep(t('net.step_relay'));
      out.relay = await runLeg(conn, { tracks, iceServers: turn, policy: 'relay', echoVideo, signal });
    }
  } finally {
    out.aborted = !!signal?.aborted;
    drawn?.stop();
    conn?.close();
  }
  return out;
}

/**
 * "UDP", "TCP" or "the relay server (TURN over UDP)" for a selected local candidate.
 * @param {Path | null | undefined} path
 */
function pathWords(path) {
  if (!path) return t('net.path_unknown');
  if (path.type === 'relay') return t('net.path_relay', { protocol: (path.relayProtocol || 'udp').toUpperCase() });
  return t('net.path_direct', { protocol: String(path.protocol || 'udp').toUpperCase() });
}

/**
 * Where the video server listens: its addresses (from the candidates) and all its media ports
 * (from `probe_answer`; the candidates name only one media loop's), e.g.
 * "203.0.113.5, UDP ports 50000 and 50001, TCP ports 50100 and 50101".
 * @param {Candidate[]} candidates
 * @param {{ udp: number[], tcp: number[] } | undefined} ports
 */
export function portsText(candidates, ports) {
  /** @param {string[]} xs */
  const list = (xs) => (xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} ${t('net.and')} ${xs[xs.length - 1]}`);
  const addresses = [...new Set(candidates.map((c) => c.address))];
  const parts = [];
  for (const proto of /** @type {const} */ (['udp', 'tcp'])) {
    const known = (ports && ports[proto]) || [];
    const seen = candidates.filter((c) => c.protocol === proto).map((c) => c.port);
    const all = [...new Set([...known, ...seen])].sort((a, b) => a - b);
    if (all.length) parts.push(t('net.ports', { count: all.length, protocol: proto.toUpperCase(), ports: list(all.map(String)) }));
  }
  return [list(addresses), ...parts].filter(Boolean).join(', ');
}

/**
 * The TURN servers as IT reads them: "turn.example.org port 3478 over UDP and TCP" from
 * `turn:turn.example.org:3478?transport=udp` URLs (`turns:` is TLS).
 * @param {string[]} urls
 */
export function relayText(urls) {
  /** @type {Map<string, string[]>} */
  const byHost = new Map();
  for (const u of urls) {
    const m = /^(turns?):([^?]+?)(?::(\d+))?(?:\?transport=(udp|tcp))?$/i.exec(u);
    if (!m) continue;
    const tls = m[1].toLowerCase() === 'turns';
    const port = m[3] || (tls ? '5349' : '3478');
    const key = t('net.host_port', { host: m[2], port });
    const proto = tls ? 'TLS' : (m[4] || 'udp').toUpperCase();
    if (!byHost.has(key)) byHost.set(key, []);
    if (!byHost.get(key).includes(proto)) byHost.get(key).push(proto);
  }
  return [...byHost].map(([k, protos]) => t('net.over', { where: k, protocols: protos.join(` ${t('net.and')} `) })).join('; ');
}

/**
 * The verdict for a check result (pure): `{ level, title, details[], advice, path, … }` with
 * level `good`, `poor` or `unreachable`.
 * @param {NetworkCheck | null} r
 * @returns {ConnectionVerdict}
 */
export function verdictOf(r) {
  if (!r || !r.signalling) {
    return {
      level: 'unreachable',
      title: t('net.unreachable_title'),
      details: [],
      advice: t('net.unreachable_advice'),
    };
  }
  const legs = [r.direct, r.relay].filter(Boolean);
  const best = legs.find((l) => l.connected && l.measured) || legs.find((l) => l.connected) || null;
  const candidates = (r.direct && r.direct.candidates) || [];
  if (!best) {
    const where = candidates.length ? ` (${portsText(candidates, r.direct.ports)})` : '';
    const relay = relayText(r.turnUrls || []);
    const relayWords = r.turnConfigured ? (relay ? t('net.and_relay_named', { relay }) : t('net.and_relay')) : '';
    return {
      level: 'unreachable',
      title: t('net.blocked_title'),
      details: [
        r.turnConfigured ? t('net.blocked_both') : t('net.blocked_direct'),
      ],
      advice: t('net.blocked_advice', { where, relay: relayWords }),
      legs: { direct: r.direct ? { connected: false, path: null } : null, relay: r.relay ? { connected: false, path: null } : null },
    };
  }
  const m = best.measured || /** @type {Measured} */ ({});
  /** @param {Leg | null} l */
  const legSummary = (l) => (l ? { connected: l.connected, path: l.measured ? l.measured.path : null } : null);
  const legs2 = { direct: legSummary(r.direct), relay: legSummary(r.relay) };
  /** @type {string[]} */
  const details = [t('net.connected_through', { path: pathWords(m.path) })];
  if (r.direct && !r.direct.connected && best === r.relay) {
    details.push(t('net.detour'));
  }
  if (r.turnConfigured && r.relay && best !== r.relay) details.push(r.relay.connected ? t('net.relay_works') : t('net.relay_unreachable'));
  if (typeof m.rttMs === 'number') details.push(t('net.figures', { rtt: m.rttMs, loss: m.lossPercent || 0 }));
  const problems = [];
  if (!best.measured) problems.push(t('net.problem_dropped'));
  else {
    if (typeof m.rttMs === 'number' && m.rttMs > LIMITS.rttMs) problems.push(t('net.problem_slow', { rtt: m.rttMs }));
    if (m.lossPercent > LIMITS.lossPercent) problems.push(t('net.problem_loss', { loss: m.lossPercent }));
    if (r.hasVideo && !(m.echoFrames > 0)) problems.push(t('net.problem_no_echo'));
    else if (r.hasVideo && m.fps < LIMITS.minFps) problems.push(t('net.problem_jerky', { fps: m.fps }));
  }
  if (problems.length) {
    return { level: 'poor', title: t('net.poor_title', { problems: problems.join('; ') }), details, advice: t('net.poor_advice'), measured: m, legs: legs2 };
  }
  return { level: 'good', title: t('net.good_title'), details, advice: '', measured: m, legs: legs2 };
}

/**
 * Shows verdict `v` (from `verdictOf`) in a result box: its title, details and advice as plain
 * text, and `data-level` on `result` (plus the measured figures and legs as data attributes, for
 * tests and IT). Shared by the patient's and the practitioner's checks.
 * @param {ConnectionVerdict} v
 * @param {{ result: HTMLElement, title: HTMLElement, details: HTMLElement, advice: HTMLElement }} where
 */
export function renderVerdict(v, { result, title, details, advice }) {
  title.textContent = v.title;
  details.replaceChildren(...v.details.map((d) => {
    const li = document.createElement('li');
    li.textContent = d; // plain text, never HTML
    return li;
  }));
  advice.textContent = v.advice || '';
  result.dataset.level = v.level;
  const m = /** @type {Partial<Measured>} */ (v.measured || {});
  result.dataset.rttMs = typeof m.rttMs === 'number' ? String(m.rttMs) : '';
  result.dataset.lossPercent = typeof m.lossPercent === 'number' ? String(m.lossPercent) : '';
  result.dataset.echoFrames = typeof m.echoFrames === 'number' ? String(m.echoFrames) : '';
  result.dataset.echoPackets = typeof m.echoPackets === 'number' ? `${m.echoAudioPackets}/${m.echoVideoPackets}` : '';
  result.dataset.path = m.path ? `${m.path.type}/${m.path.protocol}${m.path.relayProtocol ? `/${m.path.relayProtocol}` : ''}` : '';
  /** @param {LegSummary | undefined} l */
  const leg = (l) => (!l ? 'skipped' : !l.connected ? 'failed' : l.path ? `${l.path.type}/${l.path.protocol}` : 'connected');
  result.dataset.direct = leg(v.legs && v.legs.direct);
  result.dataset.relay = leg(v.legs && v.legs.relay);
  result.hidden = false;
}
