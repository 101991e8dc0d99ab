//! The durable job queue: one `job` table on SQLite and PostgreSQL (migration 0011), claimed with
//! a lease, retried with exponential backoff, driven by the [`worker`].
//!
//! A job has a kind (which [`worker::JobHandler`] runs it), a JSON payload, a due time (`run_at`),
//! a count of attempts and a cap, a lease (`locked_by`, `locked_until`), a status
//! (`queued` → `running` → `done` | `queued` again with a later `run_at` | `failed`), the last
//! error, and an optional unique key: at most one job per key, ever (a second [`enqueue`] with
//! the same key is a no-op that returns `None`).
//!
//! - [`enqueue`] takes the caller's connection — normally `&mut *tx` of a transaction opened
//!   inside a [`dispatch!`](crate::store::dispatch) block — so a job is committed together with
//!   the change that caused it, or not at all. After the commit, [`Clinic::wake_jobs`] lets this
//!   process's worker start at once instead of at its next poll.
//! - [`Store::claim_job`] takes the oldest due job, or one whose lease expired (its worker died),
//!   in one statement: `UPDATE … WHERE job_id = (SELECT … LIMIT 1) RETURNING …`, the subquery
//!   taking the earlier of two index-range candidates (see `claim_sql!`); PostgreSQL adds
//!   `FOR UPDATE SKIP LOCKED` to each candidate, so several nodes never take the same job, and
//!   SQLite has one writer. Every later change of a claimed job is guarded by `locked_by`, so a
//!   worker whose lease expired and was taken over cannot overwrite the new owner's result.
//! - [`Store::next_job_due`] reads when the earliest queued job falls due, so the worker sleeps
//!   until then rather than a whole poll interval.
//! - Times are the injected [`Clock`](crate::Clock)'s, stored as integer milliseconds.
//!
//! Invariant: a job runs at least once while it is not `done`/`failed`; it may run more than once
//! only when a worker stopped (or overran its lease) between doing the work and recording it.

pub mod worker;

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::Clinic;
use crate::ids::JobId;
use crate::store::{Store, dispatch};

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// Which handler runs it (e.g. [`crate::mail::SEND_JOB`]).
    pub kind: &'static str,
    /// Handler input (JSON).
    pub payload: serde_json::Value,
    /// When it is due.
    pub run_at: DateTime<Utc>,
    /// Attempts before it fails for good (at least 1).
    pub max_attempts: u32,
    /// At most one job with this key is ever stored.
    pub unique_key: Option<String>,
}

/// A job claimed by a worker: its lease lasts until `locked_until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedJob {
    /// Job id.
    pub id: JobId,
    /// Handler kind.
    pub kind: String,
    /// Handler input.
    pub payload: serde_json::Value,
    /// When this attempt was due (`run_at` as claimed): what a job that follows from this one
    /// (a reminder's mails) orders itself by.
    pub due: DateTime<Utc>,
    /// This attempt's number (1 for the first run).
    pub attempt: u32,
    /// The cap on attempts.
    pub max_attempts: u32,
    /// The claiming worker.
    pub locked_by: String,
}

impl ClaimedJob {
    /// True when a failure of this attempt is final.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// A job's state as stored (tests and diagnostics).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct JobState {
    /// Job id.
    pub job_id: JobId,
    /// Handler kind.
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// Due time, in ms since the epoch.
    pub run_at: i64,
    /// Attempts so far.
    pub attempts: i32,
    /// The lease holder, while running.
    pub locked_by: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
}

/// Exponential backoff: `base · 2^(attempt−1)`, at most `cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// Largest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    /// 30 s, 1, 2, 4, 8, 16, 32 min, then hourly.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// The delay after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        self.base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.cap)
            .min(self.cap)
    }
}

/// Milliseconds since the epoch, as stored.
pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// A database connection the queue and the outbox can write through: SQLite's or PostgreSQL's
/// (a transaction dereferences to one: pass `&mut *tx`). Implemented for both by one macro, so
/// the SQL is written once.
pub trait QueueConn: Send {
    /// Inserts a job; `None` when its unique key is taken.
    fn insert_job<'a>(
        &'a mut self,
        job: &'a NewJob,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<JobId>, sqlx::Error>> + Send + 'a;

    /// Marks claimed `job` done on this connection (a handler's own transaction, so the job
    /// ends exactly when its effects are committed; the handler then answers
    /// [`JobOutcome::Recorded`](worker::JobOutcome::Recorded)). False when the lease was lost.
    fn complete_claimed<'a>(
        &'a mut self,
        job: &'a ClaimedJob,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send + 'a;
}

