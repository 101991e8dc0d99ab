//! Helpers shared by the stand-alone benchmark binaries (chat-fanout, file-upload,
//! waiting-fanout, reminders): a temporary data directory, seeding practitioners, starting the
//! server under test, the HTTP steps of a practitioner and a patient (log in, book, signalling
//! tokens, invitations), WebSocket connections, the server's RSS and CPU seconds from /proc,
//! percentiles of samples, the machine line of a report, and printing a report and replacing its
//! section of docs/benchmarks.md. (Not a binary: cargo only builds `src/bin/*.rs` and
//! `src/bin/*/main.rs`.)

#![allow(dead_code)] // each binary uses part of it

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use consultroom_clinic::Store;
use consultroom_clinic::staff::{NewStaff, Role};
use futures_util::{Sink, SinkExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A data directory `<name>-<pid>` under the system's temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> anyhow::Result<TempDir> {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Seeds the database in `data_dir` straight (there is no staff API yet): organisation
/// `organisation` (with one department, if named) and `count` practitioners `doc<i>@<domain>`
/// called `Dr. <i>`, all with `password`. Returns their emails.
pub async fn seed_practitioners(
    data_dir: &Path,
    organisation: &str,
    department: Option<&str>,
    domain: &str,
    password: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let url = format!("sqlite://{}", data_dir.join("consultroom.db").display());
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let now = chrono::Utc::now();
    let org = store.insert_organisation(organisation, now).await?;
    let department_id = match department {
        Some(name) => Some(store.insert_department(org, name, now).await?),
        None => None,
    };
    let hash = consultroom_clinic::auth::hash_password(password)?;
    let mut emails = Vec::new();
    for i in 0..count {
        let email = format!("doc{i}@{domain}");
        let name = format!("Dr. {i}");
        let new = NewStaff {
            organisation_id: org,
            department_id,
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

/// A practitioner logged in to the server at `base` (a cookie session).
pub struct Staff {
    pub http: reqwest::Client,
    base: String,
}

impl Staff {
    pub async fn login(base: &str, email: &str, password: &str) -> anyhow::Result<Staff> {
        let http = reqwest::Client::builder().cookie_store(true).build()?;
        let r = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "login failed: {}", r.status());
        Ok(Staff {
            http,
            base: base.to_owned(),
        })
    }

    /// Adds the client `name` and books them a 15-minute appointment at `starts` (RFC 3339);
    /// returns the invitation token (the link's fragment).
    pub async fn book(&self, name: &str, starts: &str) -> anyhow::Result<String> {
        let client: Value = self
            .http
            .post(format!("{}/api/v1/clients", self.base))
            .json(&json!({"name": name}))
            .send()
            .await?
            .json()
            .await?;
        let appt: Value = self
            .http
            .post(format!("{}/api/v1/appointments", self.base))
            .json(&json!({"client_id": client["client"]["id"], "starts_at": starts, "duration_minutes": 15}))
            .send()
            .await?
            .json()
            .await?;
        let url = appt["invitation_url"].as_str().context("invitation_url")?;
        Ok(url.split_once('#').context("token")?.1.to_owned())
    }

    /// A signalling token for one more connection of this practitioner (a tab or device).
    pub async fn signalling_token(&self) -> anyhow::Result<String> {
        let t: Value = self
            .http
            .post(format!("{}/api/v1/signalling/token", self.base))
            .send()
            .await?
            .json()
            .await?;
        Ok(t["token"].as_str().context("token")?.to_owned())
    }

    /// GET `path` (from `/api/...`) as JSON.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await?
            .json()
            .await?)
    }
}

/// The patient's signalling token for the invitation `token`, resolved as the patient's browser
/// does (no session).
pub async fn resolve_invitation(
    http: &reqwest::Client,
    base: &str,
    token: &str,
) -> anyhow::Result<String> {
    let r: Value = http
        .post(format!("{base}/api/v1/invitations/resolve"))
        .json(&json!({"token": token}))
        .send()
        .await?
        .json()
        .await?;
    Ok(r["signalling_token"]
        .as_str()
        .context("signalling_token")?
        .to_owned())
}

/// A client WebSocket to the server.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `url` with `TCP_NODELAY`, as a browser would.
pub async fn ws_connect(url: &str) -> anyhow::Result<Ws> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    Ok(ws)
}

