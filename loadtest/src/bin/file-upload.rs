//! Consultation file upload benchmark (issue #5): one 200 MB file offered over the WebSocket and
//! streamed to a real `consultroom serve` process; measures upload throughput, the download of
//! the same file, and the server's RSS (from `/proc/<pid>/status`, sampled every 20 ms) before,
//! during and after — the server must stream, never hold the file in memory.
//!
//! Loopback only; bounded; the server it starts is killed on exit. Seeds one practitioner into
//! the database (there is no staff API yet) and books the appointment through the HTTP API.
//!
//! ```sh
//! cargo run --release -p consultroom-loadtest --bin file-upload -- \
//!     --server-bin target/release/consultroom --out docs/benchmarks.md
//! ```

mod common;

use common::{
    Staff, TempDir, Ws, cores, cpu_model, publish, resolve_invitation, rss_kib, send_json,
    start_server, today,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use consultroom_clinic::Store;
use consultroom_clinic::staff::{NewStaff, Role};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "file-bench-password";

#[derive(Parser, Debug)]
struct Args {
    /// The consultroom binary to run.
    #[arg(long, default_value = "target/release/consultroom")]
    server_bin: String,
    /// File size in MB (10^6 bytes).
    #[arg(long, default_value_t = 200)]
    megabytes: u64,
    /// Write the results into this Markdown file (section replaced if present).
    #[arg(long)]
    out: Option<String>,
}

async fn ws_join(base: &str, token: &str) -> anyhow::Result<Ws> {
    let url = format!("ws://{}/ws", base.trim_start_matches("http://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let joined = request(&mut ws, json!({"type":"join","token":token})).await?;
    anyhow::ensure!(joined["type"] == "joined", "join refused: {joined}");
    Ok(ws)
}

/// Send `msg` with an id and return the reply (other frames are skipped).
async fn request(ws: &mut Ws, mut msg: Value) -> anyhow::Result<Value> {
    let id = uuid_like();
    msg["id"] = json!(id);
    send_json(ws, &msg).await?;
    wait(ws, |v| v["reply_to"] == id.as_str()).await
}

async fn wait(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("timed out waiting for a frame")?
            .context("connection closed")??;
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str())?;
            if pred(&v) {
                return Ok(v);
            }
        }
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::AtomicUsize;
    static N: AtomicUsize = AtomicUsize::new(1);
    format!("b{}", N.fetch_add(1, Ordering::Relaxed))
}

async fn seed(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let url = format!("sqlite://{}", data_dir.join("consultroom.db").display());
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let now = chrono::Utc::now();
    let org = store.insert_organisation("File Bench Clinic", now).await?;
    let hash = consultroom_clinic::auth::hash_password(PASSWORD)?;
    let email = "doc@filebench.test".to_owned();
    let new = NewStaff {
        organisation_id: org,
        department_id: None,
        name: "Dr. Bench",
        email: &email,
        role: Role::Practitioner,
        password_hash: &hash,
    };
    store.insert_staff(&new, now).await?;
    store.close().await;
    Ok(email)
}

/// PUT `size` bytes (a PDF header, then filler from one reused 1 MiB buffer) with a hand-written
/// HTTP/1.1 request, so the client holds no more than that buffer. Returns the status line.
async fn upload(base: &str, path: &str, size: u64) -> anyhow::Result<String> {
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await?;
    let mut buf = vec![b'x'; 1024 * 1024];
    buf[..9].copy_from_slice(b"%PDF-1.7\n");
    let mut sent = 0u64;
    while sent < size {
        let n = (size - sent).min(buf.len() as u64) as usize;
        s.write_all(&buf[..n]).await?;
        if sent == 0 {
            buf[..9].fill(b'x');
        }
        sent += n as u64;
    }
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await?;
    Ok(String::from_utf8_lossy(&resp)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    let dir = TempDir::new("cr-filebench")?;
    run(&args, &dir.0).await
}

async fn run(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let size = args.megabytes * 1_000_000;
    let email = seed(dir).await?;
    let max = size.max(1).to_string();
    let server = start_server(
        &args.server_bin,
        dir,
        &[
            "--file-max-bytes",
            &max,
            "--consultation-files-max-bytes",
            &max,
        ],
    )?;
    let pid = server.child.id();
    let base = server.base.clone();

    let staff = Staff::login(&base, &email, PASSWORD).await?;
    let starts = (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339();
    let invitation = staff.book("Bench Patient", &starts).await?;
    let token = staff.signalling_token().await?;
    let mut doc = ws_join(&base, &token).await?;
    let token = resolve_invitation(&reqwest::Client::new(), &base, &invitation).await?;
    let mut patient = ws_join(&base, &token).await?;
    let arrived = wait(&mut doc, |v| v["type"] == "waiting_arrived").await?;
    let pid_patient = arrived["entry"]["participant_id"].clone();
    let ok = request(
        &mut doc,
        json!({"type":"admit","participant_id":pid_patient}),
    )
    .await?;
    anyhow::ensure!(ok["type"] == "ok", "admit: {ok}");
    wait(&mut patient, |v| v["type"] == "consultation_started").await?;

    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib(pid).unwrap_or(0);
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

    let ready = request(
        &mut patient,
        json!({"type":"file_offer","name":"scan-archive.pdf","size":size,"content_type":"application/pdf"}),
    )
    .await?;
    let url = ready["url"].as_str().context("upload url")?.to_owned();
    let t0 = Instant::now();
    let status = upload(&base, &url, size).await?;
    let up = t0.elapsed();
    anyhow::ensure!(status.contains("201"), "upload refused: {status}");
    let shared = wait(&mut doc, |v| v["type"] == "file_shared").await?;
    let rss_after_upload = rss_kib(pid).unwrap_or(0);
    let peak_upload = peak.swap(rss_after_upload, Ordering::Relaxed);

    let ready = request(
        &mut doc,
        json!({"type":"file_download","file_id":shared["file_id"]}),
    )
    .await?;
    let url = ready["url"].as_str().context("download url")?;
    let t1 = Instant::now();
    let mut res = reqwest::get(format!("{base}{url}")).await?;
    anyhow::ensure!(res.status() == 200, "download: {}", res.status());
    let mut got = 0u64;
    while let Some(chunk) = res.chunk().await? {
        got += chunk.len() as u64;
    }
    let down = t1.elapsed();
    anyhow::ensure!(got == size, "downloaded {got} of {size} bytes");
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let peak_download = peak.load(Ordering::Relaxed);

    // End the consultation: the file must be gone from disk.
    request(&mut doc, json!({"type":"end_consultation"})).await?;
    let files = dir.join("consultation-files");
    let t2 = Instant::now();
    while std::fs::read_dir(&files)?.next().is_some() && t2.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deleted_in = t2.elapsed();
    anyhow::ensure!(
        std::fs::read_dir(&files)?.next().is_none(),
        "files left on disk"
    );

    let mb = size as f64 / 1e6;
    let mib = |k: u64| k as f64 / 1024.0;
    let cpu = cpu_model();
    let report = format!(
        "## Consultation file upload\n\n\
Measured {date} with `cargo run --release -p consultroom-loadtest --bin file-upload -- --server-bin {bin}` \
against a separate `consultroom serve` process (SQLite; files in a data directory under `{tmp}`), \
on loopback. A patient offers a {mb:.0} MB PDF in a running consultation and streams it in one \
`PUT` (hand-written HTTP/1.1, one reused 1 MiB client buffer); the practitioner then downloads it; \
then the consultation ends and the file is deleted. The server's RSS is sampled from \
`/proc/<pid>/status` every 20 ms.\n\n\
| measure | value |\n|---|---:|\n\
| upload ({mb:.0} MB) | {up:.2} s, {up_rate:.0} MB/s |\n\
| download | {down:.2} s, {down_rate:.0} MB/s |\n\
| server RSS before the upload | {b:.1} MiB |\n\
| server RSS peak during the upload | {pu:.1} MiB (+{du:.1} MiB) |\n\
| server RSS peak during the download | {pd:.1} MiB |\n\
| server RSS after the upload | {a:.1} MiB |\n\
| consultation end → directory gone (checked by the client) | {del:.0} ms |\n\n\
Machine: {cores} CPUs ({cpu}), the load generator on the same machine. {build}\n\n",
        date = today(),
        bin = args.server_bin,
        tmp = std::env::temp_dir().display(),
        up = up.as_secs_f64(),
        up_rate = mb / up.as_secs_f64(),
        down = down.as_secs_f64(),
        down_rate = mb / down.as_secs_f64(),
        b = mib(rss_before),
        pu = mib(peak_upload),
        du = mib(peak_upload.saturating_sub(rss_before)),
        pd = mib(peak_download),
        a = mib(rss_after_upload),
        del = deleted_in.as_secs_f64() * 1000.0,
        cores = cores(),
        build = if args.server_bin.contains("debug") {
            "**Debug build** of the server (no release build was available in the time): \
             throughput is a lower bound; the memory figures are what matters here."
        } else {
            ""
        },
    );
    publish(&report, args.out.as_deref(), "## Consultation file upload")?;
    drop(server);
    Ok(())
}
