//! Chat fan-out benchmark (issue #5, RELIABILITY.md #48): C WebSocket clients in K chat channels
//! on a real `consultroom serve` process, every client sending one message per second for D
//! seconds. Measures delivery latency (send → every other member of the channel receiving its
//! `chat_message`), and checks that no acknowledged message is lost or delivered twice.
//!
//! Each channel is one practitioner and one client: the patient (one connection, in the waiting
//! room) and the practitioner's staff app on the other `C/K - 1` connections (tabs and devices).
//! Loopback only; bounded in count and time; the server it starts is killed on exit.
//!
//! ```sh
//! cargo run --release -p consultroom-loadtest --bin chat-fanout -- \
//!     --server-bin target/release/consultroom --out docs/benchmarks.md
//! ```

mod common;

use common::{
    Staff, TempDir, Ws, cores, cpu_model, p50_p99, publish, resolve_invitation, rss_kib,
    seed_practitioners, send_json, start_server, today, ws_connect,
};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "chat-fanout-bench-password";

#[derive(Parser, Debug)]
struct Args {
    /// The consultroom binary to run.
    #[arg(long, default_value = "target/release/consultroom")]
    server_bin: String,
    /// Number of channels (one practitioner and one client each).
    #[arg(long, default_value_t = 50)]
    channels: usize,
    /// Number of WebSocket clients in total (a multiple of `channels`).
    #[arg(long, default_value_t = 500)]
    clients: usize,
    /// Sending time in seconds (every client sends one message per second).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The server's `--sqlite-synchronous` (`full`, its default, or `normal`): what a
    /// durable `chat_ack` costs is measured by running both.
    #[arg(long, default_value = "full")]
    sqlite_synchronous: String,
    /// Write the results into this Markdown file (section replaced if present).
    #[arg(long)]
    out: Option<String>,
}

/// User + system CPU time of `pid`, in seconds.
fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).context("utime")?.parse::<f64>()? + f.get(12).context("stime")?.parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// What one connection saw.
#[derive(Default)]
struct ConnResult {
    channel: usize,
    conn: usize,
    sent: usize,
    /// client_msg_id → seq.
    acks: HashMap<String, i64>,
    /// seq of every `chat_message` received (duplicates kept).
    received: Vec<i64>,
    /// Send → receipt, ms.
    latencies: Vec<f64>,
    errors: usize,
}

/// Joins with `token`, opens `channel_id` and waits for the history.
async fn connect(ws_url: &str, token: &str, channel_id: &str) -> anyhow::Result<Ws> {
    let mut ws = ws_connect(ws_url).await?;
    send_json(&mut ws, &json!({"id":"j","type":"join","token":token})).await?;
    send_json(
        &mut ws,
        &json!({"id":"s","type":"chat_sync","channel_id":channel_id,"after_seq":0}),
    )
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no chat_history in time")?
            .context("closed")??;
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str())?;
            if v["type"] == "error" {
                bail!("refused: {v}");
            }
            if v["reply_to"] == "s" {
                return Ok(ws);
            }
        }
    }
}

