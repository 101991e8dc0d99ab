// @ts-check
// A client's records in the staff app (issue #15, first part), shown in the client dialog
// (client-register.js) below the form: in a veterinary organisation the client's patients
// (animals: add, edit, record a death; `GET/POST /api/v1/clients/{id}/patients`,
// `PUT /api/v1/patients/{id}`, `PUT /api/v1/patients/{id}/deceased`), then the timeline
// (`GET /api/v1/clients/{id}/timeline` or one patient's `GET /api/v1/patients/{id}/timeline`,
// newest first, "Show older" follows `next_cursor`; archived notes on request, F189) with
// "Add note" and "Record a service" (`POST /api/v1/clients/{id}/notes`,
// `POST /api/v1/patients/{id}/service-records`) and, on a note the caller may change, Edit and
// Archive/Unarchive. The server decides every rule and names the field it refuses; texts are
// set with textContent only, from the language catalogues (`staff.records.*`; fixed parts carry
// `data-i18n`, rows are built in the language of the moment).

import { api, ApiError } from './api.js';
import { h } from './dom.js';
import { t, setText, formatDate, errorText as apiErrorText } from './i18n.js';
import { tx } from './admin-common.js';

/**
 * @typedef {{ id: string, client_id: string, is_client: boolean, name: string, species: string | null,
 *   breed: string | null, date_of_birth: string | null, deceased_on: string | null }} Patient
 * @typedef {{ id: string, name: string, code: string | null, active: boolean }} Service
 */

/** @type {{ client: any, patients: Patient[], kind: string, services: Service[], cursor: string | null }} */
const state = { client: null, patients: [], kind: 'human', services: [], cursor: null };

// ---------------------------------------------------------------- markup

const error = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });

const patientList = h('ul', { class: 'client-patients' });
const patientForm = h('form', { class: 'panel', novalidate: true });
const pName = h('input', { id: 'patient-name', maxlength: 100, required: true, autocomplete: 'off' });
const pSpecies = h('input', { id: 'patient-species', maxlength: 60, required: true, autocomplete: 'off' });
const pBreed = h('input', { id: 'patient-breed', maxlength: 60, autocomplete: 'off' });
const pDob = h('input', { id: 'patient-dob', type: 'date' });
const pSave = tx('button', 'staff.records.add_patient', { type: 'submit', class: 'btn btn-secondary btn-small' });
const pCancel = tx('button', 'common.cancel', { type: 'button', class: 'btn btn-quiet btn-small', hidden: true });
/** @type {string | null} the patient being edited (null: adding) */
let editing = null;

/**
 * @param {string} id
 * @param {string} label a catalogue key
 * @param {HTMLElement} control
 */
function field(id, label, control) {
  return h('div', { class: 'field' }, tx('label', label, { for: id }), control);
}

patientForm.append(field('patient-name', 'staff.profile.name', pName), field('patient-species', 'staff.records.species', pSpecies),
  field('patient-breed', 'staff.records.breed', pBreed), field('patient-dob', 'staff.date_of_birth', pDob), pSave, ' ', pCancel);
const patientsSection = h('section', { 'aria-labelledby': 'client-patients-title', hidden: true },
  tx('h3', 'staff.records.patients', { id: 'client-patients-title' }), patientList, patientForm);

const timelinePatient = h('select', { id: 'timeline-patient' });
const timelineArchived = h('select', { id: 'timeline-archived' },
  tx('option', 'staff.records.without_archived', { value: 'exclude' }),
  tx('option', 'staff.records.with_archived', { value: 'include' }),
  tx('option', 'staff.records.archived_only', { value: 'only' }));
const timelineList = h('ul', { class: 'client-timeline' });
const timelineStatus = h('p', { class: 'hint', role: 'status' });
const olderBtn = tx('button', 'staff.records.show_older', { type: 'button', class: 'btn btn-quiet btn-small', hidden: true });

