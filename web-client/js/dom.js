// DOM helpers shared by the staff app and the patient page. User-supplied text (names) is only
// ever inserted with textContent, never as HTML.

/** document.getElementById that fails loudly when the markup and the code disagree. */
export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing element #${id}`);
  return el;
}

/** Creates an element with attributes/properties and children (strings become text nodes). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
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
 * Shows exactly one of the given view sections (by id) and moves keyboard focus to its first
 * heading, so screen-reader and keyboard users land at the start of the new screen.
 */
export function showView(viewIds, activeId, { focus = true } = {}) {
  for (const id of viewIds) {
    const el = document.getElementById(id);
    if (el) el.hidden = id !== activeId;
  }
  document.body.dataset.view = activeId;
  if (focus) {
    const target = document.getElementById(activeId)?.querySelector('[data-focus-on-show], h1, h2');
    if (target) {
      if (!target.hasAttribute('tabindex')) target.setAttribute('tabindex', '-1');
      target.focus({ preventScroll: false });
    }
  }
}

/** Writes a polite status message into a live region (cleared first so repeats are re-read). */
export function announce(region, text) {
  region.textContent = '';
  // A new text node in a later task makes screen readers announce identical messages again.
  setTimeout(() => {
    region.textContent = text;
  }, 30);
}
