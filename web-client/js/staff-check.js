// @ts-check
// "Always show the settings first" (F36): a practitioner who chooses it checks camera and
// microphone (self-preview, level meter) and the connection (F33: a probe through our SFU and,
// when configured, TURN; js/netcheck.js) after signing in, before the waiting list is shown;
// "Check devices" in the top bar opens the same check at any time outside a consultation.
// The choice is remembered per staff member on this device (localStorage; it holds no patient
// data): the camera and network being checked are this device's. Self-contained: it follows
// the staff app's views through nav.js (`followViews`) and shows its page as `staff-check-view`.

import { api } from './api.js';
import { $, announce } from './dom.js';
import { navigate, registerView, followViews, currentView } from './nav.js';
import { openCameraAndMic, stopStream, startLevelMeter, deviceErrorHelp, fetchIceServers } from './media.js';
import { renderVerdict, runNetworkCheck, verdictOf } from './netcheck.js';
import { t } from './i18n.js';

const el = {
  view: $('staff-check-view'),
  video: $('staff-check-video', HTMLVideoElement),
  level: $('staff-check-level', HTMLMeterElement),
  help: $('staff-check-help'),
  cont: $('staff-check-continue', HTMLButtonElement),
  pref: $('check-first-pref', HTMLInputElement),
  status: $('status'),
  open: $('check-devices-btn', HTMLButtonElement),
  netRun: $('staff-net-run', HTMLButtonElement),
  netStep: $('staff-net-step'),
  netEcho: $('staff-net-echo', HTMLVideoElement),
  netResult: $('staff-net-result'),
  netTitle: $('staff-net-title'),
  netDetails: $('staff-net-details'),
  netAdvice: $('staff-net-advice'),
};

/**
 * @type {{ me: import('./directory.js').StaffMe | null, checkedThisSession: boolean, stream: MediaStream | null,
 *   stopMeter: (() => void) | null, audio: AudioContext | null, netAbort: AbortController | null,
 *   net: Promise<import('./netcheck.js').NetworkCheck> | null }}
 */
const state = { me: null, checkedThisSession: false, stream: null, stopMeter: null, audio: null, netAbort: null, net: null };

/** @param {string} id */
const key = (id) => `consultroom.checkFirst.${id}`;

function wanted() {
  try {
    return !!state.me && localStorage.getItem(key(state.me.id)) === '1';
  } catch {
    return false;
  }
}

/** @param {string} view the view app.js (or another module) just showed */
async function onViewChange(view) {
  // "Check devices" only where it cannot disturb a consultation.
  el.open.hidden = view !== 'dashboard-view';
  if (view === 'login-view') {
    state.me = null;
    state.checkedThisSession = false;
    el.pref.checked = false;
    return;
  }
  if (view !== 'dashboard-view') return;
  if (!state.me) {
    try {
      state.me = await api('/api/v1/me');
    } catch {
      return;
    }
    el.pref.checked = wanted();
  }
  if (wanted() && !state.checkedThisSession) show();
}

registerView('staff-check-view');
followViews(onViewChange);

el.pref.addEventListener('change', () => {
  if (!state.me) return;
  try {
    if (el.pref.checked) localStorage.setItem(key(state.me.id), '1');
    else localStorage.removeItem(key(state.me.id));
  } catch { /* storage unavailable: the choice lasts for this page only */ }
  announce(el.status, el.pref.checked
    ? t('staff.check.pref_on')
    : t('staff.check.pref_off'));
});

async function show() {
  if (!el.view.hidden) return;
  state.checkedThisSession = true;
  navigate('staff-check-view');
  el.help.hidden = true;
  try {
    state.stream = await openCameraAndMic();
    el.video.srcObject = state.stream;
    el.video.play().catch(() => {});
    try {
      state.audio = new AudioContext();
      state.stopMeter = startLevelMeter(state.stream, state.audio, (v) => { el.level.value = v; });
    } catch { /* no meter without WebAudio */ }
  } catch (err) {
    el.help.textContent = deviceErrorHelp(err);
    el.help.hidden = false;
  }
  runNetCheck();
}

/** The connection check (a drawn picture is sent when the camera is not available). */
async function runNetCheck() {
  if (state.net) {
    // One still stopping (the page was left meanwhile): let it end, then start afresh.
    state.netAbort?.abort();
    await state.net.catch(() => {});
    if (state.net) return;
  }
  el.netRun.disabled = true;
  el.netResult.hidden = true;
  document.body.dataset.staffNetCheck = 'running';
  state.netAbort = new AbortController();
  state.net = runNetworkCheck({
    signal: state.netAbort.signal,
    getToken: async () => (await api('/api/v1/signalling/token', { method: 'POST' })).token,
    getIceServers: () => fetchIceServers(api),
    stream: state.stream,
    echoVideo: el.netEcho,
    onStep: (text) => { el.netStep.textContent = text; },
  });
  let checked;
  try {
    checked = await state.net;
  } finally {
    state.net = null;
    state.netAbort = null;
    el.netRun.disabled = false;
  }
  el.netStep.textContent = '';
  if (checked.aborted) {
    document.body.dataset.staffNetCheck = 'stopped';
    return;
  }
  const v = verdictOf(checked);
  renderVerdict(v, { result: el.netResult, title: el.netTitle, details: el.netDetails, advice: el.netAdvice });
  document.body.dataset.staffNetCheck = v.level;
  announce(el.status, v.title);
}

el.netRun.addEventListener('click', () => runNetCheck());
el.open.addEventListener('click', () => {
  if (currentView() === 'dashboard-view') show();
});

el.cont.addEventListener('click', () => {
  state.netAbort?.abort();
  if (state.stopMeter) state.stopMeter();
  state.stopMeter = null;
  if (state.audio) state.audio.close().catch(() => {});
  state.audio = null;
  stopStream(state.stream);
  state.stream = null;
  el.video.srcObject = null;
  navigate('dashboard-view', { focus: false });
});
