-- consultroom clinic schema, sqlite flavour. append-only: never edit once applied.
-- ids are uuid v7 as text; timestamps are rfc 3339 text in utc (as sqlx encodes chrono).

create table organisation (
    organisation_id text primary key not null,
    name text not null,
    created_at text not null,
    updated_at text not null
) strict;

create table department (
    department_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    name text not null,
    created_at text not null,
    updated_at text not null,
    unique (organisation_id, name)
) strict;

create table staff (
    staff_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    department_id text references department (department_id) on delete set null,
    name text not null,
    email text not null unique,
    role text not null check (role in ('organisation_admin', 'department_admin', 'practitioner')),
    password_hash text not null,
    created_at text not null,
    updated_at text not null
) strict;

create index staff_organisation_idx on staff (organisation_id);

create table client (
    client_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    name text not null,
    email text,
    phone text,
    date_of_birth text,
    created_at text not null,
    updated_at text not null
) strict;

create index client_organisation_idx on client (organisation_id, name);

create table appointment (
    appointment_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    practitioner_id text not null references staff (staff_id),
    client_id text not null references client (client_id),
    department_id text references department (department_id) on delete set null,
    starts_at text not null,
    duration_minutes integer not null check (duration_minutes > 0),
    status text not null check (status in ('scheduled', 'cancelled', 'completed')),
    created_at text not null,
    updated_at text not null
) strict;

create index appointment_organisation_starts_idx on appointment (organisation_id, starts_at);
create index appointment_practitioner_starts_idx on appointment (practitioner_id, starts_at);

create table invitation (
    invitation_id text primary key not null,
    appointment_id text not null references appointment (appointment_id) on delete cascade,
    token_hash blob not null unique,
    created_at text not null,
    updated_at text not null
) strict;

create index invitation_appointment_idx on invitation (appointment_id);

create table staff_session (
    staff_session_id text primary key not null,
    staff_id text not null references staff (staff_id) on delete cascade,
    token_hash blob not null unique,
    expires_at text not null,
    last_seen_at text not null,
    revoked integer not null default 0 check (revoked in (0, 1)),
    created_at text not null,
    updated_at text not null
) strict;

create index staff_session_staff_idx on staff_session (staff_id);
