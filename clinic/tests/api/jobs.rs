//! The durable job queue: claim and complete, a second claimer while leased, lease expiry, a
//! claim taking the earlier of a due job and an expired lease, the backoff schedule through the
//! worker, the worker waking when the next job falls due (not a poll later), unique-key dedup,
//! enqueue inside a caller's transaction, and concurrent claimers never taking the same job
//! (PostgreSQL: `FOR UPDATE SKIP LOCKED`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Duration as Span;
use chrono::{DateTime, Utc};
use consultroom_clinic::jobs::worker::{JobHandler, JobOutcome, Worker, WorkerConfig};
use consultroom_clinic::jobs::{self, Backoff, ClaimedJob, NewJob};
use consultroom_clinic::{Clinic, ClinicConfig, Store, SystemClock};
use futures_util::future::BoxFuture;
use serde_json::json;

use crate::support::*;

const LEASE: Duration = Duration::from_secs(60);

fn job(kind: &'static str, run_at: chrono::DateTime<chrono::Utc>) -> NewJob {
    NewJob {
        kind,
        payload: json!({"n": 1}),
        run_at,
        max_attempts: 3,
        unique_key: None,
    }
}

pub async fn claim_complete_and_a_second_claimer_gets_nothing(backend: Backend) {
    let app = spawn_app(&backend).await;
    let store = app.clinic.store();
    let now = app.clock_now();
    // Not due yet: nothing to claim.
    let id = store
        .enqueue_job(&job("test.a", now + Span::seconds(10)), now)
        .await
        .unwrap()
        .expect("stored");
    assert!(store.claim_job("w1", now, LEASE).await.unwrap().is_none());

    let due = now + Span::seconds(10);
    let claimed = store
        .claim_job("w1", due, LEASE)
        .await
        .unwrap()
        .expect("due");
    assert_eq!(claimed.id, id);
    assert_eq!(claimed.kind, "test.a");
    assert_eq!(claimed.payload, json!({"n": 1}));
    assert_eq!(claimed.attempt, 1);
    // Leased: a second claimer gets nothing.
    assert!(store.claim_job("w2", due, LEASE).await.unwrap().is_none());
    let state = store.job_state(id).await.unwrap().unwrap();
    assert_eq!(state.status, "running");
    assert_eq!(state.locked_by.as_deref(), Some("w1"));

    assert!(store.complete_job(&claimed, due).await.unwrap());
    let state = store.job_state(id).await.unwrap().unwrap();
    assert_eq!(state.status, "done");
    assert_eq!(state.locked_by, None);
    // Done jobs are never claimed again, not even long after.
    let later = due + Span::days(1);
    assert!(store.claim_job("w2", later, LEASE).await.unwrap().is_none());
}

pub async fn an_expired_lease_is_claimed_again_and_the_old_owner_is_ignored(backend: Backend) {
    let app = spawn_app(&backend).await;
    let store = app.clinic.store();
    let now = app.clock_now();
    let id = store
        .enqueue_job(&job("test.a", now), now)
        .await
        .unwrap()
        .unwrap();
    let first = store.claim_job("w1", now, LEASE).await.unwrap().unwrap();
    // w1 "crashed". One second before the lease ends nobody may take the job...
    let almost = now + Span::seconds(59);
    assert!(
        store
            .claim_job("w2", almost, LEASE)
            .await
            .unwrap()
            .is_none()
    );
    // ...at its end w2 does: the job runs again.
    let expiry = now + Span::seconds(60);
    let second = store.claim_job("w2", expiry, LEASE).await.unwrap().unwrap();
    assert_eq!(second.id, id);
    assert_eq!(second.attempt, 2);
    // The old owner's late result is not recorded over the new owner's lease.
    assert!(!store.complete_job(&first, expiry).await.unwrap());
    assert!(!store.fail_job(&first, "late", expiry).await.unwrap());
    assert_eq!(
        store.job_state(id).await.unwrap().unwrap().status,
        "running"
    );
    assert!(store.complete_job(&second, expiry).await.unwrap());
    assert_eq!(store.job_state(id).await.unwrap().unwrap().status, "done");
}

