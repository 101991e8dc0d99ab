// @ts-check
// "Transfer patient" dialog (staff): move a waiting patient, or the patient of the current
// consultation, to another waiting room of the organisation — a colleague's or a department's
// (signalling `transfer`, docs/protocol.md). Uses the native <dialog> (focus is kept inside,
// Escape closes, focus returns to the button that opened it).

import { $, h } from './dom.js';

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
  if (code === 'not_found') return 'No one is online for that waiting room. Choose another one, or try again when a colleague is online.';
  if (code === 'forbidden') return 'You may not transfer this patient.';
  if (code === 'invalid_state') return 'The patient cannot be transferred right now.';
  if (code === 'not_connected' || code === 'closed' || code === 'timeout') return 'There is no connection to the server. Try again in a moment.';
  return `The patient could not be transferred${err && err.message ? `: ${err.message}` : '.'}`;
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
    this.el.who.textContent = `Move ${ctx.name || 'this patient'} to another waiting room. They keep their arrival time.`;
    this.#setError('');
    this.el.submit.disabled = false;
    this.el.submit.textContent = 'Transfer';
    this.#fillTargets();
    if (!this.el.dialog.open) this.el.dialog.showModal();
    this.el.target.focus();
    if (!this.directory.loaded) {
      try {
        await this.directory.load();
        if (this.ctx === ctx) this.#fillTargets();
      } catch {
        if (this.ctx === ctx) this.#setError('The list of colleagues and departments could not be loaded. Close this window and try again.');
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
    if (deps.length) groups.push(h('optgroup', { label: 'Department waiting rooms' }, deps));
    if (people.length) groups.push(h('optgroup', { label: 'Practitioners' }, people));
    this.el.target.replaceChildren(...groups);
    const empty = deps.length + people.length === 0;
    this.el.target.disabled = empty;
    this.el.submit.disabled = empty;
    if (empty && this.directory.loaded) this.#setError('There is no other waiting room to transfer to.');
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
    this.el.submit.textContent = 'Transferring…';
    try {
      await this.send(ctx.participantId, to, ctx);
      if (this.ctx === ctx) this.close();
      this.onDone(`${ctx.name || 'The patient'} was transferred to ${targetName}.`, ctx);
    } catch (err) {
      if (this.ctx !== ctx) return;
      this.#setError(transferErrorText(err));
      this.el.submit.disabled = false;
      this.el.submit.textContent = 'Transfer';
      this.el.target.focus();
    }
  }
}
