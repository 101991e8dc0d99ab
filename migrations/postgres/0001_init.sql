-- consultroom clinic schema, postgresql flavour. append-only: never edit once applied.
-- ids are uuid v7 kept as text (the same rust code binds them on sqlite); timestamps are timestamptz.

create table organisation (
    organisation_id text primary key,
    name text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create table department (
    department_id text primary key,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    name text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    unique (organisation_id, name)
);

create table staff (
    staff_id text primary key,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    department_id text references department (department_id) on delete set null,
    name text not null,
    email text not null unique,
    role text not null check (role in ('organisation_admin', 'department_admin', 'practitioner')),
    password_hash text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create index staff_organisation_idx on staff (organisation_id);

create table client (
    client_id text primary key,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    name text not null,
    email text,
    phone text,
    date_of_birth date,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create index client_organisation_idx on client (organisation_id, name);

create table appointment (
    appointment_id text primary key,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    practitioner_id text not null references staff (staff_id),
    client_id text not null references client (client_id),
    department_id text references department (department_id) on delete set null,
    starts_at timestamptz not null,
    duration_minutes integer not null check (duration_minutes > 0),
    status text not null check (status in ('scheduled', 'cancelled', 'completed')),
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create index appointment_organisation_starts_idx on appointment (organisation_id, starts_at);
create index appointment_practitioner_starts_idx on appointment (practitioner_id, starts_at);

create table invitation (
    invitation_id text primary key,
    appointment_id text not null references appointment (appointment_id) on delete cascade,
    token_hash bytea not null unique,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create index invitation_appointment_idx on invitation (appointment_id);

create table staff_session (
    staff_session_id text primary key,
    staff_id text not null references staff (staff_id) on delete cascade,
    token_hash bytea not null unique,
    expires_at timestamptz not null,
    last_seen_at timestamptz not null,
    revoked boolean not null default false,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

create index staff_session_staff_idx on staff_session (staff_id);
