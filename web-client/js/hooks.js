// Read-only hooks for the browser tests and the join benchmark (tests/e2e, loadtest/browser):
// `window.__consultroom.pc()` is the current RTCPeerConnection (or null), so a test can call
// getStats(); `doorbells` counts doorbell sounds actually played (also on <body data-doorbell-count>).
// They expose no patient data.

const state = { pc: null, doorbells: 0 };

window.__consultroom = Object.freeze({
  pc: () => state.pc,
  get doorbells() {
    return state.doorbells;
  },
});

export function setPeerConnection(pc) {
  state.pc = pc || null;
}

export function countDoorbell() {
  state.doorbells += 1;
  document.body.dataset.doorbellCount = String(state.doorbells);
}