/// The claim's two candidates (the earliest due queued job, the earliest running job whose lease
/// expired): whichever is due earlier is taken first, either way round.
pub async fn a_claim_takes_the_earlier_of_a_due_job_and_an_expired_lease(backend: Backend) {
    let app = spawn_app(&backend).await;
    let store = app.clinic.store();
    let now = app.clock_now();
    let at = |s: i64| now + Span::seconds(s);
    let claim = |worker: &'static str, s: i64| async move {
        store
            .claim_job(worker, at(s), LEASE)
            .await
            .unwrap()
            .expect("a job")
    };
    // `a` (due at 0) is claimed and its worker dies; `b` falls due at 10.
    let a = store
        .enqueue_job(&job("test.a", at(0)), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim("w1", 0).await.id, a);
    let b = store
        .enqueue_job(&job("test.b", at(10)), now)
        .await
        .unwrap()
        .unwrap();
    // At 60 a's lease has expired: a (due at 0) goes before b (due at 10).
    let a2 = claim("w2", 60).await;
    assert_eq!((a2.id, a2.attempt), (a, 2));
    let b1 = claim("w2", 60).await;
    assert_eq!(b1.id, b);
    assert!(store.complete_job(&a2, at(61)).await.unwrap());
    assert!(store.complete_job(&b1, at(61)).await.unwrap());
    // The other way round: `c` (due at 100) is claimed and its worker dies; `d`, due at 90,
    // goes first once c's lease has expired too, then c.
    let c = store
        .enqueue_job(&job("test.c", at(100)), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim("w3", 100).await.id, c);
    let d = store
        .enqueue_job(&job("test.d", at(90)), at(101))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim("w4", 160).await.id, d);
    let c2 = claim("w4", 160).await;
    assert_eq!((c2.id, c2.attempt), (c, 2));
    assert!(
        store
            .claim_job("w4", at(160), LEASE)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn a_unique_key_is_stored_once(backend: Backend) {
    let app = spawn_app(&backend).await;
    let store = app.clinic.store();
    let now = app.clock_now();
    let keyed = NewJob {
        unique_key: Some("reminder:appointment-1:day:email".into()),
        ..job("test.reminder", now)
    };
    let first = store.enqueue_job(&keyed, now).await.unwrap();
    assert!(first.is_some());
    assert_eq!(store.enqueue_job(&keyed, now).await.unwrap(), None);
    // Even after the first one ran.
    let claimed = store.claim_job("w1", now, LEASE).await.unwrap().unwrap();
    assert!(store.complete_job(&claimed, now).await.unwrap());
    assert_eq!(store.enqueue_job(&keyed, now).await.unwrap(), None);
    // Jobs without a key are never deduplicated.
    assert!(
        store
            .enqueue_job(&job("test.a", now), now)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .enqueue_job(&job("test.a", now), now)
            .await
            .unwrap()
            .is_some()
    );
}

/// Runs `body` with a transaction of either backend bound to `tx` (what `dispatch!` does inside
/// the clinic crate).
macro_rules! with_tx {
    ($store:expr, $tx:ident => $body:block) => {
        match $store {
            Store::Sqlite(pool) => {
                let mut $tx = pool.begin().await.unwrap();
                $body
            }
            Store::Postgres(pool) => {
                let mut $tx = pool.begin().await.unwrap();
                $body
            }
        }
    };
}
pub(crate) use with_tx;

pub async fn enqueue_commits_and_rolls_back_with_the_caller(backend: Backend) {
    let app = spawn_app(&backend).await;
    let store = app.clinic.store();
    let now = app.clock_now();
    let rolled_back = with_tx!(store, tx => {
        let id = jobs::enqueue(&mut *tx, &job("test.a", now), now).await.unwrap().unwrap();
        tx.rollback().await.unwrap();
        id
    });
    assert_eq!(store.job_state(rolled_back).await.unwrap(), None);
    let committed = with_tx!(store, tx => {
        let id = jobs::enqueue(&mut *tx, &job("test.a", now), now).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        id
    });
    assert_eq!(
        store.job_state(committed).await.unwrap().unwrap().status,
        "queued"
    );
}

/// A handler that records attempts and answers from a script (then `Done`).
struct Scripted {
    answers: Mutex<Vec<JobOutcome>>,
    seen: Mutex<Vec<ClaimedJob>>,
}

impl JobHandler for Scripted {
    fn run(&self, job: ClaimedJob) -> BoxFuture<'_, JobOutcome> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(job);
            let mut answers = self.answers.lock().unwrap();
            if answers.is_empty() {
                JobOutcome::Done
            } else {
                answers.remove(0)
            }
        })
    }
}

