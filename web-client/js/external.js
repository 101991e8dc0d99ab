// @ts-check
// External participants and their groups (issue #4; F16, F17) in the staff app: a "People" button
// in the top bar opens a dialog that lists the organisation's external participants (family, home
// care, interpreters: people who join appointments without being the client), filtered by group;
// any staff member adds and edits them (the fields of a client, plus groups); organisation and
// department admins also manage the groups and delete records. Inviting them to an appointment
// happens in the guests dialog (guests.js), which reads the same lists through `invitables()`.
//
// Built in script (static markup only; names are set with textContent), so index.html needs
// nothing. The server checks every rule; the UI only hides what the caller may not do.

import { api } from './api.js';
import { h } from './dom.js';
import { t, errorText as apiErrorText } from './i18n.js';

/** What a 422 without a message asks to check, by subject. */
const CHECK = {
  fields: 'staff.people.check_fields', 'group name': 'staff.people.check_group_name', group: 'staff.people.check_group',
  list: 'staff.people.check_list', person: 'staff.people.check_person',
};

/** The organisation's groups and records, for the guests dialog's picker. */
export async function invitables() {
  const [g, p] = await Promise.all([
    api('/api/v1/participant-groups'),
    api('/api/v1/external-participants'),
  ]);
  return { groups: g.groups || [], people: p.external_participants || [] };
}

/** @param {any} err an ApiError (or anything thrown) @param {keyof typeof CHECK} what */
function errorText(err, what) {
  if (err && err.status === 422) return err.message ? apiErrorText(err) : t(CHECK[what]);
  if (err && err.status === 409) return err.message ? apiErrorText(err) : t('staff.people.name_taken');
  if (err && err.status === 403) return t('staff.people.admins_only');
  if (err && err.status === 404) return t('staff.people.deleted_meanwhile');
  return err && err.message ? t('staff.guest.failed_reason', { reason: apiErrorText(err) }) : t('staff.guest.failed');
}

export class ExternalPeople {
  /** @param {{role: string}} me the signed-in staff member */
  constructor(me) {
    this.admin = me && (me.role === 'organisation_admin' || me.role === 'department_admin');
    /** @type {any[]} groups of external participants (`GET /api/v1/external-participant-groups`) */
    this.groups = [];
    /** @type {any[]} external participants (`GET /api/v1/external-participants`) */
    this.people = [];
    this.editing = null; // record id being edited, or null for a new one
    this.button = h('button', { type: 'button', id: 'people-btn', class: 'btn btn-quiet', 'aria-haspopup': 'dialog', onclick: () => this.open(), 'data-i18n': 'staff.people.title' }, t('staff.people.title'));
    const right = document.querySelector('.topbar-right');
    right?.insertBefore(this.button, document.getElementById('walkin-toggle'));
    this.dialog = this.#build();
    document.body.append(this.dialog);
  }

  destroy() {
    this.button.remove();
    this.dialog.remove();
  }

  async open() {
    this.#error('');
    this.#resetForm();
    if (!this.dialog.open) this.dialog.showModal();
    await this.refresh();
  }

