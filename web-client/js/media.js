// Local devices and the WebRTC peer connection to the SFU.
//
// Negotiation contract (docs/protocol.md): after `consultation_started` the client publishes its
// tracks as `sendonly` transceivers and sends exactly ONE offer (`media_offer`), answered by the
// server's `media_answer`. Everything after that is server-initiated: a server `media_offer`
// (remote tracks as recvonly) is answered with a client `media_answer`. Local ICE candidates are
// trickled as `ice_candidate`. All SDP work runs through one queue so offers and answers never
// interleave.

const ANSWER_TIMEOUT_MS = 15_000;

/** Opens camera and microphone. Throws a DOMException (NotAllowedError, NotFoundError, ...). */
export async function openCameraAndMic() {
  return navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
  });
}

/** Stops every track of a stream (turns the camera light off). */
export function stopStream(stream) {
  if (!stream) return;
  for (const t of stream.getTracks()) t.stop();
}

/** Which browser's menus to describe: 'edge', 'chrome', 'firefox', 'safari' or 'other'. */
export function browserFamily(ua = navigator.userAgent) {
  if (/Edg(e|A|iOS)?\//.test(ua)) return 'edge';
  if (/Firefox\/|FxiOS\//.test(ua)) return 'firefox';
  if (/Chrome\/|Chromium\/|CriOS\//.test(ua)) return 'chrome';
  if (/Safari\//.test(ua) && /Version\//.test(ua)) return 'safari';
  return 'other';
}

/** True on iPhone/iPad (where Safari's permissions live in the system Settings app). */
function isIos(ua) {
  return /iPhone|iPad|iPod/.test(ua);
}

/** Step-by-step help for a blocked camera/microphone permission, in the browser's own words. */
export function permissionHelp(ua = navigator.userAgent) {
  const family = browserFamily(ua);
  if (family === 'chrome') {
    return 'Your browser blocked the camera and microphone. In Chrome: click the camera symbol (or the site settings symbol) at the left of the address bar, choose "Always allow" for camera and microphone, then press "Try again".';
  }
  if (family === 'edge') {
    return 'Your browser blocked the camera and microphone. In Edge: click the lock symbol at the left of the address bar, set Camera and Microphone to "Allow", then press "Try again".';
  }
  if (family === 'firefox') {
    return 'Your browser blocked the camera and microphone. In Firefox: click the crossed-out camera or microphone symbol in the address bar, remove the "Blocked" permissions (the ×), then press "Try again" and choose "Allow".';
  }
  if (family === 'safari') {
    if (isIos(ua)) {
      return 'Your browser blocked the camera and microphone. On iPhone or iPad: tap "aA" in the address bar, then "Website Settings", set Camera and Microphone to "Allow", then press "Try again".';
    }
    return 'Your browser blocked the camera and microphone. In Safari: open the Safari menu, choose "Settings for This Website…", set Camera and Microphone to "Allow", then press "Try again".';
  }
  return 'Your browser blocked the camera and microphone. Click the camera symbol in the address bar (or open the site settings), choose "Allow" for camera and microphone, then press "Try again".';
}

/** Plain-language help for a failed getUserMedia, for patients and staff alike. */
export function deviceErrorHelp(err, ua = navigator.userAgent) {
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return permissionHelp(ua);
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') {
    return 'No camera or microphone was found. Connect a camera and microphone (or use a phone or laptop that has them), then press "Try again".';
  }
  if (name === 'NotReadableError' || name === 'AbortError') {
    return 'The camera or microphone is in use by another program (for example another video call). Close that program, then press "Try again".';
  }
  if (!window.isSecureContext || !navigator.mediaDevices) {
    return 'This page must be opened over a secure (https) connection to use the camera.';
  }
  return 'The camera and microphone could not be started. Check that they are connected and allowed, then press "Try again".';
}

/**
 * Plays a short, gentle two-note test tone (about 1.2 s) on the default output. Resolves when it
 * has finished; rejects when audio cannot play (no AudioContext).
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
   * @param {(stream: MediaStream) => void} opts.onRemoteStream called whenever remote tracks change
   * @param {(state: string) => void} [opts.onConnectionState]
   * @param {(err: Error) => void} [opts.onError]
   */
  constructor({ signalling, localStream, onRemoteStream, onConnectionState, onError }) {
    this.signalling = signalling;
    this.localStream = localStream;
    this.onRemoteStream = onRemoteStream;
    this.onConnectionState = onConnectionState || (() => {});
    this.onError = onError || (() => {});
    this.pc = null;
    this.remoteStream = new MediaStream();
    this.queue = Promise.resolve();
    this.answerWaiter = null;
    this.offerSent = false;
    this.pendingCandidates = [];
    this.closed = false;
  }

  /** Creates the peer connection, publishes local tracks and sends the single client offer. */
  start() {
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    this.pc = pc;
    for (const track of this.localStream.getTracks()) {
      pc.addTransceiver(track, { direction: 'sendonly', streams: [this.localStream] });
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
      this.signalling.send({ type: 'media_offer', sdp: pc.localDescription.sdp });
      this.offerSent = true;
      for (const c of this.pendingCandidates.splice(0)) {
        this.signalling.send({ type: 'ice_candidate', candidate: c });
      }
      await answered;
    });
  }

  /** Feeds a signalling frame; returns true when it was a media frame. */
  handle(msg) {
    if (this.closed || !this.pc) return false;
    if (msg.type === 'media_answer') {
      this.#applyAnswer(msg.sdp);
      return true;
    }
    if (msg.type === 'media_offer') {
      this.#enqueue(() => this.#answerServerOffer(msg.sdp));
      return true;
    }
    return false;
  }

  /** Enables/disables the local tracks of one kind (the track keeps running; no renegotiation). */
  setEnabled(kind, enabled) {
    const tracks = kind === 'audio' ? this.localStream.getAudioTracks() : this.localStream.getVideoTracks();
    for (const t of tracks) t.enabled = enabled;
  }

  close() {
    this.closed = true;
    if (this.answerWaiter) {
      clearTimeout(this.answerWaiter.timer);
      this.answerWaiter = null;
    }
    if (this.pc) {
      try { this.pc.close(); } catch { /* ignore */ }
    }
    for (const t of this.remoteStream.getTracks()) this.remoteStream.removeTrack(t);
  }

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

  async #answerServerOffer(sdp) {
    const pc = this.pc;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.signalling.send({ type: 'media_answer', sdp: pc.localDescription.sdp });
  }

  #onTrack(ev) {
    const track = ev.track;
    if (!this.remoteStream.getTracks().includes(track)) {
      // One remote participant for now: gather the remote tracks into one stream so a single
      // <video> element plays both the picture and the sound. A newer track of the same kind
      // (the other side republished) replaces the older one.
      for (const old of this.remoteStream.getTracks()) {
        if (old.kind === track.kind) this.remoteStream.removeTrack(old);
      }
      this.remoteStream.addTrack(track);
    }
    track.addEventListener('ended', () => {
      if (!this.remoteStream.getTracks().includes(track)) return;
      this.remoteStream.removeTrack(track);
      this.onRemoteStream(this.remoteStream);
    });
    this.onRemoteStream(this.remoteStream);
  }

  #enqueue(fn) {
    this.queue = this.queue.then(fn).catch((e) => {
      if (!this.closed) this.onError(e);
    });
    return this.queue;
  }
}
