-- e-mail template sets (F169–F172, issue #12). sqlite flavour; append-only: never edit once
-- applied.
-- A set is named and belongs to one organisation; at most one set per organisation is its
-- default. A set holds templates per (mail kind, language); a kind/language it does not hold
-- falls back to the organisation's default set, then to the built-in texts.
create table mail_template_set (
    set_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    name text not null,
    is_default integer not null default 0 check (is_default in (0, 1)),
    created_at text not null,
    updated_at text not null,
    unique (organisation_id, name)
) strict;

create unique index mail_template_set_default_idx on mail_template_set (organisation_id)
    where is_default = 1;

create table mail_template (
    set_id text not null references mail_template_set (set_id) on delete cascade,
    kind text not null check (kind in ('appointment_invitation', 'appointment_update', 'appointment_cancellation', 'appointment_reminder', 'staff_invitation', 'password_reset')),
    language text not null check (language in ('en', 'nl', 'de')),
    subject text not null,
    html_body text not null,
    text_body text not null,
    updated_at text not null,
    primary key (set_id, kind, language)
) strict;

-- the set a department's mails use (several departments may share one set)
create table department_mail_template_set (
    department_id text primary key not null references department (department_id) on delete cascade,
    set_id text not null references mail_template_set (set_id) on delete cascade
) strict;

create index department_mail_template_set_idx on department_mail_template_set (set_id);
