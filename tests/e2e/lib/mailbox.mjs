// The SMTP test sink's mailbox, for the browser tests. `tests/e2e/lib/server.sh` (CR_WITH_SMTP=1,
// which run.sh sets) starts aiosmtpd with tests/smtp/test_handler.py inside the test namespace,
// gives the demo server `--smtp-url` to it and exports E2E_MAILDIR: every message the sink
// accepted is one file in E2E_MAILDIR/new/ (a Maildir). Messages are parsed with the npm package
// `mailparser` (headers, text and HTML bodies, the calendar part).

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';

/**
 * @typedef {object} ReceivedMail
 * @property {string} file         the Maildir file name
 * @property {Record<string, string>} headers  lower-cased header name → raw (unfolded) value
 * @property {string} subject
 * @property {string} text         the text/plain body ('' when none)
 * @property {string} html         the text/html body ('' when none)
 * @property {string} messageId    with angle brackets
 * @property {string[]} to         recipient addresses, lower-cased
 * @property {{ content: string, method: string | null } | null} calendar  the inline text/calendar
 *   part (its `method=` parameter), else an attached calendar, else null
 */

/** Every message in `maildir`/new, parsed, by file name (Python's Maildir names start with the time in seconds). */
export async function readMailbox(maildir) {
  let names;
  try {
    names = await readdir(join(maildir, 'new'));
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
  names.sort();
  const out = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    out.push(await parseMail(await readFile(join(maildir, 'new', name)), name));
  }
  return out;
}

/** Parses one raw message. @returns {Promise<ReceivedMail>} */
export async function parseMail(raw, file = '') {
  const parsed = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true });
  /** @type {Record<string, string>} */
  const headers = {};
  for (const line of parsed.headerLines) headers[line.key] = line.line.replace(/^[^:]*:\s*/, '').replace(/\r?\n[ \t]+/g, ' ');
  const to = [];
  const toField = parsed.to ? (Array.isArray(parsed.to) ? parsed.to : [parsed.to]) : [];
  for (const group of toField) for (const a of group.value) if (a.address) to.push(a.address.toLowerCase());
  const calendars = parsed.attachments.filter((a) => /^(text\/calendar|application\/ics)$/i.test(a.contentType));
  // The inline part (text/calendar with a method, no file name) is what calendar clients act on.
  const inline = calendars.find((a) => /^text\/calendar$/i.test(a.contentType) && !a.filename) || calendars[0];
  let calendar = null;
  if (inline) {
    const type = inline.headers.get('content-type');
    const method = (type && typeof type === 'object' && type.params && type.params.method) || null;
    calendar = { content: inline.content.toString('utf8'), method: method ? String(method).toUpperCase() : null };
  }
  return {
    file,
    headers,
    subject: parsed.subject || '',
    text: parsed.text || '',
    html: typeof parsed.html === 'string' ? parsed.html : '',
    messageId: parsed.messageId || '',
    to,
    calendar,
  };
}

/**
 * Waits (bounded: polls every 200 ms until `timeoutMs`) for a message to `to` (and, when given,
 * whose subject matches `subject`) in `maildir` and returns it, parsed. `skip`: file names to
 * ignore (messages seen before). Throws with what arrived meanwhile when none comes.
 * @param {string} maildir
 * @param {{ to: string, subject?: RegExp, timeoutMs?: number, skip?: Iterable<string> }} options
 * @returns {Promise<ReceivedMail>}
 */
export async function waitForMail(maildir, { to, subject, timeoutMs = 20_000, skip = [] }) {
  if (!maildir) throw new Error('no maildir: E2E_MAILDIR is set by tests/e2e/run.sh (CR_WITH_SMTP=1)');
  const want = to.toLowerCase();
  const skipped = new Set(skip);
  const deadline = Date.now() + timeoutMs;
  let seen = [];
  for (;;) {
    seen = (await readMailbox(maildir)).filter((m) => !skipped.has(m.file));
    const hit = seen.find((m) => m.to.includes(want) && (!subject || subject.test(m.subject)));
    if (hit) return hit;
    if (Date.now() > deadline) {
      const got = seen.map((m) => `${m.to.join(',')}: ${m.subject}`).join('; ') || 'nothing';
      throw new Error(`no mail to ${to}${subject ? ` with a subject matching ${subject}` : ''} within ${timeoutMs} ms (received: ${got})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The first URL in `text` whose path starts with `pathPrefix` (e.g. '/set-password'), with its
 * query and fragment; throws when there is none.
 */
export function linkIn(text, pathPrefix) {
  for (const m of text.matchAll(/https?:\/\/[^\s<>"')\]]+/g)) {
    const url = new URL(m[0]);
    if (url.pathname.startsWith(pathPrefix)) return m[0];
  }
  throw new Error(`no link to ${pathPrefix} in: ${text}`);
}
