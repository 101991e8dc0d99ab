// The language catalogues (issue #14), without a browser: run by scripts/check-js.sh
// (`node --test tests/i18n/catalogues.test.mjs`). It checks that
//  (a) every catalogue (web-client/i18n/<lang>.js) has exactly English's keys, the same
//      `{placeholders}` per key, the same plural shape and the same `<strong>` markup;
//  (b) every key the pages use exists: `data-i18n`, `data-i18n-rich` and `data-i18n-attr` in the
//      HTML files and the HTML built in script, `'data-i18n': '…'` attributes, and every literal
//      key in the JavaScript (`t('…')`, `setText(el, '…')`, key tables), plus the expansions of the
//      few keys built at run time (DYNAMIC below);
//  (c) no key is unused (a key must appear literally somewhere, or be one of DYNAMIC's);
//  (d) no page shows an untranslated fixed string: in the patient pages and the staff app's
//      index.html (and the HTML the room and files panel build), every non-blank text node sits
//      in an element with `data-i18n` or `data-i18n-rich`, or under `translate="no"` (brand
//      names, symbols), and every `aria-label`, `placeholder`, `title` and `alt` with text is
//      covered by `data-i18n-attr`;
//  (e) t(), plurals, fallbacks, errorText and Intl formatting behave, in Node, per language;
//  (f) the staff app's script that builds its screens with `h()` (STAFF_JS) passes no fixed
//      English text: no string literal as an element's text, `textContent`, or `title`,
//      `alt`, `aria-label` or `placeholder` value (texts go through `t`, `tx` or `setText`);
//  (g) staff texts the browser tests select by stay word for word, and follow the language.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LANGS = ['en', 'nl', 'de'];

/** Keys built at run time, with every value they can take. */
const DYNAMIC = {
  'check.summary.': ['devices_ok', 'devices_partial'].flatMap((d) => ['checking', 'ok', 'warn', 'fail', 'unknown'].map((h) => `${d}.${h}`)),
  'check.verdict.': ['ok', 'warn', 'fail', 'unknown', 'no_sound'],
  'widget.required.': ['name', 'date_of_birth', 'phone', 'email'],
  // The 422 field errors of the walk-in form (widget.js), and the client's own rule texts.
  'widget.invalid.': ['name', 'date_of_birth', 'phone', 'email', 'accept_terms'],
};
/** Prefixes whose keys are looked up by a server's error code (`errorText`): none is "unused". */
const LOOKED_UP = ['error.'];

/** The files whose texts come from the catalogues. */
const PATIENT_HTML = ['web-client/join.html', 'web-client/set-password.html', 'widget/index.html'];
/** The staff app's page (the screens its scripts build are checked by (f)). */
const STAFF_HTML = ['web-client/index.html'];
/** Staff-app script on the catalogues, checked for fixed English text by (f). */
const STAFF_JS = [
  'web-client/js/app.js', 'web-client/js/admin-common.js', 'web-client/js/profile.js', 'web-client/js/format.js',
  'web-client/js/walkin.js', 'web-client/js/announcements.js', 'web-client/js/org-settings.js',
  'web-client/js/staff-check.js', 'web-client/js/quick-consult.js', 'web-client/js/transfer.js', 'web-client/js/widget-admin.js',
  'web-client/js/directory.js', 'web-client/js/admin-organisation.js', 'web-client/js/admin-staff.js',
  'web-client/js/schedule.js', 'web-client/js/appointment.js', 'web-client/js/guests.js', 'web-client/js/external.js', 'web-client/js/mail.js', 'web-client/js/mail-templates.js', 'web-client/js/chat.js',
  'web-client/js/clients.js', 'web-client/js/client-register.js', 'web-client/js/client-records.js', 'web-client/js/services.js',
];
/** Script that builds HTML (a template literal between these markers). */
const SCRIPT_HTML = [
  { file: 'web-client/js/room.js', start: 'const ROOM_HTML = `', end: '`;' },
  { file: 'web-client/js/files.js', start: 'const PANEL_HTML = `', end: '`;' },
];

async function catalogue(lang) {
  const mod = await import(path.join(ROOT, 'web-client/i18n', `${lang}.js`));
  return mod.default;
}

const read = (rel) => readFile(path.join(ROOT, rel), 'utf8');

