// Scheduling in the staff app (issue #12): the practitioner creates a client and an appointment
// on the Appointments page; the invitation arrives at the SMTP sink with the patient link and an
// inline calendar (METHOD:REQUEST). The practitioner reschedules it (the list shows the new time;
// an update arrives with the same link and calendar UID, SEQUENCE 1); the patient follows the
// link from the received mail, waits and is admitted. Then a second appointment, booked with
// "Schedule appointment" from the client list (F84), is cancelled from the list: a METHOD:CANCEL
// mail arrives and the link from its invitation is refused. Run through tests/e2e/run.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { launchBrowser, newContext, requireEnv, snap, seedOrganisation, signIn, endConsultation } from './lib/harness.mjs';
import { waitForMail, linkIn } from './lib/mailbox.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD', 'E2E_MAILDIR');
/** This run's own address (the sink is shared by every file of the run). */
const ADDRESS = `sietske-${randomUUID().slice(0, 8)}@example.nl`;

/** The calendar text's property `name` (unfolded). */
function icsValue(ics, name) {
  const m = ics.replace(/\r?\n[ \t]/g, '').match(new RegExp(`^${name}[;:](.*)$`, 'm'));
  return m ? m[1].replace(/^.*:/, '') : null;
}
/** This file's own organisation, shaped like the demo clinic (time zone Europe/Amsterdam). */
let org;
let browser;
before(async () => { org = await seedOrganisation('scheduling'); });
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const CLIENT = 'Sietske Schedule';

/** The patient link on the server under test (the configured public URL may differ). */
function onServer(link) {
  const u = new URL(link);
  return `${env.BASE_URL.replace(/\/$/, '')}${u.pathname}${u.hash}`;
}

/** `value` of a datetime-local input moved by `minutes` (wall-clock arithmetic). */
function plusMinutes(value, minutes) {
  return new Date(Date.parse(`${value}:00Z`) + minutes * 60_000).toISOString().slice(0, 16);
}

