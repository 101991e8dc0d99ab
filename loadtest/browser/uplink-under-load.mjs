// The practitioner's uplink as Chromium estimates it, on a busy machine: how the SFU's receive
// timestamps (which go into the congestion feedback Chromium sizes its uplink from) hold up when
// the server's media loop cannot read every datagram at once.
//
// Per run (EXP_RUNS, default 3): a fresh consultation; then for EXP_SECONDS (default 20) the
// practitioner's page is sampled every 500 ms: the selected candidate pair's
// availableOutgoingBitrate, how many simulcast layers are being encoded, and Chromium's
// qualityLimitationReason. Prints one JSON line per run. Run with loadtest/browser/uplink.sh,
// which starts the server and keeps every core busy meanwhile.
import { launchBrowser, newContext, requireEnv, signIn } from '../../tests/e2e/lib/harness.mjs';
import { bookAppointment } from '../../tests/e2e/lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_EMAIL', 'DEMO_PASSWORD');
const RUNS = Number(process.env.EXP_RUNS || 3);
const SECONDS = Number(process.env.EXP_SECONDS || 20);

async function sample(page) {
  return page.evaluate(async () => {
    const pc = window.__consultroom.pc();
    if (!pc) return null;
    const stats = await pc.getStats();
    let avail = null; const layers = []; let lim = new Set();
    for (const s of stats.values()) {
      if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) avail = s.availableOutgoingBitrate;
      if (s.type === 'outbound-rtp' && s.kind === 'video') { layers.push({ rid: s.rid, w: s.frameWidth || 0, f: s.framesEncoded || 0 }); lim.add(s.qualityLimitationReason); }
    }
    return { t: Date.now(), avail, layers, lim: [...lim].join(',') };
  });
}

const browser = await launchBrowser();
const staffCtx = await newContext(browser, { baseURL: env.BASE_URL, viewport: { width: 1280, height: 800 } });
const staff = await staffCtx.newPage();
await signIn(staff, env.DEMO_EMAIL);
for (let i = 1; i <= RUNS; i++) {
  const ctx = await newContext(browser, { baseURL: env.BASE_URL, viewport: { width: 1280, height: 800 } });
  const patient = await ctx.newPage();
  const name = `Uplink Exp ${i} ${Date.now() % 100000}`;
  const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: name, inMinutes: 2 });
  await patient.goto(booked.invitationUrl);
  await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
  await patient.getByRole('button', { name: 'Enter waiting room' }).click();
  const entry = staff.locator('#waiting-list button.waiting-entry', { hasText: name });
  await entry.click();
  await staff.locator('#room-view:not([hidden])').waitFor();
  const t0 = Date.now();
  const samples = [];
  let prev = null;
  while (Date.now() - t0 < SECONDS * 1000) {
    const s = await sample(staff);
    if (s && prev) {
      const active = s.layers.filter((l) => { const p = prev.layers.find((q) => q.rid === l.rid); return p && l.f > p.f; }).length;
      samples.push({ t: s.t - t0, avail: s.avail, active, lim: s.lim });
    }
    prev = s;
    await new Promise((r) => setTimeout(r, 500));
  }
  const three = samples.find((s) => s.active >= 3);
  const bw = samples.filter((s) => s.lim.includes('bandwidth')).length;
  const avails = samples.map((s) => s.avail).filter(Boolean).sort((a, b) => a - b);
  const med = avails[Math.floor(avails.length / 2)];
  const minA = avails[0];
  console.log(JSON.stringify({ run: i, threeLayersAtMs: three ? three.t : null, bandwidthLimitedShare: (bw / samples.length).toFixed(2), availMedianKbps: Math.round(med / 1000), availMinKbps: Math.round(minA / 1000), samples: samples.length }));
  await staff.getByRole('button', { name: 'End consultation' }).click();
  await staff.getByRole('button', { name: 'Yes, end it' }).click();
  await ctx.close();
}
await browser.close();