/// Sends one message per second for `secs` (first one after `offset`), reads everything, and
/// keeps reading for `grace` after the last send.
#[allow(clippy::too_many_arguments)]
async fn run_conn(
    mut ws: Ws,
    channel: usize,
    conn: usize,
    channel_id: String,
    origin: Instant,
    start: tokio::time::Instant,
    offset: Duration,
    secs: u64,
    grace: Duration,
) -> ConnResult {
    let mut r = ConnResult {
        channel,
        conn,
        ..ConnResult::default()
    };
    let mut next = start + offset;
    let end = start + Duration::from_secs(secs);
    let stop = end + offset + grace;
    loop {
        let sending = next < end;
        tokio::select! {
            () = tokio::time::sleep_until(next), if sending => {
                let micros = origin.elapsed().as_micros();
                let cid = format!("{conn}-{}", r.sent);
                let frame = json!({"id":cid,"type":"chat_send","channel_id":channel_id,
                                   "client_msg_id":cid,"text":format!("t={micros}")});
                if send_json(&mut ws, &frame).await.is_err() {
                    r.errors += 1;
                    break;
                }
                r.sent += 1;
                next += Duration::from_secs(1);
            }
            () = tokio::time::sleep_until(stop) => break,
            m = ws.next() => {
                let now = origin.elapsed().as_micros();
                let Some(Ok(m)) = m else { r.errors += 1; break };
                let Message::Text(t) = m else { continue };
                let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                match v["type"].as_str() {
                    Some("chat_message") => {
                        let msg = &v["message"];
                        r.received.push(msg["seq"].as_i64().unwrap_or(-1));
                        if let Some(sent) = msg["text"].as_str().and_then(|s| s.strip_prefix("t=")).and_then(|s| s.parse::<u128>().ok()) {
                            r.latencies.push(now.saturating_sub(sent) as f64 / 1000.0);
                        }
                    }
                    Some("chat_ack") => {
                        if let (Some(cid), Some(seq)) = (v["client_msg_id"].as_str(), v["seq"].as_i64()) {
                            r.acks.insert(cid.to_owned(), seq);
                        }
                    }
                    Some("error") => r.errors += 1,
                    _ => {}
                }
            }
        }
    }
    let _ = ws.close(None).await;
    r
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    anyhow::ensure!(
        args.channels > 0 && args.clients >= 2 * args.channels && args.clients % args.channels == 0,
        "--clients must be a multiple of --channels, at least two per channel"
    );
    anyhow::ensure!((1..=600).contains(&args.seconds), "--seconds 1..=600");
    let dir = TempDir::new("cr-chat-fanout")?;
    run(&args, &dir.0).await
}

