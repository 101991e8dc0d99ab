//! Helpers shared by the stand-alone benchmark binaries (chat-fanout, file-upload,
//! waiting-fanout): starting the server under test, the server's RSS from /proc, a percentile of
//! sorted samples, and replacing one section of docs/benchmarks.md. (Not a binary: cargo only builds `src/bin/*.rs` and
//! `src/bin/*/main.rs`.)

#![allow(dead_code)] // each binary uses part of it

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A `consultroom serve` child process on loopback ports, killed when dropped.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `ws://127.0.0.1:<port>/ws`.
    pub ws: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `bin serve` on loopback with its data in `data_dir` (plus `extra` arguments) and
/// waits for its ready line (at most 30 s of lines).
pub fn start_server(
    bin: &str,
    data_dir: &std::path::Path,
    extra: &[&str],
) -> anyhow::Result<Server> {
    let mut child = Command::new(bin)
        .args(["serve", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args([
            "--media-bind",
            "127.0.0.1:0",
            "--media-announce",
            "127.0.0.1",
        ])
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
            let ws = format!("ws://{}/ws", http.trim_start_matches("http://"));
            return Ok(Server {
                child,
                base: http,
                ws,
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

/// The `p` quantile (0..=1) of ascending `sorted` samples, nearest rank; NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
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
