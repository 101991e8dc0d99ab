// @ts-check
// Languages (issue #14): one catalogue per language in `web-client/i18n/<lang>.js` (a plain
// object of key → text; English is the reference and the fallback, imported here so `t` works
// synchronously and in Node), `t(key, params)` with `{name}` placeholders and plurals
// (`{ one, other }` chosen by `Intl.PluralRules` from `params.count`), static markup translated
// through `data-i18n` (text), `data-i18n-rich` (text with `<strong>` only, built as nodes, never
// as HTML) and `data-i18n-attr` (`aria-label:key;placeholder:key`), the language choice
// (explicit choice in localStorage → the invitation's language → `navigator.languages` → en),
// `<html lang>`, and dates, times and numbers through `Intl` in the chosen language.
// Elements written with `setText` keep their key, so a language switch re-translates them too.
// The walk-in widget imports this module from `/js/i18n.js` and the catalogues from `/i18n/`.

import en from '../i18n/en.js';

/** @typedef {'en' | 'nl' | 'de'} Language */
/** @typedef {string | { one: string, other: string }} Entry */
/** @typedef {Record<string, Entry>} Catalogue */
/** @typedef {Record<string, string | number>} Params */

/** The languages we have a catalogue for, in display order. */
export const LANGUAGES = /** @type {const} */ (['en', 'nl', 'de']);

/** Each language's name in that language (the switcher shows these). */
export const LANGUAGE_NAMES = /** @type {Record<Language, string>} */ ({ en: 'English', nl: 'Nederlands', de: 'Deutsch' });

/** localStorage key of a language the person chose explicitly (it wins over everything). */
export const STORAGE_KEY = 'consultroom.language';

/** @type {Language} */
let current = 'en';
/** @type {Catalogue} */
let catalogue = /** @type {Catalogue} */ (en);
/** @type {Set<(lang: Language) => void>} */
const listeners = new Set();
/** Parameters of elements written with `setText`, for re-translation on a switch. */
/** @type {WeakMap<Element, Params | undefined>} */
const elementParams = new WeakMap();

/**
 * `value` if it is one of our languages ("nl-BE" → "nl"), else null.
 * @param {unknown} value
 * @returns {Language | null}
 */
export function asLanguage(value) {
  if (typeof value !== 'string') return null;
  const base = value.trim().toLowerCase().split(/[-_]/)[0];
  return /** @type {readonly string[]} */ (LANGUAGES).includes(base) ? /** @type {Language} */ (base) : null;
}

/** The language chosen explicitly on a page (switcher), if any. */
export function storedLanguage() {
  try {
    return asLanguage(localStorage.getItem(STORAGE_KEY));
  } catch {
    return null; // storage disabled (or Node)
  }
}

/**
 * The language to show: an explicit choice, else the invitation's (the client's language), else
 * the first of the browser's languages we have, else English.
 * @param {unknown} [invitationLanguage]
 * @returns {Language}
 */
export function chooseLanguage(invitationLanguage) {
  const stored = storedLanguage();
  if (stored) return stored;
  const invited = asLanguage(invitationLanguage);
  if (invited) return invited;
  const browser = typeof navigator !== 'undefined' ? (navigator.languages || [navigator.language]) : [];
  for (const l of browser) {
    const found = asLanguage(l);
    if (found) return found;
  }
  return 'en';
}

/** The language shown now. */
export function currentLanguage() {
  return current;
}

/**
 * The catalogue of `lang` (English is built in; the others are loaded once, from `/i18n/`).
 * @param {Language} lang
 * @returns {Promise<Catalogue>}
 */
async function load(lang) {
  if (lang === 'en') return /** @type {Catalogue} */ (en);
  const url = new URL(`../i18n/${lang}.js`, import.meta.url).href;
  const mod = await import(url);
  return /** @type {Catalogue} */ (mod.default);
}

/**
 * Shows `lang`: loads its catalogue (falling back to English if that fails), sets `<html lang>`,
 * translates the document's static markup and tells the listeners.
 * @param {Language} lang
 * @param {{ remember?: boolean }} [options] `remember`: an explicit choice, kept in localStorage
 */
export async function setLanguage(lang, { remember = false } = {}) {
  let cat;
  try {
    cat = await load(lang);
  } catch {
    lang = 'en';
    cat = /** @type {Catalogue} */ (en);
  }
  current = lang;
  catalogue = cat;
  if (remember) {
    try { localStorage.setItem(STORAGE_KEY, lang); } catch { /* storage disabled: this page only */ }
  }
  if (typeof document !== 'undefined') {
    document.documentElement.lang = lang;
    applyTranslations(document);
  }
  for (const fn of listeners) fn(lang);
}

/**
 * Calls `fn` after every language change (to re-render texts built in script).
 * @param {(lang: Language) => void} fn
 */
export function onLanguageChange(fn) {
  listeners.add(fn);
}

/**
 * The text of `key` in the current language (English if the catalogue lacks it, the key itself if
 * English does too), with `{name}` placeholders filled from `params`. An entry with plural forms
 * is chosen by `params.count`.
 * @param {string} key
 * @param {Params} [params]
 * @returns {string}
 */
