// @ts-check
// WebSocket client for the signalling protocol v1 (see signalling/src/protocol.rs and
// docs/protocol.md): JSON text frames with a snake_case `type`; requests may carry `id`, and the
// server's direct reply carries it back as `reply_to`.
//
// The join token lives 120 s, so a fresh one is fetched (via `getToken`) right before every
// connect — except that a reconnect uses the newest token the server pushed (`token_refresh`)
// while it is still valid: after the invitation window a patient's link no longer yields one.
// Frames are never logged (they carry names and SDP).

const PING_INTERVAL_MS = 20_000;
const REQUEST_TIMEOUT_MS = 15_000;
const JOIN_TIMEOUT_MS = 10_000;

/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */
/** @typedef {import('./protocol.js').ServerMessage} ServerMessage */
/** @typedef {import('./protocol.js').JoinedMessage} JoinedMessage */
/**
 * @typedef {object} Pending a request waiting for its reply
 * @property {(msg: ServerMessage) => void} resolve
 * @property {(err: SignallingError) => void} reject
 * @property {ReturnType<typeof setTimeout>} timer
 */

export class SignallingError extends Error {
  /**
   * @param {string} code a protocol error code (docs/protocol.md) or a local one (`timeout`,
   *   `network_error`, `closed`, `not_connected`, `unexpected`)
   * @param {string} [message]
   */
  constructor(code, message) {
    super(message || code);
    this.name = 'SignallingError';
    this.code = code;
  }
}

