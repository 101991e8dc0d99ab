//! Helpers shared by the stand-alone benchmark binaries (chat-fanout, file-upload,
//! waiting-fanout): the server's RSS from /proc, a percentile of sorted samples, and replacing one
//! section of docs/benchmarks.md. (Not a binary: cargo only builds `src/bin/*.rs` and
//! `src/bin/*/main.rs`.)

#![allow(dead_code)] // each binary uses part of it

use anyhow::Context;

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
