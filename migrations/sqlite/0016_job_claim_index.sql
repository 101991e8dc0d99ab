-- Issue #12: the job claim reads two index ranges (the earliest due queued job, the earliest
-- running job whose lease expired) instead of one query with an OR across both statuses, which
-- no index could order: with 60–100k jobs due a claim sorted them all (35–40 ms). With job_id
-- in the index, `order by run_at, job_id limit 1` of each range is its first entry. The old
-- (status, run_at) index is this one's prefix (`Store::next_job_due` reads it as well).
create index job_claim_idx on job (status, run_at, job_id);
drop index job_due_idx;
