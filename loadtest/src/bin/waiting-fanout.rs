//! Waiting-room fan-out benchmark (issue #4): N patients waiting across M practitioners on a
//! real `consultroom serve` process; measures the time from a status change (a practitioner
//! admits the first patient of their queue, then ends the consultation) to every affected
//! client seeing it, and the server's memory per waiting patient.
//!
//! Loopback only; every loop is bounded in count and time; the server it starts is killed on
//! exit. Seeds the organisation and practitioners straight into the database (there is no staff
//! API yet), books appointments through the HTTP API.
//!
//! ```sh
//! cargo run --release -p consultroom-loadtest --bin waiting-fanout -- \
//!     --server-bin target/release/consultroom --out docs/benchmarks.md
//! ```

mod common;

// SFU load beside the fan-out (`--media-pairs`): the synthetic WebRTC participants of the
// `loadtest` binary, driven through the same server's signalling.
#[allow(dead_code, unused_imports)]
#[path = "../consultroom.rs"]
mod consultroom;
#[allow(dead_code)]
#[path = "../media.rs"]
mod media;
#[allow(dead_code)]
#[path = "../peer.rs"]
mod peer;
#[allow(dead_code)]
#[path = "../procfs.rs"]
mod procfs;
#[allow(dead_code)]
#[path = "../stats.rs"]
mod stats;

use common::{
    Staff, TempDir, Ws, cores, cpu_model, p50_p99, publish, resolve_invitation, rss_kib,
    seed_practitioners, send_json, start_server, today, ws_connect,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "fanout-bench-password";

#[derive(Parser, Debug)]
struct Args {
    /// The consultroom binary to run.
    #[arg(long, default_value = "target/release/consultroom")]
    server_bin: String,
    #[arg(long, default_value_t = 50)]
    practitioners: usize,
    #[arg(long, default_value_t = 1000)]
    patients: usize,
    /// Admit/end rounds to measure (each round: one practitioner admits, then ends).
    #[arg(long, default_value_t = 40)]
    rounds: usize,
    /// Consultations with media (a staff member and a patient, both publishing audio and
    /// simulcast-free VP8-shaped video through the SFU) running on the same server during the
    /// rounds, so that the media loops are busy while the hub admits and ends.
    #[arg(long, default_value_t = 0)]
    media_pairs: usize,
    /// Write the results into this Markdown file (section replaced if present).
    #[arg(long)]
    out: Option<String>,
}

/// A connected signalling client whose frames arrive on a channel, stamped on receipt.
struct Client {
    tx: futures_util::stream::SplitSink<Ws, Message>,
    rx: mpsc::UnboundedReceiver<(Instant, Value)>,
    participant_id: String,
}

impl Client {
    async fn join(ws: &str, token: &str) -> anyhow::Result<Client> {
        let (mut tx, mut read) = ws_connect(ws).await?.split();
        let (ftx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(m)) = read.next().await {
                if let Message::Text(t) = m
                    && let Ok(v) = serde_json::from_str::<Value>(t.as_str())
                {
                    let _ = ftx.send((Instant::now(), v));
                }
            }
        });
        send_json(&mut tx, &json!({"type":"join","token":token})).await?;
        let mut c = Client {
            tx,
            rx,
            participant_id: String::new(),
        };
        let joined = c
            .wait(|v| v["type"] == "joined" || v["type"] == "error")
            .await?;
        if joined.1["type"] != "joined" {
            bail!("join refused: {}", joined.1);
        }
        c.participant_id = joined.1["participant_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(c)
    }

    async fn send(&mut self, v: Value) -> anyhow::Result<()> {
        send_json(&mut self.tx, &v).await
    }

    async fn wait(&mut self, pred: impl Fn(&Value) -> bool) -> anyhow::Result<(Instant, Value)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let f = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .context("timed out waiting for a frame")?
                .context("connection closed")?;
            if pred(&f.1) {
                return Ok(f);
            }
        }
    }

    fn drain(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    anyhow::ensure!(args.practitioners > 0 && args.patients >= args.practitioners);
    let dir = TempDir::new("cr-fanout")?;
    run(&args, &dir.0).await
}

