// Add a guest (issue #4, F16–F17, F74, F116): the practitioner adds a participant (colleague,
// family, interpreter) to the running consultation by link; the guest lands in it and the three
// see each other. A guest who opens the link before the client is in the consultation waits
// ("as soon as the client is in it", never in the practitioner's waiting list) and comes in when
// the client is admitted. External participants (F16–F17): an admin makes a group, the
// practitioner adds a person to it and invites the whole group from the appointment list; a
// revoked link puts the guest out of the running consultation at once. Run through
// tests/e2e/run.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, requireEnv, assertMediaFlowing, snap, waitFor, signIn, seedOrganisation, endConsultation } from './lib/harness.mjs';
import { bookAppointment, apiCall } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('guests'); });
let browser;

before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** Runs one named step; on failure saves screenshots of the given pages first. */
async function step(name, pages, fn) {
  try {
    return await fn();
  } catch (e) {
    for (const [label, page] of Object.entries(pages)) await snap(page, `fail-guests-${name.replace(/\W+/g, '-')}-${label}`);
    e.message = `[${name}] ${e.message}`;
    throw e;
  }
}

/** Opens a /join link (patient or guest), passes the device check and goes in. */
async function openLink(page, url) {
  await page.goto(url);
  await page.getByRole('button', { name: 'Start camera and microphone' }).click();
  await page.locator('body[data-device-check="ok"]').waitFor();
  await page.getByRole('button', { name: 'Enter waiting room' }).click();
}

/** A link built on the configured public URL, opened on the server under test. */
function onServer(link) {
  const u = new URL(link);
  return `${env.BASE_URL.replace(/\/$/, '')}${u.pathname}${u.hash}`;
}

function entry(staff, name) {
  return staff.locator('#waiting-list li', { hasText: name }).locator('button.waiting-entry');
}

/**
 * Resolves when `page`'s tile row shows a playing camera. Who is in the tile is not fixed: the
 * stage follows the active speaker (RFC 6464 levels; Chromium's fake microphones beep in turn),
 * so a tile looked up by name can move to the stage between two calls. One in-page look at a time.
 */
async function tilePlaying(page) {
  await waitFor(() => page.evaluate(() => [...document.querySelectorAll('#tiles li.tile video')]
    .some((v) => v.videoWidth > 0 && !v.paused)), { timeoutMs: 20_000, what: 'a playing tile' });
}

/** The names of the other participants shown on `page` (stage and tiles). */
async function shownNames(page) {
  return page.evaluate(() => [
    document.getElementById('remote-name')?.textContent || '',
    ...[...document.querySelectorAll('#tiles li.tile .tile-name')].map((p) => p.textContent),
  ].filter(Boolean));
}

/** framesDecoded of every inbound video stream of `page`'s peer connection. */
function inboundVideo(page) {
  return page.evaluate(async () => {
    const pc = window.__consultroom && window.__consultroom.pc();
    if (!pc) return [];
    const out = [];
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') out.push(s.framesDecoded || 0);
    });
    return out;
  });
}

