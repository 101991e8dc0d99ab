// @ts-check
// "Staff" page (issue #12; F1, F2, F5, F15) for organisation and department admins: the staff
// list with role, department and status; invite by e-mail (the one-time set-password link is
// e-mailed through the outbox and also shown to copy); change role, move between departments (organisation
// admins), deactivate (their sessions and live connections end at once) and reactivate, and a new
// set-password link. Organisation admins also manage departments (create, rename, delete when
// empty). API: /api/v1/staff, /api/v1/departments (clinic/openapi.json).

import { api } from './api.js';
import { h } from './dom.js';
import { page, onMe, me, showError, clearErrors, field, alertBox, statusLine, tx } from './admin-common.js';
import { t, formatDate } from './i18n.js';

/** The roles and their catalogue keys. */
const ROLES = [
  ['practitioner', 'staff.role.practitioner'],
  ['department_admin', 'staff.role.department_admin'],
  ['organisation_admin', 'staff.role.organisation_admin'],
];

const view = page({ id: 'staff-admin-view', title: 'staff.admin.title', button: 'staff.admin.title', onEnter: () => void load() });

/** @type {{ staff: any[], departments: any[] }} */
const data = { staff: [], departments: [] };

const pageAlert = alertBox();
const status = statusLine();
const linkBox = h('div', { class: 'panel', hidden: true });
const list = h('table', { class: 'admin-table' });
const departmentsPanel = h('section', { class: 'panel', 'aria-labelledby': 'departments-title' });

// ---------------------------------------------------------------- invite form

const inviteAlert = alertBox();
const inviteName = field({ id: 'invite-name', label: 'staff.profile.name', name: 'name', attrs: { maxlength: 100, required: true, autocomplete: 'off' } });
const inviteEmail = field({ id: 'invite-email', label: 'staff.email_address', name: 'email', type: 'email', attrs: { maxlength: 254, required: true, autocomplete: 'off' } });
const inviteRole = h('select', { id: 'invite-role', name: 'role' });
const inviteDept = h('select', { id: 'invite-department', name: 'department_id' });
const inviteForm = h('form', { class: 'panel', novalidate: true, 'aria-labelledby': 'invite-title' },
  tx('h2', 'staff.admin.invite_title', { id: 'invite-title' }),
  inviteAlert,
  inviteName.wrap,
  inviteEmail.wrap,
  h('div', { class: 'field' }, tx('label', 'staff.admin.role', { for: 'invite-role' }), inviteRole,
    h('p', { class: 'field-error', 'data-error-for': 'role', hidden: true })),
  h('div', { class: 'field' }, tx('label', 'staff.ann.department', { for: 'invite-department' }), inviteDept,
    h('p', { class: 'field-error', 'data-error-for': 'department_id', hidden: true })),
  tx('button', 'staff.admin.send_invitation', { type: 'submit', class: 'btn btn-primary' }));

renderRoleOptions();
view.body.append(pageAlert, status, inviteForm, linkBox,
  h('section', { class: 'panel', 'aria-labelledby': 'staff-list-title' },
    tx('h2', 'staff.admin.members', { id: 'staff-list-title' }), list),
  departmentsPanel);

onMe((m) => {
  view.setAllowed(!!m && (m.role === 'organisation_admin' || m.role === 'department_admin'));
  if (!m) linkBox.hidden = true;
});

function isOrgAdmin() {
  return me()?.role === 'organisation_admin';
}

/** @param {string | null} id */
function departmentName(id) {
  if (!id) return t('staff.admin.no_department');
  return data.departments.find((d) => d.id === id)?.name || t('staff.admin.another_department');
}

async function load() {
  clearErrors(pageAlert);
  try {
    const [staff, departments] = await Promise.all([api('/api/v1/staff'), api('/api/v1/departments')]);
    data.staff = staff.staff || [];
    data.departments = departments.departments || [];
  } catch (err) {
    showError(err, pageAlert);
    return;
  }
  render();
}

/** The roles the caller may give (organisation admin only by an organisation admin). */
function renderRoleOptions() {
  const chosen = inviteRole.value;
  inviteRole.replaceChildren(...ROLES
    .filter(([v]) => isOrgAdmin() || v !== 'organisation_admin')
    .map(([v, label]) => h('option', { value: v }, t(label))));
  if (chosen) inviteRole.value = chosen;
}

