-- first-run setup and administration (issue #12; F3, F5, F10, F11, F15, F24): the organisation's
-- profile (contact details shown to patients, forms of address, logo), staff phone, photo and
-- active flag, and one-time set-password links (invitation and reset; only the sha-256 of the
-- token is stored). sqlite flavour; append-only: never edit once applied.
alter table organisation add column contact_email text not null default '';
alter table organisation add column contact_phone text not null default '';
alter table organisation add column contact_website text not null default '';
alter table organisation add column contact_text text not null default '';
-- json array of {"en","nl","de"} objects, validated by the api.
alter table organisation add column forms_of_address text not null default '[]';

create table organisation_logo (
    organisation_id text primary key not null references organisation (organisation_id)
        on delete cascade,
    content_type text not null,
    bytes blob not null,
    updated_at text not null
) strict;

alter table staff add column phone text not null default '';
-- a deactivated staff member cannot log in; their sessions were ended when it happened.
alter table staff add column active integer not null default 1 check (active in (0, 1));

create table staff_photo (
    staff_id text primary key not null references staff (staff_id) on delete cascade,
    content_type text not null,
    bytes blob not null,
    updated_at text not null
) strict;

create table set_password_link (
    set_password_link_id text primary key not null,
    staff_id text not null references staff (staff_id) on delete cascade,
    token_hash blob not null unique,
    purpose text not null check (purpose in ('invite', 'reset')),
    expires_at text not null,
    used_at text,
    created_at text not null
) strict;

create index set_password_link_staff_idx on set_password_link (staff_id);
