//! Storage: one [`Store`] enum over a SQLite or PostgreSQL pool.
//!
//! Invariant: every query is written once. Methods use [`dispatch!`](crate::store::dispatch), which
//! stamps the same body and SQL text (with `$1..$n` placeholders, accepted by both drivers) for each
//! backend, so they are type-checked against both. Resource modules add their own `impl Store` blocks.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Runs the same block for whichever backend `$store` holds, binding the pool to `$pool`.
///
/// The block is expanded once per backend, so the SQL inside is shared text while sqlx checks the
/// Rust types against each driver.
macro_rules! dispatch {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use dispatch;

/// SQLite's busy timeout; writers wait this long for the lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How SQLite syncs its write-ahead log (`--sqlite-synchronous`); PostgreSQL ignores it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SqliteDurability {
    /// `synchronous = FULL`: the log is synced on every commit, so a commit that returned
    /// survives power loss as well as a crash of the process. The default.
    #[default]
    Full,
    /// `synchronous = NORMAL`: the log is synced at checkpoints only. Survives a crash of the
    /// process (the OS has the data); the last commits may be lost if the machine loses power.
    Normal,
}

impl SqliteDurability {
    fn pragma(self) -> (SqliteSynchronous, i64) {
        match self {
            SqliteDurability::Full => (SqliteSynchronous::Full, 2),
            SqliteDurability::Normal => (SqliteSynchronous::Normal, 1),
        }
    }
}

/// The database behind the clinic service.
#[derive(Clone, Debug)]
pub enum Store {
    /// A SQLite file with one writer connection (WAL, foreign keys on).
    Sqlite(SqlitePool),
    /// A PostgreSQL pool.
    Postgres(PgPool),
}

impl Store {
    /// Connects to `url`: `sqlite:<path>` (the file is created if missing) or
    /// `postgres:`/`postgresql:` URLs.
    ///
    /// SQLite runs with `synchronous = FULL` ([`SqliteDurability::Full`]); see
    /// [`Store::connect_with`].
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        Self::connect_with(url, SqliteDurability::Full).await
    }

    /// Connects to `url` (as [`Store::connect`]) with the given SQLite durability.
    ///
    /// For SQLite it sets WAL, foreign keys, a 5 s busy timeout and `synchronous` per `durability`,
    /// uses a single connection (SQLite has one writer), and fails if any pragma did not take
    /// effect. `FULL` in WAL mode syncs the log on every commit, so a commit that returned
    /// survives power loss, not only a crash of the process. The protocol promises `chat_ack`
    /// only after a message is stored durably; the cost is measured by the chat fan-out
    /// benchmark (docs/benchmarks.md).
    pub async fn connect_with(url: &str, durability: SqliteDurability) -> anyhow::Result<Store> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .context("parsing the sqlite url")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .synchronous(durability.pragma().0);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .context("opening the sqlite database")?;
            verify_sqlite_pragmas(&pool, durability).await?;
            Ok(Store::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(10)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .context("connecting to postgresql")?;
            Ok(Store::Postgres(pool))
        } else {
            bail!("unsupported database url scheme (expected sqlite: or postgres:)")
        }
    }

    /// Applies the embedded migrations for this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Store::Sqlite(pool) => consultroom_migrations::SQLITE.run(pool).await,
            Store::Postgres(pool) => consultroom_migrations::POSTGRES.run(pool).await,
        }
        .context("running migrations")
    }

    /// A cheap round trip to the database, for readiness checks.
    pub async fn ping(&self) -> anyhow::Result<()> {
        dispatch!(self, pool => {
            sqlx::query("select 1").execute(pool).await.map(|_| ())
        })
        .context("database ping")
    }

    /// Closes the pool and waits for its connections to finish.
    pub async fn close(&self) {
        dispatch!(self, pool => pool.close().await)
    }

    /// Short backend name for logs and metrics (`sqlite` or `postgres`).
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }
}

/// Reads back the pragmas set at connect time; a silent fallback (e.g. WAL refused on an
/// in-memory or network file system) must stop start-up rather than run with weaker guarantees.
async fn verify_sqlite_pragmas(
    pool: &SqlitePool,
    durability: SqliteDurability,
) -> anyhow::Result<()> {
    let journal: String = sqlx::query_scalar("pragma journal_mode")
        .fetch_one(pool)
        .await?;
    let foreign_keys: i64 = sqlx::query_scalar("pragma foreign_keys")
        .fetch_one(pool)
        .await?;
    let busy: i64 = sqlx::query_scalar("pragma busy_timeout")
        .fetch_one(pool)
        .await?;
    let synchronous: i64 = sqlx::query_scalar("pragma synchronous")
        .fetch_one(pool)
        .await?;
    let want_busy = i64::try_from(SQLITE_BUSY_TIMEOUT.as_millis()).unwrap_or(i64::MAX);
    if !journal.eq_ignore_ascii_case("wal") {
        bail!("sqlite journal_mode is {journal}, expected wal");
    }
    if foreign_keys != 1 {
        bail!("sqlite foreign_keys is off");
    }
    if busy != want_busy {
        bail!("sqlite busy_timeout is {busy} ms, expected {want_busy}");
    }
    let want_synchronous = durability.pragma().1;
    if synchronous != want_synchronous {
        bail!("sqlite synchronous is {synchronous}, expected {want_synchronous}");
    }
    Ok(())
}

/// True when `err` is a unique-constraint violation (maps to 409 in the API).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
