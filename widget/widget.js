// @ts-check
// Walk-in widget (served at /widget/<id>, framed by the clinic's website). Shows who is available
// now, live (Server-Sent Events; polling every 10 s when the stream cannot be used), runs the
// intake form with inline errors, and hands the visitor a link to the waiting room
// (/join#w.<token>: the token stays in the fragment, never in a request line or Referer).
// No cookies, no storage: third-party cookies are blocked in iframes, and we need none (so the
// language switcher does not remember a choice here; a language chosen here goes to the waiting
// room as `?lang=` on its link). Visitors' entries are never logged to the console.
// Texts come from the web client's catalogues (`/js/i18n.js`, `/i18n/<lang>.js`, same origin).

import { t, setText, chooseLanguage, setLanguage, languageSwitcher, currentLanguage, onLanguageChange } from '/js/i18n.js';

const widgetId = decodeURIComponent(location.pathname.split('/')[2] || '');
const preview = new URLSearchParams(location.search).has('preview');
const API = `/api/v1/public/widgets/${encodeURIComponent(widgetId)}`;
const POLL_MS = 10_000;
const FIELDS = ['name', 'date_of_birth', 'phone', 'email'];
/** @type {Record<string, string>} intake field → its input's id */
const INPUT_ID = { name: 'cr-name', date_of_birth: 'cr-dob', phone: 'cr-phone', email: 'cr-email', accept_terms: 'cr-accept' };

/**
 * An element of widget/index.html. Typed `any`: the page is small and its markup says what each
 * id is (inputs, buttons, an image, a link).
 * @param {string} id
 * @returns {any}
 */
const $ = (id) => document.getElementById(id);
/**
 * `config` and `availability` are the public widget API's answers (clinic/openapi.json), read
 * defensively; `chosen` the practitioner picked; `draft` the admin page's unsaved preview.
 * @type {{ config: any, availability: any, chosen: { id: string, name: string } | null,
 *   source: EventSource | null, pollTimer: ReturnType<typeof setInterval> | null,
 *   parentOrigin: string | null, draft: any }}
 */
const state = { config: null, availability: null, chosen: null, source: null, pollTimer: null, parentOrigin: null, draft: null };

// ---------------------------------------------------------------- origins and postMessage

/**
 * Whether `origin` matches an allowed-origin pattern (`*.` host prefix and `:*` port allowed).
 * @param {string} origin
 * @param {string[] | undefined} patterns
 */
function originAllowed(origin, patterns) {
  let o;
  try { o = new URL(origin); } catch { return false; }
  return (patterns || []).some((p) => {
    const m = /^(https?):\/\/(\*\.)?([^:/]+)(?::(\d+|\*))?$/.exec(p);
    if (!m || `${m[1]}:` !== o.protocol) return false;
    const host = o.hostname;
    const hostOk = m[2] ? host.endsWith(`.${m[3]}`) : host === m[3];
    const defaultPort = o.protocol === 'https:' ? '443' : '80';
    const port = o.port || defaultPort;
    const portOk = m[4] === '*' || (m[4] || defaultPort) === port;
    return hostOk && portOk;
  });
}

/** The framing page's origin, when the browser tells us (ancestorOrigins, else the referrer). */
function detectParentOrigin() {
  if (window.parent === window) return null;
  const ancestors = location.ancestorOrigins;
  if (ancestors && ancestors.length) return ancestors[0];
  try { return document.referrer ? new URL(document.referrer).origin : null; } catch { return null; }
}

/**
 * Posts `message` to the framing page if its origin is allowed; returns whether it was sent.
 * @param {{ type: string, height?: number }} message
 */
function tellHost(message) {
  const origin = state.parentOrigin;
  if (!origin || preview || !state.config) return false;
  if (origin !== location.origin && !originAllowed(origin, state.config.allowed_origins)) return false;
  window.parent.postMessage(message, origin);
  return true;
}

window.addEventListener('message', (event) => {
  // Drafts for the admin page's live preview come only from our own origin.
  if (event.origin !== location.origin) return;
  const data = event.data;
  if (!preview || !data || data.type !== 'consultroom:preview') return;
  state.draft = data;
  if (state.config) applyDraft();
});

