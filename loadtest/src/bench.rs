//! `loadtest bench`: the fixed matrix, each shape against consultroom and Janus on the same load,
//! written as the "SFU load" section of docs/benchmarks.md plus an SVG plot next to it.

use std::fmt::Write as _;
use std::path::Path;

use crate::plot;
use crate::run::{self, Measurement, Shape, Target, Timing};

fn shape(rooms: usize, pubs: usize, subs: usize) -> Shape {
    Shape { rooms, pubs, subs }
}

/// The matrix: `(consultroom path, shape)`; each is also run against Janus.
fn matrix(bin: &Path) -> Vec<(Target, Shape)> {
    let cr = || Target::Consultroom(bin.to_path_buf());
    vec![
        (cr(), shape(1, 2, 0)),
        (cr(), shape(10, 2, 0)),
        (Target::SfuHost, shape(1, 1, 2)),
        (Target::SfuHost, shape(20, 3, 0)),
        (Target::SfuHost, shape(1, 1, 200)),
        (Target::SfuHost, shape(1, 1, 400)),
    ]
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|x| x.1.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kb: f64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0.0);
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{nproc} CPUs (`nproc`), {cpu}, {:.1} GiB RAM, Linux {}",
        mem_kb / 1024.0 / 1024.0,
        read("/proc/sys/kernel/osrelease").trim()
    )
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

fn section(rows: &[(Measurement, Option<Measurement>)], t: Timing, plot_name: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## SFU load (synthetic participants, loopback)\n");
    let _ = writeln!(
        s,
        "Measured {} with `cargo run --release -p consultroom-loadtest -- bench --server-bin target/release/consultroom --out docs/benchmarks.md` \
         ({} s window after {} s warm-up per row). Machine: {}. Generator and servers share the machine; \
         the servers' CPU is read from `/proc/<pid>/stat` of the server process only.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        t.measure.as_secs(),
        t.warmup.as_secs(),
        machine()
    );
    let _ = writeln!(
        s,
        "Participants are str0m 0.25 peers in client mode (many per thread), one UDP socket each, \
         publishing Opus (20 ms, 60–120 B) and VP8-shaped frames (30 fps, 1.5–3 KB, 14 KB keyframe every 2 s \
         or on PLI) and receiving with RTCP RR/NACK/TWCC like a browser. **Paths:** *signalling* = the real \
         `consultroom demo` binary, rooms made through the HTTP API and the `/ws` protocol (v1 allows only \
         1 staff + 1 patient per consultation, so those rows are pairs: both publish, each receives the other); \
         *library* = `consultroom_sfu::Sfu` alone in a `loadtest sfu-server` child process (same API \
         signalling uses) for shapes the protocol cannot make yet; *Janus* = Janus 1.1.2 VideoRoom over its \
         HTTP API with the same shape (each subscription is its own PeerConnection).\n"
    );
    let _ = writeln!(
        s,
        "| path | server | shape | sessions up | pkt/s received | pkt/s server counter | server CPU-s | generator CPU-s | pkt per CPU-s | vs Janus | frame loss | e2e p50 / p99 ms | RSS / participant |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let row = |s: &mut String, m: &Measurement, path: &str, ratio: Option<f64>| {
        let _ = writeln!(
            s,
            "| {path} | {} | {} | {}/{} | {:.0} | {} | {:.2} ({:.0} %) | {:.1} | {:.0} | {} | {:.2} % | {} / {} | {:.0} kB |",
            m.target,
            m.shape,
            m.connected,
            m.sessions,
            m.recv_pps,
            opt(m.server_fwd_pps, 0),
            m.cpu_s,
            100.0 * m.cpu_s / m.secs,
            m.generator_cpu_s,
            m.efficiency,
            ratio.map_or("".into(), |r| format!("{r:.2}×")),
            m.loss_pct,
            opt(m.p50_ms, 2),
            opt(m.p99_ms, 2),
            m.rss_per_participant_kb
        );
    };
    for (ours, janus) in rows {
        let path = if ours.target.contains("library") {
            "library"
        } else {
            "signalling"
        };
        let ratio = janus
            .as_ref()
            .filter(|j| j.efficiency > 0.0)
            .map(|j| ours.efficiency / j.efficiency);
        row(&mut s, ours, path, ratio);
        if let Some(j) = janus {
            row(&mut s, j, "Janus HTTP API", None);
        }
    }
    let _ = writeln!(
        s,
        "\n![server CPU against forwarded packets]({plot_name})\n\n\
         *pkt/s received* counts RTP packets of the frames the subscribers' str0m delivered (same \
         method for both servers); *server counter* is `consultroom_sfu_packets_forwarded_total`. \
         *e2e* latency is publisher write → subscriber frame, from a timestamp inside the payload: it \
         includes both client stacks and str0m's depacketizer, not only the server (the SFU has no \
         receive→send histogram yet). RSS per participant = (peak VmRSS − idle VmRSS) / participants.\n"
    );
    s
}

/// Replaces (or appends) the `## SFU load` section of `out`, keeping every other section.
fn write_section(out: &Path, section: &str) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(out).unwrap_or_else(|_| "# Benchmarks\n".into());
    let new = match old.find("## SFU load") {
        Some(start) => {
            let rest = &old[start + 2..];
            let end = rest.find("\n## ").map_or(old.len(), |e| start + 2 + e + 1);
            format!("{}{}{}", &old[..start], section, &old[end..])
        }
        None => format!("{}\n\n{}", old.trim_end(), section),
    };
    std::fs::write(out, new)?;
    Ok(())
}

/// Runs the matrix and writes the report.
pub async fn bench(bin: &Path, out: &Path, t: Timing, janus: bool) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for (target, shape) in matrix(bin) {
        let ours = match run::run(&target, shape, t).await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{} {}: {e:#}", target.label(), shape.label());
                continue;
            }
        };
        run::print(&ours);
        let theirs = if janus {
            match run::run(&Target::Janus, shape, t).await {
                Ok(m) => {
                    run::print(&m);
                    Some(m)
                }
                Err(e) => {
                    eprintln!("janus {}: {e:#}", shape.label());
                    None
                }
            }
        } else {
            None
        };
        rows.push((ours, theirs));
    }
    let plot_name = "benchmarks-sfu-load.svg";
    let plot_path = out.with_file_name(plot_name);
    let all: Vec<Measurement> = rows
        .iter()
        .flat_map(|(a, b)| std::iter::once(a.clone()).chain(b.clone()))
        .collect();
    plot::write(&plot_path, &all)?;
    write_section(out, &section(&rows, t, plot_name))?;
    println!("wrote {} and {}", out.display(), plot_path.display());
    Ok(())
}
