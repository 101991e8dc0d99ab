// "Always show the settings first" (F36): a practitioner who chooses it checks camera and
// microphone (self-preview, level meter) after signing in, before the waiting list is shown.
// The choice is remembered per staff member on this device (localStorage; it holds no patient
// data). Self-contained: it follows app.js through `<body data-view>`.

import { api } from './api.js';
import { $, announce } from './dom.js';
import { openCameraAndMic, stopStream, startLevelMeter, deviceErrorHelp } from './media.js';

const el = {
  view: $('staff-check-view'),
  video: $('staff-check-video'),
  level: $('staff-check-level'),
  help: $('staff-check-help'),
  cont: $('staff-check-continue'),
  pref: $('check-first-pref'),
  status: $('status'),
};

const state = { me: null, checkedThisSession: false, stream: null, stopMeter: null, audio: null };

const key = (id) => `consultroom.checkFirst.${id}`;

function wanted() {
  try {
    return !!state.me && localStorage.getItem(key(state.me.id)) === '1';
  } catch {
    return false;
  }
}

async function onViewChange() {
  const view = document.body.dataset.view;
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

new MutationObserver(onViewChange).observe(document.body, { attributes: true, attributeFilter: ['data-view'] });

el.pref.addEventListener('change', () => {
  if (!state.me) return;
  try {
    if (el.pref.checked) localStorage.setItem(key(state.me.id), '1');
    else localStorage.removeItem(key(state.me.id));
  } catch { /* storage unavailable: the choice lasts for this page only */ }
  announce(el.status, el.pref.checked
    ? 'From now on you check your camera and microphone after signing in.'
    : 'The camera check after signing in is off.');
});

async function show() {
  state.checkedThisSession = true;
  const dash = document.getElementById('dashboard-view');
  if (dash) dash.hidden = true;
  el.view.hidden = false;
  document.body.dataset.view = 'staff-check-view';
  el.view.querySelector('h1').focus();
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
}

el.cont.addEventListener('click', () => {
  if (state.stopMeter) state.stopMeter();
  state.stopMeter = null;
  if (state.audio) state.audio.close().catch(() => {});
  state.audio = null;
  stopStream(state.stream);
  state.stream = null;
  el.video.srcObject = null;
  el.view.hidden = true;
  const dash = document.getElementById('dashboard-view');
  if (dash) dash.hidden = false;
  document.body.dataset.view = 'dashboard-view';
});
