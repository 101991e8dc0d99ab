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

use common::{percentile, replace_section, rss_kib, start_server};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use consultroom_clinic::Store;
use consultroom_clinic::staff::{NewStaff, Role};
use futures_util::{SinkExt, StreamExt};
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

async fn seed(data_dir: &std::path::Path, practitioners: usize) -> anyhow::Result<Vec<String>> {
    let url = format!("sqlite://{}", data_dir.join("consultroom.db").display());
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let now = chrono::Utc::now();
    let org = store.insert_organisation("Chat Clinic", now).await?;
    let hash = consultroom_clinic::auth::hash_password(PASSWORD)?;
    let mut emails = Vec::new();
    for i in 0..practitioners {
        let email = format!("doc{i}@chat.test");
        let name = format!("Dr. {i}");
        let new = NewStaff {
            organisation_id: org,
            department_id: None,
            name: &name,
            email: &email,
            role: Role::Practitioner,
            password_hash: &hash,
        };
        store.insert_staff(&new, now).await?;
        emails.push(email);
    }
    store.close().await;
    Ok(emails)
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

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Joins with `token`, opens `channel_id` and waits for the history.
async fn connect(ws_url: &str, token: &str, channel_id: &str) -> anyhow::Result<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(ws_url, None, true).await?;
    ws.send(Message::Text(
        json!({"id":"j","type":"join","token":token})
            .to_string()
            .into(),
    ))
    .await?;
    ws.send(Message::Text(
        json!({"id":"s","type":"chat_sync","channel_id":channel_id,"after_seq":0})
            .to_string()
            .into(),
    ))
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
                if ws.send(Message::Text(frame.to_string().into())).await.is_err() {
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
    let dir = std::env::temp_dir().join(format!("cr-chat-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&args, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let emails = seed(dir, args.channels).await?;
    let server = start_server(&args.server_bin, dir, &["--media-loops", "1"])?;
    let pid = server.child.id();
    let per = args.clients / args.channels;
    let http = reqwest::Client::new();
    let starts = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();

    // Per channel: book one appointment (which creates the channel), then connect the patient
    // and the practitioner's other `per - 1` tabs, each opening the channel.
    let mut conns: Vec<(usize, String, Ws)> = Vec::new();
    for (i, email) in emails.iter().enumerate() {
        let c = reqwest::Client::builder().cookie_store(true).build()?;
        let r = c
            .post(format!("{}/api/v1/auth/login", server.base))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "login failed: {}", r.status());
        let client: Value = c
            .post(format!("{}/api/v1/clients", server.base))
            .json(&json!({"name": format!("Patient {i}")}))
            .send()
            .await?
            .json()
            .await?;
        let appt: Value = c
            .post(format!("{}/api/v1/appointments", server.base))
            .json(&json!({"client_id": client["client"]["id"], "starts_at": starts, "duration_minutes": 15}))
            .send()
            .await?
            .json()
            .await?;
        let url = appt["invitation_url"].as_str().context("invitation_url")?;
        let invitation = url.split_once('#').context("token")?.1.to_owned();
        let list: Value = c
            .get(format!("{}/api/v1/chat/channels", server.base))
            .send()
            .await?
            .json()
            .await?;
        let channel_id = list["channels"][0]["channel_id"]
            .as_str()
            .context("the appointment's channel")?
            .to_owned();
        let resolved: Value = http
            .post(format!("{}/api/v1/invitations/resolve", server.base))
            .json(&json!({"token": invitation}))
            .send()
            .await?
            .json()
            .await?;
        let patient_token = resolved["signalling_token"]
            .as_str()
            .context("signalling_token")?;
        conns.push((
            i,
            channel_id.clone(),
            connect(&server.ws, patient_token, &channel_id).await?,
        ));
        for _ in 1..per {
            let t: Value = c
                .post(format!("{}/api/v1/signalling/token", server.base))
                .send()
                .await?
                .json()
                .await?;
            let token = t["token"].as_str().context("token")?;
            conns.push((
                i,
                channel_id.clone(),
                connect(&server.ws, token, &channel_id).await?,
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
    lat.sort_by(|a, b| a.total_cmp(b));
    let p50 = percentile(&lat, 0.50);
    let p99 = percentile(&lat, 0.99);
    let max = lat.last().copied().unwrap_or(f64::NAN);
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let verdict = if lost == 0 && duplicated == 0 && acked == sent {
        "every message was acknowledged and delivered exactly once"
    } else {
        "**messages were lost, duplicated or not acknowledged**"
    };
    let report = format!(
        "## Chat fan-out\n\n\
Measured {date} with `cargo run --release -p consultroom-loadtest --bin chat-fanout -- \
--server-bin {bin}` against a separate `consultroom serve` process (SQLite, `synchronous=NORMAL` \
in WAL mode), on loopback.\n\n\
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
        date = chrono::Utc::now().format("%Y-%m-%d"),
        bin = args.server_bin,
        k = args.channels,
        staff = per - 1,
        secs = args.seconds,
        others = per - 1,
        cpu_pct = cpu / wall * 100.0,
        before = rss_before as f64 / 1024.0,
        after = rss_after as f64 / 1024.0,
        cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
    );
    println!("{report}");
    if let Some(path) = &args.out {
        let existing = std::fs::read_to_string(path).unwrap_or_default();
        let updated = replace_section(&existing, "## Chat fan-out", &report);
        std::fs::write(path, updated)?;
    }
    drop(server);
    if lost > 0 || duplicated > 0 {
        bail!("{lost} lost, {duplicated} duplicated");
    }
    Ok(())
}