macro_rules! impl_queue_conn {
    ($conn:ty) => {
        impl QueueConn for $conn {
            async fn insert_job(
                &mut self,
                job: &NewJob,
                now: DateTime<Utc>,
            ) -> Result<Option<JobId>, sqlx::Error> {
                let id = JobId::new();
                let payload = job.payload.to_string();
                let max = i32::try_from(job.max_attempts.max(1)).unwrap_or(i32::MAX);
                let done = sqlx::query(
                    "insert into job (job_id, kind, payload, unique_key, status, run_at, \
                     attempts, max_attempts, created_at, updated_at) \
                     values ($1, $2, $3, $4, 'queued', $5, 0, $6, $7, $7) \
                     on conflict (unique_key) do nothing",
                )
                .bind(id)
                .bind(job.kind)
                .bind(payload)
                .bind(job.unique_key.as_deref())
                .bind(millis(job.run_at))
                .bind(max)
                .bind(now)
                .execute(&mut *self)
                .await?;
                Ok((done.rows_affected() > 0).then_some(id))
            }

            async fn complete_claimed(
                &mut self,
                job: &ClaimedJob,
                now: DateTime<Utc>,
            ) -> Result<bool, sqlx::Error> {
                let attempts = i32::try_from(job.attempt).unwrap_or(i32::MAX);
                sqlx::query(
                    "update job set status = 'done', locked_by = null, locked_until = null, \
                     updated_at = $3 \
                     where job_id = $1 and locked_by = $2 and status = 'running' and attempts = $4",
                )
                .bind(job.id)
                .bind(&job.locked_by)
                .bind(now)
                .bind(attempts)
                .execute(&mut *self)
                .await
                .map(|r| r.rows_affected() > 0)
            }
        }
    };
}

impl_queue_conn!(sqlx::SqliteConnection);
impl_queue_conn!(sqlx::PgConnection);

/// Stores `job` on `conn` (the caller's transaction). `None` when its unique key is taken.
/// Call [`Clinic::wake_jobs`] after the commit.
pub async fn enqueue<C: QueueConn + ?Sized>(
    conn: &mut C,
    job: &NewJob,
    now: DateTime<Utc>,
) -> Result<Option<JobId>, sqlx::Error> {
    conn.insert_job(job, now).await
}

/// The claim statement; `$lock` is empty on SQLite and `for update skip locked` on PostgreSQL.
///
/// Two candidates, each the first entry of an index range of `job_claim_idx (status, run_at,
/// job_id)` (migration 0016): the earliest due queued job, and the earliest running job whose
/// lease expired (few rows: the running ones); the earlier of the two (by `run_at, job_id`) is
/// taken. One `where (queued and due) or (running and expired)` could use no index for its
/// order and sorted every due job (35–40 ms a claim with 60k due). PostgreSQL refuses a locking
/// clause on a member of a `union`, so each candidate is a subquery of its own that locks (and
/// skips locked rows) itself; a concurrent claimer skips the rows (up to two) the first one holds
/// until its statement ends, and takes the next ones.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "update job set status = 'running', locked_by = $1, locked_until = $2, \
             attempts = attempts + 1, updated_at = $3 \
             where job_id = (select job_id from (\
             select * from (select job_id, run_at from job \
             where status = 'queued' and run_at <= $4 \
             order by run_at, job_id limit 1",
            $lock,
            ") as queued \
             union all \
             select * from (select job_id, run_at from job \
             where status = 'running' and locked_until <= $4 \
             order by run_at, job_id limit 1",
            $lock,
            ") as expired\
             ) as candidate order by run_at, job_id limit 1) \
             returning job_id, kind, payload, run_at, attempts, max_attempts"
        )
    };
}
const CLAIM_SQLITE: &str = claim_sql!("");
const CLAIM_POSTGRES: &str = claim_sql!(" for update skip locked");

#[derive(sqlx::FromRow)]
struct ClaimRow {
    job_id: JobId,
    kind: String,
    payload: String,
    run_at: i64,
    attempts: i32,
    max_attempts: i32,
}