/// Sends `v` as one text frame.
pub async fn send_json<S>(sink: &mut S, v: &Value) -> anyhow::Result<()>
where
    S: Sink<Message> + Unpin,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    sink.send(Message::Text(v.to_string().into())).await?;
    Ok(())
}

/// A `consultroom serve` child process on loopback ports, killed when dropped.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `ws://127.0.0.1:<port>/ws`.
    pub ws: String,
    /// The admin listener, `http://127.0.0.1:<port>` (`/healthz`, `/metrics`).
    pub admin: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bin serve` on loopback with its data in `data_dir` (plus `extra` arguments) and
/// waits for its ready line (at most 30 s of lines).
pub fn start_server(bin: &str, data_dir: &Path, extra: &[&str]) -> anyhow::Result<Server> {
    let mut child = Command::new(bin)
        .args(["serve", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args([
            "--media-bind",
            "127.0.0.1:0",
            "--media-announce",
            "127.0.0.1",
        ])
        // The load generator is one address standing in for many clients: the per-source
        // connection cap (256 by default) would refuse the rest of them at accept.
        .args(["--http-max-connections-per-source", "1000000"])
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {bin}"))?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(line) = lines.next() else { break };
        if let Some(rest) = line?.strip_prefix("consultroom ready ") {
            let http = rest
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix("http="))
                .context("http= in ready line")?
                .to_owned();
            let admin = rest
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix("admin="))
                .map(str::to_owned);
            let ws = format!("ws://{}/ws", http.trim_start_matches("http://"));
            return Ok(Server {
                child,
                base: http,
                ws,
                admin,
            });
        }
    }
    let _ = child.kill();
    bail!("server did not become ready")
}

/// Resident set size of process `pid` in KiB (`VmRSS` of /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS not found")
}

/// CPU seconds (user + system, all threads) process `pid` has used, from `/proc/<pid>/stat`
/// (fields 14 and 15, in clock ticks of 1/100 s).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = stat.rsplit_once(')').context("no ')' in stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("short stat")?.parse::<u64>()? as f64)
    };
    // Field 3 (state) is rest's first: utime (14) and stime (15) are its 12th and 13th.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// The `p` quantile (0..=1) of ascending `sorted` samples, nearest rank; NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Sorts `samples` ascending; returns their p50 and p99 (NaN when there are none).
pub fn p50_p99(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    (percentile(samples, 0.50), percentile(samples, 0.99))
}

/// Today (UTC) as the reports date their measurements.
pub fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// The CPU model from /proc/cpuinfo (empty when unknown).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default()
}

/// The CPUs this process may use (0 when unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0)
}

/// Prints `report` and, with `out`, puts it in that Markdown file as the section `heading`.
pub fn publish(report: &str, out: Option<&str>, heading: &str) -> anyhow::Result<()> {
    println!("{report}");
    if let Some(path) = out {
        let existing = std::fs::read_to_string(path).unwrap_or_default();
        let updated = replace_section(&existing, heading, report);
        std::fs::write(path, updated)?;
    }
    Ok(())
}

/// `doc` with the section starting at `heading` (up to the next `## ` heading) replaced by
/// `section`, or `section` appended when the heading is not there yet.
pub fn replace_section(doc: &str, heading: &str, section: &str) -> String {
    if let Some(start) = doc.find(heading) {
        let rest = &doc[start + heading.len()..];
        let end = rest
            .find("\n## ")
            .map(|i| start + heading.len() + i + 1)
            .unwrap_or(doc.len());
        format!("{}{}{}", &doc[..start], section, &doc[end..])
    } else {
        let sep = if doc.is_empty() || doc.ends_with("\n\n") {
            ""
        } else {
            "\n"
        };
        format!("{doc}{sep}{section}")
    }
}
