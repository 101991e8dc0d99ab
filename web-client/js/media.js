// @ts-check
// Local devices and the WebRTC peer connection to the SFU.
//
// Negotiation contract (docs/protocol.md): after `consultation_started` the client publishes its
// tracks as `sendonly` transceivers and sends exactly ONE offer (`media_offer`), answered by the
// server's `media_answer`. Everything after that is server-initiated: a server `media_offer`
// (remote tracks as recvonly) is answered with a client `media_answer`. Local ICE candidates are
// trickled as `ice_candidate`. All SDP work runs through one queue so offers and answers never
// interleave.

import { t } from './i18n.js';

const ANSWER_TIMEOUT_MS = 15_000;
/** Client renegotiations refused because a server offer is outstanding are retried this often. */
const RENEGOTIATE_ATTEMPTS = 10;

/**
 * Simulcast layers for a camera track: quarter, half and full resolution (rids q, h, f), with
 * bitrate caps so the low layers stay cheap. The SFU gives each viewer the layer that fits its
 * tile and bandwidth. Below 360 lines there is nothing to scale down: one layer.
 * @param {MediaStreamTrack} track
 * @returns {RTCRtpEncodingParameters[] | undefined}
 */
export function simulcastEncodings(track) {
  const height = (track.getSettings && track.getSettings().height) || 720;
  if (height < 360) return undefined;
  return [
    { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
    { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
    { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
  ];
}

/**
 * The publisher's stream id for a remote stream id (`participant-7-screen` → `participant-7`).
 * @param {string | null | undefined} streamId
 */
export function publisherStreamId(streamId) {
  return String(streamId || '').replace(/-screen$/, '');
}
/** How long to wait for `GET /api/v1/ice-servers` before going on without TURN. */
const ICE_SERVERS_TIMEOUT_MS = 5_000;

/**
 * Fetches the ICE servers (TURN with time-limited credentials) from `GET /api/v1/ice-servers`
 * as `RTCIceServer` objects. `headers` can carry `Authorization: Bearer <join token>` for
 * patients; staff use their session cookie. Never throws: without an answer (no TURN configured,
 * an error, a timeout) the list is empty and the SFU's own candidates are used.
 * @param {typeof import('./api.js').api} api
 * @param {Record<string, string>} [headers]
 * @returns {Promise<RTCIceServer[]>}
 */
export async function fetchIceServers(api, headers) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ICE_SERVERS_TIMEOUT_MS);
  try {
    const data = await api('/api/v1/ice-servers', { headers, signal: controller.signal });
    const list = Array.isArray(data && data.ice_servers) ? data.ice_servers : [];
    return list
      .filter((/** @type {any} */ s) => s && Array.isArray(s.urls) && s.urls.length)
      .map((/** @type {RTCIceServer} */ s) => ({ urls: s.urls, username: s.username, credential: s.credential }));
  } catch {
    return [];
  } finally {
    clearTimeout(timer);
  }
}

/** Opens camera and microphone. Throws a DOMException (NotAllowedError, NotFoundError, ...). */
export async function openCameraAndMic() {
  return navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
  });
}

/**
 * Stops every track of a stream (turns the camera light off).
 * @param {MediaStream | null | undefined} stream
 */
export function stopStream(stream) {
  if (!stream) return;
  for (const t of stream.getTracks()) t.stop();
}

