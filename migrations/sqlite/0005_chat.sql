-- chat channels (issue #5, F129-F147): one channel per practitioner and client (F135), colleagues
-- who joined it (F137), its messages and each reader's position. sqlite flavour; append-only:
-- never edit once applied.

-- last_seq is the per-channel message counter: a message takes last_seq + 1 in the same
-- transaction that inserts it, so seqs are gap-free and ordered on both backends.
-- cleared_through_seq: messages up to this seq were deleted (F133, F143).
create table chat_channel (
    chat_channel_id text primary key not null,
    organisation_id text not null references organisation (organisation_id) on delete cascade,
    practitioner_id text not null references staff (staff_id) on delete cascade,
    client_id text not null references client (client_id) on delete cascade,
    last_seq integer not null default 0 check (last_seq >= 0),
    cleared_through_seq integer not null default 0 check (cleared_through_seq >= 0),
    -- null: created automatically with the pair's first appointment
    created_by text references staff (staff_id) on delete set null,
    created_at text not null,
    updated_at text not null,
    unique (practitioner_id, client_id)
) strict;

create index chat_channel_client_idx on chat_channel (client_id);
create index chat_channel_organisation_idx on chat_channel (organisation_id, practitioner_id);

create table chat_channel_member (
    chat_channel_id text not null references chat_channel (chat_channel_id) on delete cascade,
    staff_id text not null references staff (staff_id) on delete cascade,
    joined_at text not null,
    primary key (chat_channel_id, staff_id)
) strict;

create index chat_channel_member_staff_idx on chat_channel_member (staff_id);

-- sender_kind 'client' = the patient. (channel, sender, client_msg_id) is unique: a retried send
-- finds its first copy. deleted messages keep their row (seq, sender, client_msg_id) with an
-- empty text, so that a late retry of a deleted message is not stored again.
create table chat_message (
    chat_channel_id text not null references chat_channel (chat_channel_id) on delete cascade,
    seq integer not null check (seq > 0),
    sender_kind text not null check (sender_kind in ('staff', 'client')),
    sender_id text not null,
    client_msg_id text not null,
    text text not null,
    created_at text not null,
    deleted_at text,
    primary key (chat_channel_id, seq),
    unique (chat_channel_id, sender_kind, sender_id, client_msg_id)
) strict;

create table chat_read (
    chat_channel_id text not null references chat_channel (chat_channel_id) on delete cascade,
    reader_kind text not null check (reader_kind in ('staff', 'client')),
    reader_id text not null,
    last_read_seq integer not null check (last_read_seq >= 0),
    updated_at text not null,
    primary key (chat_channel_id, reader_kind, reader_id)
) strict;
