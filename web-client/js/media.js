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

/** Plain-language help for a failed getUserMedia, for patients and staff alike. */
export function deviceErrorHelp(err) {
  const name = err && err.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return 'Your browser blocked the camera and microphone. Click the camera symbol in the address bar (or open the site settings), choose "Allow" for camera and microphone, then press "Try again".';
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