impl Store {
    /// Stores `job` in a transaction of its own (for callers with no change to commit with it).
    pub async fn enqueue_job(
        &self,
        job: &NewJob,
        now: DateTime<Utc>,
    ) -> Result<Option<JobId>, sqlx::Error> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let id = enqueue(&mut *tx, job, now).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Claims the oldest due job (or one whose lease expired) for `worker` until `now + lease`.
    pub async fn claim_job(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Option<ClaimedJob>, sqlx::Error> {
        let until = millis(now + chrono_duration(lease));
        let sql = match self {
            Store::Sqlite(_) => CLAIM_SQLITE,
            Store::Postgres(_) => CLAIM_POSTGRES,
        };
        let row = dispatch!(self, pool => {
            sqlx::query_as::<_, ClaimRow>(sql)
                .bind(worker)
                .bind(until)
                .bind(now)
                .bind(millis(now))
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|r| ClaimedJob {
            id: r.job_id,
            kind: r.kind,
            payload: serde_json::from_str(&r.payload).unwrap_or(serde_json::Value::Null),
            due: DateTime::from_timestamp_millis(r.run_at).unwrap_or(now),
            attempt: u32::try_from(r.attempts).unwrap_or(0),
            max_attempts: u32::try_from(r.max_attempts).unwrap_or(1),
            locked_by: worker.to_owned(),
        }))
    }

    /// Marks a claimed job done; false when the lease was lost (another worker owns it now).
    pub async fn complete_job(
        &self,
        job: &ClaimedJob,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        self.finish_job(job, "done", None, None, now).await
    }

    /// Puts a claimed job back with `run_at = now + delay` and the error; false when the lease
    /// was lost.
    pub async fn retry_job(
        &self,
        job: &ClaimedJob,
        error: &str,
        delay: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let run_at = millis(now + chrono_duration(delay));
        self.finish_job(job, "queued", Some(error), Some(run_at), now)
            .await
    }

    /// Marks a claimed job failed for good; false when the lease was lost.
    pub async fn fail_job(
        &self,
        job: &ClaimedJob,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        self.finish_job(job, "failed", Some(error), None, now).await
    }

    async fn finish_job(
        &self,
        job: &ClaimedJob,
        status: &str,
        error: Option<&str>,
        run_at: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        let attempts = i32::try_from(job.attempt).unwrap_or(i32::MAX);
        dispatch!(self, pool => {
            sqlx::query(
                "update job set status = $3, last_error = coalesce($4, last_error), \
                 run_at = coalesce($5, run_at), locked_by = null, locked_until = null, \
                 updated_at = $6 \
                 where job_id = $1 and locked_by = $2 and status = 'running' and attempts = $7",
            )
            .bind(job.id)
            .bind(&job.locked_by)
            .bind(status)
            .bind(error)
            .bind(run_at)
            .bind(now)
            .bind(attempts)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() > 0)
        })
    }

    /// When the earliest queued job falls due (ms since the epoch), if any job is queued: one
    /// read of the end of the `(status, run_at, job_id)` index (`job_claim_idx`, migration 0016). The
    /// worker sleeps until then (at most its poll interval).
    pub async fn next_job_due(&self) -> Result<Option<i64>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_scalar::<_, Option<i64>>(
                "select min(run_at) from job where status = 'queued'",
            )
            .fetch_one(pool)
            .await
        })
    }

    /// A job's stored state.
    pub async fn job_state(&self, id: JobId) -> Result<Option<JobState>, sqlx::Error> {
        dispatch!(self, pool => {
            sqlx::query_as::<_, JobState>(
                "select job_id, kind, status, run_at, attempts, locked_by, last_error \
                 from job where job_id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })
    }
}

impl Clinic {
    /// Wakes this process's job worker (call after committing an enqueue); a no-op without one.
    pub fn wake_jobs(&self) {
        self.jobs_wake().notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(600),
        };
        let secs: Vec<u64> = (1..=7).map(|a| b.delay(a).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(b.delay(1000), Duration::from_secs(600));
        assert_eq!(b.delay(0), Duration::from_secs(30));
    }

    #[test]
    fn postgres_claims_skip_locked_rows() {
        // Each candidate locks its own row (PostgreSQL allows no locking clause on a `union`).
        assert_eq!(
            CLAIM_POSTGRES
                .matches("limit 1 for update skip locked) as")
                .count(),
            2
        );
        assert!(!CLAIM_SQLITE.contains("for update"));
    }

    /// SQLite's plan of the claim (on the migrated schema): each candidate is a search of
    /// `job_claim_idx`, never a scan of the table nor a sort of its rows (only the two candidates
    /// are sorted).
    #[tokio::test]
    async fn the_claim_reads_two_index_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let Store::Sqlite(pool) = &store else {
            unreachable!()
        };
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(concat!("explain query plan ", claim_sql!("")))
                .bind("w")
                .bind(2_i64)
                .bind(Utc::now())
                .bind(1_i64)
                .fetch_all(pool)
                .await
                .unwrap();
        let plan: Vec<String> = plan.into_iter().map(|(_, _, _, detail)| detail).collect();
        let plan = plan.join("\n");
        let searches = plan
            .lines()
            .filter(|l| {
                l.contains("SEARCH job USING") && l.contains("INDEX job_claim_idx (status=?")
            })
            .count();
        assert_eq!(searches, 2, "{plan}");
        assert!(
            plan.contains("job_claim_idx (status=? AND run_at<?)"),
            "{plan}"
        );
        assert!(!plan.contains("SCAN job"), "{plan}");
        assert_eq!(
            plan.matches("TEMP B-TREE").count(),
            1,
            "only the two candidates are sorted: {plan}"
        );
    }
}
