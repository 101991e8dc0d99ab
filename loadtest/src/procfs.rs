//! Server processes the tool starts, and what /proc says about them: CPU-seconds (user +
//! system, all threads) and resident memory.
//!
//! Invariant: every child is spawned with `kill_on_drop`, so an error, a panic unwinding or
//! Ctrl-C (handled in `main` by dropping the run) never leaves a server behind.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`; 100 on Linux).
const CLK_TCK: f64 = 100.0;

/// A started server with the lines it printed before it was ready.
pub struct Server {
    pub child: Child,
    pub pid: u32,
    pub lines: Vec<String>,
    /// A scratch directory to delete when the server is gone.
    pub scratch: Option<PathBuf>,
}

impl Server {
    /// Spawns `cmd` and reads its stdout until a line contains `ready` (or `timeout`); with an
    /// empty `ready` it returns at once (the caller probes readiness itself).
    pub async fn spawn(
        mut cmd: Command,
        ready: &str,
        timeout: Duration,
        scratch: Option<PathBuf>,
    ) -> anyhow::Result<Server> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("spawning the server")?;
        let pid = child.id().ok_or_else(|| anyhow!("server exited at once"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut reader = BufReader::new(stdout).lines();
        let mut lines = Vec::new();
        let wait = tokio::time::timeout(timeout, async {
            if ready.is_empty() {
                return Ok(true);
            }
            while let Some(line) = reader.next_line().await? {
                let done = line.contains(ready);
                lines.push(line);
                if done {
                    return Ok::<bool, std::io::Error>(true);
                }
            }
            Ok(false)
        })
        .await;
        match wait {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => bail!("server exited before '{ready}': {lines:?}"),
            Ok(Err(e)) => bail!("reading server output: {e}"),
            Err(_) => bail!("server not ready in {timeout:?}: {lines:?}"),
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        // `LOADTEST_SERVER_LOG=1` echoes it to stderr for debugging.
        let echo = std::env::var_os("LOADTEST_SERVER_LOG").is_some();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                if echo {
                    eprintln!("[server] {line}");
                }
            }
        });
        Ok(Server {
            child,
            pid,
            lines,
            scratch,
        })
    }

    /// `key=value` from the printed lines (e.g. `http` from the ready line).
    pub fn field(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        self.lines
            .iter()
            .flat_map(|l| l.split_whitespace())
            .find_map(|w| w.strip_prefix(&prefix).map(str::to_owned))
    }

    /// CPU-seconds (user + system) the server has used so far.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.pid)
    }

    /// Resident set size in bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        rss_bytes(self.pid)
    }

    /// Number of threads (tasks) of the server process.
    pub fn threads(&self) -> anyhow::Result<u64> {
        status_field(self.pid, "Threads:")
    }

    /// Kills the server and waits for it; removes the scratch directory.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// utime + stime of `pid` in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces; fields after ')' are plain.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("odd /proc stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = f.get(11).ok_or_else(|| anyhow!("no utime"))?.parse()?;
    let stime: f64 = f.get(12).ok_or_else(|| anyhow!("no stime"))?.parse()?;
    Ok((utime + stime) / CLK_TCK)
}

/// VmRSS of `pid` in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    Ok(status_field(pid, "VmRSS:")? * 1024)
}

fn status_field(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no {key} in /proc/{pid}/status"))
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch_dir(tag: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "consultroom-loadtest-{tag}-{}-{}",
        std::process::id(),
        crate::media::now_micros()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(super::cpu_seconds(pid).unwrap() >= 0.0);
        assert!(super::rss_bytes(pid).unwrap() > 0);
    }
}
