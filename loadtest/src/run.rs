//! One measured run: start a server, bring R rooms of participants into it, wait until every
//! session is connected, warm up, then measure for a fixed time and stop everything.
//!
//! What is measured, per run:
//! - forwarded packets/s as **received by the subscribers** (RTP packets of the frames str0m
//!   delivered; identical method for every server), and the server's own counter where it has
//!   one (`consultroom_sfu_packets_forwarded_total`);
//! - server CPU-seconds (utime + stime of the server process from /proc) in the window;
//! - efficiency = received packets / server CPU-second;
//! - frame loss (gaps in the probe sequence numbers) and end-to-end latency publisher write →
//!   subscriber frame (includes both str0m clients and the loopback, not only the server);
//! - server RSS above its idle baseline, per participant.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinSet;

use crate::consultroom::Consultroom;
use crate::janus::Janus;
use crate::procfs::Server;
use crate::sfu_host;
use crate::stats::Stats;

/// Which server and which way in.
#[derive(Debug, Clone)]
pub enum Target {
    /// The `consultroom` binary through HTTP API + signalling WebSocket (pairs only).
    Consultroom(PathBuf),
    /// `consultroom_sfu::Sfu` alone in a `loadtest sfu-server` child process.
    SfuHost,
    /// Janus VideoRoom over its HTTP API.
    Janus,
}

impl Target {
    pub fn label(&self) -> &'static str {
        match self {
            Target::Consultroom(_) => "consultroom (signalling)",
            Target::SfuHost => "consultroom SFU (library)",
            Target::Janus => "Janus 1.1.2 VideoRoom",
        }
    }
}

/// R rooms × P publishers × S subscriber-only participants. Publishers receive each other.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub rooms: usize,
    pub pubs: usize,
    pub subs: usize,
}

impl Shape {
    pub fn participants(&self) -> usize {
        self.rooms * (self.pubs + self.subs)
    }
    /// Peer connections on the generator side for `target` (Janus: one per subscription).
    pub fn sessions(&self, target: &Target) -> usize {
        match target {
            Target::Janus => self.rooms * (self.pubs * self.pubs + self.subs * self.pubs),
            _ => self.participants(),
        }
    }
    pub fn label(&self) -> String {
        format!("{}×({} pub, {} sub)", self.rooms, self.pubs, self.subs)
    }
}

/// Timing of a run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub warmup: Duration,
    pub measure: Duration,
    /// Longest wait for every session to connect.
    pub setup: Duration,
}

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub target: String,
    pub shape: String,
    pub participants: usize,
    pub sessions: usize,
    pub connected: u64,
    pub secs: f64,
    pub recv_pps: f64,
    pub server_fwd_pps: Option<f64>,
    pub cpu_s: f64,
    /// CPU-seconds of this load generator in the same window (it shares the machine).
    pub generator_cpu_s: f64,
    pub efficiency: f64,
    pub loss_pct: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub rss_base_mb: f64,
    pub rss_peak_mb: f64,
    pub rss_per_participant_kb: f64,
    pub failed: u64,
}

enum Started {
    Consultroom(Consultroom),
    SfuHost(Server, std::net::SocketAddr),
    Janus(Arc<Janus>),
}

impl Started {
    fn server(&self) -> &Server {
        match self {
            Started::Consultroom(c) => &c.server,
            Started::SfuHost(s, _) => s,
            Started::Janus(j) => &j.server,
        }
    }
    async fn forwarded(&self) -> Option<f64> {
        match self {
            Started::Consultroom(c) => c.forwarded().await.ok(),
            Started::SfuHost(_, control) => {
                sfu_host::query_metrics(*control).await.ok().map(|m| m.0)
            }
            Started::Janus(_) => None,
        }
    }
}

async fn start(target: &Target) -> anyhow::Result<Started> {
    Ok(match target {
        Target::Consultroom(bin) => Started::Consultroom(Consultroom::start(bin).await?),
        Target::SfuHost => {
            let exe = std::env::current_exe()?;
            let mut cmd = tokio::process::Command::new(exe);
            cmd.arg("sfu-server").env("RUST_LOG", "warn");
            let s = Server::spawn(cmd, "sfu-server ready", Duration::from_secs(20), None).await?;
            let control = s.field("control").context("control=")?.parse()?;
            Started::SfuHost(s, control)
        }
        Target::Janus => Started::Janus(Arc::new(Janus::start().await?)),
    })
}

/// Prints a participant's error (the first few of a run are enough to see what broke).
async fn logged(f: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    static SHOWN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let r = f.await;
    if let Err(e) = &r
        && SHOWN.fetch_add(1, Relaxed) < 5
    {
        eprintln!("participant failed: {e:#}");
    }
    r
}