pub async fn the_worker_retries_on_the_backoff_schedule_then_fails(backend: Backend) {
    let app = spawn_app(&backend).await;
    let store = app.clinic.store().clone();
    let backoff = Backoff {
        base: Duration::from_secs(30),
        cap: Duration::from_secs(90),
    };
    let handler = Arc::new(Scripted {
        answers: Mutex::new(vec![JobOutcome::Retry("busy".into()); 10]),
        seen: Mutex::new(Vec::new()),
    });
    let mut handlers: HashMap<&'static str, Arc<dyn JobHandler>> = HashMap::new();
    handlers.insert("test.flaky", handler.clone());
    let worker = Worker::spawn(
        &app.clinic,
        handlers,
        WorkerConfig {
            // Only the wake-ups below start work.
            poll: Duration::from_secs(3600),
            backoff,
            ..WorkerConfig::default()
        },
    );
    let now = app.clock_now();
    let id = store
        .enqueue_job(
            &NewJob {
                max_attempts: 4,
                ..job("test.flaky", now)
            },
            now,
        )
        .await
        .unwrap()
        .unwrap();
    app.clinic.wake_jobs();
    // Attempts 1–3 are retried 30 s, 60 s, 90 s (capped) later; the 4th fails for good.
    let mut at = now;
    for (attempt, delay) in [(1, 30), (2, 60), (3, 90)] {
        let state = wait_for_attempt(&store, id, attempt).await;
        assert_eq!(state.status, "queued", "{state:?}");
        assert_eq!(state.last_error.as_deref(), Some("busy"));
        assert_eq!(state.run_at, (at + Span::seconds(delay)).timestamp_millis());
        // Not a moment early.
        app.clock
            .set(at + Span::seconds(delay) - Span::milliseconds(1));
        app.clinic.wake_jobs();
        assert!(
            store
                .claim_job("probe", app.clock_now(), LEASE)
                .await
                .unwrap()
                .is_none()
        );
        at += Span::seconds(delay);
        app.clock.set(at);
        app.clinic.wake_jobs();
    }
    let state = wait_for_attempt(&store, id, 4).await;
    assert_eq!(state.status, "failed");
    assert_eq!(handler.seen.lock().unwrap().len(), 4);
    worker.shutdown().await;
}

/// Answers `Retry` on the first attempt and `Done` afterwards, noting when each attempt started
/// (real time).
#[derive(Default)]
struct RetryOnceTimed {
    started: Mutex<Vec<DateTime<Utc>>>,
}

impl JobHandler for RetryOnceTimed {
    fn run(&self, _job: ClaimedJob) -> BoxFuture<'_, JobOutcome> {
        Box::pin(async move {
            let mut started = self.started.lock().unwrap();
            started.push(Utc::now());
            if started.len() == 1 {
                JobOutcome::Retry("once".into())
            } else {
                JobOutcome::Done
            }
        })
    }
}

