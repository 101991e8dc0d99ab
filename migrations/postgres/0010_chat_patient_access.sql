-- continuous chat per channel (issue #5, F142): department admins grant a patient chat between
-- visits, or stop it. 'default' follows the organisation's settings (continuous_chat and
-- continuous_chat_by_grant); 'granted' opens it where the organisation requires a grant;
-- 'stopped' closes it whatever the organisation's default. chat in the waiting room and during a
-- consultation is not affected. postgres flavour; append-only: never edit once applied.
alter table chat_channel add column patient_access text not null default 'default'
    check (patient_access in ('default', 'granted', 'stopped'));
alter table chat_channel add column patient_access_changed_by text
    references staff (staff_id) on delete set null;
alter table chat_channel add column patient_access_changed_at timestamptz;