  #build() {
    const e = {};
    e.error = h('div', { id: 'people-error', class: 'alert alert-error', role: 'alert', hidden: true });
    e.status = h('p', { id: 'people-status', class: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
    e.filter = h('select', { id: 'people-filter' });
    e.filter.addEventListener('change', () => this.#renderPeople());
    e.list = h('ul', { id: 'people-list', class: 'people-list', 'aria-label': t('staff.people.external') });
    // The record form.
    e.formTitle = h('h3', { id: 'people-form-title' }, t('staff.people.add_person_title'));
    e.name = h('input', { id: 'people-name', name: 'name', maxlength: 200, required: true, autocomplete: 'off' });
    e.email = h('input', { id: 'people-email', name: 'email', type: 'email', maxlength: 254, autocomplete: 'off' });
    e.phone = h('input', { id: 'people-phone', name: 'phone', type: 'tel', maxlength: 32, autocomplete: 'off' });
    e.dob = h('input', { id: 'people-dob', name: 'date_of_birth', type: 'date' });
    e.groupBoxes = h('div', { id: 'people-groups', class: 'people-groups' });
    e.save = h('button', { type: 'submit', id: 'people-save', class: 'btn btn-primary' }, t('staff.people.add_person'));
    e.cancel = h('button', { type: 'button', id: 'people-cancel', class: 'btn btn-quiet', hidden: true, onclick: () => this.#resetForm(), 'data-i18n': 'staff.people.cancel_editing' }, t('staff.people.cancel_editing'));
    const form = h('form', { id: 'people-form', class: 'people-form', novalidate: true, 'aria-labelledby': 'people-form-title' },
      e.formTitle,
      h('div', { class: 'field' }, h('label', { for: 'people-name', 'data-i18n': 'staff.profile.name' }, t('staff.profile.name')), e.name),
      h('div', { class: 'field' }, h('label', { for: 'people-email' }, t('staff.e_mail'), ' ', h('span', { class: 'optional', 'data-i18n': 'staff.optional' }, t('staff.optional'))), e.email),
      h('div', { class: 'field' }, h('label', { for: 'people-phone' }, t('staff.profile.phone'), ' ', h('span', { class: 'optional', 'data-i18n': 'staff.optional' }, t('staff.optional'))), e.phone),
      h('div', { class: 'field' }, h('label', { for: 'people-dob' }, t('staff.date_of_birth'), ' ', h('span', { class: 'optional', 'data-i18n': 'staff.optional' }, t('staff.optional'))), e.dob),
      h('fieldset', { class: 'field' }, h('legend', { 'data-i18n': 'staff.people.groups' }, t('staff.people.groups')), e.groupBoxes),
      h('div', { class: 'actions' }, e.save, e.cancel));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.#save();
    });
    // Group management (admins).
    e.groupList = h('ul', { id: 'people-group-list', class: 'people-group-list', 'aria-label': t('staff.people.groups') });
    e.groupName = h('input', { id: 'people-group-name', maxlength: 60, autocomplete: 'off' });
    const groupForm = h('form', { id: 'people-group-form', class: 'people-group-form', novalidate: true },
      h('label', { for: 'people-group-name', 'data-i18n': 'staff.people.new_group' }, t('staff.people.new_group')), e.groupName,
      h('button', { type: 'submit', class: 'btn btn-secondary btn-small', 'data-i18n': 'staff.people.add_group' }, t('staff.people.add_group')));
    groupForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.#addGroup();
    });
    const groups = h('section', { class: 'people-admin', hidden: !this.admin, 'aria-labelledby': 'people-groups-title' },
      h('h3', { id: 'people-groups-title', 'data-i18n': 'staff.people.groups' }, t('staff.people.groups')),
      h('p', { class: 'hint', 'data-i18n': 'staff.people.groups_hint' }, t('staff.people.groups_hint')),
      e.groupList, groupForm);
    const dialog = h('dialog', { id: 'people-dialog', class: 'dialog people-dialog', 'aria-labelledby': 'people-title', 'aria-describedby': 'people-help' },
      h('div', { class: 'chat-dialog-head' },
        h('h2', { id: 'people-title', 'data-i18n': 'staff.people.title' }, t('staff.people.title')),
        h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => dialog.close(), 'data-i18n': 'staff.close' }, t('staff.close'))),
      h('p', { id: 'people-help', 'data-i18n': 'staff.people.help' }, t('staff.people.help')),
      e.error, e.status,
      h('div', { class: 'field' }, h('label', { for: 'people-filter', 'data-i18n': 'staff.sched.show' }, t('staff.sched.show')), e.filter),
      e.list, form, groups);
    this.el = e;
    return dialog;
  }

  /** @param {string} text */
  #error(text) {
    this.el.error.textContent = text;
    this.el.error.hidden = !text;
  }

  async refresh() {
    try {
      const { groups, people } = await invitables();
      this.groups = groups;
      this.people = people;
    } catch (err) {
      this.#error(errorText(err, 'list'));
      return;
    }
    this.#renderFilter();
    this.#renderPeople();
    this.#renderGroupBoxes();
    this.#renderGroups();
  }

  /** @param {string} id */
  #groupName(id) {
    return this.groups.find((g) => g.id === id)?.name || '';
  }

  #renderFilter() {
    const current = this.el.filter.value;
    this.el.filter.replaceChildren(h('option', { value: '', 'data-i18n': 'staff.sched.everyone' }, t('staff.sched.everyone')),
      ...this.groups.map((g) => h('option', { value: g.id }, `${g.name} (${g.member_count})`)));
    if (this.groups.some((g) => g.id === current)) this.el.filter.value = current;
  }

  #renderPeople() {
    const filter = this.el.filter.value;
    const shown = this.people.filter((p) => !filter || p.group_ids.includes(filter));
    const items = shown.map((p) => {
      const groups = p.group_ids.map((/** @type {string} */ id) => this.#groupName(id)).filter(Boolean).join(', ');
      return h('li', { class: 'people-item', dataset: { personId: p.id } },
        h('span', { class: 'people-name' }, p.name),
        h('span', { class: 'people-meta' }, groups || t('staff.sched.no_group')),
        h('span', { class: 'people-actions' },
          h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => this.#edit(p) },
            t('staff.people.edit'), h('span', { class: 'visually-hidden' }, ` ${p.name}`)),
          this.admin ? h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => this.#delete(p) },
            t('staff.delete'), h('span', { class: 'visually-hidden' }, ` ${p.name}`)) : null));
    });
    this.el.list.replaceChildren(...(items.length ? items : [h('li', { class: 'people-empty' }, filter ? t('staff.people.nobody_in_group') : t('staff.guest.nobody'))]));
  }

  #renderGroupBoxes() {
    const checked = new Set([...this.el.groupBoxes.querySelectorAll('input:checked')].map((i) => /** @type {HTMLInputElement} */ (i)).map((i) => i.value));
    const boxes = this.groups.map((g) => h('label', { class: 'people-check' },
      h('input', { type: 'checkbox', name: 'group', value: g.id, checked: checked.has(g.id) }), ' ', g.name));
    this.el.groupBoxes.replaceChildren(...(boxes.length ? boxes : [h('p', { class: 'hint' }, this.admin ? t('staff.people.no_groups_add') : t('staff.people.no_groups'))]));
  }

  #renderGroups() {
    if (!this.admin) return;
    this.el.groupList.replaceChildren(...this.groups.map((g) => h('li', { dataset: { groupId: g.id } },
      h('span', { class: 'people-name' }, g.name), ' ',
      h('span', { class: 'people-meta' }, t('staff.people.count', { count: g.member_count })), ' ',
      h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => this.#renameGroup(g) },
        t('staff.admin.rename'), h('span', { class: 'visually-hidden' }, ` ${g.name}`)),
      h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => this.#deleteGroup(g) },
        t('staff.delete'), h('span', { class: 'visually-hidden' }, ` ${t('staff.people.group_name', { name: g.name })}`)))));
  }

  #resetForm() {
    this.editing = null;
    for (const f of [this.el.name, this.el.email, this.el.phone, this.el.dob]) f.value = '';
    for (const box of this.el.groupBoxes.querySelectorAll('input')) box.checked = false;
    this.el.formTitle.textContent = t('staff.people.add_person_title');
    this.el.save.textContent = t('staff.people.add_person');
    this.el.cancel.hidden = true;
  }

  /** @param {any} p an external participant */
  #edit(p) {
    this.#error('');
    this.editing = p.id;
    this.el.name.value = p.name;
    this.el.email.value = p.email || '';
    this.el.phone.value = p.phone || '';
    this.el.dob.value = p.date_of_birth || '';
    for (const box of this.el.groupBoxes.querySelectorAll('input')) box.checked = p.group_ids.includes(box.value);
    this.el.formTitle.textContent = t('staff.people.edit_name', { name: p.name });
    this.el.save.textContent = t('staff.people.save_changes');
    this.el.cancel.hidden = false;
    this.el.name.focus();
  }

  async #save() {
    const name = this.el.name.value.trim();
    if (!name) {
      this.#error(t('staff.people.enter_name'));
      this.el.name.focus();
      return;
    }
    const body = {
      name,
      email: this.el.email.value.trim() || null,
      phone: this.el.phone.value.trim() || null,
      date_of_birth: this.el.dob.value || null,
      group_ids: [...this.el.groupBoxes.querySelectorAll('input:checked')].map((i) => /** @type {HTMLInputElement} */ (i)).map((i) => i.value),
    };
    this.#error('');
    this.el.save.disabled = true;
    try {
      if (this.editing) {
        await api(`/api/v1/external-participants/${encodeURIComponent(this.editing)}`, { method: 'PUT', body });
        this.el.status.textContent = t('staff.people.saved', { name });
      } else {
        await api('/api/v1/external-participants', { method: 'POST', body });
        this.el.status.textContent = t('staff.people.added', { name });
      }
      this.#resetForm();
      await this.refresh();
    } catch (err) {
      this.#error(errorText(err, 'fields'));
    } finally {
      this.el.save.disabled = false;
    }
  }

  /** @param {any} p an external participant */
  async #delete(p) {
    if (!window.confirm(t('staff.people.confirm_delete', { name: p.name }))) return;
    try {
      await api(`/api/v1/external-participants/${encodeURIComponent(p.id)}`, { method: 'DELETE' });
      if (this.editing === p.id) this.#resetForm();
      this.el.status.textContent = t('staff.people.deleted', { name: p.name });
      await this.refresh();
    } catch (err) {
      this.#error(errorText(err, 'person'));
    }
  }

  async #addGroup() {
    const name = this.el.groupName.value.trim();
    if (!name) {
      this.#error(t('staff.people.enter_group_name'));
      this.el.groupName.focus();
      return;
    }
    try {
      await api('/api/v1/participant-groups', { method: 'POST', body: { name } });
      this.el.groupName.value = '';
      this.#error('');
      await this.refresh();
    } catch (err) {
      this.#error(errorText(err, 'group name'));
    }
  }

  /** @param {any} g a group */
  async #renameGroup(g) {
    const name = window.prompt(t('staff.people.rename_prompt', { name: g.name }), g.name);
    if (name === null || !name.trim() || name.trim() === g.name) return;
    try {
      await api(`/api/v1/participant-groups/${encodeURIComponent(g.id)}`, { method: 'PUT', body: { name: name.trim() } });
      this.#error('');
      await this.refresh();
    } catch (err) {
      this.#error(errorText(err, 'group name'));
    }
  }

  /** @param {any} g a group */
  async #deleteGroup(g) {
    if (!window.confirm(t('staff.people.confirm_delete_group', { name: g.name }))) return;
    try {
      await api(`/api/v1/participant-groups/${encodeURIComponent(g.id)}`, { method: 'DELETE' });
      this.#error('');
      await this.refresh();
    } catch (err) {
      this.#error(errorText(err, 'group'));
    }
  }
}
