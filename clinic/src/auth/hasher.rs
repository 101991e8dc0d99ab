//! The password-check pool: every Argon2 run of a request goes through here, so their number, and
//! the memory they hold, is bounded whatever arrives.
//!
//! A few dedicated threads (one per core, at most [`MAX_WORKERS`]) each own one Argon2 memory
//! buffer (19 MiB for the default parameters) that they reuse for every hash, so a burst of logins
//! neither grows the heap nor leaves freed arenas behind. In front of them is a short queue
//! ([`QUEUE_PER_WORKER`] jobs per worker); a check that finds workers and queue full is refused at
//! once ([`Busy`]) without hashing. The threads start with the first check and end when the pool
//! (the [`crate::Clinic`]) is dropped.
//!
//! Invariant: at most `workers` Argon2 runs at a time and `workers × (1 + QUEUE_PER_WORKER)`
//! admitted; passwords never leave the job that checks them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::Block;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::password;

/// Most hashing threads, whatever the core count (each holds an Argon2 buffer for good).
pub const MAX_WORKERS: usize = 8;
/// Jobs that may wait per worker before checks are refused.
pub const QUEUE_PER_WORKER: usize = 2;

/// The pool was full: the check was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Counters of the pool, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PasswordCheckStats {
    /// Hashing threads.
    pub workers: u64,
    /// Checks admitted at once (running and queued).
    pub capacity: u64,
    /// Argon2 runs completed.
    pub runs: u64,
    /// Checks refused because workers and queue were full.
    pub refused_busy: u64,
    /// Most Argon2 runs seen running at the same time.
    pub peak_running: u64,
}

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Default)]
struct Counters {
    runs: AtomicU64,
    refused: AtomicU64,
    running: AtomicU64,
    peak: AtomicU64,
}

/// The pool (a field of the clinic's shared state).
pub(crate) struct PasswordPool {
    workers: usize,
    slots: Arc<Semaphore>,
    sender: OnceLock<Mutex<mpsc::Sender<Job>>>,
    counters: Arc<Counters>,
}

impl Default for PasswordPool {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores.clamp(1, MAX_WORKERS))
    }
}

impl PasswordPool {
    pub(crate) fn new(workers: usize) -> Self {
        let workers = workers.max(1);
        Self {
            workers,
            slots: Arc::new(Semaphore::new(workers * (1 + QUEUE_PER_WORKER))),
            sender: OnceLock::new(),
            counters: Arc::default(),
        }
    }

    pub(crate) fn stats(&self) -> PasswordCheckStats {
        let c = &self.counters;
        PasswordCheckStats {
            workers: self.workers as u64,
            capacity: (self.workers * (1 + QUEUE_PER_WORKER)) as u64,
            runs: c.runs.load(Ordering::Relaxed),
            refused_busy: c.refused.load(Ordering::Relaxed),
            peak_running: c.peak.load(Ordering::Relaxed),
        }
    }

    /// Verifies `password` against `phc`, or against a dummy hash when `phc` is `None` (same
    /// cost, result `false`). `Err(Busy)` when the pool is full: nothing was hashed.
    pub(crate) async fn verify_or_dummy(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<bool, Busy> {
        self.run(move |memory| password::verify_or_dummy_with(&password, phc.as_deref(), memory))
            .await
            .map(|ok| ok.unwrap_or(false))
    }

    /// Hashes `password` into a PHC string to store. `Err(Busy)` when the pool is full.
    pub(crate) async fn hash(&self, password: String) -> Result<anyhow::Result<String>, Busy> {
        self.run(move |memory| password::hash_password_with(&password, memory))
            .await
            .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("password hashing thread failed"))))
    }

    /// Runs `f` on a hashing thread with that thread's Argon2 buffer. `Ok(None)` if the job was
    /// lost (the thread panicked).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<Option<T>, Busy> {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Busy);
        };
        let (tx, rx) = oneshot::channel();
        let counters = self.counters.clone();
        let job: Job = Box::new(move |memory| {
            let permit: OwnedSemaphorePermit = permit;
            let running = counters.running.fetch_add(1, Ordering::Relaxed) + 1;
            counters.peak.fetch_max(running, Ordering::Relaxed);
            let out = f(memory);
            counters.running.fetch_sub(1, Ordering::Relaxed);
            counters.runs.fetch_add(1, Ordering::Relaxed);
            // The slot is free before the caller hears back.
            drop(permit);
            let _ = tx.send(out);
        });
        let sent = self
            .sender()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job);
        if sent.is_err() {
            return Ok(None);
        }
        Ok(rx.await.ok())
    }

    fn sender(&self) -> &Mutex<mpsc::Sender<Job>> {
        self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            for i in 0..self.workers {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("password-{i}"))
                    .spawn(move || worker(&rx));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "starting a password hashing thread failed");
                }
            }
            Mutex::new(tx)
        })
    }
}

/// One hashing thread: takes jobs until the pool is dropped, reusing one Argon2 buffer. A job
/// that panics loses only itself (its caller sees the channel closed).
fn worker(rx: &Mutex<mpsc::Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut memory)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_beyond_workers_and_queue_are_refused_without_hashing() {
        let pool = Arc::new(PasswordPool::new(1));
        let phc = password::hash_password("right").expect("hash");
        // Hold the one worker and fill the queue with jobs that wait for a release.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        let mut holders = Vec::new();
        for _ in 0..1 + QUEUE_PER_WORKER {
            let pool = pool.clone();
            let held = held.clone();
            holders.push(tokio::spawn(async move {
                pool.run(move |_| {
                    let _ = held.lock().expect("lock").recv();
                })
                .await
            }));
        }
        // Each holder takes its slot as soon as it runs.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pool.slots.available_permits() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "holders did not start"
            );
            tokio::task::yield_now().await;
        }
        for _ in 0..5 {
            let refused = pool
                .verify_or_dummy("wrong".into(), Some(phc.clone()))
                .await;
            assert_eq!(refused, Err(Busy));
        }
        let s = pool.stats();
        assert_eq!((s.runs, s.refused_busy), (0, 5), "{s:?}");
        for _ in 0..1 + QUEUE_PER_WORKER {
            release.send(()).expect("release");
        }
        for h in holders {
            assert!(matches!(h.await.expect("task"), Ok(Some(()))));
        }
        // The pool works again afterwards, one job at a time, and checks passwords.
        assert_eq!(
            pool.verify_or_dummy("right".into(), Some(phc.clone()))
                .await,
            Ok(true)
        );
        assert_eq!(
            pool.verify_or_dummy("wrong".into(), Some(phc)).await,
            Ok(false)
        );
        assert_eq!(pool.verify_or_dummy("right".into(), None).await, Ok(false));
        let fresh = pool
            .hash("new".into())
            .await
            .expect("admitted")
            .expect("hash");
        assert!(password::verify_password("new", &fresh));
        let s = pool.stats();
        assert_eq!(s.peak_running, 1, "{s:?}");
        assert_eq!(s.runs, 3 + 4, "{s:?}");
    }
}