function applyDraft() {
  const data = state.draft;
  if (!data) return;
  if (data.texts) state.config.texts = { ...state.config.texts, ...data.texts };
  if (data.colours) applyColours(data.colours);
  renderTexts();
  renderAvailability();
}

// The content's own height (not the document's, which is at least the iframe's height).
let lastHeight = 0;
function reportHeight() {
  const height = Math.ceil(document.body.getBoundingClientRect().height);
  if (height !== lastHeight && tellHost({ type: 'consultroom:widget-height', height })) lastHeight = height;
}
new ResizeObserver(reportHeight).observe(document.body);

// ---------------------------------------------------------------- configuration

/**
 * @param {string} url
 * @param {RequestInit} [init]
 * @returns {Promise<{ status: number, body: any }>}
 */
async function getJson(url, init) {
  const res = await fetch(url, { cache: 'no-store', credentials: 'omit', ...init });
  /** @type {any} */
  let body;
  try { body = await res.json(); } catch { body = null; }
  return { status: res.status, body };
}

/** @param {{ title?: string, text?: string }} colours */
function applyColours(colours) {
  /** @param {unknown} c */
  const valid = (c) => typeof c === 'string' && /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(c);
  if (valid(colours.title)) document.documentElement.style.setProperty('--cr-title-colour', colours.title);
  if (valid(colours.text)) document.documentElement.style.setProperty('--cr-text-colour', colours.text);
}

/** The clinic's texts where it wrote them (one language for now), else ours. */
function renderTexts() {
  const texts = state.config.texts || {};
  $('cr-title').textContent = texts.title || t('widget.title');
  document.title = texts.title || t('widget.title');
  $('cr-walkin-text').textContent = texts.walk_in || '';
  $('cr-absent-text').textContent = texts.absent || t('widget.absent');
}

/** @param {any} cfg the widget's public configuration */
function applyConfig(cfg) {
  state.config = cfg;
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = cfg.style_url;
  document.head.append(link);
  if (cfg.logo_url) {
    $('cr-logo').src = cfg.logo_url;
    $('cr-logo').hidden = false;
  }
  if (cfg.background_url) document.body.style.backgroundImage = `url("${cfg.background_url}")`;
  renderTexts();
  const intake = cfg.intake || {};
  for (const f of FIELDS) {
    const rule = intake[f] || 'hidden';
    /** @type {HTMLElement} */
    const box = document.querySelector(`.cr-field[data-field="${f}"]`);
    box.hidden = rule === 'hidden';
    /** @type {HTMLElement} */ (box.querySelector('.cr-optional')).hidden = rule !== 'optional';
    $(INPUT_ID[f]).required = rule === 'required';
  }
  /** @type {HTMLElement} */ (document.querySelector('.cr-field[data-field="accept_terms"]')).hidden = !intake.accept_terms;
  $('cr-terms-text').textContent = intake.terms_text || '';
}

// ---------------------------------------------------------------- availability

function renderAvailability() {
  const a = state.availability;
  if (!a || !state.config) return;
  const any = !!a.any_available;
  document.body.dataset.available = String(any);
  $('cr-walkin-text').hidden = !any || !$('cr-walkin-text').textContent;
  $('cr-absent-text').hidden = any;
  const sections = [];
  for (const d of a.departments || []) {
    if (!d.practitioners || !d.practitioners.length) continue;
    const h = document.createElement('h2');
    h.textContent = d.name;
    const ul = document.createElement('ul');
    for (const p of d.practitioners) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'cr-practitioner';
      b.dataset.practitionerId = p.id;
      const name = document.createElement('span');
      name.className = 'cr-name';
      name.textContent = p.name;
      const tag = document.createElement('span');
      tag.className = 'cr-available';
      tag.textContent = t('widget.available');
      b.append(name, tag);
      b.setAttribute('aria-label', t('widget.start_with', { name: p.name }));
      b.addEventListener('click', () => openIntake(p));
      li.append(b);
      ul.append(li);
    }
    const section = document.createElement('section');
    section.className = 'cr-department';
    section.append(h, ul);
    sections.push(section);
  }
  $('cr-departments').replaceChildren(...sections);
  // The chosen practitioner left: say so instead of letting the visitor submit in vain.
  if (state.chosen && document.body.dataset.state === 'intake') {
    const still = (a.departments || []).some((/** @type {any} */ d) => (d.practitioners || []).some((/** @type {any} */ p) => p.id === state.chosen.id));
    showFormError(still ? '' : t('widget.no_longer_available', { name: state.chosen.name }));
  }
}