const noteText = h('textarea', { id: 'note-text', rows: 3, maxlength: 10000 });
const notePatient = h('select', { id: 'note-patient' });
const noteForm = h('form', { class: 'panel', novalidate: true },
  field('note-text', 'staff.records.note', noteText), field('note-patient', 'staff.records.about', notePatient),
  tx('button', 'staff.records.add_note', { type: 'submit', class: 'btn btn-secondary btn-small' }));

const recordPatient = h('select', { id: 'record-patient' });
const recordService = h('select', { id: 'record-service' });
const recordDate = h('input', { id: 'record-date', type: 'date', required: true });
const recordNote = h('input', { id: 'record-note', maxlength: 2000, autocomplete: 'off' });
const recordForm = h('form', { class: 'panel', novalidate: true },
  field('record-patient', 'staff.patient', recordPatient), field('record-service', 'staff.records.service', recordService),
  field('record-date', 'staff.records.performed_on', recordDate), field('record-note', 'staff.records.note_optional', recordNote),
  tx('button', 'staff.records.record_service', { type: 'submit', class: 'btn btn-secondary btn-small' }));

const timelineSection = h('section', { 'aria-labelledby': 'client-timeline-title' },
  tx('h3', 'staff.records.timeline', { id: 'client-timeline-title' }),
  field('timeline-patient', 'staff.sched.show', timelinePatient), field('timeline-archived', 'staff.records.notes', timelineArchived),
  noteForm, recordForm, timelineStatus, timelineList, olderBtn);

/** The records part of the client dialog; client-register.js appends it. */
export const recordsSection = h('div', { class: 'client-records' }, error, patientsSection, timelineSection);

// ---------------------------------------------------------------- loading

/**
 * Shows the records of `client` (a row of `GET /api/v1/clients`).
 * @param {any} client
 */
export async function showRecords(client) {
  state.client = client;
  state.cursor = null;
  showError('');
  timelineList.replaceChildren();
  try {
    const [p, s] = await Promise.all([
      api(`/api/v1/clients/${encodeURIComponent(client.id)}/patients`),
      api('/api/v1/services'),
    ]);
    if (state.client !== client) return;
    state.patients = p.patients || [];
    state.kind = p.organisation_kind || 'human';
    state.services = s.services || [];
  } catch (err) {
    showError(errorText(err));
    return;
  }
  renderPatients();
  await loadTimeline(false);
}

function renderPatients() {
  const vet = state.kind === 'veterinary';
  patientsSection.hidden = !vet;
  patientList.replaceChildren(...state.patients.filter((p) => !p.is_client).map(patientRow));
  if (vet && !state.patients.some((p) => !p.is_client)) patientList.append(tx('li', 'staff.records.no_patients', { class: 'hint' }));
  resetPatientForm();
  const clientOption = () => (vet ? tx('option', 'staff.records.the_client', { value: state.client.id }) : h('option', { value: state.client.id }, state.client.name));
  const animals = state.patients.filter((p) => !p.is_client);
  const keep = timelinePatient.value;
  timelinePatient.replaceChildren(tx('option', 'staff.records.everything', { value: '' }),
    ...animals.map((p) => h('option', { value: p.id }, p.name)));
  timelinePatient.value = animals.some((p) => p.id === keep) ? keep : '';
  timelinePatient.parentElement?.toggleAttribute('hidden', !vet);
  notePatient.replaceChildren(clientOption(), ...animals.map((p) => h('option', { value: p.id }, p.name)));
  // Services are recorded on an animal (veterinary) or on the client themself (human).
  const living = animals.filter((p) => !p.deceased_on);
  recordPatient.replaceChildren(...(vet ? living.map((p) => h('option', { value: p.id }, p.name)) : [clientOption()]));
  recordService.replaceChildren(...state.services.map((s) => h('option', { value: s.id }, s.code ? `${s.name} (${s.code})` : s.name)));
  recordForm.hidden = state.services.length === 0 || (vet && living.length === 0);
  recordDate.value = today();
}

