//! The job worker: a tokio task that claims due jobs and runs their handlers, at most
//! `concurrency` at a time. When no job is due it sleeps until the earliest queued job falls due
//! ([`Store::next_job_due`]; a reminder, a retry after its backoff), but never longer than `poll`
//! (jobs enqueued by other processes, leases that expire); it also wakes at once on the clinic's
//! [`jobs_wake`](crate::Clinic::jobs_wake) signal (an enqueue in this process) and when a running
//! job ends. It stops claiming on [`Worker::shutdown`], giving running jobs until a deadline to
//! finish (what is cut off runs again once its lease expires).
//!
//! "Now" is the injected clock's; the waiting is real time (`tokio::time::sleep`). A clock that
//! stands still (tests' `MockClock`) makes a not-yet-due job look due the same real time later
//! every time, so the worker looks again then: bounded by `poll`, never a busy loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use super::{Backoff, ClaimedJob, millis};
use crate::{Clinic, Clock, Store};

/// How soon the worker looks again when a job was due but could not be claimed (PostgreSQL: its
/// row was locked by another node's claim at that moment): soon, but not in a busy loop.
const RECHECK: Duration = Duration::from_millis(10);

/// What a handler made of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Done; never run again.
    Done,
    /// Done, and already recorded by the handler in the transaction of its effects
    /// ([`QueueConn::complete_claimed`](super::QueueConn::complete_claimed)), or the handler
    /// found its lease lost there and wrote nothing: the worker records nothing more.
    Recorded,
    /// Failed for now: run again after the backoff (or fail for good after the last attempt).
    Retry(String),
    /// Failed for good: never run again.
    Fail(String),
}

/// Runs the jobs of one kind.
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one attempt. Must finish well within the lease (`WorkerConfig::lease`).
    fn run(&self, job: ClaimedJob) -> BoxFuture<'_, JobOutcome>;
}

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The longest the worker sleeps: how often the queue is polled when nothing wakes the
    /// worker and no queued job falls due sooner (jobs other processes enqueue, expired leases).
    pub poll: Duration,
    /// How long a claimed job is the worker's before another may take it over.
    pub lease: Duration,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Retry delays.
    pub backoff: Backoff,
    /// How long [`Worker::shutdown`] waits for running jobs.
    pub shutdown_grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(5),
            lease: Duration::from_secs(120),
            concurrency: 4,
            backoff: Backoff::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A running worker.
pub struct Worker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    id: String,
}

impl Worker {
    /// Starts a worker over the clinic's store and clock with `handlers` by job kind.
    pub fn spawn(
        clinic: &Clinic,
        handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
        config: WorkerConfig,
    ) -> Worker {
        let id = format!("worker-{}", uuid::Uuid::new_v4().simple());
        let (stop, stop_rx) = watch::channel(false);
        let state = Loop {
            store: clinic.store().clone(),
            clock: clinic.clock(),
            wake: clinic.jobs_wake(),
            handlers: Arc::new(handlers),
            config,
            id: id.clone(),
        };
        let task = tokio::spawn(state.run(stop_rx));
        Worker { stop, task, id }
    }

    /// This worker's lease name (`locked_by`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops claiming, waits for running jobs up to the grace period, then returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the job worker ended abnormally");
        }
    }
}

/// How a round of claiming ended.
enum Claiming {
    /// Every permit is taken: a finishing job wakes the worker.
    Full,
    /// Nothing was due at this instant (the claim's "now").
    Drained(DateTime<Utc>),
    /// Stopping, or the claim failed: sleep the poll interval.
    Stopped,
}

struct Loop {
    store: Store,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    handlers: Arc<HashMap<&'static str, Arc<dyn JobHandler>>>,
    config: WorkerConfig,
    id: String,
}

impl Loop {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut running = JoinSet::new();
        tracing::info!(worker = %self.id, "job worker started");
        'outer: loop {
            // Claim while there is room and work.
            let claiming = loop {
                if *stop.borrow() {
                    break 'outer;
                }
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    break Claiming::Full;
                };
                let now = self.clock.now();
                match self.store.claim_job(&self.id, now, self.config.lease).await {
                    Ok(Some(job)) => {
                        let store = self.store.clone();
                        let clock = self.clock.clone();
                        let handler = self.handlers.get(job.kind.as_str()).cloned();
                        let backoff = self.config.backoff;
                        running.spawn(async move {
                            let _permit = permit;
                            run_one(store, clock, handler, backoff, job).await;
                        });
                    }
                    Ok(None) => break Claiming::Drained(now),
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming a job failed");
                        break Claiming::Stopped;
                    }
                }
            };
            // Reap finished tasks without waiting.
            while let Some(done) = running.try_join_next() {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a job task panicked");
                }
            }
            let nap = match claiming {
                Claiming::Drained(claimed_at) => self.until_next_due(claimed_at).await,
                Claiming::Full | Claiming::Stopped => self.config.poll,
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(nap) => {}
                _ = stop.changed() => {}
                // A slot freed up: look for more work at once.
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "a job task panicked");
                    }
                }
            }
        }
        let grace = self.config.shutdown_grace;
        let drained = tokio::time::timeout(grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = running.len(),
                "jobs still running at shutdown were cut off; they run again when their lease expires"
            );
            running.abort_all();
        }
        tracing::info!(worker = %self.id, "job worker stopped");
    }

    /// How long to sleep after a claim at `claimed_at` found nothing due: until the earliest
    /// queued job falls due, at most `poll`.
    async fn until_next_due(&self, claimed_at: DateTime<Utc>) -> Duration {
        let poll = self.config.poll;
        let next = match self.store.next_job_due().await {
            Ok(Some(run_at)) => run_at,
            Ok(None) => return poll,
            Err(e) => {
                tracing::warn!(error = %e, "reading when the next job is due failed");
                return poll;
            }
        };
        if next <= millis(claimed_at) {
            // Due already when the claim found nothing: another node's claim held its row (or it
            // was committed just after the claim). Look again soon.
            return RECHECK.min(poll);
        }
        let wait = next.saturating_sub(millis(self.clock.now()));
        Duration::from_millis(u64::try_from(wait).unwrap_or(0)).min(poll)
    }
}

async fn run_one(
    store: Store,
    clock: Arc<dyn Clock>,
    handler: Option<Arc<dyn JobHandler>>,
    backoff: Backoff,
    job: ClaimedJob,
) {
    let outcome = match handler {
        // A panicking handler is a failed attempt (retried with backoff), not a job left
        // `running` until its lease expires, again and again.
        Some(h) => std::panic::AssertUnwindSafe(h.run(job.clone()))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| JobOutcome::Retry("the job's handler panicked".to_owned())),
        None => JobOutcome::Fail(format!("no handler for job kind {:?}", job.kind)),
    };
    let now = clock.now();
    let recorded = match &outcome {
        JobOutcome::Recorded => Ok(true),
        JobOutcome::Done => store.complete_job(&job, now).await,
        JobOutcome::Retry(e) if !job.is_last_attempt() => {
            store
                .retry_job(&job, e, backoff.delay(job.attempt), now)
                .await
        }
        JobOutcome::Retry(e) | JobOutcome::Fail(e) => store.fail_job(&job, e, now).await,
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => tracing::warn!(job_id = %job.id, kind = %job.kind,
            "a job's lease was lost before its result was recorded"),
        Err(e) => tracing::warn!(job_id = %job.id, error = %e, "recording a job's result failed"),
    }
}
