// The organisation's directory for the staff app (`GET /api/v1/directory`): practitioners and
// departments by id, for waiting-room labels ("Cardiology" / "You"), transfer targets and
// announcement rooms. Names only; loaded once per session and on demand.

import { api } from './api.js';

export class Directory {
  constructor() {
    this.practitioners = [];
    this.departments = [];
    this.loaded = false;
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

  departmentName(id) {
    return this.departments.find((d) => d.id === id)?.name || '';
  }

  practitionerName(id) {
    return this.practitioners.find((p) => p.id === id)?.name || '';
  }

  /**
   * A short human name for a waiting room (`{kind, id}`), seen by staff member `me`:
   * "You" for their own room, the department's or colleague's name otherwise.
   */
  roomLabel(queue, me, { own = 'You' } = {}) {
    if (!queue || !queue.kind) return '';
    if (queue.kind === 'practitioner') {
      if (me && queue.id === me.id) return own;
      return this.practitionerName(queue.id) || 'A colleague';
    }
    if (queue.kind === 'department') return this.departmentName(queue.id) || 'Department';
    return '';
  }
}
