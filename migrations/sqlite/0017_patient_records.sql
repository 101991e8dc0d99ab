-- patient records (issue #15, first part): patients, the services catalogue, service records and
-- notes. sqlite flavour; append-only: never edit once applied.

-- patient: whom care is given to. Every client has exactly one patient that is the client
-- themself (`is_client`, its id is the client's id, its name and date of birth are the client's):
-- in a human organisation that is the client's patient, in a veterinary one it carries the
-- client-level records. A veterinary client's animals are further rows (`is_client` = 0).
create table patient (
    patient_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    client_id text not null references client (client_id) on delete cascade,
    is_client integer not null default 0 check (is_client in (0, 1)),
    name text,
    species text,
    breed text,
    date_of_birth text,
    deceased_on text,
    created_at text not null,
    updated_at text not null,
    check ((is_client = 1 and patient_id = client_id and name is null)
           or (is_client = 0 and name is not null))
) strict;

create unique index patient_own_idx on patient (client_id) where is_client = 1;
create index patient_client_idx on patient (client_id, name);

-- the client's own patient for every existing client
insert into patient (patient_id, organisation_id, client_id, is_client, created_at, updated_at)
select client_id, organisation_id, client_id, 1, created_at, created_at from client;

-- service: the organisation's catalogue (e.g. "Rabies vaccination"); names and codes unique per
-- organisation; an inactive service can no longer be recorded.
create table service (
    service_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    name text not null,
    code text,
    active integer not null default 1 check (active in (0, 1)),
    created_at text not null,
    updated_at text not null
) strict;

create unique index service_name_idx on service (organisation_id, name);
create unique index service_code_idx on service (organisation_id, code);

-- service_record: service S was performed on patient P on a (local) date, by a staff member.
-- `occurred_at` is the instant the timeline sorts by (see records/services.rs).
create table service_record (
    service_record_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    client_id text not null references client (client_id),
    patient_id text not null references patient (patient_id),
    service_id text not null references service (service_id),
    performed_on text not null,
    occurred_at text not null,
    performed_by text references staff (staff_id) on delete set null,
    recorded_by text references staff (staff_id) on delete set null,
    note text,
    created_at text not null
) strict;

create index service_record_client_idx on service_record (client_id, occurred_at);
create index service_record_patient_idx on service_record (patient_id, occurred_at);
create index service_record_service_idx on service_record (service_id);

-- note: a staff note on a client (the client's own patient) or on one of its patients; edited
-- in place (F189), archived rather than deleted (F189-F190).
create table note (
    note_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    client_id text not null references client (client_id),
    patient_id text not null references patient (patient_id),
    text text not null,
    author_id text references staff (staff_id) on delete set null,
    created_at text not null,
    edited_at text,
    edited_by text references staff (staff_id) on delete set null,
    archived_at text,
    archived_by text references staff (staff_id) on delete set null
) strict;

create index note_client_idx on note (client_id, created_at);
create index note_patient_idx on note (patient_id, created_at);

-- the timeline reads a client's appointments newest first
create index appointment_client_starts_idx on appointment (client_id, starts_at);