/** @param {any} data who is available now, by department */
function onAvailability(data) {
  state.availability = data;
  if (document.body.dataset.state === 'loading') showView('list');
  renderAvailability();
}

function startLive() {
  if (typeof EventSource === 'function') {
    const source = new EventSource(`${API}/availability/stream`);
    state.source = source;
    source.addEventListener('availability', (ev) => {
      try { onAvailability(JSON.parse(ev.data)); } catch { /* ignore a malformed event */ }
    });
    source.addEventListener('error', () => {
      // EventSource reconnects by itself; when it gives up (CLOSED), poll instead.
      if (source.readyState === EventSource.CLOSED) startPolling();
    });
  } else {
    startPolling();
  }
}

function startPolling() {
  if (state.pollTimer) return;
  const poll = async () => {
    try {
      const { status, body } = await getJson(`${API}/availability`);
      if (status === 200) onAvailability(body);
    } catch { /* try again next round */ }
  };
  poll();
  state.pollTimer = setInterval(poll, POLL_MS);
}

// ---------------------------------------------------------------- views and intake

/** @param {'list' | 'intake' | 'done'} name */
function showView(name) {
  document.body.dataset.state = name;
  $('cr-loading').hidden = true;
  $('cr-list-view').hidden = name !== 'list';
  $('cr-intake-view').hidden = name !== 'intake';
  $('cr-done-view').hidden = name !== 'done';
}

/** @param {{ id: string, name: string }} practitioner */
function openIntake(practitioner) {
  state.chosen = practitioner;
  setText($('cr-intake-title'), 'widget.intake_title', { name: practitioner.name });
  clearErrors();
  showView('intake');
  const first = FIELDS.map((f) => $(INPUT_ID[f])).find((/** @type {HTMLInputElement} */ i) => !/** @type {HTMLElement} */ (i.closest('.cr-field')).hidden);
  (first || $('cr-submit')).focus();
}

$('cr-back').addEventListener('click', () => {
  state.chosen = null;
  showView('list');
});

/**
 * @param {string} field
 * @param {string} text
 */