test('add a guest: the practitioner invites a participant during the consultation; three see each other', { timeout: 180_000 }, async () => {
  const ctxs = await Promise.all([0, 1, 2].map(() => newContext(browser, { baseURL: env.BASE_URL })));
  const [staff, patient, guest] = await Promise.all(ctxs.map((c) => c.newPage()));
  const pages = { staff, patient, guest };
  const CLIENT = 'Gerda Gastvrij-Client';
  const GUEST = 'Ivo Interpreter';
  try {
    let booked;
    await step('book and admit', pages, async () => {
      await signIn(staff, org.email);
      booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: CLIENT });
      assert.ok(!booked.error, booked.error);
      await openLink(patient, booked.invitationUrl);
      await entry(staff, CLIENT).click();
      await staff.locator('#room-view:not([hidden])').waitFor();
      await patient.locator('#room-view:not([hidden])').waitFor({ timeout: 15_000 });
    });

    let link;
    await step('add participant', pages, async () => {
      await staff.getByRole('button', { name: 'Add participant…' }).click();
      const dialog = staff.getByRole('dialog', { name: 'Add participant' });
      await dialog.waitFor();
      // An empty name is refused in the dialog; nothing is created.
      await dialog.getByRole('button', { name: 'Create link' }).click();
      await dialog.getByText('Enter the name of the participant').waitFor();
      await dialog.getByLabel('Name of the participant').fill(GUEST);
      await dialog.getByRole('button', { name: 'Create link' }).click();
      await dialog.locator('#guest-link:not([hidden])').waitFor();
      link = await dialog.locator('#guest-url').inputValue();
      assert.match(new URL(link).hash, /^#g\.[A-Za-z0-9_-]{43}$/, 'the guest token travels in the fragment');
      await dialog.locator('#guest-list li', { hasText: GUEST }).waitFor();
      const listed = await apiCall(staff, 'GET', `/api/v1/appointments/${booked.appointment.id}/guests`);
      assert.deepEqual(listed.body.guests.map((g) => g.name), [GUEST]);
      await dialog.getByRole('button', { name: 'Close' }).click();
    });

    await step('guest lands in the consultation', pages, async () => {
      await openLink(guest, onServer(link));
      await guest.locator('#room-view:not([hidden])').waitFor({ timeout: 15_000 });
      // Nobody waited: the guest is never in the practitioner's waiting list.
      assert.equal(await staff.locator('#waiting-list li', { hasText: GUEST }).count(), 0);
    });

    await step('three see each other', pages, async () => {
      // Each page shows the two others: one on the stage, one as a tile.
      for (const [page, others] of [[staff, [CLIENT, GUEST]], [patient, [GUEST]], [guest, [CLIENT]]]) {
        await waitFor(async () => (await page.locator('#tiles li.tile').count()) === 1,
          { timeoutMs: 20_000, what: 'one tile besides the stage' });
        const names = await shownNames(page);
        for (const n of others) assert.ok(names.some((s) => s.includes(n)), `${n} shown (${names.join(', ')})`);
      }
      await tilePlaying(staff);
      await assertMediaFlowing(guest, assert, 'guest');
      // The practitioner decodes both remote cameras (the client's and the guest's).
      const first = await waitFor(async () => {
        const v = await inboundVideo(staff);
        return v.filter((f) => f > 0).length >= 2 ? v : null;
      }, { timeoutMs: 20_000, what: 'practitioner: frames from two remote cameras' });
      const sum = (v) => v.reduce((a, b) => a + b, 0);
      await waitFor(async () => sum(await inboundVideo(staff)) > sum(first),
        { timeoutMs: 10_000, what: `practitioner: framesDecoded grows from ${first}` });
    });

    await step('end for everyone', pages, async () => {
      await endConsultation(staff);
      await staff.locator('#dashboard-view:not([hidden])').waitFor();
      await guest.locator('#room-view').waitFor({ state: 'hidden', timeout: 15_000 });
      await patient.locator('#room-view').waitFor({ state: 'hidden', timeout: 15_000 });
    });
  } finally {
    await Promise.all(ctxs.map((c) => c.close()));
  }
});

