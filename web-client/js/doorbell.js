// @ts-check
// The waiting-room doorbell, synthesised with WebAudio (no audio file): a two-tone "ding-dong".
// Browsers only start an AudioContext after a user gesture, so `unlockAudio()` is called from the
// login click (and any later click or key press); until then the bell cannot sound and the UI
// offers an "Enable doorbell sound" button.

import { countDoorbell } from './hooks.js';

/** @type {AudioContext | null} */
let ctx = null;

/** Creates/resumes the shared AudioContext. Call it from a user gesture handler. */
export function unlockAudio() {
  try {
    if (!ctx) ctx = new (window.AudioContext || /** @type {any} */ (window).webkitAudioContext)();
    if (ctx.state === 'suspended') ctx.resume().catch(() => {});
  } catch {
    ctx = null;
  }
  return ctx;
}

/** The shared AudioContext (null before the first unlock). */
export function audioContext() {
  return ctx;
}

export function audioUnlocked() {
  return !!ctx && ctx.state === 'running';
}

/**
 * @param {number} freq Hz
 * @param {number} start seconds on the context's clock
 * @param {number} duration seconds
 * @param {number} peak gain
 */
function tone(freq, start, duration, peak) {
  const osc = ctx.createOscillator();
  const overtone = ctx.createOscillator();
  const gain = ctx.createGain();
  const overGain = ctx.createGain();
  osc.type = 'sine';
  osc.frequency.value = freq;
  overtone.type = 'sine';
  overtone.frequency.value = freq * 2.76; // a bell-like inharmonic partial
  overGain.gain.value = 0.18;
  gain.gain.setValueAtTime(0.0001, start);
  gain.gain.exponentialRampToValueAtTime(peak, start + 0.012);
  gain.gain.exponentialRampToValueAtTime(0.0001, start + duration);
  osc.connect(gain);
  overtone.connect(overGain).connect(gain);
  gain.connect(ctx.destination);
  osc.start(start);
  overtone.start(start);
  osc.stop(start + duration + 0.05);
  overtone.stop(start + duration + 0.05);
}

/** Plays "ding-dong". Resolves true when it was played, false when audio is still locked. */
export async function playDoorbell() {
  if (!ctx) return false;
  if (ctx.state !== 'running') {
    // resume() may stay pending without a user gesture; do not wait for it forever.
    await Promise.race([ctx.resume().catch(() => {}), new Promise((r) => setTimeout(r, 250))]);
  }
  if (ctx.state !== 'running') return false;
  const t0 = ctx.currentTime + 0.03;
  tone(659.25, t0, 0.9, 0.3); // E5
  tone(523.25, t0 + 0.42, 1.4, 0.3); // C5
  countDoorbell();
  return true;
}
