-- care reminders (recalls, issue #15, F197-F206). sqlite flavour; append-only: never edit once
-- applied.

-- client: the client asked not to be sent care reminders (F197). Appointment mails still go.
alter table client add column recall_opt_out integer not null default 0 check (recall_opt_out in (0, 1));

-- recall_rule: when `trigger_service_id` is recorded on a patient, the next `due_service_id`
-- (the same service, or a follow-up such as a booster) falls due `interval_count`
-- `interval_unit` later; the client is written to on each day of `offsets` (JSON array of days
-- relative to the due date, ascending) on each of `channels` (JSON array; 'email', later 'sms'),
-- with `subject`/`body` (null: the built-in reminder text). An `internal` rule writes to nobody:
-- its recalls are tasks for staff (F198, F205). A department's rule applies to that
-- department's clients only. One rule per (trigger, due service) in an organisation.
create table recall_rule (
    recall_rule_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    department_id text references department (department_id) on delete cascade,
    name text not null,
    trigger_service_id text not null references service (service_id),
    due_service_id text not null references service (service_id),
    interval_count integer not null check (interval_count > 0),
    interval_unit text not null check (interval_unit in ('days', 'weeks', 'months', 'years')),
    offsets text not null,
    channels text not null,
    internal integer not null check (internal in (0, 1)),
    subject text,
    body text,
    active integer not null default 1 check (active in (0, 1)),
    created_by text references staff (staff_id) on delete set null,
    created_at text not null,
    updated_at text not null
) strict;

create unique index recall_rule_pair_idx
    on recall_rule (organisation_id, trigger_service_id, due_service_id);

-- recall: one care reminder — patient P is due for service S on `due_on` (a local date). Made by
-- a rule when a service is recorded (`origin` 'rule', `basis_record_id`/`basis_on`: the record it
-- was planned from) or by staff (`origin` 'manual', with its own schedule and maybe its own
-- text). `open` until the service is recorded (completed, 'service_done'), the patient dies
-- (cancelled, 'patient_deceased'), a later record supersedes it, or staff close it.
-- `due_at`: the start of `due_on` in the organisation's zone (the timeline orders by it).
create table recall (
    recall_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    client_id text not null references client (client_id) on delete cascade,
    patient_id text not null references patient (patient_id) on delete cascade,
    service_id text references service (service_id),
    recall_rule_id text references recall_rule (recall_rule_id) on delete set null,
    origin text not null check (origin in ('rule', 'manual')),
    internal integer not null check (internal in (0, 1)),
    title text,
    subject text,
    body text,
    basis_record_id text references service_record (service_record_id) on delete set null,
    basis_on text,
    due_on text not null,
    due_at text not null,
    status text not null check (status in ('open', 'completed', 'cancelled')),
    closed_reason text,
    closed_at text,
    closed_by text references staff (staff_id) on delete set null,
    closed_by_record_id text references service_record (service_record_id) on delete set null,
    created_by text references staff (staff_id) on delete set null,
    created_at text not null,
    updated_at text not null
) strict;

-- never two open recalls for one patient and service (F206)
create unique index recall_open_idx on recall (patient_id, service_id) where status = 'open';
create index recall_organisation_due_idx on recall (organisation_id, due_on, recall_id);
create index recall_client_idx on recall (client_id, due_on);
create index recall_rule_idx on recall (recall_rule_id);

-- recall_step: one sending of a recall on one channel at `send_at` (ms since the epoch, like
-- job times). Rule steps carry their `offset_days`. 'pending' until its send job decides:
-- 'sent' (with the mail, written in the same transaction), 'suppressed' (with the reason), or
-- 'cancelled' (the recall closed, or the rule's schedule changed before it was due).
create table recall_step (
    recall_step_id text primary key not null,
    recall_id text not null references recall (recall_id) on delete cascade,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    client_id text not null references client (client_id) on delete cascade,
    offset_days integer,
    send_at integer not null,
    channel text not null check (channel in ('email')),
    status text not null check (status in ('pending', 'sent', 'suppressed', 'cancelled')),
    reason text,
    mail_id text references mail (mail_id) on delete set null,
    decided_at text,
    created_at text not null
) strict;

create unique index recall_step_offset_idx on recall_step (recall_id, offset_days, channel);
create unique index recall_step_time_idx on recall_step (recall_id, send_at, channel);
-- the send job reads a client's pending steps at one instant; the preview an organisation's
create index recall_step_client_idx on recall_step (client_id, send_at);
create index recall_step_organisation_idx on recall_step (organisation_id, send_at);
