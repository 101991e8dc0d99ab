-- the durable job queue and the e-mail outbox (issue #12). sqlite flavour; append-only: never
-- edit once applied.
-- job times (run_at, locked_until) are integer milliseconds since the unix epoch on both
-- backends, so "due" and "lease expired" compare as numbers (sqlite stores chrono timestamps as
-- text whose fraction has a varying number of digits).
create table job (
    job_id text primary key not null,
    kind text not null,
    payload text not null,
    -- at most one job per key, ever (e.g. one reminder per appointment, kind and channel)
    unique_key text unique,
    status text not null check (status in ('queued', 'running', 'done', 'failed')),
    run_at integer not null,
    attempts integer not null default 0,
    max_attempts integer not null check (max_attempts > 0),
    locked_by text,
    locked_until integer,
    last_error text,
    created_at text not null,
    updated_at text not null
) strict;

create index job_due_idx on job (status, run_at);

-- one row per message to one recipient; written in the same transaction as the change that
-- caused it, together with its 'mail.send' job.
create table mail (
    mail_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    department_id text references department (department_id) on delete set null,
    appointment_id text references appointment (appointment_id) on delete set null,
    client_id text references client (client_id) on delete set null,
    staff_id text references staff (staff_id) on delete set null,
    kind text not null,
    to_name text not null,
    to_address text not null,
    subject text not null,
    text_body text not null,
    html_body text not null,
    calendar_method text check (calendar_method in ('REQUEST', 'CANCEL')),
    calendar_ics text,
    -- generated at enqueue, never changed: a resend after a crash carries the same id
    message_id text not null unique,
    status text not null check (status in ('queued', 'sent', 'failed', 'held', 'no_server')),
    attempts integer not null default 0,
    last_error text,
    job_id text references job (job_id) on delete set null,
    created_by text references staff (staff_id) on delete set null,
    created_at text not null,
    updated_at text not null,
    sent_at text
) strict;

create index mail_organisation_idx on mail (organisation_id, created_at);
create index mail_department_idx on mail (department_id, created_at);