async function jsFiles() {
  const dir = path.join(ROOT, 'web-client/js');
  const names = (await readdir(dir)).filter((n) => n.endsWith('.js'));
  return [...names.map((n) => `web-client/js/${n}`), 'widget/widget.js'];
}

/** @param {string | {one: string, other: string}} entry */
const forms = (entry) => (typeof entry === 'string' ? [entry] : Object.values(entry));
const placeholders = (entry) => [...new Set(forms(entry).flatMap((s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1])))].sort();
const strongCount = (entry) => forms(entry).map((s) => (s.match(/<strong>/g) || []).length);

test('(a) every catalogue has the same keys, placeholders, plural forms and markup as English', async () => {
  const en = await catalogue('en');
  for (const lang of LANGS.slice(1)) {
    const cat = await catalogue(lang);
    const missing = Object.keys(en).filter((k) => !(k in cat));
    const extra = Object.keys(cat).filter((k) => !(k in en));
    assert.deepEqual(missing, [], `${lang}: keys missing`);
    assert.deepEqual(extra, [], `${lang}: keys English does not have`);
    for (const [key, value] of Object.entries(en)) {
      const other = cat[key];
      assert.equal(typeof other, typeof value, `${lang} ${key}: plain text vs plural forms`);
      if (typeof value === 'object') assert.deepEqual(Object.keys(other).sort(), Object.keys(value).sort(), `${lang} ${key}: plural forms`);
      assert.deepEqual(placeholders(other), placeholders(value), `${lang} ${key}: placeholders`);
      assert.deepEqual(strongCount(other), strongCount(value), `${lang} ${key}: <strong> markup`);
      for (const s of forms(other)) {
        assert.ok(s.trim() || key === 'appt.at', `${lang} ${key}: empty`);
        assert.ok(!/<(?!\/?strong>)/.test(s), `${lang} ${key}: markup other than <strong>`);
      }
    }
  }
});

