// @ts-check
// Read-only hooks for the browser tests and the join benchmark (tests/e2e, loadtest/browser):
// `window.__consultroom.pc()` is the current RTCPeerConnection (or null), so a test can call
// getStats(); `doorbells` counts doorbell sounds actually played (also on <body data-doorbell-count>).
// They expose no patient data.

/** @type {{ pc: RTCPeerConnection | null, doorbells: number }} */
const state = { pc: null, doorbells: 0 };

/** @type {any} */ (window).__consultroom = Object.freeze({
  pc: () => state.pc,
  get doorbells() {
    return state.doorbells;
  },
});

/** @param {RTCPeerConnection | null} pc */
export function setPeerConnection(pc) {
  state.pc = pc || null;
}

export function countDoorbell() {
  state.doorbells += 1;
  document.body.dataset.doorbellCount = String(state.doorbells);
}
