-- guests of a consultation (issue #4, F16-F17, F74, F116): a staff member invites an extra
-- participant (colleague, family, interpreter) to one appointment by link. only the sha-256 of
-- the link's token is stored. the guest gets in only while the appointment's client is in the
-- consultation (enforced by the signalling hub).
-- sqlite flavour; append-only: never edit once applied.
create table guest_invitation (
    guest_invitation_id text primary key not null,
    appointment_id text not null references appointment (appointment_id) on delete cascade,
    display_name text not null,
    token_hash blob not null unique,
    created_by text not null references staff (staff_id),
    created_at text not null,
    revoked_at text
) strict;

create index guest_invitation_appointment_idx on guest_invitation (appointment_id);