/** @param {Patient} p */
function patientRow(p) {
  const facts = [p.species, p.breed, p.date_of_birth ? t('staff.clients.born', { date: p.date_of_birth }) : null,
    p.deceased_on ? t('staff.records.died', { date: p.deceased_on }) : null].filter(Boolean).join(' · ');
  const died = h('input', { type: 'date', 'aria-label': t('staff.records.date_of_death_of', { name: p.name }), value: p.deceased_on || today() });
  return h('li', { dataset: { patientId: p.id } },
    h('span', { class: 'people-name' }, p.name), ' ', h('span', { class: 'people-meta' }, facts), ' ',
    h('button', { type: 'button', class: 'btn btn-quiet btn-small', onclick: () => startEdit(p) }, t('staff.people.edit'), h('span', { class: 'visually-hidden' }, ` ${p.name}`)),
    p.deceased_on ? null : h('span', {}, ' ', died, ' ', h('button', {
      type: 'button',
      class: 'btn btn-quiet btn-small',
      onclick: () => act(() => api(`/api/v1/patients/${encodeURIComponent(p.id)}/deceased`, { method: 'PUT', body: { deceased_on: died.value } })),
    }, t('staff.records.record_death'), h('span', { class: 'visually-hidden' }, t('staff.records.of_name', { name: p.name })))));
}

/** @param {Patient} p */
function startEdit(p) {
  editing = p.id;
  pName.value = p.name;
  pSpecies.value = p.species || '';
  pBreed.value = p.breed || '';
  pDob.value = p.date_of_birth || '';
  setText(pSave, 'staff.records.save_patient');
  pCancel.hidden = false;
  pName.focus();
}

function resetPatientForm() {
  editing = null;
  patientForm.reset();
  setText(pSave, 'staff.records.add_patient');
  pCancel.hidden = true;
}
pCancel.addEventListener('click', resetPatientForm);

patientForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const body = { name: pName.value, species: pSpecies.value, breed: pBreed.value || null, date_of_birth: pDob.value || null };
  const id = editing;
  void act(() => id
    ? api(`/api/v1/patients/${encodeURIComponent(id)}`, { method: 'PUT', body })
    : api(`/api/v1/clients/${encodeURIComponent(state.client.id)}/patients`, { method: 'POST', body }));
});

/**
 * Loads the newest page of the timeline, or (`older`) the page after the last one shown.
 * @param {boolean} older
 */
async function loadTimeline(older) {
  const client = state.client;
  const patient = timelinePatient.value;
  const base = patient ? `/api/v1/patients/${encodeURIComponent(patient)}/timeline` : `/api/v1/clients/${encodeURIComponent(client.id)}/timeline`;
  const params = new URLSearchParams({ limit: '30', archived: timelineArchived.value });
  if (older && state.cursor) params.set('cursor', state.cursor);
  if (!older) timelineList.replaceChildren();
  timelineStatus.textContent = t('staff.loading');
  try {
    const page = await api(`${base}?${params}`);
    if (state.client !== client) return;
    for (const item of page.items || []) timelineList.append(timelineRow(item));
    state.cursor = page.next_cursor || null;
    olderBtn.hidden = !state.cursor;
    timelineStatus.textContent = timelineList.children.length ? '' : t('staff.records.nothing_yet');
  } catch (err) {
    timelineStatus.textContent = errorText(err);
  }
}
timelinePatient.addEventListener('change', () => void loadTimeline(false));
timelineArchived.addEventListener('change', () => void loadTimeline(false));
olderBtn.addEventListener('click', () => void loadTimeline(true));

/** @param {string} iso */
function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : formatDate(d, { dateStyle: 'medium', timeStyle: 'short' });
}

/** @param {string | null} id */
function patientName(id) {
  const p = state.patients.find((x) => x.id === id);
  return p && !p.is_client ? p.name : null;
}

/**
 * One timeline item, by its `type`.
 * @param {any} item
 */
