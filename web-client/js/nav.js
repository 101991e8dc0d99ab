// @ts-check
// Explicit navigation between the views of a page (issue #11): every view is a section with an
// id, registered here with optional `enter`/`leave` hooks; `navigate(view)` is the one way to
// change what is shown. It hides every other registered view, sets `<body data-view>` (which the
// browser tests and CSS read), moves focus to the view's heading, calls the hooks, then tells the
// modules that follow the session (`followViews`: walk-in, settings, device check) which view
// is now shown — synchronously and in registration order, instead of each module watching
// `data-view` with a MutationObserver. A navigation started from a hook or a follower runs
// right after the current one has told everybody (never in the middle of it).

/** @typedef {{ enter?: (from: string | null) => void, leave?: (to: string) => void }} ViewHooks */
/** @typedef {(view: string, from: string | null) => void} ViewFollower */

/** @type {Map<string, ViewHooks>} */
const views = new Map();
/** @type {ViewFollower[]} */
const followers = [];
/** @type {{ view: string, focus: boolean }[]} */
const pending = [];
/** @type {string | null} */
let current = null;
let navigating = false;

/**
 * Registers the section with id `id` as a view (hidden whenever another view is shown).
 * @param {string} id
 * @param {ViewHooks} [hooks]
 */
export function registerView(id, hooks = {}) {
  views.set(id, hooks);
}

/**
 * Calls `follower(view, from)` after every navigation (also to the same view again).
 * @param {ViewFollower} follower
 */
export function followViews(follower) {
  followers.push(follower);
}

/** The view shown now (null before the first navigation). */
export function currentView() {
  return current;
}

/**
 * Shows exactly the view `view` (a registered section id) and, unless `focus` is false, moves
 * keyboard focus to its first heading, so screen-reader and keyboard users land at the start of
 * the new screen.
 * @param {string} view
 * @param {{ focus?: boolean }} [opts]
 */
export function navigate(view, { focus = true } = {}) {
  pending.push({ view, focus });
  if (navigating) return;
  navigating = true;
  try {
    for (let next = pending.shift(); next; next = pending.shift()) step(next.view, next.focus);
  } finally {
    navigating = false;
  }
}

/**
 * @param {string} view
 * @param {boolean} focus
 */
function step(view, focus) {
  const from = current;
  if (from !== null && from !== view) guard(() => views.get(from)?.leave?.(view));
  for (const id of views.keys()) {
    const section = document.getElementById(id);
    if (section) section.hidden = id !== view;
  }
  current = view;
  document.body.dataset.view = view;
  if (focus) focusHeading(view);
  if (from !== view) guard(() => views.get(view)?.enter?.(from));
  for (const follower of followers) guard(() => follower(view, from));
}

/** @param {string} view */
function focusHeading(view) {
  /** @type {HTMLElement | null | undefined} */
  const target = document.getElementById(view)?.querySelector('[data-focus-on-show], h1, h2');
  if (!target) return;
  if (!target.hasAttribute('tabindex')) target.setAttribute('tabindex', '-1');
  target.focus({ preventScroll: false });
}

/**
 * One failing hook must not leave the page between two views.
 * @param {() => void} fn
 */
function guard(fn) {
  try {
    fn();
  } catch (err) {
    console.error('view hook failed', err);
  }
}
