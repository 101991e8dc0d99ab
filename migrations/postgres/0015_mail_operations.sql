-- Issue #12, the outbox's operations: an admin marks a permanently failed mail as dealt with
-- (it leaves the failed-mail badge; who and when are shown), and a client's communication history
-- lists the client's mails.
alter table mail add column acknowledged_at timestamptz;
alter table mail add column acknowledged_by text references staff (staff_id) on delete set null;

create index mail_client_idx on mail (client_id, created_at);
