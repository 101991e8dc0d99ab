-- organisation settings (issue #3, #4, #5): the organisation admin's switches for screen and file
-- sharing (F126), chat (F129-F133, F141), arrival notification (F93) and the waiting-room text and
-- disclaimer (F97, F102). postgres flavour; append-only: never edit once applied.
-- settings is json text validated by the api; absent row = defaults.
create table organisation_settings (
    organisation_id text primary key references organisation (organisation_id)
        on delete cascade,
    settings text not null,
    updated_by text references staff (staff_id) on delete set null,
    updated_at timestamptz not null
);
