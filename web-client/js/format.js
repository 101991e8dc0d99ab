// @ts-check
// Small formatting helpers. All times are shown in the browser's local time zone, 24-hour; dates
// and times in the page's language (i18n.js, through Intl).

import { formatTime, formatDate, t } from './i18n.js';

/** @param {number} n */
const pad2 = (n) => String(n).padStart(2, '0');

/**
 * RFC 3339 (or Date) → "HH:MM" in local time; "" when missing or invalid.
 * @param {string | number | Date | null | undefined} value
 */
export function hhmm(value) {
  return formatTime(value);
}

/**
 * True when the date is on the browser's current local day.
 * @param {string | number | Date} value
 */
export function isToday(value, now = new Date()) {
  const d = new Date(value);
  return (
    d.getFullYear() === now.getFullYear() &&
    d.getMonth() === now.getMonth() &&
    d.getDate() === now.getDate()
  );
}

/**
 * A short local date in the page's language, e.g. "Tue, Nov 24" / "di 24 nov".
 * @param {string | number | Date} value
 */
export function shortDate(value) {
  return formatDate(value, { weekday: 'short', day: 'numeric', month: 'short' });
}

/**
 * Milliseconds → "mm:ss" (minutes may exceed 59). Negative values clamp to 00:00.
 * @param {number} ms
 */
export function mmss(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  return `${pad2(Math.floor(total / 60))}:${pad2(total % 60)}`;
}

/**
 * Catalogue keys of the punctuality values of the signalling protocol.
 * @type {Record<import('./protocol.js').Punctuality, string>}
 */
const PUNCTUALITY_KEY = {
  on_time: 'status.on_time',
  late: 'status.late',
  walk_in: 'status.walk_in',
};

/**
 * Human words for a punctuality value from the signalling protocol, in the page's language.
 * @param {import('./protocol.js').Punctuality} punctuality
 */
export function punctualityLabel(punctuality) {
  return t(PUNCTUALITY_KEY[punctuality] || PUNCTUALITY_KEY.on_time);
}

/**
 * Human words for appointment statuses we know, in the page's language; unknown ones are shown
 * as-is, tidied.
 * @param {string} status
 */
export function statusLabel(status) {
  /** @type {Record<string, string>} */
  const known = {
    scheduled: 'status.scheduled',
    booked: 'status.booked',
    confirmed: 'status.confirmed',
    waiting: 'status.waiting',
    in_progress: 'status.in_consultation',
    in_consultation: 'status.in_consultation',
    completed: 'status.completed',
    done: 'status.completed',
    cancelled: 'status.cancelled',
    no_show: 'status.no_show',
  };
  if (!status) return '';
  return known[status] ? t(known[status]) : String(status).replace(/_/g, ' ');
}