/** Which browser's menus to describe: 'edge', 'chrome', 'firefox', 'safari' or 'other'. */
/** @param {string} [ua] */
export function browserFamily(ua = navigator.userAgent) {
  if (/Edg(e|A|iOS)?\//.test(ua)) return 'edge';
  if (/Firefox\/|FxiOS\//.test(ua)) return 'firefox';
  if (/Chrome\/|Chromium\/|CriOS\//.test(ua)) return 'chrome';
  if (/Safari\//.test(ua) && /Version\//.test(ua)) return 'safari';
  return 'other';
}

/** True on iPhone/iPad (where Safari's permissions live in the system Settings app). */
/** @param {string} ua */
function isIos(ua) {
  return /iPhone|iPad|iPod/.test(ua);
}

/** Step-by-step help for a blocked camera/microphone permission, in the browser's own words. */
export function permissionHelp(ua = navigator.userAgent) {
  const family = browserFamily(ua);
  if (family === 'chrome') {
    return t('media.blocked_chrome');
  }
  if (family === 'edge') {
    return t('media.blocked_edge');
  }
  if (family === 'firefox') {
    return t('media.blocked_firefox');
  }
  if (family === 'safari') {
    if (isIos(ua)) {
      return t('media.blocked_ios');
    }
    return t('media.blocked_safari');
  }
  return t('media.blocked_other');
}

/** Plain-language help for a failed getUserMedia, for patients and staff alike. */
/**
 * @param {any} err what getUserMedia threw (a DOMException, usually)
 * @param {string} [ua]
 */
export function deviceErrorHelp(err, ua = navigator.userAgent) {
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return permissionHelp(ua);
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') {
    return t('media.not_found');
  }
  if (name === 'NotReadableError' || name === 'AbortError') {
    return t('media.in_use');
  }
  if (!window.isSecureContext || !navigator.mediaDevices) {
    return t('media.insecure');
  }
  return t('media.failed');
}

/**
 * Plays a short, gentle two-note test tone (about 1.2 s) on the default output. Resolves when it
 * has finished; rejects when audio cannot play (no AudioContext).
 * @param {AudioContext | null} audioContext
 */
export async function playTestTone(audioContext) {
  if (!audioContext) throw new Error('no audio');
  if (audioContext.state !== 'running') await audioContext.resume();
  const t0 = audioContext.currentTime + 0.03;
  const notes = [[523.25, 0], [659.25, 0.4], [783.99, 0.8]]; // C5 E5 G5
  for (const [freq, at] of notes) {
    const osc = audioContext.createOscillator();
    const gain = audioContext.createGain();
    osc.type = 'sine';
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t0 + at);
    gain.gain.exponentialRampToValueAtTime(0.25, t0 + at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.38);
    osc.connect(gain).connect(audioContext.destination);
    osc.start(t0 + at);
    osc.stop(t0 + at + 0.4);
  }
  await new Promise((r) => setTimeout(r, 1250));
}

/**
 * Drives a small level meter (0..1) from a microphone stream with WebAudio. Returns `stop()`.
 * `audioContext` must be resumed from a user gesture by the caller.
 * @param {MediaStream} stream
 * @param {AudioContext | null} audioContext
 * @param {(level: number) => void} onLevel
 * @returns {() => void}
 */
export function startLevelMeter(stream, audioContext, onLevel) {
  const track = stream.getAudioTracks()[0];
  if (!track || !audioContext) return () => {};
  const source = audioContext.createMediaStreamSource(new MediaStream([track]));
  const analyser = audioContext.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  let raf = 0;
  let smoothed = 0;
  const tick = () => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
    const rms = Math.sqrt(sum / buf.length);
    // Map roughly -60..0 dBFS onto 0..1, with a little smoothing so the bar does not flicker.
    const db = 20 * Math.log10(rms || 1e-8);
    const level = Math.min(1, Math.max(0, (db + 60) / 60));
    smoothed = level > smoothed ? level : smoothed * 0.85 + level * 0.15;
    onLevel(smoothed);
    raf = requestAnimationFrame(tick);
  };
  raf = requestAnimationFrame(tick);
  return () => {
    cancelAnimationFrame(raf);
    try { source.disconnect(); } catch { /* ignore */ }
  };
}

export class MediaSession {
  /**
   * @param {object} opts
   * @param {import('./signalling.js').SignallingClient} opts.signalling
   * @param {MediaStream} opts.localStream
   * @param {(streams: Map<string, MediaStream>) => void} opts.onRemoteStreams called whenever
   *   remote tracks change, with the remote streams by msid stream id (`participant-<n>` for
   *   microphone and camera, `participant-<n>-screen` for a screen share); empty streams left out
   * @param {boolean} [opts.simulcast] publish the camera in three layers (default true)
   * @param {(state: string) => void} [opts.onConnectionState]
   * @param {(err: Error) => void} [opts.onError]
   * @param {() => Promise<RTCIceServer[]>} [opts.getIceServers] TURN servers, fetched right
   *   before the peer connection is created (credentials are short-lived)
   * @param {(pc: RTCPeerConnection) => void} [opts.onPeerConnection] called once it exists
   */
  constructor({ signalling, localStream, onRemoteStreams, onConnectionState, onError, getIceServers, onPeerConnection, simulcast = true }) {
    this.signalling = signalling;
    this.localStream = localStream;
    this.onRemoteStreams = onRemoteStreams || (() => {});
    this.simulcast = simulcast;
    /** @type {Map<RTCRtpTransceiver, 'microphone'|'camera'|'screen'>} what each sending m-line carries */
    this.sources = new Map();
    /** @type {Map<string, MediaStream>} remote streams by msid stream id */
    this.remoteStreams = new Map();
    /** @type {Map<string, string>} remote track id → the m-line (mid) it arrives on */
    this.remoteMids = new Map();
    /** @type {Map<string, string>} last `view` sent per mid (to send only changes) */
    this.views = new Map();
    /** @type {RTCRtpTransceiver | null} */
    this.screenTransceiver = null;
    /** @type {MediaStream | null} */
    this.screenStream = null;
    this.onConnectionState = onConnectionState || (() => {});
    this.onError = onError || (() => {});
    this.getIceServers = getIceServers || (async () => []);
    this.onPeerConnection = onPeerConnection || (() => {});
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {Promise<unknown>} */
    this.queue = Promise.resolve();
    /** @type {{ resolve: (value?: unknown) => void, reject: (err: unknown) => void, timer: ReturnType<typeof setTimeout> } | null} */
    this.answerWaiter = null;
    this.offerSent = false;
    /** @type {string[]} candidates gathered before the offer was sent */
    this.pendingCandidates = [];
    this.closed = false;
    this.iceWatched = false;
  }

  /**
   * Fetches the ICE servers, creates the peer connection, publishes local tracks and sends the
   * single client offer. Server media frames are only expected after that offer, so nothing is
   * missed while the ICE servers are fetched.
   */
  start() {
    this.#enqueue(async () => {
      const iceServers = await this.getIceServers();
      if (this.closed) return;
      this.#createPeerConnection(iceServers);
    });
  }

  /** @param {RTCIceServer[]} iceServers */
  #createPeerConnection(iceServers) {
    const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    this.pc = pc;
    this.onPeerConnection(pc);
    for (const track of this.localStream.getTracks()) {
      /** @type {RTCRtpTransceiverInit} */
      const init = { direction: 'sendonly', streams: [this.localStream] };
      const encodings = track.kind === 'video' && this.simulcast ? simulcastEncodings(track) : undefined;
      if (encodings) init.sendEncodings = encodings;
      const transceiver = pc.addTransceiver(track, init);
      this.sources.set(transceiver, track.kind === 'audio' ? 'microphone' : 'camera');
    }
    pc.addEventListener('icecandidate', (ev) => {
      const c = ev.candidate && ev.candidate.candidate;
      if (!c) return; // end-of-candidates: nothing to send
      if (this.offerSent) this.signalling.send({ type: 'ice_candidate', candidate: c });
      else this.pendingCandidates.push(c);
    });
    pc.addEventListener('track', (ev) => this.#onTrack(ev));
    pc.addEventListener('connectionstatechange', () => this.onConnectionState(pc.connectionState));
    this.#enqueue(async () => {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      const answered = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no media_answer from the server')), ANSWER_TIMEOUT_MS);
        this.answerWaiter = { resolve, reject, timer };
      });
      this.signalling.send({ type: 'media_offer', sdp: pc.localDescription.sdp, tracks: this.#trackList() });
      this.offerSent = true;
      for (const c of this.pendingCandidates.splice(0)) {
        this.signalling.send({ type: 'ice_candidate', candidate: c });
      }
      await answered;
    });
  }

  /**
   * Feeds a signalling frame; returns true when it was a media frame.
   * @param {import('./protocol.js').ServerMessage} msg
   */
  handle(msg) {
    if (this.closed || !this.pc) return false;
    if (msg.type === 'media_answer') {
      // An answer to a renegotiation request is applied by the request itself.
      if (msg.reply_to === undefined) this.#applyAnswer(msg.sdp);
      return true;
    }
    if (msg.type === 'media_offer') {
      this.#enqueue(() => this.#answerServerOffer(msg.sdp));
      return true;
    }
    return false;
  }

  /**
   * Enables/disables the local tracks of one kind (the track keeps running; no renegotiation).
   * @param {'audio' | 'video'} kind
   * @param {boolean} enabled
   */
  setEnabled(kind, enabled) {
    const tracks = kind === 'audio' ? this.localStream.getAudioTracks() : this.localStream.getVideoTracks();
    for (const t of tracks) t.enabled = enabled;
  }

  /**
   * Shares a screen (or window/tab) as a second video track with source "screen". Resolves with
   * the captured stream; rejects when the user cancels the picker or the server refuses
   * (`SignallingError` with code `forbidden` where the organisation does not allow it), in which
   * case nothing is left behind. The browser's own "Stop sharing" button calls
   * `stopScreenShare()`.
   */
  async startScreenShare() {
    if (this.screenStream) return this.screenStream;
    if (!this.pc) throw new Error('not connected');
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
    const track = stream.getVideoTracks()[0];
    if (!track) throw new Error('nothing to share');
    try { track.contentHint = 'detail'; } catch { /* not supported */ }
    let transceiver = this.screenTransceiver;
    if (transceiver) {
      await transceiver.sender.replaceTrack(track);
      transceiver.direction = 'sendonly';
    } else {
      transceiver = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      this.screenTransceiver = transceiver;
      this.sources.set(transceiver, 'screen');
    }
    this.screenStream = stream;
    track.addEventListener('ended', () => { this.stopScreenShare().catch(() => {}); });
    try {
      await this.#renegotiate();
    } catch (e) {
      await transceiver.sender.replaceTrack(null).catch(() => {});
      transceiver.direction = 'inactive';
      stopStream(stream);
      this.screenStream = null;
      throw e;
    }
    return stream;
  }

  /** Stops sharing the screen (the others' screen tile goes away). */
  async stopScreenShare() {
    const stream = this.screenStream;
    const transceiver = this.screenTransceiver;
    if (!stream || !transceiver) return;
    this.screenStream = null;
    stopStream(stream);
    await transceiver.sender.replaceTrack(null).catch(() => {});
    transceiver.direction = 'inactive';
    if (!this.closed) await this.#renegotiate();
  }

  /** True while this side shares a screen. */
  get sharingScreen() {
    return !!this.screenStream;
  }

  /**
   * Tells the server how the remote video `track` is shown: hidden (`visible` false) or at
   * `width`×`height` device pixels, so it forwards a fitting simulcast layer or nothing.
   * Sends only changes.
   * @param {MediaStreamTrack} track
   * @param {{ visible: boolean, width?: number, height?: number }} view
   */
  setView(track, { visible, width = 0, height = 0 }) {
    const mid = track && this.remoteMids.get(track.id);
    if (!mid || this.closed) return;
    const w = visible ? Math.max(0, Math.round(width)) : 0;
    const h = visible ? Math.max(0, Math.round(height)) : 0;
    const key = `${visible}:${w}x${h}`;
    if (this.views.get(mid) === key) return;
    this.views.set(mid, key);
    this.signalling.send({ type: 'view', mid, visible: !!visible, width: w, height: h });
  }

  close() {
    this.closed = true;
    if (this.screenStream) stopStream(this.screenStream);
    this.screenStream = null;
    if (this.answerWaiter) {
      clearTimeout(this.answerWaiter.timer);
      this.answerWaiter = null;
    }
    if (this.pc) {
      try { this.pc.close(); } catch { /* ignore */ }
    }
    this.remoteStreams.clear();
    this.remoteMids.clear();
  }

  /** What each sending m-line carries, for `media_offer.tracks`. */
  #trackList() {
    /** @type {import('./protocol.js').TrackInfo[]} */
    const list = [];
    for (const [transceiver, source] of this.sources) {
      // `stopped` is not in every browser's (nor TypeScript's) RTCRtpTransceiver.
      if (transceiver.mid !== null && transceiver.mid !== undefined && !(/** @type {any} */ (transceiver).stopped)) {
        list.push({ mid: transceiver.mid, source });
      }
    }
    return list;
  }

  /**
   * A client-initiated renegotiation (a screen share added or stopped): offer, wait for the
   * server's answer. Glare (a server offer outstanding: `invalid_state`) rolls back and retries
   * after the server offer was answered; other refusals roll back and reject.
   */
  async #renegotiate() {
    for (let attempt = 1; ; attempt++) {
      let retry = false;
      let failure = null;
      await this.#enqueue(async () => {
        const pc = this.pc;
        if (!pc || this.closed) return;
        const offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
        try {
          const reply = await this.signalling.request({ type: 'media_offer', sdp: pc.localDescription.sdp, tracks: this.#trackList() });
          await pc.setRemoteDescription({ type: 'answer', sdp: reply.sdp });
        } catch (e) {
          await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
          if (e && e.code === 'invalid_state' && attempt < RENEGOTIATE_ATTEMPTS) retry = true;
          else failure = e;
        }
      });
      if (failure) throw failure;
      if (!retry) return;
      await new Promise((r) => setTimeout(r, 150 * attempt));
    }
  }

  /** @param {string} sdp */
  async #applyAnswer(sdp) {
    const waiter = this.answerWaiter;
    try {
      if (this.pc.signalingState !== 'have-local-offer') return; // stale or duplicate answer
      await this.pc.setRemoteDescription({ type: 'answer', sdp });
      if (waiter) {
        clearTimeout(waiter.timer);
        this.answerWaiter = null;
        waiter.resolve();
      }
    } catch (e) {
      if (waiter) {
        clearTimeout(waiter.timer);
        this.answerWaiter = null;
        waiter.reject(e);
      } else {
        this.onError(e);
      }
    }
  }

  /** @param {string} sdp */
  async #answerServerOffer(sdp) {
    const pc = this.pc;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.signalling.send({ type: 'media_answer', sdp: pc.localDescription.sdp });
  }

  /** @param {RTCTrackEvent} ev */
  #onTrack(ev) {
    const track = ev.track;
    if (ev.transceiver && ev.transceiver.mid) this.remoteMids.set(track.id, ev.transceiver.mid);
    // The server names every remote stream by its publisher and source (msid). The browser keeps
    // the stream's track list current: a track whose m-line goes inactive is removed from it.
    const browserStream = ev.streams && ev.streams[0];
    const id = browserStream ? browserStream.id : `track-${track.id}`;
    let stream = this.remoteStreams.get(id);
    // Follow the browser's own stream object: when a stream id comes back (a second screen
    // share), the browser may hand out a new MediaStream, and only that one hears removals.
    if (!stream || (browserStream && stream !== browserStream)) {
      stream = browserStream || new MediaStream();
      this.remoteStreams.set(id, stream);
      stream.addEventListener('removetrack', () => this.#emitStreams());
      stream.addEventListener('addtrack', () => this.#emitStreams());
    }
    if (!stream.getTracks().includes(track)) {
      // A newer track of the same kind (the publisher republished) replaces the older one.
      for (const old of stream.getTracks()) {
        if (old.kind === track.kind && old !== track) stream.removeTrack(old);
      }
      stream.addTrack(track);
    }
    track.addEventListener('ended', () => {
      if (stream.getTracks().includes(track)) stream.removeTrack(track);
      this.#emitStreams();
    });
    this.#emitStreams();
  }

  #emitStreams() {
    if (this.closed) return;
    const live = new Map();
    for (const [id, stream] of this.remoteStreams) {
      if (stream.getTracks().length) live.set(id, stream);
    }
    this.onRemoteStreams(live);
  }

  /** @param {() => unknown} fn */
  #enqueue(fn) {
    this.queue = this.queue.then(fn).catch((e) => {
      if (!this.closed) this.onError(e);
    });
    return this.queue;
  }

  // ---- Reconnection (issue #3): ICE restart on the same peer connection --------------------

  /**
   * Restarts ICE on the existing peer connection: new ICE credentials, same tracks and
   * subscriptions (the server keeps the media session of a resumed seat). Sends the offer
   * through the current signalling connection; a server offer outstanding (`invalid_state`)
   * is answered first and the restart tried again. Concurrent calls share one restart.
   */
  restartIce() {
    if (this.closed) return Promise.resolve();
    if (!this.iceRestart) {
      this.iceRestart = this.#restartIceOnce().finally(() => { this.iceRestart = null; });
    }
    return this.iceRestart;
  }

  async #restartIceOnce() {
    for (let attempt = 1; attempt <= 6; attempt++) {
      let retry = false;
      await this.#enqueue(async () => {
        const pc = this.pc;
        if (!pc || this.closed || pc.signalingState === 'closed') return;
        pc.restartIce();
        const offer = await pc.createOffer({ iceRestart: true });
        await pc.setLocalDescription(offer);
        try {
          const reply = await this.signalling.request({ type: 'media_offer', sdp: pc.localDescription.sdp, tracks: this.#trackList() });
          await pc.setRemoteDescription({ type: 'answer', sdp: reply.sdp });
        } catch (e) {
          await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
          if (e && (e.code === 'invalid_state' || e.code === 'not_connected' || e.code === 'closed')) retry = true;
          else throw e;
        }
      });
      if (!retry || this.closed) return;
      await new Promise((r) => setTimeout(r, 300 * attempt));
    }
  }

  /**
   * Restarts ICE by itself when the media path breaks while signalling is fine: at once on
   * `iceConnectionState` "failed", and after 4 s of "disconnected" (Chromium takes much longer
   * to call it failed). Call once after `start()`.
   */
  watchIce() {
    this.queue.then(() => {
      const pc = this.pc;
      if (!pc || this.closed || this.iceWatched) return;
      this.iceWatched = true;
      /** @type {ReturnType<typeof setTimeout> | undefined} */
      let timer;
      const restartIfSignalling = () => {
        if (!this.closed && this.signalling.isOpen) this.restartIce().catch(() => {});
      };
      pc.addEventListener('iceconnectionstatechange', () => {
        clearTimeout(timer);
        if (pc.iceConnectionState === 'failed') restartIfSignalling();
        else if (pc.iceConnectionState === 'disconnected') timer = setTimeout(restartIfSignalling, 4000);
      });
    });
  }
}