function setFieldError(field, text) {
  const input = $(INPUT_ID[field]);
  const err = $(input.getAttribute('aria-describedby'));
  err.textContent = text || '';
  err.hidden = !text;
  if (text) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

/** @param {string} text */
function showFormError(text) {
  $('cr-form-error').textContent = text || '';
  $('cr-form-error').hidden = !text;
}

function clearErrors() {
  for (const f of [...FIELDS, 'accept_terms']) setFieldError(f, '');
  showFormError('');
}

/**
 * The same rules as the server, so most mistakes are shown before sending anything.
 * @param {Record<string, any>} values
 * @param {Record<string, any>} intake
 * @returns {Record<string, string>}
 */
function validate(values, intake) {
  /** @type {Record<string, string>} */
  const errors = {};
  for (const f of FIELDS) {
    if ((intake[f] || 'hidden') === 'required' && !values[f]) errors[f] = t(`widget.required.${f}`);
  }
  if (values.name && values.name.length > 100) errors.name = t('widget.invalid.name');
  if (values.date_of_birth) {
    const today = new Date().toISOString().slice(0, 10);
    if (!/^\d{4}-\d{2}-\d{2}$/.test(values.date_of_birth)) errors.date_of_birth = t('widget.invalid.date_of_birth');
    else if (values.date_of_birth > today) errors.date_of_birth = t('widget.invalid.date_of_birth_future');
  }
  if (values.phone && !/^[0-9 +\-().]{6,32}$/.test(values.phone)) errors.phone = t('widget.invalid.phone');
  if (values.email && !/^[^\s@<>",]+@[^\s@<>",]+\.[^\s@<>",]+$/.test(values.email)) errors.email = t('widget.invalid.email');
  if (intake.accept_terms && !values.accept_terms) errors.accept_terms = t('widget.invalid.accept_terms');
  return errors;
}

$('cr-intake').addEventListener('submit', async (/** @type {SubmitEvent} */ ev) => {
  ev.preventDefault();
  if (!state.chosen) return;
  const intake = state.config.intake || {};
  /** @type {Record<string, any>} */
  const values = { accept_terms: $('cr-accept').checked };
  for (const f of FIELDS) {
    values[f] = (intake[f] || 'hidden') === 'hidden' ? '' : $(INPUT_ID[f]).value.trim();
  }
  clearErrors();
  const errors = validate(values, intake);
  const wrong = Object.keys(errors);
  for (const f of wrong) setFieldError(f, errors[f]);
  if (wrong.length) {
    $(INPUT_ID[wrong[0]]).focus();
    return;
  }
  if (preview) {
    showFormError(t('widget.preview'));
    return;
  }
  /** @type {Record<string, any>} */
  const body = { practitioner_id: state.chosen.id, accept_terms: values.accept_terms };
  for (const f of FIELDS) if (values[f]) body[f] = values[f];
  const submit = $('cr-submit');
  submit.disabled = true;
  submit.textContent = t('widget.one_moment');
  try {
    const { status, body: res } = await getJson(`${API}/visits`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
    if (status === 201 && res && res.join_url) return done(res);
    const err = (res && res.error) || {};
    if (status === 422 && err.field && INPUT_ID[err.field]) {
      // The server's words in English; ours (the same rules) in other languages.
      setFieldError(err.field, currentLanguage() === 'en' && err.message ? err.message : t(`widget.invalid.${err.field}`));
      $(INPUT_ID[err.field]).focus();
    } else if (status === 409) {
      showFormError(t('widget.no_longer_available', { name: state.chosen.name }));
    } else if (status === 429) {
      showFormError(err.retry_after_seconds
        ? t('widget.too_many_wait', { count: Math.ceil(err.retry_after_seconds / 60) })
        : t('widget.too_many'));
    } else {
      showFormError(err.message && currentLanguage() === 'en' ? `This did not work: ${err.message}` : t('widget.failed'));
    }
  } catch {
    showFormError(t('widget.unreachable'));
  } finally {
    submit.disabled = false;
    submit.textContent = t('widget.submit');
  }
});

/** @param {any} res the created visit (`join_url`, `visit`) */
function done(res) {
  const link = $('cr-join-link');
  // The waiting room opens in the language shown here.
  link.href = withLanguage(res.join_url);
  $('cr-done-text').textContent = t('widget.done_text', { name: res.visit?.practitioner_name || t('widget.the_practitioner') });
  for (const f of FIELDS) $(INPUT_ID[f]).value = '';
  $('cr-accept').checked = false;
  state.chosen = null;
  showView('done');
  link.focus();
  tellHost({ type: 'consultroom:visitor-entered' });
}

// ---------------------------------------------------------------- boot

/** The visitor chose a language with the switcher (else the waiting room picks the same one). */
let languageChosen = false;

/**
 * `url` (`…/join#w.<token>`) with `?lang=<the language shown>` before its fragment, when the
 * visitor chose it here.
 * @param {string} url
 */
function withLanguage(url) {
  if (!languageChosen) return url;
  const u = new URL(url, location.href);
  u.searchParams.set('lang', currentLanguage());
  return u.href;
}

async function boot() {
  state.parentOrigin = detectParentOrigin();
  await setLanguage(chooseLanguage());
  $('cr-language').append(languageSwitcher('cr-language-select', { remember: false }));
  onLanguageChange(() => {
    languageChosen = true;
    if (state.config) {
      renderTexts();
      renderAvailability();
    }
    const link = $('cr-join-link');
    if (link.getAttribute('href') !== '#') link.href = withLanguage(link.href);
  });
  try {
    const { status, body } = await getJson(API);
    if (status !== 200 || !body) throw new Error(`status ${status}`);
    applyConfig(body);
    applyDraft();
    reportHeight();
  } catch {
    $('cr-loading').hidden = true;
    $('cr-error').textContent = t('widget.load_failed');
    $('cr-error').hidden = false;
    document.body.dataset.state = 'error';
    return;
  }
  startLive();
}

boot();
