//! Appointment create benchmark (issue #12): `POST /api/v1/appointments` over HTTP against a
//! separate `consultroom serve` process on SQLite, one practitioner's session, each request with
//! its own `Idempotency-Key` and a personal message (the whole booking transaction: appointment,
//! invitation, chat channel, key). Reports p50/p99/max latency, sequential and with `--concurrency`
//! requests in flight, and checks every answer is a 201 (target: p99 < 10 ms).
//!
//! Loopback only; bounded in count; the server it starts is killed on exit.
//!
//! ```sh
//! cargo run --release -p consultroom-loadtest --bin appointment-create -- \
//!     --server-bin target/release/consultroom --out docs/benchmarks.md
//! ```

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use common::{
    Staff, TempDir, cores, cpu_model, p50_p99, publish, seed_practitioners, start_server, today,
};
use serde_json::{Value, json};

const PASSWORD: &str = "appointment-create-bench";

#[derive(Parser, Debug)]
struct Args {
    /// The consultroom binary to run.
    #[arg(long, default_value = "target/release/consultroom")]
    server_bin: String,
    /// Appointments booked per phase.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Requests in flight in the concurrent phase.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Write the results into this Markdown file under this heading (section replaced if
    /// present).
    #[arg(long)]
    out: Option<String>,
    #[arg(long, default_value = "## Appointment create (issue #12)")]
    heading: String,
}

/// Books one appointment; its latency in ms.
async fn book(staff: &Staff, base: &str, client: &str, i: usize, tag: &str) -> anyhow::Result<f64> {
    // Spread over the coming days, whole minutes, never in the past.
    let starts = chrono::Utc::now() + chrono::Duration::minutes(60 + (i as i64 % 10_000));
    let body = json!({
        "client_id": client,
        "starts_at": starts.format("%Y-%m-%dT%H:%M:00Z").to_string(),
        "duration_minutes": 15,
        "personal_message": "Please have your medication list ready.",
    });
    let t = Instant::now();
    let r = staff
        .http
        .post(format!("{base}/api/v1/appointments"))
        .header("Idempotency-Key", format!("{tag}-{i}"))
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let _: Value = r.json().await?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    ensure!(status == 201, "booking {i} answered {status}");
    Ok(ms)
}

fn line(name: &str, samples: &mut [f64], wall: Duration) -> String {
    let n = samples.len();
    let (p50, p99) = p50_p99(samples);
    let max = samples.last().copied().unwrap_or(f64::NAN);
    format!(
        "| {name} | {n} | {p50:.2} | {p99:.2} | {max:.1} | {:.0} |\n",
        n as f64 / wall.as_secs_f64()
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = TempDir::new("consultroom-appointment-bench")?;
    let emails = seed_practitioners(
        &dir.0,
        "Bench Clinic",
        Some("Bench"),
        "bench.test",
        PASSWORD,
        1,
    )
    .await?;
    let server = start_server(&args.server_bin, &dir.0, &[])?;
    let base = server.base.clone();
    let staff = Arc::new(Staff::login(&base, &emails[0], PASSWORD).await?);
    let client: Value = staff
        .http
        .post(format!("{base}/api/v1/clients"))
        .json(&json!({"name": "Bench Client", "email": "bench@example.nl"}))
        .send()
        .await?
        .json()
        .await?;
    let client = client["client"]["id"]
        .as_str()
        .context("client id")?
        .to_owned();

    // Warm-up (connections, statement caches), not counted.
    for i in 0..50 {
        book(&staff, &base, &client, i, "warm").await?;
    }

    let t = Instant::now();
    let mut sequential = Vec::with_capacity(args.count);
    for i in 0..args.count {
        sequential.push(book(&staff, &base, &client, i, "seq").await?);
    }
    let seq_wall = t.elapsed();

    let t = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (staff, base, client, next, count) = (
            staff.clone(),
            base.clone(),
            client.clone(),
            next.clone(),
            args.count,
        );
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return anyhow::Ok(out);
                }
                out.push(book(&staff, &base, &client, i, "par").await?);
            }
        }));
    }
    let mut concurrent = Vec::with_capacity(args.count);
    for task in tasks {
        concurrent.extend(task.await??);
    }
    let par_wall = t.elapsed();

    let debug = args.server_bin.contains("debug");
    let mut report = format!(
        "{heading}\n\n\
    Measured {date} with `appointment-create --server-bin {bin} --count {count} --concurrency {conc}` \
    ({gen} build of the load generator) against a separate `consultroom serve` process on SQLite \
    (`synchronous = FULL`: every booking is on disk before its 201), on loopback. Each request books \
    one appointment with an `Idempotency-Key` and a personal message: one transaction writing the \
    appointment, its invitation, the chat channel (first time only) and the key. Latency is the \
    client's, request sent to body read; every answer was a 201.\n\n\
    | phase | bookings | p50 ms | p99 ms | max ms | bookings/s |\n|---|---:|---:|---:|---:|---:|\n",
        heading = args.heading,
        date = today(),
        bin = args.server_bin,
        count = args.count,
        conc = args.concurrency,
        gen = if cfg!(debug_assertions) { "debug" } else { "release" },
    );
    report.push_str(&line("sequential", &mut sequential, seq_wall));
    let (_, seq_p99) = p50_p99(&mut sequential);
    report.push_str(&line(
        &format!("{} in flight", args.concurrency),
        &mut concurrent,
        par_wall,
    ));
    report.push_str(&format!(
        "\nTarget: p99 < 10 ms (sequential): **{}** ({seq_p99:.1} ms). Each booking makes about nine \
         queries through SQLite's one connection (settings, practitioner, client visibility, key, \
         the transaction, then the answer is read back). Machine: {} CPUs ({}); the load \
         generator on the same machine.{}\n\n",
        if seq_p99 < 10.0 { "met" } else { "not met" },
        cores(),
        cpu_model(),
        if debug {
            " **Debug build** of the server (unoptimised): a release build is faster; rerun with \
             `--server-bin target/release/consultroom`."
        } else {
            ""
        }
    ));
    drop(server);
    publish(&report, args.out.as_deref(), &args.heading)
}