/** The `/ws` URL on the page's own origin (wss:// on https pages). */
export function signallingUrl(loc = window.location) {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${loc.host}/ws`;
}

export class SignallingClient {
  /**
   * @param {object} opts
   * @param {() => Promise<string>} opts.getToken fetches a fresh join token
   * @param {(msg: ServerMessage) => void} opts.onMessage every server frame except replies consumed by a request
   * @param {(info: {code:number, reason:string, wasJoined:boolean}) => void} [opts.onClose]
   *   not called after close(). Close reasons used by the server: "replaced" (1001: the same
   *   patient connected again elsewhere), "revoked" (1008: the clinic withdrew this guest's
   *   invitation), "session_ended" (1008: the staff login session ended — logout elsewhere,
   *   account closed), "server shutting down", "too slow", "invalid token".
   * @param {string} [opts.url]
   */
  constructor({ getToken, onMessage, onClose, url }) {
    this.getToken = getToken;
    this.onMessage = onMessage;
    this.onClose = onClose || (() => {});
    this.url = url || signallingUrl();
    /** @type {WebSocket | null} */
    this.ws = null;
    this.nextId = 1;
    /** @type {Map<string, Pending>} */
    this.pending = new Map();
    /** @type {ReturnType<typeof setInterval> | null} */
    this.pingTimer = null;
    /** @type {JoinedMessage | null} */
    this.joined = null;
    this.closedByUs = false;
    /** @type {string | null} */
    this.joinId = null;
    /**
     * The consultation id to resume on the next connect (`join.resume`), or null.
     * @type {string | null}
     */
    this.resume = null;
    /** The newest pushed join token (`token_refresh`): {token, expiresAt} or null; used once. */
    this.refreshed = null;
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN && !!this.joined;
  }

  /**
   * Fetches a token, opens the socket and joins. Resolves with the `joined` frame.
   * @returns {Promise<JoinedMessage>}
   */
  async connect() {
    this.closedByUs = false;
    const pushed = this.refreshed;
    this.refreshed = null;
    const token = pushed && pushed.expiresAt - Date.now() > 10_000 ? pushed.token : await this.getToken();
    const ws = new WebSocket(this.url);
    this.ws = ws;
    await /** @type {Promise<void>} */ (new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new SignallingError('timeout', 'Connecting took too long.')), JOIN_TIMEOUT_MS);
      ws.addEventListener('open', () => { clearTimeout(t); resolve(); }, { once: true });
      ws.addEventListener('error', () => { clearTimeout(t); reject(new SignallingError('network_error', 'Could not connect to the server.')); }, { once: true });
      ws.addEventListener('close', () => { clearTimeout(t); reject(new SignallingError('closed', 'The connection was closed.')); }, { once: true });
    })).catch((e) => {
      try { ws.close(); } catch { /* already closed */ }
      throw e;
    });
    ws.addEventListener('message', (ev) => this.#onFrame(ev.data));
    ws.addEventListener('close', (ev) => this.#onSocketClose(ws, ev));
    // Reconnection: `resume` (set by the owner while a room survives a drop) asks for the seat.
    /** @type {import('./protocol.js').JoinMessage} */
    const join = this.resume ? { type: 'join', token, resume: this.resume } : { type: 'join', token };
    const joinPromise = this.request(join, JOIN_TIMEOUT_MS);
    this.joinId = String(this.nextId - 1);
    const joined = await joinPromise.finally(() => { this.joinId = null; });
    if (joined.type !== 'joined') throw new SignallingError('unexpected', 'Unexpected reply from the server.');
    this.joined = joined;
    this.pingTimer = setInterval(() => this.send({ type: 'ping' }), PING_INTERVAL_MS);
    return joined;
  }

  /**
   * Sends a frame without waiting for a reply. Returns false when the socket is not open.
   * @param {ClientMessage} msg
   */
  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /**
   * Sends a frame with an `id` and resolves with the reply (`reply_to` = id). An `error` reply
   * rejects with `SignallingError` (and is not passed to `onMessage`). The reply is typed `any`:
   * which frame answers which request is docs/protocol.md's business, and callers check `type`
   * where it matters.
   * @param {ClientMessage} msg
   * @returns {Promise<any>}
   */
  request(msg, timeoutMs = REQUEST_TIMEOUT_MS) {
    const id = String(this.nextId++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new SignallingError('timeout', 'The server did not answer in time.'));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      if (!this.send({ id, ...msg })) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new SignallingError('not_connected', 'Not connected to the server.'));
      }
    });
  }

  /** Closes on purpose (no reconnect by the owner expected). */
  close() {
    this.closedByUs = true;
    this.#stop();
    if (this.ws) {
      try { this.ws.close(1000, 'bye'); } catch { /* ignore */ }
    }
    this.ws = null;
  }

  /** @param {string} data */
  #onFrame(data) {
    /** @type {ServerMessage} */
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return; // the server only sends JSON; ignore anything else
    }
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') return;
    if (msg.reply_to !== undefined && this.pending.has(msg.reply_to)) {
      const p = this.pending.get(msg.reply_to);
      this.pending.delete(msg.reply_to);
      clearTimeout(p.timer);
      if (msg.type === 'error') {
        p.reject(new SignallingError(msg.code || 'error', msg.message));
        return;
      }
      p.resolve(msg);
      // Replies that are also state (media_answer, consultation_started) still reach the app.
      if (msg.type === 'ok' || msg.type === 'pong' || msg.type === 'joined') return;
    }
    if (msg.type === 'error' && this.joinId && this.pending.has(this.joinId)) {
      // A refused join may come back without reply_to; fail the join instead of hanging.
      const p = this.pending.get(this.joinId);
      this.pending.delete(this.joinId);
      clearTimeout(p.timer);
      p.reject(new SignallingError(msg.code || 'error', msg.message));
      return;
    }
    if (msg.type === 'pong') return;
    if (msg.type === 'token_refresh') {
      this.refreshed = { token: msg.token, expiresAt: Date.parse(msg.expires_at) };
      return;
    }
    try {
      this.onMessage(msg);
    } catch (e) {
      // Never let one bad frame kill the connection handler.
      console.error('consultroom: error while handling a signalling frame', msg.type, e && e.name);
    }
  }

  /**
   * @param {WebSocket} ws
   * @param {CloseEvent} ev
   */
  #onSocketClose(ws, ev) {
    if (ws !== this.ws) return;
    const wasJoined = !!this.joined;
    this.#stop();
    this.ws = null;
    if (!this.closedByUs) this.onClose({ code: ev.code, reason: ev.reason || '', wasJoined });
  }

  #stop() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.joined = null;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new SignallingError('closed', 'The connection was closed.'));
    }
    this.pending.clear();
  }
}

/**
 * Keeps a `SignallingClient` connected: retries with exponential backoff (1 s … 30 s, jittered),
 * fetching a fresh token each time. `shouldRetry(err)` can stop retrying (e.g. the invitation
 * expired). Returns a handle with `stop()`.
 * @param {SignallingClient} client
 * @param {{ onConnected?: (joined: JoinedMessage) => void, onRetry?: (err: unknown, delay: number) => void,
 *   shouldRetry?: (err: unknown) => boolean }} [handlers]
 * @returns {{ stop(): void }}
 */
export function connectWithRetry(client, { onConnected, onRetry, shouldRetry = () => true } = {}) {
  let attempt = 0;
  let stopped = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const tryOnce = async () => {
    if (stopped) return;
    try {
      const joined = await client.connect();
      attempt = 0;
      if (!stopped) onConnected?.(joined);
    } catch (err) {
      if (stopped) return;
      if (!shouldRetry(err)) return;
      const delay = Math.min(30_000, 1000 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      attempt += 1;
      onRetry?.(err, delay);
      timer = setTimeout(tryOnce, delay);
    }
  };
  tryOnce();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
