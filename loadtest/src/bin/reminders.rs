//! Reminders benchmark (issue #12, "Measure"): N appointment reminders (default 100,000) fall
//! due and a separate `consultroom serve` process — its ordinary job worker, nothing special —
//! composes each, records it in the outbox and sends it through SMTP to a counting sink
//! (aiosmtpd with `tests/smtp/count_handler.py`). Two phases, each on a fresh database:
//! **spread** (due times evenly over `--window-secs`, a compressed day) and **burst** (all due
//! at one instant: every reminder of an organisation is due at its `reminder_time`, e.g. 08:00).
//!
//! The database is seeded straight through SQL, in big transactions, with what a booking writes
//! (clients with their e-mail addresses, appointments, invitations whose token hashes are
//! derived from the server secret as the server derives them, chat channels, and the
//! `appointment.reminder` jobs with the server's payload and unique key), the jobs parked in
//! 2100; one `update` then moves them all to their due times, the first `--lead-secs` ahead (more
//! than the worker's 5 s poll: another process's writes do not wake it).
//!
//! Measured: every reminder arrives exactly once (distinct Message-IDs = N, no copies, none
//! unknown; the run fails otherwise), lateness = arrival at the sink − due time (p50/p99/max),
//! sending throughput (mails per second from the first arrival to the last), and the CPU seconds
//! of the server (and, on PostgreSQL, of its backends). Bounded by `--timeout-secs`; the server
//! and the sink are killed and the PostgreSQL database dropped on the way out.
//!
//! ```sh
//! cargo build --release -p consultroom -p consultroom-loadtest
//! target/release/reminders --server-bin target/release/consultroom --out docs/benchmarks.md
//! target/release/reminders --server-bin target/release/consultroom \
//!     --database-url postgres://postgres@127.0.0.1:5432/postgres --out docs/benchmarks.md
//! ```

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};
use common::{TempDir, cores, cpu_model, percentile, publish, start_server, today};
use consultroom_clinic::Store;
use consultroom_clinic::ids::{
    AppointmentId, ChatChannelId, ClientId, DepartmentId, InvitationId, JobId, OrganisationId,
    StaffId,
};
use consultroom_clinic::secrets;
use consultroom_clinic::staff::{NewStaff, Role};
use sqlx::Connection;

/// Parked jobs are due in 2100 (ms since the epoch) plus their offset.
const PARKED: i64 = 4_102_444_800_000;
/// Rows per multi-row insert (SQLite allows 32,766 bound values a statement).
const BATCH: usize = 1000;
/// Appointments per seeding transaction.
const TX_ROWS: usize = 20_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Due times evenly over the window.
    Spread,
    /// All due at one instant.
    Burst,
    /// Spread, then burst (each on a fresh database).
    Both,
}

#[derive(Parser, Debug)]
struct Args {
    /// The consultroom binary to run.
    #[arg(long, default_value = "target/release/consultroom")]
    server_bin: String,
    /// Reminders per phase.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// The spread phase's window: its due times are evenly spread over this many seconds.
    #[arg(long, default_value_t = 600)]
    window_secs: u64,
    /// Which phases to run.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// PostgreSQL instead of SQLite: a URL of the server (e.g.
    /// postgres://postgres@127.0.0.1:5432/postgres); each phase creates and drops the database
    /// `reminders_bench_<pid>` there.
    #[arg(long)]
    database_url: Option<String>,
    /// Practitioners the appointments are spread over.
    #[arg(long, default_value_t = 50)]
    practitioners: usize,
    /// Seconds from the release of the parked jobs to the first due time.
    #[arg(long, default_value_t = 7)]
    lead_secs: u64,
    /// Bound on the whole run, seconds.
    #[arg(long, default_value_t = 3 * 3600)]
    timeout_secs: u64,
    /// Python with aiosmtpd (default: the venv `tests/smtp/setup.sh` makes and prints).
    #[arg(long)]
    smtp_python: Option<PathBuf>,
    /// Write the results into this Markdown file under this heading (section replaced if
    /// present).
    #[arg(long)]
    out: Option<String>,
    /// Default: `## Appointment reminders (issue #12, SQLite)`, or `…, PostgreSQL)`.
    #[arg(long)]
    heading: Option<String>,
}

