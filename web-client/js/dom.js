// @ts-check
// DOM helpers shared by the staff app and the patient page. User-supplied text (names) is only
// ever inserted with textContent, never as HTML.

/**
 * document.getElementById that fails loudly when the markup and the code disagree: the element
 * must exist and, when `type` is given, be of that class (`$('email', HTMLInputElement)`).
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @param {{ new (): T, prototype: T }} [type]
 * @returns {T}
 */
export function $(id, type) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  if (type && !(el instanceof type)) throw new Error(`element #${id} is not a ${type.name}`);
  return /** @type {T} */ (el);
}

/**
 * Attributes and properties of `h`: `class`, `dataset` (an object), `on<event>` (a listener),
 * `true` for a boolean attribute; `undefined`, `null` and `false` are left out.
 * @typedef {Record<string, unknown>} Attrs
 */
/** @typedef {Node | string | number | null | undefined | false | Child[]} Child */

/**
 * Creates an element with attributes/properties and children (strings become text nodes).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/**
 * Writes a polite status message into a live region (cleared first so repeats are re-read).
 * @param {HTMLElement} region
 * @param {string} text
 */
export function announce(region, text) {
  region.textContent = '';
  // A new text node in a later task makes screen readers announce identical messages again.
  setTimeout(() => {
    region.textContent = text;
  }, 30);
}
