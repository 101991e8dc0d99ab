// @ts-check
// File sharing in a consultation (issue #5, F108–F111), for staff and patients alike: a
// "Send file" button (hidden when the organisation does not allow it, F126), upload progress with
// Cancel, and the list of files shared so far with name, size, type and a Download button.
//
// Protocol (docs/protocol.md): `file_offer` → `file_upload_ready {url}`; the body goes there with
// XHR (upload progress; abort() cancels, and the server keeps nothing of a cancelled upload);
// everyone then gets `file_shared`. Download: `file_download` → `file_download_ready {url}` (single
// use), opened as an attachment. Names are shown with textContent only. The files are deleted on
// the server when the consultation ends, so the list is cleared then.

import { t, applyTranslations, formatNumber, setText } from './i18n.js';

const PANEL_HTML = `
  <h3 class="files-title" data-i18n="files.title">Files</h3>
  <div class="files-actions">
    <button type="button" class="btn btn-secondary" data-files-send hidden><svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M21 11.5l-8.5 8.5a5 5 0 0 1-7-7L14 4.5a3.5 3.5 0 0 1 5 5L10.5 18a2 2 0 0 1-3-3L15 7.5" fill="none"/></svg> <span data-i18n="files.send">Send file…</span></button>
    <input type="file" data-files-input hidden>
  </div>
  <div class="files-progress" data-files-progress hidden>
    <label><span data-files-progress-label data-i18n="files.sending">Sending…</span>
      <progress max="100" value="0" data-files-bar></progress></label>
    <button type="button" class="btn btn-light" data-files-cancel data-i18n="common.cancel">Cancel</button>
  </div>
  <p class="files-error" data-files-error role="alert" hidden></p>
  <p class="files-empty" data-files-empty data-i18n="files.empty">No files shared yet.</p>
  <ul class="files-list" data-files-list aria-label="Shared files" data-i18n-attr="aria-label:files.shared"></ul>
  <p class="files-note" data-i18n="files.note">Files are deleted when the consultation ends.</p>
`;

/** Catalogue keys of the file types we name. */
/** @type {Record<string, string>} */
const TYPE_LABEL = {
  'application/pdf': 'files.type.pdf',
  'image/png': 'files.type.png',
  'image/jpeg': 'files.type.jpeg',
  'image/gif': 'files.type.gif',
  'image/webp': 'files.type.webp',
  'text/plain': 'files.type.text',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'files.type.word',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'files.type.excel',
  'application/vnd.oasis.opendocument.text': 'files.type.odt',
  'application/vnd.oasis.opendocument.spreadsheet': 'files.type.ods',
};

/**
 * Human size: 1.2 MB, 840 KB, 12 bytes.
 * @param {number} bytes
 */
export function formatSize(bytes) {
  if (bytes < 1024) return t('files.size_bytes', { count: bytes });
  if (bytes < 1024 * 1024) return t('files.size_kb', { size: Math.round(bytes / 1024) });
  return t('files.size_mb', { size: formatNumber(bytes / (1024 * 1024), { minimumFractionDigits: 1, maximumFractionDigits: 1 }) });
}

/** Catalogue keys of the `file_offer` refusals we explain. */
/** @type {Record<string, string>} */
const OFFER_ERRORS = {
  too_large: 'files.error.too_large',
  unsupported_type: 'files.error.offer_unsupported_type',
  forbidden: 'files.error.forbidden',
  invalid_state: 'files.error.invalid_state',
};

export class FilePanel {
  /**
   * @param {object} opts
   * @param {HTMLElement} opts.root where the panel is appended (the room view)
   * @param {boolean|Promise<boolean>} [opts.allowed] the organisation allows file sharing
   *   (default true; the server enforces it either way)
   */
  constructor({ root, allowed = true }) {
    this.section = document.createElement('section');
    this.section.className = 'files-panel';
    this.section.setAttribute('aria-label', t('files.shared'));
    this.section.dataset.i18nAttr = 'aria-label:files.shared';
    this.section.innerHTML = PANEL_HTML; // static markup only
    applyTranslations(this.section);
    root.appendChild(this.section);
    /**
     * @template {HTMLElement} T
     * @param {string} name
     * @param {{ new (): T, prototype: T }} type
     * @returns {T}
     */
    const q = (name, type) => {
      const node = this.section.querySelector(`[data-files-${name}]`);
      if (!(node instanceof type)) throw new Error(`files panel: [data-files-${name}] is not a ${type.name}`);
      return node;
    };
    this.el = {
      send: q('send', HTMLButtonElement), input: q('input', HTMLInputElement), progress: q('progress', HTMLElement),
      bar: q('bar', HTMLProgressElement), progressLabel: q('progress-label', HTMLElement),
      cancel: q('cancel', HTMLButtonElement), error: q('error', HTMLElement),
      empty: q('empty', HTMLElement), list: q('list', HTMLElement),
    };
    /** @type {import('./signalling.js').SignallingClient | null} */
    this.signalling = null;
    /** @type {string | null} */
    this.selfId = null;
    /** @type {(participantId: string) => string | null | undefined} */
    this.nameOf = () => null;
    /** @type {Map<string, import('./protocol.js').FileSharedMessage>} the files shared so far, by id */
    this.files = new Map();
    /** @type {XMLHttpRequest | null} */
    this.xhr = null;
    this.el.send.addEventListener('click', () => this.el.input.click());
    this.el.input.addEventListener('change', () => {
      const file = this.el.input.files && this.el.input.files[0];
      this.el.input.value = '';
      if (file) this.send(file);
    });
    this.el.cancel.addEventListener('click', () => this.cancel());
    Promise.resolve(allowed).then((ok) => { this.el.send.hidden = ok === false; }, () => { this.el.send.hidden = false; });
  }