test('book, reschedule, join and admit, then cancel from the list', { timeout: 180_000 }, async () => {
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const patientCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const staff = await staffCtx.newPage();
  const patient = await patientCtx.newPage();
  try {
    await signIn(staff, org.email, { password: org.password });
    await staff.getByRole('button', { name: 'Appointments' }).click();
    await staff.locator('body[data-view="schedule-view"]').waitFor();
    await staff.getByText('Times in Europe/Amsterdam.').waitFor();

    // New appointment for a new client; an invalid e-mail is refused with the reason first.
    await staff.getByRole('button', { name: 'New appointment' }).click();
    const dialog = staff.getByRole('dialog', { name: 'New appointment' });
    await dialog.getByLabel('New client').check();
    await dialog.getByLabel('Name', { exact: true }).fill(CLIENT);
    await dialog.getByLabel('E-mail').fill('sietske@example');
    await dialog.getByLabel('Personal message (in the invitation)').fill('Please have your medication list ready.');
    const start = await dialog.getByLabel('Date and time').inputValue();
    assert.match(start, /^\d{4}-\d\d-\d\dT\d\d:\d\d$/);
    await dialog.getByRole('button', { name: 'Book appointment' }).click();
    await dialog.getByText('email is not a valid address').waitFor();
    await dialog.getByLabel('E-mail').fill(ADDRESS);
    await dialog.getByRole('button', { name: 'Book appointment' }).click();

    // The appointment's page: the link, and the message.
    await staff.locator('#appointment-view[data-loaded="true"]').waitFor();
    await staff.getByText(`${CLIENT} with ${org.practitionerName}`).waitFor();
    await staff.getByText('Message: Please have your medication list ready.').waitFor();
    await staff.locator('#appointment-mail', { hasText: `Invitation e-mailed to ${ADDRESS}` }).waitFor();
    const link = await staff.getByLabel('Patient link').inputValue();
    assert.match(new URL(link).hash, /^#[A-Za-z0-9_-]{43}$/, 'the link carries its token in the fragment');
    await staff.getByRole('button', { name: 'Copy link' }).click();
    await staff.locator('#appointment-status', { hasText: /copied|copy it/ }).waitFor();
    // The invitation arrived, with this link and the calendar request.
    const invitation = await waitForMail(env.E2E_MAILDIR, { to: ADDRESS });
    assert.equal(linkIn(invitation.text, '/join'), link, 'the mailed link is the page\'s');
    assert.match(invitation.text, /Please have your medication list ready\./);
    assert.equal(invitation.calendar?.method, 'REQUEST');
    assert.equal(icsValue(invitation.calendar.content, 'SEQUENCE'), '0');
    const uid = icsValue(invitation.calendar.content, 'UID');
    assert.ok(uid, 'the calendar has a UID');
    assert.deepEqual(invitation.to, [ADDRESS], 'one recipient per message');

    // Reschedule ten minutes later; the list shows the new time.
    const later = plusMinutes(start, 10);
    await staff.getByLabel('New date and time').fill(later);
    await staff.getByRole('button', { name: 'Reschedule', exact: true }).click();
    await staff.getByText(/^Rescheduled to /).waitFor();
    await staff.getByRole('button', { name: 'Back to the appointments' }).click();
    const row = staff.locator('#schedule-list li', { hasText: CLIENT });
    await row.locator('.schedule-time', { hasText: later.slice(11, 16) }).waitFor();
    assert.equal(await row.locator('.schedule-time', { hasText: start.slice(11, 16) }).count(), 0, 'the old time is gone');
    // The link did not change with the time.
    await row.getByRole('button', { name: `Open the appointment of ${CLIENT}` }).click();
    await staff.locator('#appointment-view[data-loaded="true"]').waitFor();
    assert.equal(await staff.getByLabel('Patient link').inputValue(), link);
    // The update: the same calendar event, a higher SEQUENCE, the new time in the text.
    const update = await waitForMail(env.E2E_MAILDIR, { to: ADDRESS, skip: [invitation.file] });
    assert.equal(update.calendar?.method, 'REQUEST');
    assert.equal(icsValue(update.calendar.content, 'UID'), uid);
    assert.equal(icsValue(update.calendar.content, 'SEQUENCE'), '1');
    assert.match(update.text, new RegExp(later.slice(11, 16)));
    const mailedLink = linkIn(update.text, '/join');
    assert.equal(mailedLink, link);

    // The patient follows the link into the waiting room and is admitted.
    await staff.getByRole('button', { name: 'Back to the appointments' }).click();
    await staff.getByRole('button', { name: 'Back to the waiting room' }).click();
    await staff.locator('body[data-view="dashboard-view"]').waitFor();
    await patient.goto(onServer(mailedLink)); // followed from the received mail
    await patient.getByRole('button', { name: 'Start camera and microphone' }).click();
    await patient.locator('body[data-device-check="ok"]').waitFor();
    await patient.getByRole('button', { name: 'Enter waiting room' }).click();
    const entry = staff.locator('#waiting-list button.waiting-entry', { hasText: CLIENT });
    await entry.waitFor({ timeout: 20_000 });
    await entry.click();
    await staff.locator('#room-view:not([hidden])').waitFor();
    await patient.locator('#room-view:not([hidden])').waitFor();
    await endConsultation(staff);
    await staff.locator('#dashboard-view:not([hidden])').waitFor();

    // F84: "Schedule appointment" from the client list, then cancel it from the list.
    await staff.getByRole('button', { name: 'Clients' }).click();
    const clients = staff.getByRole('dialog', { name: 'Clients' });
    await clients.getByLabel('Find a client by name').fill(CLIENT);
    // The register: the client number typed in the edit form shows in the list.
    await clients.getByRole('button', { name: `Edit… ${CLIENT}` }).click();
    const edit = staff.getByRole('dialog', { name: 'Client', exact: true });
    await edit.getByLabel('Client number').fill('EPD-4711');
    await edit.getByLabel('Phone').fill('call me');
    await edit.getByRole('button', { name: 'Save client' }).click();
    await edit.getByText('phone is not a valid number').waitFor();
    await edit.getByLabel('Phone').fill('+31 6 1234 5678');
    await edit.getByRole('button', { name: 'Save client' }).click();
    await clients.locator('.client-item', { hasText: CLIENT }).locator('.client-number', { hasText: 'no. EPD-4711' }).waitFor();
    await clients.getByRole('button', { name: `Schedule appointment for ${CLIENT}` }).click();
    await dialog.waitFor();
    assert.equal(await dialog.getByLabel('Client', { exact: true }).inputValue() !== '', true, 'the client is chosen');
    await dialog.getByRole('button', { name: 'Book appointment' }).click();
    await staff.locator('#appointment-view[data-loaded="true"]').waitFor();
    const second = await staff.getByLabel('Patient link').inputValue();
    assert.notEqual(second, link);
    const secondInvitation = await waitForMail(env.E2E_MAILDIR, { to: ADDRESS, skip: [invitation.file, update.file] });
    assert.equal(linkIn(secondInvitation.text, '/join'), second);
    await staff.getByRole('button', { name: 'Back to the appointments' }).click();
    const scheduled = staff.locator('#schedule-list li[data-status="scheduled"]', { hasText: CLIENT });
    await scheduled.first().waitFor();
    assert.equal(await scheduled.count(), 1, 'the first one was completed, the second is scheduled');
    await scheduled.getByRole('button', { name: `Cancel the appointment of ${CLIENT}` }).click();
    await staff.getByRole('button', { name: 'Yes, cancel it' }).click();
    await staff.getByText('Cancelled. The patient link no longer works.').waitFor();
    const cancellation = await waitForMail(env.E2E_MAILDIR, {
      to: ADDRESS, skip: [invitation.file, update.file, secondInvitation.file],
    });
    assert.equal(cancellation.calendar?.method, 'CANCEL');
    assert.equal(icsValue(cancellation.calendar.content, 'UID'), icsValue(secondInvitation.calendar.content, 'UID'));
    assert.equal(icsValue(cancellation.calendar.content, 'STATUS'), 'CANCELLED');

    // A fresh page: on the old one only the fragment would change (no new document).
    const refused = await patientCtx.newPage();
    await refused.goto(onServer(linkIn(secondInvitation.text, '/join')));
    await refused.getByText('This appointment was cancelled').waitFor();
  } catch (e) {
    await snap(staff, 'fail-scheduling-staff');
    await snap(patient, 'fail-scheduling-patient');
    throw e;
  } finally {
    await staffCtx.close();
    await patientCtx.close();
  }
});