async fn run(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let emails = seed_practitioners(
        dir,
        "Fan-out Clinic",
        Some("General"),
        "fanout.test",
        PASSWORD,
        args.practitioners + args.media_pairs,
    )
    .await?;
    let server = start_server(&args.server_bin, dir, &[])?;
    let pid = server.child.id();
    let http = reqwest::Client::new();

    // Practitioners: log in, book appointments for their patients (starting in 30 minutes, so
    // the invitation links are open), connect.
    let per = args.patients / args.practitioners;
    let starts = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
    let mut staff = Vec::new();
    let mut invitations: Vec<(usize, String)> = Vec::new();
    for (i, email) in emails.iter().take(args.practitioners).enumerate() {
        let c = Staff::login(&server.base, email, PASSWORD).await?;
        for j in 0..per {
            let token = c.book(&format!("Patient {i}-{j}"), &starts).await?;
            invitations.push((i, token));
        }
        // Two tabs per practitioner, as in a real practice (desk and laptop).
        let mut tabs = Vec::new();
        for _ in 0..2 {
            let token = c.signalling_token().await?;
            let mut ws = Client::join(&server.ws, &token).await?;
            ws.wait(|v| v["type"] == "waiting_snapshot").await?;
            tabs.push(ws);
        }
        staff.push(tabs);
    }
    let rss_before = rss_kib(pid)?;

    // SFU load: consultations with media, up before the patients arrive.
    let media_stats = std::sync::Arc::new(stats::Stats::default());
    let mut media_tasks = Vec::new();
    let media_until = Instant::now() + Duration::from_secs(600);
    for (m, email) in emails.iter().skip(args.practitioners).enumerate() {
        let (staff_ws, patient_ws) = media_pair(&server, &http, email, m, &starts).await?;
        for ws in [staff_ws, patient_ws] {
            media_tasks.push(tokio::spawn(consultroom::participant(
                ws,
                media_stats.clone(),
                media_until,
            )));
        }
    }
    if args.media_pairs > 0 {
        let want = 2 * args.media_pairs as u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        while media_stats
            .connected
            .load(std::sync::atomic::Ordering::Relaxed)
            < want
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "media participants did not connect"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        media_stats
            .recording
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    // Patients join their practitioners' waiting rooms.
    let mut patients: Vec<(usize, Client)> = Vec::new();
    for (i, token) in &invitations {
        let t = resolve_invitation(&http, &server.base, token).await?;
        patients.push((*i, Client::join(&server.ws, &t).await?));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_waiting = rss_kib(pid)?;
    for tab in staff.iter_mut().flatten() {
        tab.drain();
    }
    for (_, p) in &mut patients {
        p.drain();
    }

    // Rounds: practitioner k admits the first of their queue (every other patient of that
    // queue moves up), then ends (estimates move again). Latency = send → each affected
    // client's frame.
    let mut latencies: Vec<f64> = Vec::new();
    let mut by_staff: HashMap<usize, Vec<usize>> = HashMap::new();
    for (idx, (i, _)) in patients.iter().enumerate() {
        by_staff.entry(*i).or_default().push(idx);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    for round in 0..args.rounds.min(args.practitioners * per) {
        if Instant::now() > deadline {
            break;
        }
        let k = round % args.practitioners;
        let queue = by_staff.get_mut(&k).context("queue")?;
        if queue.is_empty() {
            continue;
        }
        let first = queue.remove(0);
        let target = patients[first].1.participant_id.clone();
        let sent = Instant::now();
        staff[k][0]
            .send(json!({"id":"a","type":"admit","participant_id":target}))
            .await?;
        // Affected: the admitted patient (consultation_started), the other tab
        // (waiting_left), and every patient still in that queue (queue_status).
        let (t, _) = patients[first]
            .1
            .wait(|v| v["type"] == "consultation_started")
            .await?;
        latencies.push((t - sent).as_secs_f64() * 1000.0);
        let (t, _) = staff[k][1].wait(|v| v["type"] == "waiting_left").await?;
        latencies.push((t - sent).as_secs_f64() * 1000.0);
        for &idx in queue.iter() {
            let (t, _) = patients[idx]
                .1
                .wait(|v| v["type"] == "queue_status")
                .await?;
            latencies.push((t - sent).as_secs_f64() * 1000.0);
        }
        let (_, r) = staff[k][0].wait(|v| v["reply_to"] == "a").await?;
        anyhow::ensure!(r["type"] == "ok", "admit refused: {r}");
        staff[k][0]
            .send(json!({"id":"e","type":"end_consultation"}))
            .await?;
        staff[k][0].wait(|v| v["reply_to"] == "e").await?;
        for tab in staff.iter_mut().flatten() {
            tab.drain();
        }
        for (_, p) in &mut patients {
            p.drain();
        }
    }
    let media = media_stats.snapshot();
    for t in &media_tasks {
        t.abort();
    }
    let (p50, p99) = p50_p99(&mut latencies);
    println!(
        "media pairs beside: {} ({} participants connected, {} frames sent, {} frames received \
         during the rounds)",
        args.media_pairs,
        media_stats
            .connected
            .load(std::sync::atomic::Ordering::Relaxed),
        media.frames_sent,
        media.frames_recv
    );
    let per_patient_kib = (rss_waiting.saturating_sub(rss_before)) as f64 / patients.len() as f64;
    let cpu = cpu_model();
    let report = format!(
        "## Waiting-room fan-out\n\n\
Measured {date} with `cargo run --release -p consultroom-loadtest --bin waiting-fanout -- \
--server-bin {bin}` against a separate `consultroom serve` process (SQLite), on loopback.\n\n\
{patients} patients wait across {pracs} practitioners ({per} each, one WebSocket each) and \
every practitioner has the staff app open in two tabs. In each of {rounds} rounds a practitioner admits \
the first patient of their queue; the latency runs from sending `admit` to each affected \
client receiving its frame: the admitted patient's `consultation_started`, the practitioner's \
other tab's `waiting_left`, and a `queue_status` for every patient still in that queue.\n\n\
| measure | value |\n|---|---:|\n\
| frames measured | {n} |\n\
| latency p50 | {p50:.2} ms |\n\
| latency p99 | {p99:.2} ms |\n\
| server RSS with {pracs} practitioners connected | {before:.1} MiB |\n\
| server RSS with {patients} patients waiting too | {after:.1} MiB |\n\
| server memory per waiting patient | {per_patient_kib:.1} KiB |\n\n\
Machine: {cores} CPUs ({cpu}), the load generator on the same machine.\n",
        date = today(),
        bin = args.server_bin,
        patients = patients.len(),
        pracs = args.practitioners,
        rounds = args.rounds,
        n = latencies.len(),
        before = rss_before as f64 / 1024.0,
        after = rss_waiting as f64 / 1024.0,
        cores = cores(),
    );
    publish(&report, args.out.as_deref(), "## Waiting-room fan-out")?;
    drop(server);
    Ok(())
}

/// One consultation with media for `--media-pairs`: practitioner `email` books an appointment,
/// both join, the practitioner admits; returns the two sockets (staff, patient).
async fn media_pair(
    server: &common::Server,
    http: &reqwest::Client,
    email: &str,
    m: usize,
    starts: &str,
) -> anyhow::Result<(common::Ws, common::Ws)> {
    let staff = Staff::login(&server.base, email, PASSWORD).await?;
    let invitation = staff.book(&format!("Media patient {m}"), starts).await?;
    let patient_token = resolve_invitation(http, &server.base, &invitation).await?;
    let mut staff_ws = ws_connect(&server.ws).await?;
    let mut patient_ws = ws_connect(&server.ws).await?;
    let token = staff.signalling_token().await?;
    send_json(&mut staff_ws, &json!({"type":"join","token":token})).await?;
    frame_of(&mut staff_ws, "waiting_snapshot").await?;
    send_json(
        &mut patient_ws,
        &json!({"type":"join","token":patient_token}),
    )
    .await?;
    let joined = frame_of(&mut patient_ws, "joined").await?;
    let pid = joined["participant_id"]
        .as_str()
        .context("participant_id")?;
    send_json(
        &mut staff_ws,
        &json!({"id":"a","type":"admit","participant_id":pid}),
    )
    .await?;
    frame_of(&mut staff_ws, "consultation_started").await?;
    frame_of(&mut patient_ws, "consultation_started").await?;
    Ok((staff_ws, patient_ws))
}

/// Reads frames until one of type `ty` (bounded: 20 s); an `error` frame aborts.
async fn frame_of(ws: &mut common::Ws, ty: &str) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .with_context(|| format!("no {ty} within 20 s"))?
            .context("socket closed")??;
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(t.as_str())?;
        if v["type"] == ty {
            return Ok(v);
        }
        if v["type"] == "error" {
            bail!("server error while waiting for {ty}: {v}");
        }
    }
}
