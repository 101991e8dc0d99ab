-- client register and scheduling (issue #12, F66-F88). postgres flavour; append-only: never edit
-- once applied.
-- client: the clinic's own number for the client (F67, unique per organisation when given), the
-- language mails are written in, and the department and practitioner the client belongs to (the
-- segregation settings F6-F9 decide who sees the client from these).
alter table client add column client_number text;
alter table client add column language text not null default 'en'
    check (language in ('en', 'nl', 'de'));
alter table client add column department_id text
    references department (department_id) on delete set null;
alter table client add column practitioner_id text
    references staff (staff_id) on delete set null;
create unique index client_number_idx on client (organisation_id, client_number);

-- appointment: the personal message for the client and guests (F68), and the calendar sequence
-- (raised on every reschedule and on cancel; the invitation's UID stays the appointment id).
alter table appointment add column personal_message text not null default '';
alter table appointment add column sequence integer not null default 0;

-- Idempotency-Key of POST /appointments: per organisation, kept for a bounded time (the API
-- deletes keys older than that on each create), with the SHA-256 of the request it answered.
create table appointment_idempotency (
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    idempotency_key text not null,
    request_hash bytea not null,
    appointment_id text not null references appointment (appointment_id) on delete cascade,
    created_at timestamptz not null,
    primary key (organisation_id, idempotency_key)
);

create index appointment_idempotency_created_idx on appointment_idempotency (created_at);