/// A job that falls due while the worker sleeps — committed by another transaction with no
/// `wake_jobs` (as another node's enqueue), and then its retry after the backoff — runs when it
/// falls due, not at the next poll: the worker sleeps until the earliest queued job's `run_at`,
/// at most `poll`. With polling alone (an hour here) neither attempt would run.
pub async fn the_worker_wakes_when_the_next_job_falls_due(backend: Backend) {
    let app = spawn_app(&backend).await;
    let store = app.clinic.store().clone();
    // A clinic over the same database with the real clock (the test app's mock clock stands
    // still) and a wake-up signal nobody calls.
    let clinic = Clinic::new(
        store.clone(),
        ClinicConfig::dev("http://consultroom.test"),
        Arc::new(SystemClock),
    );
    let now = Utc::now();
    let due = now + Span::milliseconds(500);
    let id = with_tx!(&store, tx => {
        let id = jobs::enqueue(&mut *tx, &job("test.due_soon", due), now)
            .await
            .unwrap()
            .unwrap();
        tx.commit().await.unwrap();
        id
    });
    let handler = Arc::new(RetryOnceTimed::default());
    let mut handlers: HashMap<&'static str, Arc<dyn JobHandler>> = HashMap::new();
    handlers.insert("test.due_soon", handler.clone());
    let backoff = Duration::from_millis(500);
    let worker = Worker::spawn(
        &clinic,
        handlers,
        WorkerConfig {
            poll: Duration::from_secs(3600),
            backoff: Backoff {
                base: backoff,
                cap: backoff,
            },
            ..WorkerConfig::default()
        },
    );
    let state = consultroom_testkit::wait_until(
        Duration::from_secs(10),
        "the job's retry to succeed",
        || async {
            store
                .job_state(id)
                .await
                .unwrap()
                .filter(|s| s.status == "done")
        },
    )
    .await;
    assert_eq!(state.attempts, 2);
    let started = handler.started.lock().unwrap().clone();
    assert_eq!(started.len(), 2, "{started:?}");
    // Not early, and well within 2 s of falling due.
    let first_late = started[0] - due;
    assert!(
        first_late >= Span::zero() && first_late < Span::seconds(2),
        "the first attempt started {first_late:?} after it fell due"
    );
    // The retry was due `backoff` after the first attempt ended (so after it started).
    let gap = started[1] - started[0];
    assert!(
        gap >= Span::milliseconds(500) && gap < Span::milliseconds(2500),
        "the retry started {gap:?} after the first attempt"
    );
    worker.shutdown().await;
}

async fn wait_for_attempt(
    store: &Store,
    id: consultroom_clinic::ids::JobId,
    attempt: i32,
) -> jobs::JobState {
    consultroom_testkit::wait_until(Duration::from_secs(10), "the job's attempt", || async {
        store
            .job_state(id)
            .await
            .unwrap()
            .filter(|s| s.attempts == attempt && s.status != "running")
    })
    .await
}

pub async fn concurrent_claimers_never_take_the_same_job(backend: Backend) {
    let app = spawn_app(&backend).await;
    let store = app.clinic.store().clone();
    let now = app.clock_now();
    const JOBS: usize = 120;
    for _ in 0..JOBS {
        store
            .enqueue_job(&job("test.a", now), now)
            .await
            .unwrap()
            .unwrap();
    }
    // Four claimers on separate connections race until the queue is empty.
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("w{w}");
            let mut mine = Vec::new();
            while let Some(j) = store.claim_job(&name, now, LEASE).await.unwrap() {
                mine.push(j.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    let mut per_worker = Vec::new();
    for t in tasks {
        let mine = t.await.unwrap();
        per_worker.push(mine.len());
        all.extend(mine);
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), JOBS, "every job claimed once: {per_worker:?}");
    assert_eq!(distinct.len(), JOBS, "no job claimed twice");
}