/// One phase's figures.
struct Outcome {
    mode: Mode,
    count: usize,
    window_secs: f64,
    sending_secs: f64,
    min_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Recorded in the outbox (the reminder job's commit) − due: p50, p99.
    recorded_ms: (f64, f64),
    drain_ms: f64,
    server_cpu: f64,
    db_cpu: Option<f64>,
    seed_secs: f64,
}

impl Outcome {
    fn row(&self, backend: &str) -> String {
        let rate = if self.sending_secs > 0.0 {
            format!("{:.0}", self.count as f64 / self.sending_secs)
        } else {
            "–".to_owned()
        };
        format!(
            "| {backend} | {mode} | {n} | {window:.0} | {rate} | {min:.0} | {p50:.0} | {p99:.0} | \
             {max:.0} | {rec50:.0} | {rec99:.0} | {drain:.1} | {cpu:.1} | {db} |\n",
            mode = match self.mode {
                Mode::Spread => "spread",
                Mode::Burst => "burst",
                Mode::Both => "both",
            },
            n = self.count,
            window = self.window_secs,
            min = self.min_ms,
            p50 = self.p50_ms,
            p99 = self.p99_ms,
            max = self.max_ms,
            rec50 = self.recorded_ms.0,
            rec99 = self.recorded_ms.1,
            drain = self.drain_ms / 1000.0,
            cpu = self.server_cpu,
            db = self
                .db_cpu
                .map(|c| format!("{c:.1}"))
                .unwrap_or_else(|| "–".to_owned()),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The counting SMTP sink.

/// aiosmtpd with the counting handler; killed when dropped.
struct Sink {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/smtp")
}

fn smtp_python(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_owned());
    }
    let out = Command::new(smtp_dir().join("setup.sh"))
        .stderr(Stdio::inherit())
        .output()
        .context("running tests/smtp/setup.sh")?;
    ensure!(out.status.success(), "tests/smtp/setup.sh failed");
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

impl Sink {
    fn start(python: &Path, log: PathBuf) -> anyhow::Result<Sink> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        std::fs::write(&log, b"")?;
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "count_handler.CountHandler"])
            .arg(&log)
            .env("PYTHONPATH", smtp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting aiosmtpd")?;
        let mut sink = Sink { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                let mut greeting = [0u8; 3];
                if s.read_exact(&mut greeting).is_ok() && &greeting == b"220" {
                    return Ok(sink);
                }
            }
            if let Some(status) = sink.child.try_wait()? {
                bail!("aiosmtpd exited before it was ready: {status}");
            }
            ensure!(Instant::now() < deadline, "aiosmtpd not ready within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }
}

/// What the sink's log said so far: per Message-ID, its first arrival (ms) and its copies.
#[derive(Default)]
struct Arrivals {
    by_id: HashMap<String, (i64, u32)>,
    lines: usize,
    carry: String,
    offset: u64,
}

impl Arrivals {
    /// Reads the lines appended to `log` since the last call.
    fn follow(&mut self, log: &Path) -> anyhow::Result<()> {
        use std::io::Seek;
        let mut f = std::fs::File::open(log)?;
        f.seek(std::io::SeekFrom::Start(self.offset))?;
        let mut text = String::new();
        let read = f.read_to_string(&mut text)?;
        self.offset += read as u64;
        self.carry.push_str(&text);
        let complete = match self.carry.rfind('\n') {
            Some(i) => i + 1,
            None => return Ok(()),
        };
        let rest = self.carry.split_off(complete);
        for line in self.carry.lines() {
            let (at, id) = line
                .split_once('\t')
                .context("a sink log line without a tab")?;
            let at: i64 = at.parse().context("a sink log time")?;
            self.lines += 1;
            let e = self.by_id.entry(id.to_owned()).or_insert((at, 0));
            e.0 = e.0.min(at);
            e.1 += 1;
        }
        self.carry = rest;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Invitation links, derived by the server's own functions (`consultroom_clinic::secrets`) from
// the secret in the data directory; checked against the running server before the run.

/// The clinic's link key, derived from the server secret in `data_dir`.
fn link_key(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let text = std::fs::read_to_string(data_dir.join("secret.key")).context("secret.key")?;
    let secret = hex::decode(text.trim()).context("secret.key is not hex")?;
    Ok(secrets::derive_key(&secret, "jwt"))
}

// ---------------------------------------------------------------------------------------------
// Seeding.

struct Seeded {
    /// Due offset (ms after the first due time) of each appointment's reminder.
    offsets: HashMap<AppointmentId, i64>,
    /// One invitation token, to check the derivation against the server.
    sample_token: String,
}

/// Rows of one appointment.
struct Row {
    client: ClientId,
    practitioner: StaffId,
    appointment: AppointmentId,
    invitation: InvitationId,
    token_hash: Vec<u8>,
    starts_at: DateTime<Utc>,
    job: JobId,
    offset: i64,
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever the backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

async fn seed(
    store: &Store,
    key: &[u8],
    count: usize,
    practitioners: usize,
    offset_of: impl Fn(usize) -> i64,
) -> anyhow::Result<Seeded> {
    let now = Utc::now();
    let org: OrganisationId = store.insert_organisation("Reminder Clinic", now).await?;
    let mut staff = Vec::new();
    for p in 0..practitioners.max(1) {
        let (name, email) = (format!("Dr. {p}"), format!("doc{p}@reminders.test"));
        let new = NewStaff {
            organisation_id: org,
            department_id: None,
            name: &name,
            email: &email,
            role: Role::Practitioner,
            // Never logs in.
            password_hash: "!",
        };
        staff.push(store.insert_staff(&new, now).await?);
    }
    let tomorrow = now + chrono::Duration::days(1);
    let mut offsets = HashMap::with_capacity(count);
    let mut sample_token = String::new();
    let mut start = 0;
    while start < count {
        let end = (start + TX_ROWS).min(count);
        let rows: Vec<Row> = (start..end)
            .map(|i| {
                let invitation = InvitationId::new();
                let token = secrets::derived_token(key, "invitation", &invitation.to_string());
                if i == 0 {
                    sample_token = token.clone();
                }
                Row {
                    client: ClientId::new(),
                    practitioner: staff[i % staff.len()],
                    appointment: AppointmentId::new(),
                    invitation,
                    token_hash: secrets::sha256(&token),
                    starts_at: tomorrow + chrono::Duration::minutes((i % 600) as i64),
                    job: JobId::new(),
                    offset: offset_of(i),
                }
            })
            .collect();
        for r in &rows {
            offsets.insert(r.appointment, r.offset);
        }
        on_pool!(store, pool => {
            let mut tx = pool.begin().await?;
            for (n, chunk) in rows.chunks(BATCH).enumerate() {
                let base = start + n * BATCH;
                sqlx::QueryBuilder::new(
                    "insert into client (client_id, organisation_id, name, email, language, \
                     created_at, updated_at) ",
                )
                .push_values(chunk.iter().enumerate(), |mut b, (k, r)| {
                    let i = base + k;
                    b.push_bind(r.client)
                        .push_bind(org)
                        .push_bind(format!("Client {i}"))
                        .push_bind(format!("client{i}@reminders.test"))
                        .push_bind(["en", "nl", "de"][i % 3])
                        .push_bind(now)
                        .push_bind(now);
                })
                .build()
                .execute(&mut *tx)
                .await?;
                sqlx::QueryBuilder::new(
                    "insert into appointment (appointment_id, organisation_id, practitioner_id, \
                     client_id, department_id, starts_at, duration_minutes, status, created_at, \
                     updated_at, waiting_room, personal_message) ",
                )
                .push_values(chunk, |mut b, r| {
                    b.push_bind(r.appointment)
                        .push_bind(org)
                        .push_bind(r.practitioner)
                        .push_bind(r.client)
                        .push_bind(None::<DepartmentId>)
                        .push_bind(r.starts_at)
                        .push_bind(15_i32)
                        .push_bind("scheduled")
                        .push_bind(now)
                        .push_bind(now)
                        .push_bind("practitioner")
                        .push_bind("Please have your medication list ready.");
                })
                .build()
                .execute(&mut *tx)
                .await?;
                sqlx::QueryBuilder::new(
                    "insert into invitation (invitation_id, appointment_id, token_hash, \
                     created_at, updated_at) ",
                )
                .push_values(chunk, |mut b, r| {
                    b.push_bind(r.invitation)
                        .push_bind(r.appointment)
                        .push_bind(r.token_hash.clone())
                        .push_bind(now)
                        .push_bind(now);
                })
                .build()
                .execute(&mut *tx)
                .await?;
                sqlx::QueryBuilder::new(
                    "insert into chat_channel (chat_channel_id, organisation_id, practitioner_id, \
                     client_id, created_at, updated_at) ",
                )
                .push_values(chunk, |mut b, r| {
                    b.push_bind(ChatChannelId::new())
                        .push_bind(org)
                        .push_bind(r.practitioner)
                        .push_bind(r.client)
                        .push_bind(now)
                        .push_bind(now);
                })
                .build()
                .execute(&mut *tx)
                .await?;
                // As `appointments::reminders::reminder_job` writes it (kind, payload, unique
                // key, 5 attempts), parked.
                sqlx::QueryBuilder::new(
                    "insert into job (job_id, kind, payload, unique_key, status, run_at, \
                     attempts, max_attempts, created_at, updated_at) ",
                )
                .push_values(chunk, |mut b, r| {
                    b.push_bind(r.job)
                        .push_bind("appointment.reminder")
                        .push_bind(
                            serde_json::json!({"appointment_id": r.appointment, "sequence": 0})
                                .to_string(),
                        )
                        .push_bind(format!("appointment:{}:reminder:email:0", r.appointment))
                        .push_bind("queued")
                        .push_bind(PARKED + r.offset)
                        .push_bind(0_i32)
                        .push_bind(5_i32)
                        .push_bind(now)
                        .push_bind(now);
                })
                .build()
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            anyhow::Ok(())
        })?;
        start = end;
    }
    Ok(Seeded {
        offsets,
        sample_token,
    })
}

// ---------------------------------------------------------------------------------------------
// CPU of the database's backends (PostgreSQL).

/// Summed CPU seconds of the PostgreSQL backends connected to the store's database (but this
/// one), by pid.
async fn backend_cpu(store: &Store) -> anyhow::Result<HashMap<u32, f64>> {
    let Store::Postgres(pool) = store else {
        return Ok(HashMap::new());
    };
    let pids: Vec<i32> = sqlx::query_scalar(
        "select pid from pg_stat_activity \
         where datname = current_database() and pid <> pg_backend_pid()",
    )
    .fetch_all(pool)
    .await?;
    Ok(pids
        .into_iter()
        .filter_map(|p| {
            let p = u32::try_from(p).ok()?;
            Some((p, common::cpu_seconds(p).ok()?))
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// One phase.

async fn count_where(store: &Store, sql: &'static str) -> anyhow::Result<i64> {
    Ok(on_pool!(store, pool => {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await
    })?)
}

async fn phase(
    args: &Args,
    mode: Mode,
    python: &Path,
    deadline: Instant,
) -> anyhow::Result<Outcome> {
    let name = match mode {
        Mode::Spread => "spread",
        _ => "burst",
    };
    let dir = TempDir::new(&format!("consultroom-reminders-{name}"))?;
    let pg = match &args.database_url {
        Some(url) => Some(PgDatabase::create(url).await?),
        None => None,
    };
    // Bounded; on timeout the phase is dropped, which kills the server and the sink.
    let result = tokio::time::timeout_at(
        tokio::time::Instant::from_std(deadline),
        run_phase(args, mode, python, deadline, &dir.0, pg.as_ref()),
    )
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("{mode:?}: timed out (--timeout-secs)")));
    if let Some(pg) = pg {
        pg.drop_database().await?;
    }
    result
}

async fn run_phase(
    args: &Args,
    mode: Mode,
    python: &Path,
    deadline: Instant,
    dir: &Path,
    pg: Option<&PgDatabase>,
) -> anyhow::Result<Outcome> {
    let n = args.count;
    let window_ms = match mode {
        Mode::Spread => i64::try_from(args.window_secs)? * 1000,
        _ => 0,
    };
    let sink = Sink::start(python, dir.join("sink.log"))?;
    let smtp = sink.url();
    let mut extra = vec!["--smtp-url", smtp.as_str()];
    if let Some(pg) = pg {
        extra.extend(["--database-url", pg.url.as_str()]);
    }
    // The server makes the schema (its migrations) and the secret.
    let mut server = start_server(&args.server_bin, dir, &extra)?;
    let store = Store::connect(&match pg {
        Some(pg) => pg.url.clone(),
        None => format!("sqlite://{}", dir.join("consultroom.db").display()),
    })
    .await?;

    let t = Instant::now();
    let key = link_key(dir)?;
    let seeded = seed(&store, &key, n, args.practitioners, |i| {
        if n == 0 {
            0
        } else {
            i64::try_from(i).unwrap_or(0) * window_ms / i64::try_from(n).unwrap_or(1)
        }
    })
    .await?;
    let seed_secs = t.elapsed().as_secs_f64();
    eprintln!("{mode:?}: seeded {n} appointments with parked reminders in {seed_secs:.1} s");

    // The links were derived as the server derives them: it finds the invitation.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/invitations/resolve", server.base))
        .json(&serde_json::json!({"token": seeded.sample_token}))
        .send()
        .await?;
    ensure!(
        r.status() != 404,
        "the server does not know a seeded invitation link ({}): the token derivation differs",
        r.status()
    );

    let server_pid = server.child.id();
    let cpu0 = common::cpu_seconds(server_pid)?;
    let db0 = backend_cpu(&store).await?;
    let t0 = Utc::now().timestamp_millis() + i64::try_from(args.lead_secs)? * 1000;
    let released = on_pool!(&store, pool => {
        sqlx::query(
            "update job set run_at = run_at - $1 + $2 \
             where kind = 'appointment.reminder' and status = 'queued' and run_at >= $1",
        )
        .bind(PARKED)
        .bind(t0)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    ensure!(
        released == n as u64,
        "released {released} reminder jobs, seeded {n}"
    );
    eprintln!(
        "{mode:?}: released; due from {} s from now over {} s",
        args.lead_secs,
        window_ms / 1000
    );

    // Follow the sink until every reminder arrived.
    let mut arrivals = Arrivals::default();
    let mut last_report = Instant::now();
    loop {
        arrivals.follow(&sink.log)?;
        if arrivals.by_id.len() >= n {
            break;
        }
        if let Some(status) = server.child.try_wait()? {
            bail!("the server exited during the run: {status}");
        }
        if Instant::now() > deadline {
            bail!(
                "timed out with {} of {n} reminders arrived",
                arrivals.by_id.len()
            );
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("{mode:?}: {} of {n} arrived", arrivals.by_id.len());
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Until every mail is recorded as sent (the 250 has to travel back), then a moment more for
    // any copy to show.
    let sent_by = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = count_where(&store, "select count(*) from mail where status = 'sent'").await?;
        if sent >= i64::try_from(n)? || Instant::now() > sent_by {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cpu1 = common::cpu_seconds(server_pid)?;
    let db1 = backend_cpu(&store).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    arrivals.follow(&sink.log)?;

    // Every reminder once, each Message-ID the server's.
    let mails: Vec<(String, AppointmentId, DateTime<Utc>)> = on_pool!(&store, pool => {
        sqlx::query_as("select message_id, appointment_id, created_at from mail")
            .fetch_all(pool)
            .await
    })?;
    let failed_jobs =
        count_where(&store, "select count(*) from job where status <> 'done'").await?;
    let unsent = count_where(&store, "select count(*) from mail where status <> 'sent'").await?;
    let due_of: HashMap<&str, i64> = mails
        .iter()
        .filter_map(|(mid, a, _)| Some((mid.as_str(), t0 + *seeded.offsets.get(a)?)))
        .collect();
    let mut recorded: Vec<f64> = mails
        .iter()
        .filter_map(|(_, a, at)| {
            Some((at.timestamp_millis() - (t0 + *seeded.offsets.get(a)?)) as f64)
        })
        .collect();
    recorded.sort_by(f64::total_cmp);
    let copies = arrivals.lines - arrivals.by_id.len();
    let unknown = arrivals
        .by_id
        .keys()
        .filter(|id| !due_of.contains_key(id.as_str()))
        .count();
    let mut lateness: Vec<f64> = arrivals
        .by_id
        .iter()
        .filter_map(|(id, (at, _))| Some((at - due_of.get(id.as_str())?) as f64))
        .collect();
    lateness.sort_by(f64::total_cmp);
    let first = arrivals.by_id.values().map(|v| v.0).min().unwrap_or(0);
    let last = arrivals.by_id.values().map(|v| v.0).max().unwrap_or(0);
    let db_cpu = pg.map(|_| {
        db1.iter()
            .map(|(pid, c)| c - db0.get(pid).copied().unwrap_or(0.0))
            .sum::<f64>()
    });
    let outcome = Outcome {
        mode,
        count: n,
        window_secs: window_ms as f64 / 1000.0,
        sending_secs: (last - first) as f64 / 1000.0,
        min_ms: lateness.first().copied().unwrap_or(f64::NAN),
        p50_ms: percentile(&lateness, 0.50),
        p99_ms: percentile(&lateness, 0.99),
        max_ms: lateness.last().copied().unwrap_or(f64::NAN),
        recorded_ms: (percentile(&recorded, 0.50), percentile(&recorded, 0.99)),
        drain_ms: (last - (t0 + window_ms)) as f64,
        server_cpu: cpu1 - cpu0,
        db_cpu,
        seed_secs,
    };
    eprintln!(
        "{mode:?}: {} distinct, {copies} copies, {unknown} unknown, {} mails recorded, \
         {failed_jobs} jobs not done, {unsent} mails not sent; {}",
        arrivals.by_id.len(),
        mails.len(),
        outcome.row(store.backend()).trim_end()
    );
    ensure!(
        arrivals.by_id.len() == n && copies == 0 && unknown == 0 && mails.len() == n,
        "not every reminder arrived exactly once: {} distinct of {n}, {copies} copies, {unknown} \
         unknown Message-IDs, {} mails recorded",
        arrivals.by_id.len(),
        mails.len()
    );
    ensure!(
        failed_jobs == 0 && unsent == 0,
        "{failed_jobs} jobs not done, {unsent} mails not sent"
    );
    store.close().await;
    drop(server);
    drop(sink);
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------------
// A PostgreSQL database of our own.

struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin: &str) -> anyhow::Result<PgDatabase> {
        let name = format!("reminders_bench_{}", std::process::id());
        let (base, query) = match admin.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (admin, String::new()),
        };
        let (server, _) = base
            .rsplit_once('/')
            .filter(|(s, _)| s.contains("://"))
            .context("--database-url: expected postgres://…/<database>")?;
        let url = format!("{server}/{name}{query}");
        let mut conn = sqlx::PgConnection::connect(admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database if exists {name} with (force)"
        )))
        .execute(&mut conn)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(PgDatabase {
            admin: admin.to_owned(),
            name,
            url,
        })
    }

    async fn drop_database(self) -> anyhow::Result<()> {
        let mut conn = sqlx::PgConnection::connect(&self.admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database if exists {} with (force)",
            self.name
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let python = smtp_python(args.smtp_python.as_deref())?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let modes = match args.mode {
        Mode::Both => vec![Mode::Spread, Mode::Burst],
        m => vec![m],
    };
    let backend = if args.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut outcomes = Vec::new();
    for mode in modes {
        outcomes.push(phase(&args, mode, &python, deadline).await?);
    }

    let heading = args
        .heading
        .clone()
        .unwrap_or_else(|| format!("## Appointment reminders (issue #12, {backend})"));
    let debug = args.server_bin.contains("debug");
    let mut report = format!(
        "{heading}\n\n\
    Measured {date} with `reminders --server-bin {bin} --count {count} --window-secs \
    {window}{mode}{db}` \
    ({gen} build of the load generator) against a separate `consultroom serve` process on \
    {backend}, its ordinary job worker (`--job-concurrency` 16, the default, 5 s poll), sending through SMTP (no TLS) \
    to an aiosmtpd sink that counts Message-IDs, all on loopback. Each phase seeds a fresh \
    database with the appointments and their reminder jobs parked, then moves the jobs to their \
    due times in one statement: *spread* evenly over the window (a compressed day), *burst* all \
    at one instant (every reminder of an organisation is due at its reminder time). Every \
    reminder arrived exactly once (distinct Message-IDs = reminders, no copies). Lateness is \
    arrival at the sink − due time; *recorded* is the reminder's outbox row (its job's commit) − \
    due time; mails/s is over first to last arrival; drain is the last arrival after the last \
    due time; CPU is user + system seconds over the run{dbcpu}.\n\n\
    | backend | phase | reminders | due over s | mails/s | lateness min ms | p50 ms | p99 ms | \
    max ms | recorded p50 ms | recorded p99 ms | drain s | server CPU s | DB CPU s |\n\
    |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        date = today(),
        bin = args.server_bin,
        count = args.count,
        window = args.window_secs,
        mode = match args.mode {
            Mode::Both => "",
            Mode::Spread => " --mode spread",
            Mode::Burst => " --mode burst",
        },
        db = if args.database_url.is_some() {
            " --database-url postgres://…"
        } else {
            ""
        },
        gen = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        dbcpu = if args.database_url.is_some() {
            " (DB: the PostgreSQL backends serving the server)"
        } else {
            ""
        },
    );
    for o in &outcomes {
        report.push_str(&o.row(backend));
    }
    report.push_str(&format!(
        "\nSeeding took {} s. Machine: {} CPUs ({}); the sink and the load generator on the same \
         machine.{}\n\n",
        outcomes
            .iter()
            .map(|o| format!("{:.0}", o.seed_secs))
            .collect::<Vec<_>>()
            .join(" / "),
        cores(),
        cpu_model(),
        if debug {
            " **Debug build** of the server (unoptimised): rerun with \
             `--server-bin target/release/consultroom`."
        } else {
            ""
        }
    ));
    publish(&report, args.out.as_deref(), &heading)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_count_copies_and_keep_the_first_time() {
        let dir = TempDir::new("reminders-arrivals-test").unwrap();
        let log = dir.0.join("log");
        std::fs::write(&log, "10\t<a@h>\n12\t<b@h>\n11\t<a").unwrap();
        let mut a = Arrivals::default();
        a.follow(&log).unwrap();
        assert_eq!(a.lines, 2);
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"@h>\n").unwrap();
        a.follow(&log).unwrap();
        assert_eq!(a.lines, 3);
        assert_eq!(a.by_id["<a@h>"], (10, 2));
        assert_eq!(a.by_id["<b@h>"], (12, 1));
    }
}
