// @ts-check
// "Walk-in widgets" for organisation admins (F44–F48): the list of widgets and the four-step
// wizard — 1 name and departments, 2 texts and colours (live preview), 3 intake fields, 4 logo,
// background, custom CSS and the sites allowed to show the widget — plus the snippet to paste.
// Step 1's save creates the widget; every later "Save" replaces its settings (PUT). The preview
// is the real widget page in preview mode (no visits are created); unsaved texts and colours
// reach it by postMessage, addressed to our own origin only.

import { api, ApiError } from './api.js';
import { $, h, announce } from './dom.js';
import { t, setText, errorText } from './i18n.js';

/** The intake fields (their labels are in index.html). */
const FIELDS = [['name'], ['date_of_birth'], ['phone'], ['email']];
const STEPS = 4;

export function initWidgetAdmin() {
  const el = {
    error: $('widget-admin-error'),
    list: $('widget-list'),
    empty: $('widget-list-empty'),
    newBtn: $('widget-new', HTMLButtonElement),
    wizard: $('widget-wizard'),
    wizardTitle: $('widget-wizard-title'),
    steps: $('widget-steps'),
    form: $('widget-form', HTMLFormElement),
    formError: $('widget-form-error'),
    name: $('wf-name', HTMLInputElement),
    departments: $('wf-departments'),
    title: $('wf-title', HTMLInputElement),
    walkIn: $('wf-walk-in', HTMLTextAreaElement),
    absent: $('wf-absent', HTMLTextAreaElement),
    titleColour: $('wf-title-colour', HTMLInputElement),
    textColour: $('wf-text-colour', HTMLInputElement),
    acceptTerms: $('wf-accept-terms', HTMLInputElement),
    termsText: $('wf-terms-text', HTMLTextAreaElement),
    logo: $('wf-logo', HTMLInputElement),
    logoState: $('wf-logo-state'),
    logoRemove: $('wf-logo-remove', HTMLButtonElement),
    background: $('wf-background', HTMLInputElement),
    backgroundState: $('wf-background-state'),
    backgroundRemove: $('wf-background-remove', HTMLButtonElement),
    css: $('wf-css', HTMLTextAreaElement),
    origins: $('wf-origins', HTMLTextAreaElement),
    prev: $('wf-prev', HTMLButtonElement),
    next: $('wf-next', HTMLButtonElement),
    close: $('wf-close', HTMLButtonElement),
    preview: $('widget-preview', HTMLIFrameElement),
    previewEmpty: $('widget-preview-empty'),
    snippet: $('widget-snippet', HTMLTextAreaElement),
    snippetBox: $('widget-snippet-box'),
    copy: $('widget-snippet-copy', HTMLButtonElement),
    status: $('status'),
  };
  /**
   * Widgets (`GET /api/v1/widgets`, clinic/openapi.json) and departments, read defensively.
   * @type {{ widgets: any[], departments: any[], current: any, step: number }}
   */
  const state = { widgets: [], departments: [], current: null, step: 1 };

  /** @param {unknown} err */
  const errText = (err) => (err instanceof ApiError && err.message ? errorText(err) : t('staff.widget.failed'));
  /** @param {string} text */
  const showError = (text) => { el.error.textContent = text || ''; el.error.hidden = !text; };
  /** @param {string} text */
  const formError = (text) => { el.formError.textContent = text || ''; el.formError.hidden = !text; };

  async function load() {
    showError('');
    try {
      const [widgets, directory] = await Promise.all([api('/api/v1/widgets'), api('/api/v1/directory')]);
      state.widgets = widgets.widgets || [];
      state.departments = directory.departments || [];
      renderList();
    } catch (err) {
      showError(errText(err));
    }
  }

  function renderList() {
    const items = state.widgets.map((w) => h('li', { class: 'widget-item' },
      h('span', { class: 'widget-name' }, w.name),
      h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => openWizard(w) }, t('staff.widget.edit', { name: w.name }))));
    el.list.replaceChildren(...items);
    el.empty.hidden = items.length > 0;
  }

  // ---------------------------------------------------------------- wizard

  /** @param {any} widget a widget, or null for a new one */
  function openWizard(widget) {
    state.current = widget || null;
    if (widget) setText(el.wizardTitle, 'staff.widget.named', { name: widget.name });
    else setText(el.wizardTitle, 'staff.new_walk_in_widget');
    fill(widget);
    el.wizard.hidden = false;
    goTo(1);
    refreshPreview();
  }

  /** @param {any} w a widget, or null */
  function fill(w) {
    const d = w || {};
    const texts = d.texts || {};
    const colours = d.colours || { title: '#1f3a5f', text: '#222222' };
    const intake = d.intake || { name: 'required' };
    el.name.value = d.name || '';
    const chosen = new Set(d.department_ids || []);
    el.departments.replaceChildren(...state.departments.map((dep) => {
      const id = `wf-dep-${dep.id}`;
      return h('label', { class: 'check', for: id },
        h('input', { type: 'checkbox', id, value: dep.id, checked: chosen.has(dep.id) }), ` ${dep.name}`);
    }));
    el.title.value = texts.title || '';
    el.walkIn.value = texts.walk_in || '';
    el.absent.value = texts.absent || '';
    el.titleColour.value = normColour(colours.title, '#1f3a5f');
    el.textColour.value = normColour(colours.text, '#222222');
    for (const [f] of FIELDS) $(`wf-field-${f}`, HTMLSelectElement).value = intake[f] || (f === 'name' ? 'required' : 'hidden');
    el.acceptTerms.checked = !!intake.accept_terms;
    el.termsText.value = intake.terms_text || '';
    el.css.value = d.custom_css || '';
    el.origins.value = (d.allowed_origins || []).join('\n');
    el.logoState.textContent = d.has_logo ? t('staff.widget.logo_set') : t('staff.widget.no_logo');
    el.backgroundState.textContent = d.has_background ? t('staff.widget.background_set') : t('staff.widget.no_background');
    el.logoRemove.hidden = !d.has_logo;
    el.backgroundRemove.hidden = !d.has_background;
    formError('');
  }

  /**
   * `<input type=color>` needs #rrggbb.
   * @param {unknown} c
   * @param {string} fallback
   */
  function normColour(c, fallback) {
    if (typeof c !== 'string') return fallback;
    if (/^#[0-9a-f]{6}$/i.test(c)) return c.toLowerCase();
    const m = /^#([0-9a-f])([0-9a-f])([0-9a-f])$/i.exec(c);
    return m ? `#${m[1]}${m[1]}${m[2]}${m[2]}${m[3]}${m[3]}`.toLowerCase() : fallback;
  }

  function collect() {
    /** @type {Record<string, string | boolean>} */
    const intake = {};
    for (const [f] of FIELDS) intake[f] = $(`wf-field-${f}`, HTMLSelectElement).value;
    intake.accept_terms = el.acceptTerms.checked;
    intake.terms_text = el.termsText.value;
    return {
      name: el.name.value.trim(),
      department_ids: [...el.departments.querySelectorAll('input:checked')].map((i) => /** @type {HTMLInputElement} */ (i).value),
      texts: { title: el.title.value, walk_in: el.walkIn.value, absent: el.absent.value },
      colours: { title: el.titleColour.value, text: el.textColour.value },
      intake,
      allowed_origins: el.origins.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean),
      custom_css: el.css.value,
    };
  }

  /** @param {number} step */
  function goTo(step) {
    state.step = step;
    for (const fs of /** @type {NodeListOf<HTMLFieldSetElement>} */ (el.form.querySelectorAll('fieldset[data-step]'))) fs.hidden = Number(fs.dataset.step) !== step;
    for (const li of el.steps.querySelectorAll('li')) {
      if (Number(li.dataset.step) === step) li.setAttribute('aria-current', 'step');
      else li.removeAttribute('aria-current');
    }
    el.prev.hidden = step === 1;
    setText(el.next, step === STEPS ? 'staff.widget.save' : 'staff.save_and_continue');
    /** @type {HTMLElement | null} */ (el.form.querySelector(`fieldset[data-step="${step}"] legend`))?.focus();
  }

  el.newBtn.addEventListener('click', () => openWizard(null));
  el.close.addEventListener('click', () => { el.wizard.hidden = true; state.current = null; });
  el.prev.addEventListener('click', () => goTo(Math.max(1, state.step - 1)));

  el.form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    formError('');
    const body = collect();
    if (!body.name) return formError(t('staff.widget.need_name'));
    if (!body.department_ids.length) return formError(t('staff.widget.need_department'));
    el.next.disabled = true;
    try {
      const res = state.current
        ? await api(`/api/v1/widgets/${encodeURIComponent(state.current.id)}`, { method: 'PUT', body })
        : await api('/api/v1/widgets', { method: 'POST', body });
      state.current = res.widget;
      setText(el.wizardTitle, 'staff.widget.named', { name: res.widget.name });
      await load();
      refreshPreview();
      announce(el.status, t('staff.widget.saved'));
      if (state.step < STEPS) goTo(state.step + 1);
    } catch (err) {
      formError(errText(err));
    } finally {
      el.next.disabled = false;
    }
  });

  // ---------------------------------------------------------------- images

  /**
   * @param {'logo' | 'background'} kind
   * @param {HTMLInputElement} input
   */
  async function upload(kind, input) {
    const file = input.files && input.files[0];
    if (!file || !state.current) return;
    formError('');
    if (!['image/png', 'image/jpeg', 'image/webp'].includes(file.type)) {
      formError(t('staff.widget.image_type'));
      input.value = '';
      return;
    }
    if (file.size > 256 * 1024) {
      formError(t('staff.widget.image_size'));
      input.value = '';
      return;
    }
    try {
      const res = await fetch(`/api/v1/widgets/${encodeURIComponent(state.current.id)}/images/${kind}`, {
        method: 'PUT', credentials: 'same-origin', headers: { 'Content-Type': file.type }, body: file,
      });
      const data = await res.json().catch(() => /** @type {any} */ (null));
      if (!res.ok) throw new ApiError(res.status, data?.error?.code || 'error', data?.error?.message || '');
      state.current = data.widget;
      fill(state.current);
      goTo(4);
      refreshPreview();
      announce(el.status, t('staff.widget.image_saved'));
    } catch (err) {
      formError(errText(err));
    } finally {
      input.value = '';
    }
  }

  /** @param {'logo' | 'background'} kind */
  async function removeImage(kind) {
    if (!state.current) return;
    try {
      const res = await api(`/api/v1/widgets/${encodeURIComponent(state.current.id)}/images/${kind}`, { method: 'DELETE' });
      state.current = res.widget;
      fill(state.current);
      goTo(4);
      refreshPreview();
    } catch (err) {
      formError(errText(err));
    }
  }

  el.logo.addEventListener('change', () => upload('logo', el.logo));
  el.background.addEventListener('change', () => upload('background', el.background));
  el.logoRemove.addEventListener('click', () => removeImage('logo'));
  el.backgroundRemove.addEventListener('click', () => removeImage('background'));

  // ---------------------------------------------------------------- preview and snippet

  function refreshPreview() {
    const w = state.current;
    el.preview.hidden = !w;
    el.previewEmpty.hidden = !!w;
    el.snippetBox.hidden = !w;
    if (!w) {
      el.preview.removeAttribute('src');
      return;
    }
    el.preview.src = `/widget/${encodeURIComponent(w.id)}?preview=1&v=${Date.now()}`;
    el.snippet.value = snippet(w);
  }

  function sendDraft() {
    if (!state.current || !el.preview.contentWindow) return;
    const b = collect();
    el.preview.contentWindow.postMessage({ type: 'consultroom:preview', texts: b.texts, colours: b.colours }, location.origin);
  }
  for (const input of [el.title, el.walkIn, el.absent, el.titleColour, el.textColour]) {
    input.addEventListener('input', sendDraft);
  }
  // A reloaded preview (after a save) gets the unsaved draft again.
  el.preview.addEventListener('load', sendDraft);

  /** @param {any} w a saved widget */
  function snippet(w) {
    const url = w.frame_url;
    const origin = new URL(url).origin;
    const frameId = `consultroom-widget-${w.id}`;
    return `<iframe id="${frameId}" src="${url}" title="Walk-in video consultation"
  style="width:100%;min-height:420px;border:0" loading="lazy"></iframe>
<script>
/* Optional: let the widget set its own height. */
window.addEventListener('message', function (e) {
  var f = document.getElementById('${frameId}');
  if (e.origin !== '${origin}' || !f || e.source !== f.contentWindow) return;
  if (e.data && e.data.type === 'consultroom:widget-height') f.style.height = e.data.height + 'px';
});
</script>`;
  }

  el.copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(el.snippet.value);
      announce(el.status, t('staff.widget.copied'));
    } catch {
      el.snippet.select();
      announce(el.status, t('staff.widget.copy_by_hand'));
    }
  });

  return { load };
}
