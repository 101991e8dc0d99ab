//! `loadtest`: synthetic WebRTC participants (str0m in client mode, many per thread) that load a
//! consultroom server, the consultroom SFU alone, or Janus VideoRoom, on 127.0.0.1 only, for a
//! bounded time, and report forwarded packets, server CPU-seconds, efficiency, loss, latency and
//! memory per participant.
//!
//! Subcommands: `run` (one shape), `bench` (the fixed matrix → docs/benchmarks.md + SVG),
//! `smoke` (< 30 s, exits non-zero unless media flows end to end), `soak` (join/leave cycles,
//! then checks RSS, sessions and threads against the baseline), `faults` (RELIABILITY A.9, A.11,
//! A.12 against the SFU host; exits non-zero when an expectation fails), `sfu-server` (the SFU
//! library hosted in its own process; started by the other subcommands).
//!
//! Every server the tool starts is killed when the tool exits, errors or gets Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::{Parser, Subcommand, ValueEnum};

mod bench;
mod consultroom;
mod faults;
mod janus;
mod media;
mod netns;
mod peer;
mod plot;
mod procfs;
mod run;
mod sfu_host;
mod soak;
mod stats;

use run::{Shape, Target, Timing};

#[derive(Parser)]
#[command(name = "loadtest", about = "Synthetic WebRTC load on loopback")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum TargetArg {
    /// The consultroom binary through its HTTP API and signalling (2-person rooms).
    Consultroom,
    /// The consultroom SFU library alone, in a `loadtest sfu-server` child process.
    Sfu,
    /// Janus VideoRoom (Debian `janus`).
    Janus,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one shape against one server.
    Run {
        #[arg(long, value_enum, default_value = "sfu")]
        target: TargetArg,
        #[arg(long, default_value = "target/release/consultroom")]
        server_bin: PathBuf,
        #[arg(long, default_value_t = 1)]
        rooms: usize,
        #[arg(long, default_value_t = 1)]
        pubs: usize,
        #[arg(long, default_value_t = 2)]
        subs: usize,
        /// Measurement window (seconds, at most 600).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long, default_value_t = 3)]
        warmup: u64,
    },
    /// The fixed matrix against consultroom and Janus; writes the table and plot.
    Bench {
        #[arg(long, default_value = "target/release/consultroom")]
        server_bin: PathBuf,
        /// Markdown file whose "SFU load" section is (re)written.
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Skip Janus (e.g. when it is not installed).
        #[arg(long)]
        no_janus: bool,
    },
    /// A tiny shape through the real signalling and the SFU host; fails unless packets flow.
    Smoke {
        #[arg(long, default_value = "target/release/consultroom")]
        server_bin: PathBuf,
    },
    /// Join/leave cycles through the real signalling, then compare with the idle baseline.
    Soak {
        #[arg(long, default_value = "target/release/consultroom")]
        server_bin: PathBuf,
        /// Total participant joins (two per consultation).
        #[arg(long, default_value_t = 1000)]
        joins: usize,
        /// Consultations alive at once.
        #[arg(long, default_value_t = 10)]
        batch: usize,
    },
    /// Fault scenarios (RELIABILITY A.9, A.11, A.12) against the SFU host; fails on any miss.
    Faults {
        #[arg(long, value_enum, default_value = "all")]
        scenario: faults::Scenario,
        /// Length of the impaired (A.11) and spoofing (A.9, at most 20) phases, 5-300 s.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Host `consultroom_sfu::Sfu` with a control channel on 127.0.0.1 (internal).
    SfuServer,
}

fn timing(seconds: u64, warmup: u64) -> Timing {
    Timing {
        warmup: Duration::from_secs(warmup.min(60)),
        measure: Duration::from_secs(seconds.clamp(1, 600)),
        setup: Duration::from_secs(60),
    }
}

async fn smoke(bin: PathBuf) -> anyhow::Result<()> {
    let t = Timing {
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs(4),
        setup: Duration::from_secs(10),
    };
    let pair = Shape {
        rooms: 1,
        pubs: 2,
        subs: 0,
    };
    let fan = Shape {
        rooms: 1,
        pubs: 1,
        subs: 2,
    };
    let mut bad = Vec::new();
    for (target, shape) in [(Target::Consultroom(bin), pair), (Target::SfuHost, fan)] {
        let m = run::run(&target, shape, t).await?;
        run::print(&m);
        // 2 publishers or 2 subscribers, each receiving audio (50/s) + video (≥30/s) frames.
        let expected_pps = 2.0 * 80.0 * 0.8;
        if m.connected < m.sessions as u64 || m.recv_pps < expected_pps || m.failed > 0 {
            bad.push(format!("{}: {}", m.target, m.shape));
        }
    }
    if !bad.is_empty() {
        bail!("smoke failed (sessions not all connected or media not flowing): {bad:?}");
    }
    println!("smoke ok");
    Ok(())
}

async fn dispatch(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Run {
            target,
            server_bin,
            rooms,
            pubs,
            subs,
            seconds,
            warmup,
        } => {
            let target = match target {
                TargetArg::Consultroom => Target::Consultroom(server_bin),
                TargetArg::Sfu => Target::SfuHost,
                TargetArg::Janus => Target::Janus,
            };
            let shape = Shape { rooms, pubs, subs };
            let m = run::run(&target, shape, timing(seconds, warmup)).await?;
            run::print(&m);
            Ok(())
        }
        Cmd::Bench {
            server_bin,
            out,
            seconds,
            no_janus,
        } => bench::bench(&server_bin, &out, timing(seconds, 3), !no_janus).await,
        Cmd::Smoke { server_bin } => smoke(server_bin).await,
        Cmd::Soak {
            server_bin,
            joins,
            batch,
        } => soak::soak(&server_bin, joins.min(10_000), batch.clamp(1, 50)).await,
        Cmd::Faults { scenario, seconds } => faults::faults(scenario, seconds).await,
        Cmd::SfuServer => sfu_host::serve().await,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let needs_janus = match &cli.command {
        Cmd::Run { target, .. } => matches!(target, TargetArg::Janus),
        Cmd::Bench { no_janus, .. } => !no_janus,
        _ => false,
    };
    if needs_janus && !netns::inside() {
        // Janus cannot do ICE on loopback: run everything in a private namespace (see netns).
        std::process::exit(netns::reexec()?);
    }
    tokio::select! {
        r = dispatch(cli.command) => r,
        _ = tokio::signal::ctrl_c() => bail!("interrupted; servers stopped"),
    }
}
