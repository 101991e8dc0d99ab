// @ts-check
// The organisation's directory for the staff app (`GET /api/v1/directory`): practitioners and
// departments by id, for waiting-room labels ("Cardiology" / "You"), transfer targets and
// announcement rooms. Names only; loaded once per session and on demand.

import { api } from './api.js';
import { t } from './i18n.js';

/**
 * The signed-in staff member (`GET /api/v1/me`, clinic/openapi.json), as far as the app reads it.
 * @typedef {{ id: string, name?: string, role?: 'organisation_admin' | 'department_admin' | 'practitioner' | string,
 *   department_id?: string | null }} StaffMe
 */

export class Directory {
  constructor() {
    /** @type {{ id: string, name: string, department_id?: string | null }[]} */
    this.practitioners = [];
    /** @type {{ id: string, name: string }[]} */
    this.departments = [];
    this.loaded = false;
    /** @type {Promise<Directory> | null} */
    this.loading = null;
  }

  /** Loads (or reloads) the directory. Rejects with ApiError; callers decide how to show it. */
  load() {
    if (this.loading) return this.loading;
    this.loading = api('/api/v1/directory')
      .then((data) => {
        this.practitioners = Array.isArray(data?.practitioners) ? data.practitioners : [];
        this.departments = Array.isArray(data?.departments) ? data.departments : [];
        this.loaded = true;
        return this;
      })
      .finally(() => { this.loading = null; });
    return this.loading;
  }

  clear() {
    this.practitioners = [];
    this.departments = [];
    this.loaded = false;
  }

  /** @param {string} id */
  departmentName(id) {
    return this.departments.find((d) => d.id === id)?.name || '';
  }

  /** @param {string} id */
  practitionerName(id) {
    return this.practitioners.find((p) => p.id === id)?.name || '';
  }

  /**
   * A short human name for a waiting room (`{kind, id}`), seen by staff member `me`:
   * "You" for their own room, the department's or colleague's name otherwise.
   * @param {import('./protocol.js').QueueRef | null | undefined} queue
   * @param {{ id?: string } | null | undefined} me
   * @param {{ own?: string }} [opts]
   */
  roomLabel(queue, me, { own = t('staff.you') } = {}) {
    if (!queue || !queue.kind) return '';
    if (queue.kind === 'practitioner') {
      if (me && queue.id === me.id) return own;
      return this.practitionerName(queue.id) || t('staff.a_colleague');
    }
    if (queue.kind === 'department') return this.departmentName(queue.id) || t('staff.ann.department');
    return '';
  }
}
