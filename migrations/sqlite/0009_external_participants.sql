-- external participants and their groups (issue #4, F16-F17, F74): people who are not the
-- client of an appointment but are invited to it (family, home care, interpreter), kept as
-- records with the same fields as a client and organised in named groups. a guest invitation
-- may name the external participant it was made for.
-- sqlite flavour; append-only: never edit once applied.
create table participant_group (
    participant_group_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    name text not null,
    -- lower-case name: one group per name and organisation, whatever the case.
    name_key text not null,
    created_at text not null,
    unique (organisation_id, name_key)
) strict;

create table external_participant (
    external_participant_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    name text not null,
    email text,
    phone text,
    date_of_birth text,
    created_at text not null,
    updated_at text not null
) strict;

create index external_participant_organisation_idx on external_participant (organisation_id, name);

create table external_participant_group (
    external_participant_id text not null references external_participant (external_participant_id) on delete cascade,
    participant_group_id text not null references participant_group (participant_group_id) on delete cascade,
    primary key (external_participant_id, participant_group_id)
) strict;

create index external_participant_group_group_idx on external_participant_group (participant_group_id);

alter table guest_invitation add column external_participant_id text
    references external_participant (external_participant_id) on delete set null;