  /**
   * A consultation starts: forget the previous one's files.
   * @param {{ signalling: import('./signalling.js').SignallingClient, selfId: string,
   *   nameOf?: (participantId: string) => string | null | undefined }} consultation
   */
  start({ signalling, selfId, nameOf }) {
    this.signalling = signalling;
    this.selfId = selfId;
    if (nameOf) this.nameOf = nameOf;
    this.cancel();
    this.files.clear();
    this.#render();
    this.#showError('');
  }

  /**
   * Feeds a signalling frame; returns true when the panel consumed it.
   * @param {import('./protocol.js').ServerMessage} msg
   */
  handle(msg) {
    if (msg.type === 'file_shared') {
      this.files.set(msg.file_id, msg);
      this.#render();
      return true;
    }
    if (msg.type === 'consultation_ended') {
      this.cancel();
      this.files.clear();
      this.#render();
    }
    return false;
  }

  /**
   * Offers `file` and uploads it with progress.
   * @param {File} file
   */
  async send(file) {
    if (this.xhr || !this.signalling) return;
    this.#showError('');
    let ready;
    try {
      ready = await this.signalling.request({
        type: 'file_offer', name: file.name, size: file.size, content_type: file.type || '',
      });
    } catch (err) {
      this.#showError(t(OFFER_ERRORS[err.code] || 'files.error.offer_failed'));
      return;
    }
    const xhr = new XMLHttpRequest();
    this.xhr = xhr;
    setText(this.el.progressLabel, 'files.sending_name', { name: file.name });
    this.el.bar.value = 0;
    this.el.progress.hidden = false;
    xhr.upload.addEventListener('progress', (ev) => {
      if (ev.lengthComputable) this.el.bar.value = Math.round((ev.loaded / ev.total) * 100);
    });
    const done = new Promise((/** @type {(v?: unknown) => void} */ resolve) => {
      xhr.addEventListener('loadend', () => resolve());
    });
    xhr.open('PUT', ready.url);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.send(file);
    await done;
    const aborted = this.xhr !== xhr;
    if (!aborted) this.xhr = null;
    this.el.progress.hidden = true;
    if (aborted) return;
    if (xhr.status === 201) return; // everyone, us included, gets `file_shared`
    let code = '';
    try { code = JSON.parse(xhr.responseText).error.code; } catch { /* not JSON */ }
    /** @type {Record<string, string>} */
    const uploadErrors = {
      unsupported_type: 'files.error.unsupported_type',
      too_large: 'files.error.too_large',
      gone: 'files.error.gone',
    };
    this.#showError(t(uploadErrors[code] || 'files.error.upload_failed'));
  }

  /** Cancels a running upload (the server deletes what it received). */
  cancel() {
    const xhr = this.xhr;
    this.xhr = null;
    if (xhr) xhr.abort();
    this.el.progress.hidden = true;
  }

  /** @param {string} fileId */
  async #download(fileId) {
    this.#showError('');
    try {
      const ready = await this.signalling.request({ type: 'file_download', file_id: fileId });
      const a = document.createElement('a');
      a.href = ready.url;
      a.download = '';
      a.rel = 'noopener';
      document.body.appendChild(a);
      a.click();
      a.remove();
    } catch {
      this.#showError(t('files.error.unavailable'));
    }
  }

  /** @param {string} text */
  #showError(text) {
    this.el.error.textContent = text;
    this.el.error.hidden = !text;
  }

  #render() {
    const items = [...this.files.values()];
    this.el.empty.hidden = items.length > 0;
    this.el.list.replaceChildren(...items.map((f) => {
      const li = document.createElement('li');
      li.className = 'files-item';
      const name = document.createElement('span');
      name.className = 'files-name';
      name.textContent = f.name;
      const meta = document.createElement('span');
      meta.className = 'files-meta';
      const type = TYPE_LABEL[f.content_type] ? t(TYPE_LABEL[f.content_type]) : f.content_type;
      meta.textContent = f.from === this.selfId
        ? t('files.meta_from_you', { type, size: formatSize(f.size) })
        : t('files.meta_from', { type, size: formatSize(f.size), name: this.nameOf(f.from) || t('files.the_other_participant') });
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'btn btn-light files-download';
      btn.textContent = t('files.download');
      btn.setAttribute('aria-label', t('files.download_name', { name: f.name }));
      btn.addEventListener('click', () => this.#download(f.file_id));
      li.append(name, meta, btn);
      return li;
    }));
  }
}