test('external participants: a group made by the admin, a person added by the practitioner, the group invited from the appointment list; the guest waits, enters with the client, and a revoked link puts them out', { timeout: 240_000 }, async () => {
  const ctxs = await Promise.all([0, 1, 2, 3].map(() => newContext(browser, { baseURL: env.BASE_URL })));
  const [staff, patient, guest, admin] = await Promise.all(ctxs.map((c) => c.newPage()));
  const pages = { staff, patient, guest, admin };
  const CLIENT = 'Karel Klantvroeg';
  const GUEST = 'Fenna Familie';
  const GROUP = `Familie ${Math.random().toString(36).slice(2, 7)}`;
  try {
    await step('the admin makes a group', pages, async () => {
      await admin.goto('/');
      await admin.getByLabel('Email address').fill(org.adminEmail);
      await admin.getByLabel('Password').fill(org.password);
      await admin.getByRole('button', { name: 'Sign in' }).click();
      await admin.getByRole('button', { name: 'People' }).click();
      const dialog = admin.getByRole('dialog', { name: 'People' });
      await dialog.getByLabel('New group').fill(GROUP);
      await dialog.getByRole('button', { name: 'Add group' }).click();
      await dialog.locator('#people-group-list li', { hasText: GROUP }).waitFor();
      // The same name in another case is refused, with a message.
      await dialog.getByLabel('New group').fill(GROUP.toUpperCase());
      await dialog.getByRole('button', { name: 'Add group' }).click();
      await dialog.locator('#people-error:not([hidden])').waitFor();
      assert.equal(await dialog.locator('#people-group-list li', { hasText: GROUP }).count(), 1);
    });

    let booked;
    let link;
    await step('the practitioner adds a person and invites the group from the appointment list', pages, async () => {
      await signIn(staff, org.email);
      booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: CLIENT });
      assert.ok(!booked.error, booked.error);
      await staff.getByRole('button', { name: 'People' }).click();
      const people = staff.getByRole('dialog', { name: 'People' });
      // A practitioner does not manage groups.
      assert.equal(await people.locator('.people-admin').isVisible(), false);
      // A bad e-mail is refused; nothing is added.
      await people.getByLabel('Name').fill(GUEST);
      await people.getByLabel('E-mail (optional)').fill('not-an-email');
      await people.getByLabel(GROUP).check();
      await people.getByRole('button', { name: 'Add person' }).click();
      await people.locator('#people-error:not([hidden])').waitFor();
      assert.equal(await people.locator('#people-list li', { hasText: GUEST }).count(), 0);
      await people.getByLabel('E-mail (optional)').fill('fenna@example.nl');
      await people.getByRole('button', { name: 'Add person' }).click();
      await people.locator('#people-list li', { hasText: GUEST }).waitFor();
      await people.getByRole('button', { name: 'Close' }).click();

      await staff.getByRole('button', { name: 'Refresh' }).click();
      await staff.locator(`#appointments-list li[data-appointment-id="${booked.appointment.id}"]`)
        .getByRole('button', { name: /^Guests…/ }).click();
      const dialog = staff.getByRole('dialog', { name: 'Add participant' });
      await dialog.getByLabel('Who').selectOption({ label: `Everyone in ${GROUP} (1)` });
      assert.equal(await dialog.getByLabel('Name of the participant').isVisible(), false, 'no name needed for a group');
      await dialog.getByRole('button', { name: 'Create link' }).click();
      await dialog.locator('#guest-link:not([hidden])').waitFor();
      assert.equal(await dialog.locator('#guest-link-name').textContent(), GUEST);
      link = onServer(await dialog.locator('#guest-url').inputValue());
      await dialog.locator('#guest-list li', { hasText: GUEST }).waitFor();
      // Inviting the group again: everyone already has a link.
      await dialog.getByLabel('Who').selectOption({ label: `Everyone in ${GROUP} (1)` });
      await dialog.getByRole('button', { name: 'Create link' }).click();
      await dialog.locator('#guest-error:not([hidden])').waitFor();
      await dialog.getByRole('button', { name: 'Close' }).click();
    });

    await step('guest waits for the client', pages, async () => {
      await openLink(guest, link);
      await guest.locator('body[data-waiting-reason="waiting_for_client"]').waitFor({ timeout: 15_000 });
      await guest.getByText('as soon as the client is in it').waitFor();
      assert.equal(await guest.locator('#room-view').isVisible(), false);
    });

    await step('client admitted: the guest follows', pages, async () => {
      await openLink(patient, booked.invitationUrl);
      await entry(staff, CLIENT).waitFor();
      // Not in the practitioner's waiting list: the hub sends the staff page its frames in order,
      // so an entry for the guest (who joined first) would be listed before the client's.
      assert.equal(await staff.locator('#waiting-list li', { hasText: GUEST }).count(), 0);
      await entry(staff, CLIENT).click();
      await staff.locator('#room-view:not([hidden])').waitFor();
      await patient.locator('#room-view:not([hidden])').waitFor({ timeout: 15_000 });
      await guest.locator('#room-view:not([hidden])').waitFor({ timeout: 15_000 });
      await waitFor(async () => (await staff.locator('#tiles li.tile').count()) === 1,
        { timeoutMs: 20_000, what: 'a tile for the second remote participant' });
      await assertMediaFlowing(guest, assert, 'guest');
    });

    await step('revoked: the guest is put out at once', pages, async () => {
      await staff.getByRole('button', { name: 'Add participant…' }).click();
      const dialog = staff.getByRole('dialog', { name: 'Add participant' });
      await dialog.getByRole('button', { name: `Revoke link of ${GUEST}` }).click();
      await dialog.getByText('Nobody yet.').waitFor();
      await dialog.getByRole('button', { name: 'Close' }).click();
      await guest.getByText('Your invitation was withdrawn').waitFor({ timeout: 10_000 });
      await guest.locator('#room-view').waitFor({ state: 'hidden' });
      await waitFor(async () => (await staff.locator('#tiles li.tile').count()) === 0,
        { timeoutMs: 10_000, what: 'the guest tile gone' });
      // The client stays, with media.
      await assertMediaFlowing(staff, assert, 'practitioner after the revoke');
    });

    await step('end', pages, async () => {
      await endConsultation(staff);
      await staff.locator('#dashboard-view:not([hidden])').waitFor();
      await patient.locator('#room-view').waitFor({ state: 'hidden', timeout: 15_000 });
    });
  } finally {
    await Promise.all(ctxs.map((c) => c.close()));
  }
});