function render() {
  const orgAdmin = isOrgAdmin();
  renderRoleOptions();
  inviteDept.replaceChildren(
    ...(orgAdmin ? [h('option', { value: '' }, t('staff.admin.no_department'))] : []),
    ...data.departments.map((d) => h('option', { value: d.id }, d.name)));
  renderList();
  renderDepartments();
}

function renderList() {
  const orgAdmin = isOrgAdmin();
  const self = me()?.id;
  list.replaceChildren(
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, t('staff.profile.name')), h('th', { scope: 'col' }, t('staff.admin.email')), h('th', { scope: 'col' }, t('staff.admin.role')),
      h('th', { scope: 'col' }, t('staff.ann.department')), h('th', { scope: 'col' }, t('staff.admin.status')), h('th', { scope: 'col' }, t('staff.admin.actions')))),
    h('tbody', {}, ...data.staff.map((s) => {
      const label = `${s.name}`;
      const role = h('select', { 'aria-label': t('staff.admin.role_of', { name: label }), disabled: s.id === self && !orgAdmin });
      for (const [v, text] of ROLES) {
        if (!orgAdmin && v === 'organisation_admin' && s.role !== v) continue;
        const opt = h('option', { value: v }, t(text));
        if (v === s.role) opt.selected = true;
        role.append(opt);
      }
      role.addEventListener('change', () => act(`/api/v1/staff/${s.id}/role`, 'PUT', { role: role.value }, t('staff.admin.role_changed', { name: label })));
      /** @type {HTMLSelectElement | string} */
      let dept;
      if (orgAdmin) {
        dept = h('select', { 'aria-label': t('staff.admin.department_of', { name: label }) }, h('option', { value: '' }, t('staff.admin.no_department')),
          ...data.departments.map((d) => {
            const opt = h('option', { value: d.id }, d.name);
            if (d.id === s.department_id) opt.selected = true;
            return opt;
          }));
        dept.addEventListener('change', () => act(`/api/v1/staff/${s.id}/department`, 'PUT',
          { department_id: dept instanceof HTMLSelectElement && dept.value ? dept.value : null }, t('staff.admin.moved', { name: label })));
      } else {
        dept = departmentName(s.department_id);
      }
      const state = !s.active ? t('staff.admin.deactivated') : s.invitation_pending ? t('staff.admin.invited') : t('staff.admin.active');
      const actions = h('td', { class: 'admin-actions' });
      if (s.id !== self) {
        if (s.active) {
          actions.append(h('button', {
            type: 'button', class: 'btn btn-quiet btn-small', 'aria-label': t('staff.admin.deactivate_name', { name: label }),
            onclick: () => { if (confirm(t('staff.admin.deactivate_confirm', { name: label }))) void act(`/api/v1/staff/${s.id}/deactivate`, 'POST', undefined, t('staff.admin.was_deactivated', { name: label })); },
          }, t('staff.admin.deactivate')));
          actions.append(h('button', {
            type: 'button', class: 'btn btn-quiet btn-small', 'aria-label': t('staff.admin.new_link_for', { name: label }),
            onclick: /** @returns {void} */ () => { void newLink(s); },
          }, s.invitation_pending ? t('staff.admin.new_invitation_link') : t('staff.admin.reset_link')));
        } else {
          actions.append(h('button', {
            type: 'button', class: 'btn btn-quiet btn-small', 'aria-label': t('staff.admin.reactivate_name', { name: label }),
            onclick: /** @returns {void} */ () => { void act(`/api/v1/staff/${s.id}/reactivate`, 'POST', undefined, t('staff.admin.was_reactivated', { name: label })); },
          }, t('staff.admin.reactivate')));
        }
      }
      return h('tr', { dataset: { staffId: s.id } },
        h('td', {}, s.name), h('td', {}, s.email), h('td', {}, role), h('td', {}, dept), h('td', {}, state), actions);
    })));
}

/**
 * @param {string} path
 * @param {string} method
 * @param {unknown} body
 * @param {string} done
 */
async function act(path, method, body, done) {
  clearErrors(pageAlert);
  status.textContent = '';
  try {
    await api(path, { method, body });
    status.textContent = done;
  } catch (err) {
    showError(err, pageAlert);
  }
  await load();
}

/**
 * Shows a set-password link: e-mailed (`mail_id`) or, when no e-mail can be sent to the address,
 * to hand over.
 * @param {any} result `SetPasswordLink`
 * @param {string} who
 */