/** Every key a source text names: in markup attributes and as quoted literals in script. */
function keysIn(text, known) {
  const found = new Set();
  for (const m of text.matchAll(/data-i18n(?:-rich)?="([^"]+)"/g)) found.add(m[1]);
  for (const m of text.matchAll(/data-i18n-attr="([^"]+)"/g)) for (const pair of m[1].split(';')) found.add(pair.split(':')[1].trim());
  for (const m of text.matchAll(/'data-i18n(?:-attr)?': '([^']+)'/g)) {
    for (const part of m[1].split(';')) found.add(part.includes(':') ? part.split(':')[1].trim() : part);
  }
  // Quoted literals shaped like a key of a known area: `t('room.joined')`, key tables, ternaries.
  const areas = new Set([...known].map((k) => k.split('.')[0]));
  for (const m of text.matchAll(/['"`]([a-z]+(?:\.[a-z0-9_]+)+)['"`]/g)) {
    if (areas.has(m[1].split('.')[0]) && !/\.(m?js|html|css|json)$/.test(m[1])) found.add(m[1]);
  }
  return found;
}

test('(b) every key the pages use exists, (c) and every key is used', async () => {
  const en = await catalogue('en');
  const known = new Set(Object.keys(en));
  const sources = [...PATIENT_HTML, ...STAFF_HTML, ...(await jsFiles())];
  const used = new Set();
  for (const file of sources) {
    const text = await read(file);
    // Script that does not use the catalogues yet (the staff app's own pages) is not read.
    if (file.endsWith('.js') && !/i18n\.js'/.test(text) && !file.endsWith('/i18n.js')) continue;
    for (const key of keysIn(text, known)) {
      used.add(key);
      // Literals such as 'error.' in `error.${code}` are prefixes, not keys.
      assert.ok(known.has(key), `${file}: key ${key} is not in the catalogue`);
    }
    // A key built at run time must be one DYNAMIC lists.
    for (const m of text.matchAll(/`([a-z]+(?:\.[a-z_]+)*\.)\$\{/g)) {
      const prefix = m[1];
      if (LOOKED_UP.includes(prefix)) continue;
      assert.ok(prefix in DYNAMIC, `${file}: a key is built from ${prefix}… at run time; list its values in DYNAMIC`);
    }
  }
  for (const [prefix, values] of Object.entries(DYNAMIC)) {
    for (const v of values) {
      assert.ok(known.has(prefix + v), `dynamic key ${prefix}${v} is not in the catalogue`);
      used.add(prefix + v);
    }
  }
  const unused = [...known].filter((k) => !used.has(k) && !LOOKED_UP.some((p) => k.startsWith(p)));
  assert.deepEqual(unused, [], 'catalogue keys that nothing uses');
});

const VOID = new Set(['area', 'base', 'br', 'col', 'embed', 'hr', 'img', 'input', 'link', 'meta', 'source', 'track', 'wbr']);
const TEXT_ATTRS = ['aria-label', 'placeholder', 'title', 'alt'];

/**
 * The untranslated fixed strings of an HTML text: text nodes outside `data-i18n`/`data-i18n-rich`
 * elements and `translate="no"`, and text attributes not covered by `data-i18n-attr`. A small
 * tokenizer is enough for our own hand-written pages.
 */
function untranslated(html) {
  const problems = [];
  const stack = [];
  const covered = () => stack.some((e) => e.rich || e.no) || (stack.length && stack[stack.length - 1].text);
  const src = html.replace(/<!--[\s\S]*?-->/g, '').replace(/<!doctype[^>]*>/i, '');
  const re = /<(\/?)([a-zA-Z][\w-]*)((?:\s+[^\s=>/]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*(\/?)>|([^<]+)/g;
  for (const m of src.matchAll(re)) {
    const [, closing, tagRaw, attrText, selfClosing, text] = m;
    if (text !== undefined) {
      const t = text.replace(/&[a-z]+;|&#\d+;/g, ' ').trim();
      const top = stack[stack.length - 1];
      if (t && !(top && (top.tag === 'script' || top.tag === 'style')) && !covered()) problems.push(`text "${t}" in <${top ? top.tag : 'document'}>`);
      continue;
    }
    const tag = tagRaw.toLowerCase();
    if (closing) {
      const i = stack.map((e) => e.tag).lastIndexOf(tag);
      if (i >= 0) stack.length = i;
      continue;
    }
    const attrs = {};
    for (const a of (attrText || '').matchAll(/([^\s=>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) attrs[a[1].toLowerCase()] = a[2] ?? a[3] ?? a[4] ?? '';
    const attrKeys = new Set((attrs['data-i18n-attr'] || '').split(';').map((p) => p.split(':')[0].trim()).filter(Boolean));
    const inNo = stack.some((e) => e.no) || attrs.translate === 'no';
    for (const name of TEXT_ATTRS) {
      if (attrs[name] && attrs[name].trim() && !attrKeys.has(name) && !inNo) problems.push(`${name}="${attrs[name]}" on <${tag}>`);
    }
    if (VOID.has(tag) || selfClosing) continue;
    stack.push({ tag, text: 'data-i18n' in attrs, rich: 'data-i18n-rich' in attrs, no: attrs.translate === 'no' });
  }
  return problems;
}

test('(d) the patient pages and the staff app show no untranslated fixed string', async () => {
  assert.deepEqual(untranslated('<p>Hello</p><p data-i18n="x">Hi</p><input placeholder="Type"><b translate="no">Brand</b>'),
    ['text "Hello" in <p>', 'placeholder="Type" on <input>'], 'the check itself finds what it should');
  for (const file of [...PATIENT_HTML, ...STAFF_HTML]) {
    assert.deepEqual(untranslated(await read(file)), [], file);
  }
  for (const { file, start, end } of SCRIPT_HTML) {
    const text = await read(file);
    const from = text.indexOf(start);
    assert.ok(from >= 0, `${file}: ${start} not found`);
    const html = text.slice(from + start.length, text.indexOf(end, from + start.length));
    assert.deepEqual(untranslated(html), [], file);
  }
  for (const file of [...PATIENT_HTML, ...STAFF_HTML]) {
    assert.match(await read(file), /<html lang="en">/, `${file}: <html lang> starts as English (i18n.js sets the chosen one)`);
  }
});

test('(e) t, plurals, fallbacks, errorText and formatting follow the language', async () => {
  const i18n = await import(path.join(ROOT, 'web-client/js/i18n.js'));
  const { t, setLanguage, errorText, formatNumber, formatTime, asLanguage, chooseLanguage } = i18n;
  assert.equal(t('waiting.before_you', { count: 1 }), '1 person before you');
  assert.equal(t('waiting.before_you', { count: 3 }), '3 people before you');
  assert.equal(t('room.joined', { name: 'Ann' }), 'Ann joined.');
  assert.equal(t('room.joined'), '{name} joined.', 'a missing parameter stays visible');
  assert.equal(t('no.such.key'), 'no.such.key');
  assert.equal(errorText({ code: 'forbidden', message: 'staff only' }), 'staff only', 'English: the server\'s words');
  assert.equal(errorText({ code: 'nonsense', message: '' }), t('error.unknown'));
  assert.equal(asLanguage('nl-BE'), 'nl');
  assert.equal(asLanguage('fr'), null);
  assert.equal(chooseLanguage('de'), 'de', 'the invitation\'s language without an explicit choice');
  await setLanguage('nl');
  assert.equal(t('waiting.before_you', { count: 3 }), '3 personen voor u');
  assert.equal(t('waiting.next'), 'U bent de volgende');
  assert.equal(errorText({ code: 'forbidden', message: 'staff only' }), 'Dit is hier niet toegestaan.');
  assert.equal(errorText({ code: 'nonsense', message: 'plain English' }), 'plain English', 'unknown code: the server\'s message');
  assert.equal(formatNumber(12.5), '12,5');
  assert.equal(t('net.figures', { rtt: 40, loss: 1.5 }), 'Heen en terug 40 ms, 1,5% pakketten verloren.');
  assert.match(formatTime(new Date(2030, 0, 1, 9, 5)), /^09[:.]05$/);
  await setLanguage('de');
  assert.equal(t('appt.duration', { count: 1 }), ' (1 Minute)');
  assert.equal(t('appt.duration', { count: 20 }), ' (20 Minuten)');
  // A verdict of the connection check (netcheck.js, pure) in German, with German numbers.
  const { verdictOf, portsText } = await import(path.join(ROOT, 'web-client/js/netcheck.js'));
  const path0 = { type: 'host', protocol: 'udp', relayProtocol: null };
  const leg = { connected: true, measured: { rttMs: 640, lossPercent: 12.5, echoFrames: 60, fps: 15, path: path0 }, candidates: [], ports: { udp: [], tcp: [] } };
  const slow = verdictOf({ signalling: true, turnConfigured: false, hasVideo: true, relay: null, direct: leg });
  assert.equal(slow.title, 'Das Bild kann schlecht sein: Ihre Verbindung ist langsam (Umlaufzeit 640 ms); ein Teil des Videos geht unterwegs verloren (12,5 % der Pakete).');
  assert.equal(slow.details[0], 'Verbunden über eine direkte UDP-Verbindung.');
  assert.equal(portsText([{ protocol: 'udp', address: '192.0.2.7', port: 50000 }, { protocol: 'udp', address: '192.0.2.7', port: 50001 }], { udp: [], tcp: [] }),
    '192.0.2.7, UDP-Ports 50000 und 50001', 'port numbers are not grouped like amounts');
  await setLanguage('en');
  assert.equal(formatNumber(12.5), '12.5');
});

/**
 * Fixed English in script that builds the staff app's screens: a string literal that starts with
 * a capital letter (or holds two words) used as an element's text in `h(tag, attrs, '…')`, as a
 * `textContent`, or as a `title`/`alt`/`aria-label`/`placeholder` value. Catalogue keys, ids,
 * class names and CSS values do not look like that; a literal passed on purpose (a brand name)
 * is marked with a trailing `// i18n-exempt` comment.
 */
function bareTexts(text) {
  const problems = [];
  const prose = /^(?:[A-Z][a-z]|[A-Za-z]+ [A-Za-z]+)/;
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (/\/\/ i18n-exempt/.test(line) || /^\s*(\/\/|\*|\/\*)/.test(line)) return;
    const hits = [
      ...line.matchAll(/\bh\(\s*'[a-z0-9]+'\s*,\s*(?:\{[^{}]*\}|[a-z]\w*)\s*,\s*(['`])((?:(?!\1).)*)\1/g),
      ...line.matchAll(/\btextContent\s*=\s*(['`])((?:(?!\1).)*)\1/g),
      ...line.matchAll(/(?:\btitle|\balt|'aria-label'|\bplaceholder)\s*[:=]\s*(['`])((?:(?!\1).)*)\1/g),
      ...line.matchAll(/\}\s*,\s*(['`])((?:(?!\1).)*)\1\s*\)/g),
    ];
    for (const m of hits) {
      const value = m[2].replace(/\$\{[^}]*\}/g, '').trim();
      if (value && prose.test(value)) problems.push(`line ${i + 1}: "${m[2]}"`);
    }
  });
  return [...new Set(problems)];
}

test('(f) the staff app\'s script passes no fixed English text', async () => {
  assert.deepEqual(bareTexts("h('p', {}, 'Hello there');\nel.textContent = 'Saved.';\nh('img', { alt: 'A photo' });\nh('p', {}, t('x.y'));"),
    ['line 1: "Hello there"', 'line 2: "Saved."', 'line 3: "A photo"'], 'the check itself finds what it should');
  for (const file of STAFF_JS) {
    assert.deepEqual(bareTexts(await read(file)), [], file);
  }
});

test('(g) the staff app keeps its English words and follows the chosen language', async () => {
  const i18n = await import(path.join(ROOT, 'web-client/js/i18n.js'));
  const { t, setLanguage } = i18n;
  const { statusLabel, punctualityLabel } = await import(path.join(ROOT, 'web-client/js/format.js'));
  await setLanguage('en');
  // Texts the browser tests select by (tests/e2e), built from catalogue entries.
  assert.equal(t('staff.ann.press_again', { count: 3, label: 'Cardiology' }), 'Press again to delete all 3 for Cardiology');
  assert.equal(t('staff.ann.n_deleted', { count: 3 }), '3 announcements were deleted.');
  assert.equal(t('staff.ann.n_deleted', { count: 1 }), '1 announcement was deleted.');
  assert.equal(t('staff.ann.count', { n: '15', max: '500' }), '15 / 500 characters');
  assert.equal(t('staff.patients_waiting', { count: 1 }), '1 patient waiting');
  assert.equal(t('staff.title_waiting', { n: '2' }), '(2) Waiting — Consultroom');
  assert.equal(t('staff.admin.deactivate_name', { name: 'Pieter Practitioner' }), 'Deactivate Pieter Practitioner');
  assert.equal(statusLabel('no_show'), 'No-show');
  assert.equal(statusLabel('some_new_state'), 'some new state', 'an unknown status is shown tidied');
  assert.equal(punctualityLabel('walk_in'), 'Walk-in');
  // The client list and register (clients.js, client-register.js): names, labels and row texts.
  assert.equal(t('staff.clients.title'), 'Clients');
  assert.equal(t('staff.clients.find'), 'Find a client by name');
  assert.equal(t('staff.clients.edit') + ' Hugo Harbour', 'Edit… Hugo Harbour');
  assert.equal(t('staff.clients.schedule') + t('staff.clients.for_name', { name: 'Ann' }), 'Schedule appointment for Ann');
  assert.equal(t('staff.clients.number', { number: 'EPD-4711' }), 'no. EPD-4711');
  assert.equal(t('staff.clients.stopped_by_admin', { state: t('staff.clients.open_between_visits') }), 'open between visits (stopped by an admin)');
  assert.equal(t('staff.clients.with_you'), 'With you');
  assert.equal(t('staff.clients.count', { count: 1 }), '1 client');
  assert.equal(t('staff.register.save'), 'Save client');
  assert.equal(t('staff.register.communication'), 'Communication');
  assert.equal(t('staff.register.no_mail'), 'No mail sent to this client yet.');
  assert.equal(t('staff.register.no_practitioner'), 'No practitioner');
  await setLanguage('nl');
  assert.equal(statusLabel('cancelled'), 'Geannuleerd');
  assert.equal(punctualityLabel('late'), 'Te laat');
  assert.equal(t('staff.patients_waiting', { count: 2 }), '2 patiënten wachten');
  assert.equal(t('staff.clients.count', { count: 2 }), '2 cliënten');
  assert.equal(t('staff.records.species'), 'Soort');
  await setLanguage('de');
  assert.equal(t('staff.quick.minutes', { count: 1 }), '1 Minute');
  assert.equal(t('staff.mail.attempts', { count: 3 }), '3 Versuche');
  assert.equal(t('staff.records.timeline'), 'Verlauf');
  assert.equal(t('staff.services.title'), 'Leistungen');
  await setLanguage('en');
});
