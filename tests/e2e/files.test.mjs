// File sharing in the consultation room (issue #5): the patient sends a file with progress, the
// practitioner sees name, size and type and downloads it; then the reverse; a disguised file is
// refused with a readable message; the list is cleared when the consultation ends.
// Run through tests/e2e/run.sh (BASE_URL, DEMO_PASSWORD; the file seeds its own organisation).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { launchBrowser, newContext, captureConsole, requireEnv, snap, seedOrganisation, endConsultation } from './lib/harness.mjs';
import { bookAppointment } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
/** This file's own organisation, shaped like the demo clinic (no state shared with other files). */
let org;
before(async () => { org = await seedOrganisation('files'); });
let browser;

before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

async function step(name, pages, fn) {
  try {
    return await fn();
  } catch (e) {
    for (const [label, page] of Object.entries(pages)) await snap(page, `fail-files-${name.replace(/\W+/g, '-')}-${label}`);
    e.message = `[${name}] ${e.message}`;
    throw e;
  }
}

const PDF = Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n' + 'x'.repeat(300_000));
const NOTES = Buffer.from('Bring the vaccination booklet.\nFasting from 22:00.\n');

test('the patient sends a file, the practitioner downloads it, and the reverse', { timeout: 150_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const patientCtx = await newContext(browser, { baseURL: env.BASE_URL, viewport: { width: 390, height: 844 } });
  const staff = await staffCtx.newPage();
  const patient = await patientCtx.newPage();
  const pages = { staff, patient };
  const consoles = [...[staff, patient].map(captureConsole)];

  try {
    let invitationUrl = org.invitationUrl;
    await step('login and book', pages, async () => {
      await staff.goto('/');
      await staff.getByLabel('Email address').fill(org.email);
      await staff.getByLabel('Password').fill(org.password);
      await staff.getByRole('button', { name: 'Sign in' }).click();
      await staff.getByRole('heading', { name: "Today's appointments" }).waitFor();
      await staff.locator('body[data-signalling="joined"]').waitFor();
      const booked = await bookAppointment(staff, { baseUrl: env.BASE_URL, clientName: 'Bas Bestand', inMinutes: 2 });
      if (!booked.error) invitationUrl = booked.invitationUrl;
    });

    await step('patient waits and is admitted', pages, async () => {
      await patient.goto(invitationUrl);
      await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
      await patient.getByRole('button', { name: 'Enter waiting room' }).click();
      await patient.getByText('your practitioner will let you in').waitFor();
      await staff.locator('#waiting-list button.waiting-entry', { hasText: 'Bas Bestand' }).click();
      await staff.locator('#room-view:not([hidden])').waitFor();
      await patient.locator('#room-view:not([hidden])').waitFor();
    });

    await step('patient sends a file', pages, async () => {
      const send = patient.getByRole('button', { name: 'Send file…' });
      await send.waitFor();
      // The chat (open) never covers the files panel (issue #14), at a phone's size too.
      for (const size of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
        await patient.setViewportSize(size);
        const chat = patient.locator('#patient-chat:not([hidden])');
        await chat.waitFor();
        {
          await chat.locator('summary').click();
          const a = await chat.boundingBox();
          const b = await patient.locator('.files-panel').first().boundingBox();
          assert.ok(a && b, 'chat and files panel are laid out');
          const overlap = a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
          assert.equal(overlap, false, `chat ${JSON.stringify(a)} covers files ${JSON.stringify(b)} at ${size.width}×${size.height}`);
          await chat.locator('summary').click();
        }
      }
      await patient.setViewportSize({ width: 1280, height: 800 });
      await patient.locator('input[data-files-input]').setInputFiles({ name: '../uitslag bloed.pdf', mimeType: 'application/pdf', buffer: PDF });
      const item = staff.locator('.files-item', { hasText: 'uitslag bloed.pdf' });
      await item.waitFor({ timeout: 15_000 });
      assert.match(await item.innerText(), /PDF, 293 KB, from /);
      await patient.locator('.files-item', { hasText: 'uitslag bloed.pdf' }).waitFor();
      assert.match(await patient.locator('.files-item').first().innerText(), /from you/);
    });

    await step('practitioner downloads it', pages, async () => {
      const [download] = await Promise.all([
        staff.waitForEvent('download'),
        staff.getByRole('button', { name: 'Download uitslag bloed.pdf' }).click(),
      ]);
      assert.equal(download.suggestedFilename(), 'uitslag bloed.pdf');
      const bytes = await readFile(await download.path());
      assert.ok(bytes.equals(PDF), 'the same bytes arrive');
    });

    await step('the reverse: practitioner sends, patient downloads', pages, async () => {
      await staff.locator('input[data-files-input]').setInputFiles({ name: 'instructions.txt', mimeType: 'text/plain', buffer: NOTES });
      await patient.locator('.files-item', { hasText: 'instructions.txt' }).waitFor({ timeout: 15_000 });
      const [download] = await Promise.all([
        patient.waitForEvent('download'),
        patient.getByRole('button', { name: 'Download instructions.txt' }).click(),
      ]);
      assert.equal(download.suggestedFilename(), 'instructions.txt');
      assert.ok((await readFile(await download.path())).equals(NOTES));
      await snap(staff, 'files-staff-room');
      await snap(patient, 'files-patient-room');
    });

    await step('a disguised file is refused', pages, async () => {
      await patient.locator('input[data-files-input]').setInputFiles({
        name: 'photo.png', mimeType: 'image/png', buffer: Buffer.from('<html><script>alert(1)</script></html>'),
      });
      await patient.getByText('its content is not an allowed type').waitFor();
      assert.equal(await staff.locator('.files-item').count(), 2);
    });

    await step('end clears the list', pages, async () => {
      await endConsultation(staff);
      await staff.locator('#dashboard-view:not([hidden])').waitFor();
      assert.equal(await staff.locator('.files-item').count(), 0);
    });

    const problems = consoles.flat().filter((l) => /^pageerror|Refused to|Content Security Policy/.test(l));
    assert.deepEqual(problems, [], 'no uncaught errors or CSP violations');
  } finally {
    await staffCtx.close();
    await patientCtx.close();
  }
});
