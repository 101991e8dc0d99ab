//! Login flood benchmark (issue #10): many concurrent wrong staff logins against a real
//! `consultroom serve` process, no account needed. Measures the server's RSS (`VmRSS` before,
//! sampled every 20 ms for the peak, and some seconds after; `VmHWM`), the responses by status,
//! and how a practitioner already working is affected meanwhile: the latency of `/healthz` (admin
//! listener), of an authenticated `GET /api/v1/me`, and of `ping`→`pong` on their signalling
//! WebSocket.
//!
//! Two floods: every attempt from 127.0.0.1, then the same number spread over `--sources`
//! loopback addresses (127.0.0.2, …), each attempt for its own unknown e-mail, so that no
//! per-source or per-account throttle stops them and only the bound on password checks does.
//!
//! Loopback only; bounded in count and time; the server it starts is killed on exit.
//!
//! ```sh
//! cargo run --release -p consultroom-loadtest --bin login-flood -- \
//!     --server-bin target/release/consultroom --out docs/benchmarks.md
//! ```

mod common;

use common::{
    Staff, TempDir, Ws, cores, cpu_model, p50_p99, publish, rss_kib, seed_practitioners, send_json,
    start_server, today, ws_connect,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures_util::StreamExt;
use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "login-flood-bench-password";

#[derive(Parser, Debug)]
struct Args {
    /// The consultroom binary to run.
    #[arg(long, default_value = "target/release/consultroom")]
    server_bin: String,
    /// Concurrent wrong logins per flood.
    #[arg(long, default_value_t = 500)]
    concurrency: usize,
    /// Loopback source addresses of the second flood.
    #[arg(long, default_value_t = 50)]
    sources: u8,
    /// Seconds to wait after each flood before reading RSS again.
    #[arg(long, default_value_t = 10)]
    settle_secs: u64,
    /// A label for the server build in the report (e.g. "before the fix").
    #[arg(long, default_value = "")]
    label: String,
    /// Write the results into this Markdown file under this heading (section replaced if
    /// present).
    #[arg(long)]
    out: Option<String>,
    #[arg(long, default_value = "## Login flood (issue #10)")]
    heading: String,
}

/// `VmHWM` (peak RSS) of `pid` in KiB.
fn hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Latency samples (ms) of the three probes, collected while `run` is set.
#[derive(Default)]
struct Probes {
    healthz: Vec<f64>,
    me: Vec<f64>,
    ping: Vec<f64>,
    failures: usize,
}

struct Flood {
    name: String,
    statuses: BTreeMap<String, usize>,
    wall: Duration,
    rss_before: u64,
    rss_peak: u64,
    rss_after: u64,
    probes_before: Probes,
    probes_during: Probes,
}

/// Samples the three probes every 50 ms into `into` until `stop`.
async fn probe_loop(
    admin: String,
    staff: Arc<Staff>,
    ws: Arc<Mutex<Ws>>,
    stop: Arc<AtomicBool>,
) -> Probes {
    let mut p = Probes::default();
    let plain = reqwest::Client::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        match tokio::time::timeout(
            Duration::from_secs(10),
            plain.get(format!("{admin}/healthz")).send(),
        )
        .await
        {
            Ok(Ok(r)) if r.status() == 200 => p.healthz.push(ms(t)),
            _ => p.failures += 1,
        }
        let t = Instant::now();
        match tokio::time::timeout(Duration::from_secs(10), staff.get_json("/api/v1/me")).await {
            Ok(Ok(v)) if v["id"].is_string() => p.me.push(ms(t)),
            _ => p.failures += 1,
        }
        n += 1;
        let t = Instant::now();
        let id = format!("p{n}");
        let mut ws = ws.lock().await;
        let pong = async {
            send_json(&mut *ws, &json!({"id": id, "type": "ping"})).await?;
            while let Some(m) = ws.next().await {
                if let Message::Text(text) = m? {
                    let v: Value = serde_json::from_str(text.as_str())?;
                    if v["reply_to"] == id.as_str() {
                        return anyhow::Ok(());
                    }
                }
            }
            anyhow::bail!("closed")
        };
        match tokio::time::timeout(Duration::from_secs(10), pong).await {
            Ok(Ok(())) => p.ping.push(ms(t)),
            _ => p.failures += 1,
        }
        drop(ws);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Runs `probe_loop` for `d`.
async fn probe_for(admin: &str, staff: &Arc<Staff>, ws: &Arc<Mutex<Ws>>, d: Duration) -> Probes {
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(probe_loop(
        admin.to_owned(),
        staff.clone(),
        ws.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(d).await;
    stop.store(true, Ordering::Relaxed);
    task.await.unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
async fn flood(
    name: &str,
    base: &str,
    admin: &str,
    pid: u32,
    staff: &Arc<Staff>,
    ws: &Arc<Mutex<Ws>>,
    sources: &[Ipv4Addr],
    n: usize,
    settle: Duration,
) -> anyhow::Result<Flood> {
    let probes_before = probe_for(admin, staff, ws, Duration::from_secs(2)).await;
    let rss_before = rss_kib(pid)?;
    let peak = Arc::new(AtomicU64::new(rss_before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid).unwrap_or(0), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let probe_stop = Arc::new(AtomicBool::new(false));
    let probes = tokio::spawn(probe_loop(
        admin.to_owned(),
        staff.clone(),
        ws.clone(),
        probe_stop.clone(),
    ));
    // One client per source address (each its own connections), every attempt at once.
    let clients = sources
        .iter()
        .map(|ip| {
            reqwest::Client::builder()
                .local_address(IpAddr::V4(*ip))
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(600))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let url = format!("{base}/api/v1/auth/login");
    let t0 = Instant::now();
    let results = join_all((0..n).map(|i| {
        let http = &clients[i % clients.len()];
        let url = &url;
        async move {
            let r = http
                .post(url)
                .json(&json!({"email": format!("nobody{i}@flood.test"), "password": "wrong"}))
                .send()
                .await;
            match r {
                Ok(r) => r.status().as_u16().to_string(),
                Err(e) if e.is_timeout() => "timeout".to_owned(),
                Err(_) => "connection error".to_owned(),
            }
        }
    }))
    .await;
    let wall = t0.elapsed();
    probe_stop.store(true, Ordering::Relaxed);
    let probes_during = probes.await.unwrap_or_default();
    tokio::time::sleep(settle).await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let rss_after = rss_kib(pid)?;
    let mut statuses = BTreeMap::new();
    for s in results {
        *statuses.entry(s).or_default() += 1;
    }
    Ok(Flood {
        name: name.to_owned(),
        statuses,
        wall,
        rss_before,
        rss_peak: peak.load(Ordering::Relaxed),
        rss_after,
        probes_before,
        probes_during,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = TempDir::new("cr-loginflood")?;
    let emails =
        seed_practitioners(&dir.0, "Flood Clinic", None, "flood.test", PASSWORD, 1).await?;
    let server = start_server(&args.server_bin, &dir.0, &[])?;
    let pid = server.child.id();
    let base = server.base.clone();
    let admin = admin_url(&server)?;

    // A practitioner at work: a session and a signalling connection.
    let staff = Arc::new(Staff::login(&base, &emails[0], PASSWORD).await?);
    let token = staff.signalling_token().await?;
    let mut ws = ws_connect(&server.ws).await?;
    send_json(&mut ws, &json!({"id": "j", "type": "join", "token": token})).await?;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .context("join reply")?
            .context("closed")??;
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str())?;
            if v["reply_to"] == "j" {
                anyhow::ensure!(v["type"] == "joined", "join refused: {v}");
                break;
            }
        }
    }
    let ws = Arc::new(Mutex::new(ws));
    let rss_start = rss_kib(pid)?;

    let settle = Duration::from_secs(args.settle_secs);
    let one = [Ipv4Addr::new(127, 0, 0, 1)];
    let many: Vec<Ipv4Addr> = (0..args.sources.max(1))
        .map(|i| Ipv4Addr::new(127, 0, 0, 2 + i))
        .collect();
    let mut floods = Vec::new();
    floods.push(
        flood(
            "one source (127.0.0.1)",
            &base,
            &admin,
            pid,
            &staff,
            &ws,
            &one,
            args.concurrency,
            settle,
        )
        .await?,
    );
    floods.push(
        flood(
            &format!(
                "{} sources (127.0.0.2–{})",
                many.len(),
                many[many.len() - 1]
            ),
            &base,
            &admin,
            pid,
            &staff,
            &ws,
            &many,
            args.concurrency,
            settle,
        )
        .await?,
    );
    let hwm = hwm_kib(pid);
    let ok_after = Staff::login(&base, &emails[0], PASSWORD).await.is_ok();

    let report = report(&args, rss_start, hwm, ok_after, &floods);
    publish(&report, args.out.as_deref(), &args.heading)?;
    drop(server);
    Ok(())
}

/// The admin listener's base URL, from the server's ready line.
fn admin_url(server: &common::Server) -> anyhow::Result<String> {
    server.admin.clone().context("admin= in the ready line")
}

fn lat(samples: &[f64]) -> String {
    let mut s = samples.to_vec();
    if s.is_empty() {
        return "–".to_owned();
    }
    let (p50, p99) = p50_p99(&mut s);
    let max = s.last().copied().unwrap_or(f64::NAN);
    format!("{p50:.1} / {p99:.1} / {max:.0}")
}

fn report(args: &Args, rss_start: u64, hwm: u64, ok_after: bool, floods: &[Flood]) -> String {
    let mib = |k: u64| k as f64 / 1024.0;
    let label = if args.label.is_empty() {
        String::new()
    } else {
        format!(" ({})", args.label)
    };
    let mut s = format!(
        "{heading}{label}\n\n\
Measured {date} with `cargo run --release -p consultroom-loadtest --bin login-flood -- --server-bin {bin} \
--concurrency {n} --sources {sources}` against a separate `consultroom serve` process (SQLite), on \
loopback. Each flood fires {n} wrong staff logins at once, each for its own unknown e-mail; the \
first from 127.0.0.1, the second spread over {sources} loopback addresses. Meanwhile a logged-in \
practitioner polls `/healthz` (admin listener), `GET /api/v1/me` and `ping` on their signalling \
WebSocket, one after another, every 50 ms. RSS from `/proc/<pid>/status`, sampled every 20 ms; \
\"after\" is {settle} s after the flood's last response.\n\n\
| flood | responses | wall | RSS before → peak → after (MiB) | healthz ms p50/p99/max (before → during) | /me ms | ping ms | probe failures |\n\
|---|---|---:|---|---|---|---|---:|\n",
        heading = args.heading,
        date = today(),
        bin = args.server_bin,
        n = args.concurrency,
        sources = args.sources,
        settle = args.settle_secs,
    );
    for f in floods {
        let responses = f
            .statuses
            .iter()
            .map(|(k, v)| format!("{v} × {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        s.push_str(&format!(
            "| {} | {} | {:.1} s | {:.0} → {:.0} (+{:.0}) → {:.0} | {} → {} | {} → {} | {} → {} | {} |\n",
            f.name,
            responses,
            f.wall.as_secs_f64(),
            mib(f.rss_before),
            mib(f.rss_peak),
            mib(f.rss_peak.saturating_sub(f.rss_before)),
            mib(f.rss_after),
            lat(&f.probes_before.healthz),
            lat(&f.probes_during.healthz),
            lat(&f.probes_before.me),
            lat(&f.probes_during.me),
            lat(&f.probes_before.ping),
            lat(&f.probes_during.ping),
            f.probes_during.failures,
        ));
    }
    s.push_str(&format!(
        "\nServer RSS at the start {:.0} MiB, `VmHWM` at the end {:.0} MiB; the practitioner's \
         login right after the floods {}. Machine: {} CPUs ({}), the load generator on the same \
         machine.{}\n\n",
        mib(rss_start),
        mib(hwm),
        if ok_after { "succeeded" } else { "FAILED" },
        cores(),
        cpu_model(),
        if args.server_bin.contains("debug") {
            " **Debug build** of the server (Argon2 unoptimised, so each check takes longer; the \
             memory figures are what matters here)."
        } else {
            ""
        },
    ));
    s
}
