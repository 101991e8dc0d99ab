-- walk-in hours (issue #4): practitioner availability (switch + scheduled ranges), walk-in widgets
-- and walk-in visits. sqlite flavour; append-only: never edit once applied.

-- one row per practitioner who has touched walk-in settings; absent = switch off, default zone.
create table walkin_practitioner (
    staff_id text primary key not null references staff (staff_id) on delete cascade,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    switch_on integer not null default 0 check (switch_on in (0, 1)),
    time_zone text not null,
    created_at text not null,
    updated_at text not null
) strict;

-- 'once': starts_at/ends_at are utc instants. 'weekly': iso weekday (1 = monday) and minutes since
-- local midnight in the practitioner's time zone (end may be 1440 = 24:00).
create table availability_range (
    availability_range_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    staff_id text not null references staff (staff_id) on delete cascade,
    kind text not null check (kind in ('once', 'weekly')),
    starts_at text,
    ends_at text,
    weekday integer check (weekday between 1 and 7),
    start_minute integer check (start_minute between 0 and 1439),
    end_minute integer check (end_minute between 1 and 1440),
    created_at text not null,
    updated_at text not null,
    check ((kind = 'once' and starts_at is not null and ends_at is not null)
        or (kind = 'weekly' and weekday is not null and start_minute is not null
            and end_minute is not null and end_minute > start_minute))
) strict;

create index availability_range_staff_idx on availability_range (staff_id);
create index availability_range_organisation_idx on availability_range (organisation_id, kind);

-- settings is json text (departments, texts, colours, intake, allowed origins), validated by the api.
create table widget (
    widget_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    name text not null,
    settings text not null,
    custom_css text not null default '',
    created_at text not null,
    updated_at text not null
) strict;

create index widget_organisation_idx on widget (organisation_id);

create table widget_image (
    widget_id text not null references widget (widget_id) on delete cascade,
    kind text not null check (kind in ('logo', 'background')),
    content_type text not null check (content_type in ('image/png', 'image/jpeg', 'image/webp')),
    bytes blob not null,
    updated_at text not null,
    primary key (widget_id, kind)
) strict;

create table walkin_visit (
    walkin_visit_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    widget_id text references widget (widget_id) on delete set null,
    practitioner_id text not null references staff (staff_id) on delete cascade,
    department_id text references department (department_id) on delete set null,
    display_name text not null,
    date_of_birth text,
    phone text,
    email text,
    terms_accepted_at text,
    token_hash blob not null unique,
    status text not null check (status in ('waiting', 'completed')),
    expires_at text not null,
    created_at text not null,
    updated_at text not null
) strict;

create index walkin_visit_organisation_idx on walkin_visit (organisation_id, created_at);