export function t(key, params) {
  const entry = catalogue[key] ?? en[/** @type {keyof typeof en} */ (key)] ?? key;
  let text;
  if (typeof entry === 'string') {
    text = entry;
  } else {
    const count = Number(params && params.count);
    const form = new Intl.PluralRules(current).select(count);
    text = form === 'one' ? entry.one : entry.other;
  }
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? formatParam(params[name]) : m));
}

/** @param {string | number} v */
function formatParam(v) {
  return typeof v === 'number' ? formatNumber(v) : v;
}

/**
 * Writes `t(key, params)` into `el` as text, and remembers the key so that a language switch
 * translates it again.
 * @param {HTMLElement} el
 * @param {string} key
 * @param {Params} [params]
 */
export function setText(el, key, params) {
  el.dataset.i18n = key;
  elementParams.set(el, params);
  el.textContent = t(key, params);
}

/**
 * Clears `el` and forgets its key (it no longer follows the language).
 * @param {HTMLElement} el
 */
export function clearText(el) {
  delete el.dataset.i18n;
  elementParams.delete(el);
  el.textContent = '';
}

/**
 * Fills `el` with `text`, in which `<strong>…</strong>` is the only markup: built as elements and
 * text nodes, never parsed as HTML.
 * @param {Element} el
 * @param {string} text
 */
function setRich(el, text) {
  const parts = text.split(/<strong>(.*?)<\/strong>/);
  el.replaceChildren(...parts.map((p, i) => {
    if (i % 2 === 0) return document.createTextNode(p);
    const s = document.createElement('strong');
    s.textContent = p;
    return s;
  }));
}

/**
 * Translates the static markup under `root`: `data-i18n` (text content), `data-i18n-rich` (text
 * with `<strong>`) and `data-i18n-attr` (`attribute:key` pairs separated by `;`).
 * @param {ParentNode} root
 */
export function applyTranslations(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    const key = /** @type {HTMLElement} */ (el).dataset.i18n;
    if (key) el.textContent = t(key, elementParams.get(el));
  }
  for (const el of root.querySelectorAll('[data-i18n-rich]')) {
    const key = /** @type {HTMLElement} */ (el).dataset.i18nRich;
    if (key) setRich(el, t(key));
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of (/** @type {HTMLElement} */ (el).dataset.i18nAttr || '').split(';')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

/**
 * The language switcher: a labelled `<select>` with each language's own name. Choosing one
 * switches the page and (unless `remember` is false) remembers the choice for every page.
 * @param {string} [id] the select's id
 * @param {{ remember?: boolean }} [options]
 * @returns {HTMLElement}
 */
export function languageSwitcher(id = 'language-select', { remember = true } = {}) {
  const wrap = document.createElement('div');
  wrap.className = 'language-switcher';
  const label = document.createElement('label');
  label.htmlFor = id;
  label.className = 'visually-hidden';
  label.dataset.i18n = 'common.language';
  label.textContent = t('common.language');
  const select = document.createElement('select');
  select.id = id;
  select.dataset.i18nAttr = 'title:common.language';
  select.title = t('common.language');
  for (const l of LANGUAGES) {
    const option = document.createElement('option');
    option.value = l;
    option.lang = l;
    option.textContent = LANGUAGE_NAMES[l];
    select.append(option);
  }
  select.value = current;
  select.addEventListener('change', () => {
    const lang = asLanguage(select.value);
    if (lang) setLanguage(lang, { remember });
  });
  onLanguageChange((lang) => { select.value = lang; });
  wrap.append(label, select);
  return wrap;
}

// ---------------------------------------------------------------- dates, times and numbers

/** @param {string | number | Date | null | undefined} value */
function toDate(value) {
  if (!value) return null; // as format.js always did: nothing (or 0) shows nothing
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/**
 * "14:05" in local time, 24-hour in every language; "" when missing or invalid.
 * @param {string | number | Date | null | undefined} value
 */
export function formatTime(value) {
  const d = toDate(value);
  if (!d) return '';
  return new Intl.DateTimeFormat(current, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(d);
}

/**
 * A date in the current language, by default "Tue 24 Nov" style (weekday, day, month).
 * @param {string | number | Date | null | undefined} value
 * @param {Intl.DateTimeFormatOptions} [options]
 */
export function formatDate(value, options = { weekday: 'short', day: 'numeric', month: 'short' }) {
  const d = toDate(value);
  if (!d) return '';
  return new Intl.DateTimeFormat(current, options).format(d);
}

/**
 * A number in the current language ("1,5" in Dutch and German).
 * @param {number} n
 * @param {Intl.NumberFormatOptions} [options]
 */
export function formatNumber(n, options) {
  return new Intl.NumberFormat(current, options).format(n);
}

// ---------------------------------------------------------------- server errors

/**
 * A server error for people, by its stable `code`: in English the server's own message (as
 * before), in other languages the translation of `error.<code>` when the catalogue has one, else
 * the server's (English) message; without a message the code's or `fallbackKey`'s text.
 * @param {{ code?: string, message?: string } | null | undefined} err an ApiError or a signalling error
 * @param {string} [fallbackKey]
 */
export function errorText(err, fallbackKey = 'error.unknown') {
  const code = err && err.code;
  const key = `error.${code}`;
  const known = !!code && key in en;
  if (known && current !== 'en') return t(key);
  if (err && err.message && err.message !== code) return err.message;
  return t(known ? key : fallbackKey);
}