/// Starts every participant; returns when all are spawned (not yet connected).
async fn populate(
    started: &Started,
    shape: Shape,
    stats: &Arc<Stats>,
    until: Instant,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let stagger = Duration::from_millis(5);
    match started {
        Started::Consultroom(c) => {
            anyhow::ensure!(
                shape.pubs == 2 && shape.subs == 0,
                "the product's signalling makes 2-person rooms only (1 staff + 1 patient)"
            );
            for n in 0..shape.rooms {
                let (staff, patient) = c.consultation(n).await?;
                tasks.spawn(logged(crate::consultroom::participant(
                    staff,
                    stats.clone(),
                    until,
                )));
                tasks.spawn(logged(crate::consultroom::participant(
                    patient,
                    stats.clone(),
                    until,
                )));
            }
        }
        Started::SfuHost(_, control) => {
            let mut id = 1;
            for room in 1..=shape.rooms as u64 {
                for i in 0..shape.pubs + shape.subs {
                    let publish = i < shape.pubs;
                    let f =
                        sfu_host::participant(*control, room, id, publish, stats.clone(), until);
                    tasks.spawn(logged(f));
                    id += 1;
                    tokio::time::sleep(stagger).await;
                }
            }
        }
        Started::Janus(j) => {
            for room in 1..=shape.rooms as u64 {
                j.create_room(room, shape.pubs).await?;
                let mut feeds = Vec::new();
                for _ in 0..shape.pubs {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    tasks.spawn(logged(j.clone().publisher(room, stats.clone(), until, tx)));
                    feeds.push(rx);
                }
                let mut ids = Vec::new();
                for rx in feeds {
                    let id = tokio::time::timeout(Duration::from_secs(20), rx)
                        .await
                        .context("janus publisher not connected in 20 s")??;
                    ids.push(id);
                }
                // Publishers subscribe to each other; subscriber-only participants to everyone.
                for (i, _) in ids.iter().enumerate() {
                    for (k, feed) in ids.iter().enumerate() {
                        if i != k {
                            tasks.spawn(logged(j.clone().subscriber(
                                room,
                                *feed,
                                stats.clone(),
                                until,
                            )));
                        }
                    }
                }
                for _ in 0..shape.subs {
                    for feed in &ids {
                        tasks.spawn(logged(j.clone().subscriber(
                            room,
                            *feed,
                            stats.clone(),
                            until,
                        )));
                        tokio::time::sleep(stagger).await;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Runs one shape against one target and measures it.
pub async fn run(target: &Target, shape: Shape, timing: Timing) -> anyhow::Result<Measurement> {
    let started = start(target).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_base = started.server().rss_bytes()?;
    let stats = Arc::new(Stats::default());
    let until =
        Instant::now() + timing.setup + timing.warmup + timing.measure + Duration::from_secs(5);
    let mut tasks = JoinSet::new();
    let sessions = shape.sessions(target);
    populate(&started, shape, &stats, until, &mut tasks).await?;
    let setup_end = Instant::now() + timing.setup;
    while (stats.connected.load(Relaxed) as usize) < sessions && Instant::now() < setup_end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(timing.warmup).await;

    let fwd0 = started.forwarded().await;
    let cpu0 = started.server().cpu_seconds()?;
    let gen0 = crate::procfs::cpu_seconds(std::process::id())?;
    let s0 = stats.snapshot();
    let t0 = Instant::now();
    stats.recording.store(true, Relaxed);
    let mut rss_peak = 0;
    while t0.elapsed() < timing.measure {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_peak = rss_peak.max(started.server().rss_bytes().unwrap_or(0));
    }
    stats.recording.store(false, Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let cpu_s = started.server().cpu_seconds()? - cpu0;
    let generator_cpu_s = crate::procfs::cpu_seconds(std::process::id())? - gen0;
    let d = stats.snapshot().since(&s0);
    let fwd1 = started.forwarded().await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let server_fwd_pps = match (fwd0, fwd1) {
        (Some(a), Some(b)) => Some((b - a) / secs),
        _ => None,
    };
    let participants = shape.participants();
    let m = Measurement {
        target: target.label().to_owned(),
        shape: shape.label(),
        participants,
        sessions,
        connected: stats.connected.load(Relaxed),
        secs,
        recv_pps: d.packets_recv as f64 / secs,
        server_fwd_pps,
        cpu_s,
        generator_cpu_s,
        efficiency: if cpu_s > 0.0 {
            d.packets_recv as f64 / cpu_s
        } else {
            0.0
        },
        loss_pct: if d.frames_recv + d.frames_lost > 0 {
            100.0 * d.frames_lost as f64 / (d.frames_recv + d.frames_lost) as f64
        } else {
            0.0
        },
        p50_ms: stats.latency_quantile_ms(0.5),
        p99_ms: stats.latency_quantile_ms(0.99),
        rss_base_mb: rss_base as f64 / 1e6,
        rss_peak_mb: rss_peak as f64 / 1e6,
        rss_per_participant_kb: rss_peak.saturating_sub(rss_base) as f64
            / 1e3
            / participants.max(1) as f64,
        failed: stats.failed.load(Relaxed),
    };
    match started {
        Started::Consultroom(c) => c.server.stop().await,
        Started::SfuHost(s, _) => s.stop().await,
        Started::Janus(j) => {
            if let Ok(j) = Arc::try_unwrap(j) {
                j.stop().await;
            }
        }
    }
    Ok(m)
}

/// One line per measurement, for the terminal.
pub fn print(m: &Measurement) {
    println!(
        "{:<28} {:<22} participants {} sessions {}/{} recv {:>8.0} pkt/s (server {}) cpu {:>6.2}s (generator {:.2}s) eff {:>8.0} pkt/cpu-s loss {:.2}% p50 {} p99 {} rss {:.1}→{:.1} MB (+{:.0} kB/participant) failed {}",
        m.target,
        m.shape,
        m.participants,
        m.connected,
        m.sessions,
        m.recv_pps,
        m.server_fwd_pps.map_or("-".into(), |v| format!("{v:.0}")),
        m.cpu_s,
        m.generator_cpu_s,
        m.efficiency,
        m.loss_pct,
        m.p50_ms.map_or("-".into(), |v| format!("{v:.2}ms")),
        m.p99_ms.map_or("-".into(), |v| format!("{v:.2}ms")),
        m.rss_base_mb,
        m.rss_peak_mb,
        m.rss_per_participant_kb,
        m.failed
    );
}
