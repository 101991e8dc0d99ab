-- waiting rooms (issue #4): department waiting rooms for appointments, and service announcements.
-- sqlite flavour; append-only: never edit once applied.

-- where the patient of an appointment waits. 'department': in the shared waiting room of the
-- appointment's department, where any practitioner of that department can admit them (F7, F75);
-- the appointment still names a responsible practitioner. the api requires a department for
-- 'department'; there is no cross-column check because department_id is set null when a
-- department is deleted, and such an appointment then falls back to the practitioner's room.
alter table appointment add column waiting_room text not null default 'practitioner'
    check (waiting_room in ('practitioner', 'department'));

-- service announcements to everyone waiting in one waiting room (F95, F96). scope_id is a
-- staff_id ('practitioner') or a department_id ('department') of the same organisation, checked
-- by the api. rows are never deleted by the api: deleted_at/deleted_by keep the history for audit.
create table announcement (
    announcement_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    scope_kind text not null check (scope_kind in ('practitioner', 'department')),
    scope_id text not null,
    text text not null,
    expires_at text,
    created_by text not null references staff (staff_id),
    created_at text not null,
    deleted_at text,
    deleted_by text references staff (staff_id)
) strict;

create index announcement_scope_idx on announcement (organisation_id, scope_kind, scope_id)
    where deleted_at is null;