async fn run(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let emails = seed_practitioners(
        dir,
        "Chat Clinic",
        None,
        "chat.test",
        PASSWORD,
        args.channels,
    )
    .await?;
    let server = start_server(
        &args.server_bin,
        dir,
        &[
            "--media-loops",
            "1",
            "--sqlite-synchronous",
            &args.sqlite_synchronous,
        ],
    )?;
    let pid = server.child.id();
    let per = args.clients / args.channels;
    let http = reqwest::Client::new();
    let starts = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();

    // Per channel: book one appointment (which creates the channel), then connect the patient
    // and the practitioner's other `per - 1` tabs, each opening the channel.
    let mut conns: Vec<(usize, String, Ws)> = Vec::new();
    for (i, email) in emails.iter().enumerate() {
        let c = Staff::login(&server.base, email, PASSWORD).await?;
        let invitation = c.book(&format!("Patient {i}"), &starts).await?;
        let list = c.get_json("/api/v1/chat/channels").await?;
        let channel_id = list["channels"][0]["channel_id"]
            .as_str()
            .context("the appointment's channel")?
            .to_owned();
        let patient_token = resolve_invitation(&http, &server.base, &invitation).await?;
        conns.push((
            i,
            channel_id.clone(),
            connect(&server.ws, &patient_token, &channel_id).await?,
        ));
        for _ in 1..per {
            let token = c.signalling_token().await?;
            conns.push((
                i,
                channel_id.clone(),
                connect(&server.ws, &token, &channel_id).await?,
            ));
        }
    }
    let rss_before = rss_kib(pid)?;
    let cpu_before = cpu_secs(pid)?;

    // Every client sends once a second, spread evenly over the second.
    let origin = Instant::now();
    let start = tokio::time::Instant::now() + Duration::from_millis(500);
    let n = conns.len();
    let mut tasks = Vec::new();
    for (k, (channel, channel_id, ws)) in conns.into_iter().enumerate() {
        let offset = Duration::from_micros((k as u64 * 1_000_000) / n as u64);
        tasks.push(tokio::spawn(run_conn(
            ws,
            channel,
            k,
            channel_id,
            origin,
            start,
            offset,
            args.seconds,
            Duration::from_secs(5),
        )));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await?);
    }
    let wall = origin.elapsed().as_secs_f64();
    let cpu = cpu_secs(pid)? - cpu_before;
    let rss_after = rss_kib(pid)?;

    // Lost: an acknowledged message of the channel that another member did not receive.
    // Duplicated: a seq a member received more than once.
    let mut acked_by_channel: HashMap<usize, Vec<(usize, i64)>> = HashMap::new();
    let mut sent = 0;
    let mut acked = 0;
    let mut errors = 0;
    for r in &results {
        sent += r.sent;
        acked += r.acks.len();
        errors += r.errors;
        for seq in r.acks.values() {
            acked_by_channel
                .entry(r.channel)
                .or_default()
                .push((r.conn, *seq));
        }
    }
    let mut lost = 0usize;
    let mut duplicated = 0usize;
    let mut delivered = 0usize;
    for r in &results {
        let got: HashSet<i64> = r.received.iter().copied().collect();
        duplicated += r.received.len() - got.len();
        delivered += r.received.len();
        for (from, seq) in acked_by_channel.get(&r.channel).into_iter().flatten() {
            if *from != r.conn && !got.contains(seq) {
                lost += 1;
            }
        }
    }
    let mut lat: Vec<f64> = results
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    let (p50, p99) = p50_p99(&mut lat);
    let max = lat.last().copied().unwrap_or(f64::NAN);
    let cpu_model = cpu_model();
    let verdict = if lost == 0 && duplicated == 0 && acked == sent {
        "every message was acknowledged and delivered exactly once"
    } else {
        "**messages were lost, duplicated or not acknowledged**"
    };
    let heading = format!(
        "## Chat fan-out (SQLite synchronous={})",
        args.sqlite_synchronous.to_uppercase()
    );
    let report = format!(
        "{heading}\n\n\
Measured {date} with `cargo run --release -p consultroom-loadtest --bin chat-fanout -- \
--server-bin {bin} --sqlite-synchronous {sync}` against a separate `consultroom serve` process \
(SQLite in WAL mode, `--sqlite-synchronous {sync}`), on loopback.\n\n\
{n} WebSocket clients in {k} channels ({per} each: the patient, waiting, and the practitioner's staff \
app on {staff} connections), every client sending one message per second for {secs} s, spread \
evenly over each second. Every message is stored (seq taken in the inserting transaction) before \
its `chat_ack`, and pushed to the {others} other members of its channel. Latency runs from the \
sender writing `chat_send` to each other member receiving its `chat_message` (one clock: the \
load generator's).\n\n\
| measure | value |\n|---|---:|\n\
| messages sent | {sent} |\n\
| acknowledged | {acked} |\n\
| deliveries (`chat_message` received) | {delivered} |\n\
| lost (acknowledged, not delivered to a member) | {lost} |\n\
| duplicated deliveries | {duplicated} |\n\
| error frames / dropped connections | {errors} |\n\
| delivery latency p50 | {p50:.2} ms |\n\
| delivery latency p99 | {p99:.2} ms |\n\
| delivery latency max | {max:.2} ms |\n\
| server CPU during the run | {cpu_pct:.0} % of one core |\n\
| server RSS before / after | {before:.1} / {after:.1} MiB |\n\n\
Result: {verdict}. Machine: {cores} CPUs ({cpu_model}), shared with the load generator (and other \
work on the machine).\n",
        date = today(),
        bin = args.server_bin,
        sync = args.sqlite_synchronous,
        k = args.channels,
        staff = per - 1,
        secs = args.seconds,
        others = per - 1,
        cpu_pct = cpu / wall * 100.0,
        before = rss_before as f64 / 1024.0,
        after = rss_after as f64 / 1024.0,
        cores = cores(),
    );
    publish(&report, args.out.as_deref(), &heading)?;
    drop(server);
    if lost > 0 || duplicated > 0 {
        bail!("{lost} lost, {duplicated} duplicated");
    }
    Ok(())
}
