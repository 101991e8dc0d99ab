// @ts-check
// "Transfer patient" dialog (staff): move a waiting patient, or the patient of the current
// consultation, to another waiting room of the organisation — a colleague's or a department's
// (signalling `transfer`, docs/protocol.md). Uses the native <dialog> (focus is kept inside,
// Escape closes, focus returns to the button that opened it).

import { $, h } from './dom.js';
import { t, setText, errorText } from './i18n.js';

/**
 * Whom the dialog moves: a waiting patient (`queue`: the room they wait in) or the patient of
 * the current consultation (`fromRoom`).
 * @typedef {{ participantId: string, name: string, queue?: import('./protocol.js').QueueRef, fromRoom?: boolean }} TransferContext
 */

/**
 * Human text for a refused transfer.
 * @param {any} err a SignallingError (or anything thrown)
 */
export function transferErrorText(err) {
  const code = err && err.code;
  if (code === 'not_found') return t('staff.transfer.nobody_online');
  if (code === 'forbidden') return t('staff.transfer.forbidden');
  if (code === 'invalid_state') return t('staff.transfer.not_now');
  if (code === 'not_connected' || code === 'closed' || code === 'timeout') return t('staff.transfer.no_connection');
  return err && err.message ? t('staff.transfer.failed_reason', { reason: errorText(err) }) : t('staff.transfer.failed');
}

export class TransferDialog {
  /**
   * @param {object} opts
   * @param {import('./directory.js').Directory} opts.directory
   * @param {() => { id?: string } | null} opts.me the signed-in staff member (`/api/v1/me`)
   * @param {(participantId: string, to: import('./protocol.js').QueueRef, ctx: TransferContext) => Promise<void>} opts.send
   *   sends `transfer`; rejects with a SignallingError
   * @param {(text: string, ctx: TransferContext) => void} opts.onDone called with a confirmation after success
   */
  constructor({ directory, me, send, onDone }) {
    this.directory = directory;
    this.me = me;
    this.send = send;
    this.onDone = onDone;
    /** @type {TransferContext | null} */
    this.ctx = null;
    this.el = {
      dialog: $('transfer-dialog', HTMLDialogElement),
      form: $('transfer-form', HTMLFormElement),
      who: $('transfer-who'),
      error: $('transfer-error'),
      target: $('transfer-target', HTMLSelectElement),
      submit: $('transfer-submit', HTMLButtonElement),
      cancel: $('transfer-cancel', HTMLButtonElement),
    };
    this.el.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.#submit();
    });
    this.el.cancel.addEventListener('click', () => this.close());
    this.el.dialog.addEventListener('close', () => { this.ctx = null; });
  }

  get isOpen() {
    return this.el.dialog.open;
  }

  /**
   * Opens the dialog for one patient.
   * @param {TransferContext} ctx
   */
  async open(ctx) {
    this.ctx = ctx;
    this.el.who.textContent = t('staff.transfer.who', { name: ctx.name || t('staff.transfer.this_patient') });
    this.#setError('');
    this.el.submit.disabled = false;
    setText(this.el.submit, 'staff.transfer');
    this.#fillTargets();
    if (!this.el.dialog.open) this.el.dialog.showModal();
    this.el.target.focus();
    if (!this.directory.loaded) {
      try {
        await this.directory.load();
        if (this.ctx === ctx) this.#fillTargets();
      } catch {
        if (this.ctx === ctx) this.#setError(t('staff.transfer.list_failed'));
      }
    }
  }

  close() {
    if (this.el.dialog.open) this.el.dialog.close();
  }

  #fillTargets() {
    const me = this.me();
    const current = this.ctx?.queue;
    /**
     * @param {string} kind
     * @param {string} id
     */
    const isCurrent = (kind, id) => current && current.kind === kind && current.id === id;
    const deps = this.directory.departments
      .filter((d) => !isCurrent('department', d.id))
      .map((d) => h('option', { value: `department:${d.id}` }, d.name));
    const people = this.directory.practitioners
      .filter((p) => !isCurrent('practitioner', p.id))
      .map((p) => h('option', { value: `practitioner:${p.id}` }, me && p.id === me.id ? `${p.name} (your own waiting room)` : p.name));
    const groups = [];
    if (deps.length) groups.push(h('optgroup', { label: t('staff.transfer.departments') }, deps));
    if (people.length) groups.push(h('optgroup', { label: t('staff.transfer.practitioners') }, people));
    this.el.target.replaceChildren(...groups);
    const empty = deps.length + people.length === 0;
    this.el.target.disabled = empty;
    this.el.submit.disabled = empty;
    if (empty && this.directory.loaded) this.#setError(t('staff.transfer.no_other'));
  }

  /** @param {string} text */
  #setError(text) {
    this.el.error.textContent = text;
    this.el.error.hidden = !text;
    if (text) this.el.target.setAttribute('aria-invalid', 'true');
    else this.el.target.removeAttribute('aria-invalid');
  }

  async #submit() {
    const ctx = this.ctx;
    if (!ctx) return;
    const value = this.el.target.value;
    const sep = value.indexOf(':');
    if (sep < 0) return;
    const to = { kind: /** @type {import('./protocol.js').QueueKind} */ (value.slice(0, sep)), id: value.slice(sep + 1) };
    const targetName = this.el.target.selectedOptions[0]?.textContent || '';
    this.#setError('');
    this.el.submit.disabled = true;
    setText(this.el.submit, 'staff.transfer.transferring');
    try {
      await this.send(ctx.participantId, to, ctx);
      if (this.ctx === ctx) this.close();
      this.onDone(t('staff.transfer.done', { name: ctx.name || t('staff.transfer.the_patient'), target: targetName }), ctx);
    } catch (err) {
      if (this.ctx !== ctx) return;
      this.#setError(transferErrorText(err));
      this.el.submit.disabled = false;
      setText(this.el.submit, 'staff.transfer');
      this.el.target.focus();
    }
  }
}
