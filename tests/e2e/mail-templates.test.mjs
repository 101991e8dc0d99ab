// "E-mail templates" (issue #12, F169–F172): an organisation admin creates a template set, edits
// the Dutch appointment invitation, sees the live preview with sample data (the HTML in a
// sandboxed frame, a client name that looks like markup stays text), gets an unknown placeholder
// refused with its name, saves, and assigns the set to the department; a practitioner has no
// such page. Run through tests/e2e/run.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, requireEnv, snap, signIn, seedOrganisation } from './lib/harness.mjs';
import { apiCall } from './lib/clinic-api.mjs';

const env = requireEnv('BASE_URL', 'DEMO_PASSWORD');
let org;
let browser;
before(async () => { org = await seedOrganisation('tmpl'); });
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('an admin edits a template with a live preview and assigns the set', { timeout: 90_000 }, async () => {
  const adminCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const staffCtx = await newContext(browser, { baseURL: env.BASE_URL });
  const admin = await adminCtx.newPage();
  const staff = await staffCtx.newPage();
  try {
    await signIn(staff, org.email);
    await staff.locator('#walkin-toggle:not([hidden])').waitFor();
    assert.equal(await staff.getByRole('button', { name: 'E-mail templates' }).isVisible(), false);

    await signIn(admin, org.adminEmail);
    await admin.getByRole('button', { name: 'E-mail templates' }).click();
    await admin.getByRole('heading', { name: 'E-mail templates' }).waitFor();
    // Scoped to the templates page: other pages (client, new appointment) have a "Language" too.
    const view = admin.getByRole('region', { name: 'E-mail templates' });
    await view.getByLabel('Name of the set').fill('Huisstijl');
    await admin.getByRole('button', { name: 'Create set' }).click();
    await view.getByLabel('Template set').locator('option', { hasText: 'Huisstijl' }).waitFor({ state: 'attached' });

    await view.getByLabel('Mail', { exact: true }).selectOption('appointment_invitation');
    await view.getByLabel('Language').selectOption('nl');
    // The built-in Dutch text is shown and previewed with sample data in Dutch.
    await view.getByLabel('Preview as plain text').filter({ hasText: 'maandag 30 maart 2026' }).waitFor();

    await view.getByRole('textbox', { name: 'Subject', exact: true }).fill('Afspraak op *|DATE|* om *|TIME|*');
    await view.getByRole('textbox', { name: 'HTML', exact: true }).fill('<h1>Welkom *|CLIENT_NAME|*</h1><p>Wachtkamer open vanaf *|OPENS_AT|*: <a href="*|LINK|*">link</a></p>');
    await view.getByRole('textbox', { name: 'Plain text', exact: true }).fill('Welkom *|CLIENT_NAME|*, vanaf *|OPENS_AT|*: *|LINK|*');
    await view.getByLabel('Preview subject').filter({ hasText: 'Subject: Afspraak op maandag 30 maart 2026 om 09:00' }).waitFor();
    const frame = admin.getByTitle('Preview as HTML');
    assert.equal(await frame.getAttribute('sandbox'), '');
    await admin.frameLocator('iframe[title="Preview as HTML"]').getByRole('heading', { name: 'Welkom Jan de Vries' }).waitFor();
    await admin.frameLocator('iframe[title="Preview as HTML"]').getByText('Wachtkamer open vanaf 08:00').waitFor();

    // An unknown placeholder: refused with its name, in the preview and on save.
    await view.getByRole('textbox', { name: 'Plain text', exact: true }).fill('Welkom *|KLANT|*');
    await admin.getByRole('alert').filter({ hasText: '*|KLANT|*' }).first().waitFor();
    await admin.getByRole('button', { name: 'Save template' }).click();
    await admin.locator('.alert-error:not([hidden])', { hasText: '*|KLANT|*' }).waitFor();
    await view.getByRole('textbox', { name: 'Plain text', exact: true }).fill('Welkom *|CLIENT_NAME|*, vanaf *|OPENS_AT|*: *|LINK|*');
    await admin.getByRole('button', { name: 'Save template' }).click();
    await admin.getByText('This set has its own text for this mail.').waitFor();

    // Assign the set to the organisation's department.
    await admin.locator('.tmpl-departments input[type="checkbox"]').first().check();
    await admin.getByRole('button', { name: 'Save departments and default' }).click();
    await admin.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();

    const list = (await apiCall(admin, 'GET', '/api/v1/mail-template-sets')).body;
    const set = list.sets.find((s) => s.name === 'Huisstijl');
    assert.ok(set, JSON.stringify(list));
    assert.deepEqual(set.customised, [{ kind: 'appointment_invitation', language: 'nl' }]);
    assert.equal(set.department_ids.length, 1);
    const { body } = await apiCall(admin, 'GET', `/api/v1/mail-template-sets/${set.id}`);
    const saved = body.set.templates.find((t) => t.kind === 'appointment_invitation' && t.language === 'nl');
    assert.equal(saved.subject, 'Afspraak op *|DATE|* om *|TIME|*');
  } catch (e) {
    await snap(admin, 'fail-mail-templates-admin');
    throw e;
  } finally {
    await adminCtx.close();
    await staffCtx.close();
  }
});