function timelineRow(item) {
  const li = h('li', { dataset: { type: item.type, id: item.id } });
  switch (item.type) {
    case 'note': {
      const about = patientName(item.patient_id);
      const what = t(about ? 'staff.records.note_on_by' : 'staff.records.note_by', { patient: about || '', author: item.author_name || t('staff.records.former_colleague') });
      li.append(h('span', { class: 'people-meta' }, `${when(item.created_at)} · ${what}${item.edited_at ? t('staff.records.edited') : ''}${item.archived_at ? t('staff.records.archived') : ''}`),
        h('p', { class: 'note-text' }, item.text));
      if (item.editable) li.append(...noteActions(item));
      break;
    }
    case 'service_record': {
      const about = patientName(item.patient_id);
      li.append(h('span', { class: 'people-meta' }, `${item.performed_on} · ${item.service_name}${about ? t('staff.records.on_patient', { name: about }) : ''}${item.performed_by_name ? t('staff.records.by_name', { name: item.performed_by_name }) : ''}`),
        item.note ? h('p', {}, item.note) : null);
      break;
    }
    case 'appointment':
      li.append(h('span', { class: 'people-meta' }, `${when(item.starts_at)} · ${t('staff.records.appointment_with', { name: item.practitioner_name, status: item.status })}`));
      break;
    case 'communication':
      li.append(h('span', { class: 'people-meta' }, `${when(item.created_at)} · ${t('staff.records.email_subject', { subject: item.subject || t('staff.mail.no_subject') })} · ${item.status_text}`));
      break;
    default:
      li.append(h('span', { class: 'people-meta' }, `${when(item.at)} · ${item.type}`));
  }
  return li;
}

/** @param {any} note */
function noteActions(note) {
  const url = `/api/v1/notes/${encodeURIComponent(note.id)}`;
  const edit = h('button', {
    type: 'button',
    class: 'btn btn-quiet btn-small',
    onclick: () => {
      const text = h('textarea', { rows: 3, maxlength: 10000, 'aria-label': t('staff.records.edit_note') });
      text.value = note.text;
      const save = h('button', { type: 'button', class: 'btn btn-secondary btn-small', onclick: () => act(() => api(url, { method: 'PUT', body: { text: text.value } })) }, t('staff.records.save_note'));
      edit.replaceWith(h('span', {}, text, ' ', save));
      text.focus();
    },
  }, t('staff.people.edit'));
  const archive = h('button', {
    type: 'button',
    class: 'btn btn-quiet btn-small',
    onclick: () => act(() => api(`${url}/${note.archived_at ? 'unarchive' : 'archive'}`, { method: 'POST' })),
  }, t(note.archived_at ? 'staff.records.unarchive' : 'staff.records.archive'));
  return [edit, ' ', archive];
}

noteForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const patient = notePatient.value === state.client.id ? null : notePatient.value;
  void act(async () => {
    await api(`/api/v1/clients/${encodeURIComponent(state.client.id)}/notes`, { method: 'POST', body: { text: noteText.value, patient_id: patient } });
    noteText.value = '';
  });
});

recordForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void act(async () => {
    await api(`/api/v1/patients/${encodeURIComponent(recordPatient.value)}/service-records`, {
      method: 'POST', body: { service_id: recordService.value, performed_on: recordDate.value, note: recordNote.value || null },
    });
    recordNote.value = '';
  });
});

/**
 * Runs a change, then shows the records again (or the server's reason).
 * @param {() => Promise<unknown>} change
 */
async function act(change) {
  showError('');
  try {
    await change();
  } catch (err) {
    showError(errorText(err));
    return;
  }
  await showRecords(state.client);
}

/** Today in the browser's zone (the server checks against the organisation's). */
function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** @param {string} text */
function showError(text) {
  error.textContent = text;
  error.hidden = !text;
}

/** @param {unknown} err */
function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 401) return t('staff.session_ended');
    if (err.status === 404) return t('staff.records.gone');
    return err.message ? apiErrorText(err) : t('staff.sched.did_not_work');
  }
  return t('staff.login.unreachable');
}