function showLink(result, who) {
  const input = h('input', { id: 'set-password-link', type: 'text', readonly: true, class: 'link-field' });
  input.value = result.set_password_url;
  const until = formatDate(result.expires_at, { year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: '2-digit', second: '2-digit' });
  linkBox.replaceChildren(
    h('h2', {}, t('staff.admin.link_for', { name: who })),
    h('p', { class: 'hint', id: 'set-password-link-note' }, result.mail_id
      ? t('staff.admin.link_mailed', { email: result.staff.email, name: who, until })
      : t('staff.admin.link_not_mailed', { email: result.staff.email, name: who, until })),
    h('label', { for: 'set-password-link' }, t('staff.admin.link')),
    input,
    h('button', {
      type: 'button', class: 'btn btn-quiet btn-small',
      onclick: () => { void navigator.clipboard?.writeText(input.value).then(() => { status.textContent = t('staff.admin.link_copied'); }, () => input.select()); },
    }, t('staff.admin.copy_link')));
  linkBox.hidden = false;
}

/** @param {any} s */
async function newLink(s) {
  clearErrors(pageAlert);
  try {
    const result = await api(`/api/v1/staff/${s.id}/set-password-link`, { method: 'POST' });
    showLink(result, s.name);
  } catch (err) {
    showError(err, pageAlert);
  }
}

inviteForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(inviteAlert, inviteForm);
  const body = {
    name: inviteName.input.value.trim(),
    email: inviteEmail.input.value.trim(),
    role: inviteRole.value,
    department_id: inviteDept.value || null,
  };
  try {
    const result = await api('/api/v1/staff', { method: 'POST', body });
    showLink(result, result.staff.name);
    inviteForm.reset();
    status.textContent = t('staff.admin.was_invited', { name: result.staff.name });
    await load();
  } catch (err) {
    showError(err, inviteAlert, inviteForm);
  }
});

// ---------------------------------------------------------------- departments

const deptAlert = alertBox();
const newDept = field({ id: 'department-new-name', label: 'staff.admin.new_department', name: 'name', attrs: { maxlength: 100, autocomplete: 'off' } });
const deptForm = h('form', { novalidate: true }, newDept.wrap, tx('button', 'staff.admin.add_department', { type: 'submit', class: 'btn btn-secondary btn-small' }));
deptForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(deptAlert, deptForm);
  try {
    await api('/api/v1/departments', { method: 'POST', body: { name: newDept.input.value.trim() } });
    deptForm.reset();
    status.textContent = t('staff.admin.department_added');
    await load();
  } catch (err) {
    showError(err, deptAlert, deptForm);
  }
});

function renderDepartments() {
  const orgAdmin = isOrgAdmin();
  const rows = data.departments.map((d) => {
    const name = h('input', { type: 'text', value: d.name, maxlength: 100, 'aria-label': t('staff.admin.department_name_of', { name: d.name }) });
    return h('li', { class: 'admin-department' }, name,
      h('span', { class: 'hint' }, ` ${d.staff_count} staff `),
      orgAdmin ? h('button', {
        type: 'button', class: 'btn btn-quiet btn-small', 'aria-label': t('staff.admin.rename_department', { name: d.name }),
        onclick: async () => {
          clearErrors(deptAlert);
          try { await api(`/api/v1/departments/${d.id}`, { method: 'PUT', body: { name: name.value.trim() } }); status.textContent = t('staff.admin.department_renamed'); } catch (err) { showError(err, deptAlert); }
          await load();
        },
      }, t('staff.admin.rename')) : null,
      orgAdmin ? h('button', {
        type: 'button', class: 'btn btn-quiet btn-small', 'aria-label': t('staff.admin.delete_department', { name: d.name }),
        onclick: async () => {
          clearErrors(deptAlert);
          try { await api(`/api/v1/departments/${d.id}`, { method: 'DELETE' }); status.textContent = t('staff.admin.department_deleted'); } catch (err) { showError(err, deptAlert); }
          await load();
        },
      }, t('staff.delete')) : null);
  });
  if (!orgAdmin) {
    for (const input of rows.map((r) => r.querySelector('input'))) if (input) input.readOnly = true;
  }
  departmentsPanel.replaceChildren(
    h('h2', { id: 'departments-title' }, t('staff.admin.departments')),
    deptAlert,
    h('ul', { class: 'admin-list' }, ...rows),
    orgAdmin ? deptForm : null);
}
