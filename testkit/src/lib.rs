//! The test kit shared by the clinic's API tests (`clinic/tests`) and the integration tests
//! (`tests/it`): which database a test runs on ([`Backend`], [`backends`], [`backend_tests!`]),
//! a fresh database per test that is removed afterwards ([`TestDatabase`]), serving a router on
//! port 0 ([`serve`]) and waiting for a condition, bounded ([`wait_until`]).
//!
//! PostgreSQL runs are enabled by `TEST_PG_URL` (an admin URL, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`): every test then creates its own database on
//! that server and drops it at the end, so tests never see each other's rows.
//!
//! Used only as a dev-dependency (`publish = false`).

pub mod smtp;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a fresh temporary directory.
    Sqlite,
    /// A fresh database on the PostgreSQL server of `TEST_PG_URL`.
    Postgres,
}

/// `TEST_PG_URL`, if set and not empty.
pub fn pg_url() -> Option<String> {
    std::env::var("TEST_PG_URL").ok().filter(|v| !v.is_empty())
}

/// The backends to run on: SQLite always, PostgreSQL when `TEST_PG_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Sqlite];
    if pg_url().is_some() {
        b.push(Backend::Postgres);
    }
    b
}

/// Stamps one `#[tokio::test]` per backend for each listed `async fn(Backend)`: `sqlite::<name>`
/// always runs, `postgres::<name>` runs when `TEST_PG_URL` is set (else it says so and passes).
/// Paths are relative to the crate root of the test binary (`module::name`).
// `crate::` is meant: the listed functions live in the calling test crate, not in this one.
#[allow(clippy::crate_in_macro_def)]
#[macro_export]
macro_rules! backend_tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    crate::$module::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if $crate::pg_url().is_some() {
                        crate::$module::$name($crate::Backend::Postgres).await;
                    } else {
                        eprintln!("TEST_PG_URL not set; skipping the PostgreSQL run");
                    }
                }
            )*
        }
    };
}

/// A fresh, empty database for one test: dropped (or [`TestDatabase::remove`]d) → gone.
pub struct TestDatabase {
    url: String,
    place: Place,
}

enum Place {
    /// The temporary directory that holds the SQLite file.
    Sqlite(Option<tempfile::TempDir>),
    /// A database on the `TEST_PG_URL` server (`None` once dropped).
    Postgres {
        admin_url: String,
        name: Option<String>,
    },
}

impl TestDatabase {
    /// Creates the database: a SQLite file in a new temporary directory, or a new PostgreSQL
    /// database (panics when `TEST_PG_URL` is not set or its server refuses).
    pub async fn create(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("consultroom-test-")
                    .tempdir()
                    .expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("clinic.db").display());
                TestDatabase {
                    url,
                    place: Place::Sqlite(Some(dir)),
                }
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let admin_url = pg_url().expect("TEST_PG_URL is set for a PostgreSQL test");
                let name = format!("test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("connect TEST_PG_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                let _ = admin.close().await;
                TestDatabase {
                    url: database_url(&admin_url, &name),
                    place: Place::Postgres {
                        admin_url,
                        name: Some(name),
                    },
                }
            }
        }
    }

    /// The database URL for `Store::connect` or `--database-url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory of a SQLite database (`None` for PostgreSQL).
    pub fn dir(&self) -> Option<PathBuf> {
        match &self.place {
            Place::Sqlite(dir) => dir.as_ref().map(|d| d.path().to_path_buf()),
            Place::Postgres { .. } => None,
        }
    }

    /// Removes the database now (after the server using it has stopped).
    pub async fn remove(mut self) {
        match &mut self.place {
            Place::Sqlite(dir) => drop(dir.take()),
            Place::Postgres { admin_url, name } => {
                if let Some(name) = name.take()
                    && drop_pg_database(admin_url, &name).await.is_err()
                {
                    eprintln!("warning: could not drop test database {name}");
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Place::Postgres { admin_url, name } = &mut self.place else {
            return; // the TempDir removes itself
        };
        let Some(name) = name.take() else { return };
        // Runs during unwinding too, and inside a runtime, so it cannot await: use a private
        // runtime on a thread of its own.
        let admin_url = admin_url.clone();
        let db = name.clone();
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(drop_pg_database(&admin_url, &db))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {name}");
        }
    }
}

/// `drop database … with (force)`: also ends connections a stopped server may have left.
async fn drop_pg_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database if exists {name} with (force)"
    )))
    .execute(&mut admin)
    .await?;
    let _ = admin.close().await;
    Ok(())
}

/// `admin_url` with its database name replaced by `name` (query parameters kept).
pub fn database_url(admin_url: &str, name: &str) -> String {
    let (main, query) = match admin_url.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (admin_url, None),
    };
    let scheme_end = main.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match main[scheme_end..].find('/') {
        Some(i) => &main[..scheme_end + i],
        None => main,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Serves `router` on 127.0.0.1 port 0; returns its base URL (`http://127.0.0.1:<port>`) and
/// the server task (abort it to stop).
pub async fn serve(router: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    (format!("http://{addr}"), task)
}

/// Polls `check` every 20 ms until it returns `Some`, and returns that; panics naming `what`
/// when `limit` passes first. For waiting on a condition instead of sleeping a fixed time.
pub async fn wait_until<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_replaces_the_name_and_keeps_the_query() {
        assert_eq!(
            database_url("postgres://u@h:5432/postgres", "t1"),
            "postgres://u@h:5432/t1"
        );
        assert_eq!(
            database_url("postgres://u@localhost/postgres?host=/run/pg", "t1"),
            "postgres://u@localhost/t1?host=/run/pg"
        );
        assert_eq!(database_url("postgres://u@h", "t1"), "postgres://u@h/t1");
    }
}
