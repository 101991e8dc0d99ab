//! `loadtest faults`: RELIABILITY.md A.9 (SSRC hijack and RTCP spoofing), A.11 (lossy or slow
//! subscriber isolation) and A.12 (ICE consent expiry) as checks that can fail, driven by str0m
//! client peers (`faults::peer`, the load generator's client with fault hooks) against the SFU
//! library hosted in its own process (`loadtest sfu-server`, a fresh one per scenario, so its
//! gauges start from zero). Everything is on 127.0.0.1; every wait is bounded in time.
//!
//! Each scenario prints what it measured, one `ok:`/`FAIL:` line per expectation, and the
//! subcommand exits non-zero when any expectation failed (or a scenario could not be set up).
//!
//! - `consent` (A.12): publisher A, subscriber B, publisher C. C is frozen (SIGSTOP stand-in:
//!   no processing, no STUN, no RTCP; its socket is still read and arrivals counted). Expected:
//!   the SFU's last datagram reaches C within `CONSENT_EXPIRY` (30 s) + 1 s of the freeze; B gets
//!   an offer with all of C's m-lines inactive within 35 s; the SFU's participants, sessions,
//!   rooms, published and down-track gauges and its thread count are back to what they were
//!   with A and B alone; B kept receiving A's media (no gap > 500 ms, loss < 1 %).
//! - `lossy` (A.11): one simulcast publisher, two healthy subscribers, one impaired subscriber
//!   (30 % loss, 200 ms delay, 300 kbit/s, in-process because this kernel has no netem; see
//!   `peer::Impairment`). A baseline phase, then the impaired phase. Expected: the healthy
//!   subscribers' loss < 1 % and p50 latency within 10 % (or 1 ms) of their baseline; the
//!   impaired subscriber ends on a lower simulcast layer (the load generator had no simulcast:
//!   `peer` publishes three VP8 layers here); the SFU does not queue its media (the median
//!   arrival of a frame's first packet stays within 100 ms of the 200 ms delay), its memory does
//!   not grow, and its drop counters (`slow_subscriber`, `send_failed`) are reported.
//! - `spoof` (A.9): publishers A and B, subscriber C. B learns A's video SSRC out of band (A's
//!   own str0m stream), moves a spare m-line of its own session onto it and sends frames marked
//!   `SPOF`, and sends PLIs naming A's SSRC plus a PLI storm on its own down track of A's video
//!   (50/s each). Expected: C never gets a `SPOF` frame on A's m-lines; A's stream at C shows
//!   no extra gaps; A receives no more keyframe requests than the SFU's throttle allows (one
//!   per 500 ms for its one video track). Then B closes its session, which sends an RTCP BYE
//!   naming A's SSRC (str0m says goodbye for every SSRC it sends on): A's stream at C must go
//!   on without a gap. Not covered: a spoofed NACK (str0m's client API only NACKs what it
//!   received, and B never receives A's upstream SSRC).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::procfs::Server;
use crate::sfu_host;

mod peer;

use peer::{Opts, Publish, Shared, SpoofTarget, TrackLog};

/// Which scenario(s) to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Consent,
    Lossy,
    Spoof,
    All,
}

/// Keyframe request spacing the SFU promises per published track (`sfu/src/keyframe.rs`).
const KEYFRAME_THROTTLE: Duration = Duration::from_millis(500);
/// Longest wait for a room's peers to connect and media to flow.
const SETUP: Duration = Duration::from_secs(25);

/// Runs the scenario(s); `seconds` is the impaired phase (A.11) and the spoofing phase (A.9).
pub async fn faults(scenario: Scenario, seconds: u64) -> anyhow::Result<()> {
    let seconds = Duration::from_secs(seconds.clamp(5, 300));
    let mut failed = Vec::new();
    let run: Vec<Scenario> = match scenario {
        Scenario::All => vec![Scenario::Consent, Scenario::Lossy, Scenario::Spoof],
        s => vec![s],
    };
    for s in run {
        let started = Instant::now();
        println!("== faults {s:?}");
        let result = match s {
            Scenario::Consent => consent().await,
            Scenario::Lossy => lossy(seconds).await,
            Scenario::Spoof => spoof(seconds).await,
            Scenario::All => unreachable!("expanded above"),
        };
        let took = started.elapsed().as_secs_f64();
        match result {
            Ok(fails) if fails.is_empty() => println!("faults {s:?} ok ({took:.0} s)"),
            Ok(fails) => {
                println!("faults {s:?} FAILED ({took:.0} s)");
                failed.extend(fails.into_iter().map(|f| format!("{s:?}: {f}")));
            }
            Err(e) => {
                println!("faults {s:?} FAILED to run ({took:.0} s): {e:#}");
                failed.push(format!("{s:?}: could not run: {e:#}"));
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} expectation(s) failed:\n  {}",
            failed.len(),
            failed.join("\n  ")
        );
    }
    println!("faults ok");
    Ok(())
}

/// Expectation results of one scenario.
#[derive(Default)]
struct Checks {
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, ok: bool, what: String) {
        if ok {
            println!("  ok:   {what}");
        } else {
            println!("  FAIL: {what}");
            self.failed.push(what);
        }
    }
}

/// A `loadtest sfu-server` child process.
struct Host {
    server: Server,
    control: SocketAddr,
}

impl Host {
    async fn start() -> anyhow::Result<Host> {
        let exe = std::env::current_exe()?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("sfu-server").env("RUST_LOG", "warn");
        let server = Server::spawn(cmd, "sfu-server ready", Duration::from_secs(20), None).await?;
        let control = server.field("control").context("control=")?.parse()?;
        Ok(Host { server, control })
    }

    async fn metrics(&self) -> anyhow::Result<Metrics> {
        Ok(Metrics(sfu_host::query_all(self.control).await?))
    }
}

/// One reply of the host's metrics query.
#[derive(Debug, Clone)]
struct Metrics(Value);

impl Metrics {
    fn get(&self, key: &str) -> f64 {
        self.0[key].as_f64().unwrap_or(f64::NAN)
    }
}

/// The gauges that must return to their baseline when a participant is gone.
const GAUGES: [&str; 5] = ["participants", "sessions", "rooms", "published", "down"];

/// One participant and its task.
struct Part {
    id: u64,
    shared: Arc<Shared>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Part {
    fn spawn(host: &Host, room: u64, id: u64, opts: Opts, until: Instant) -> Part {
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(peer::participant(
            host.control,
            room,
            id,
            opts,
            shared.clone(),
            until,
        ));
        Part { id, shared, task }
    }

    fn connected(&self) -> bool {
        self.shared.state().connected
    }

    /// What arrived from `publisher` so far.
    fn from(&self, publisher: &Part) -> TrackLog {
        self.shared
            .state()
            .tracks
            .get(&publisher.id)
            .cloned()
            .unwrap_or_default()
    }

    /// Takes the latency and arrival samples of `publisher`'s media and restarts its gap
    /// measurement.
    fn new_phase(&self, publisher: &Part) -> (Vec<u64>, Vec<u64>) {
        let mut s = self.shared.state();
        let log = s.tracks.entry(publisher.id).or_default();
        log.max_gap = Duration::ZERO;
        (
            std::mem::take(&mut log.latency_us),
            std::mem::take(&mut log.arrival_us),
        )
    }

    fn failure(&self) -> Option<String> {
        self.shared.state().failed.clone()
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits (bounded) until `ready` holds; fails naming `what` and any peer failure.
async fn wait_for(
    what: &str,
    parts: &[&Part],
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if let Some((id, e)) = parts.iter().find_map(|p| p.failure().map(|e| (p.id, e))) {
            bail!("participant {id} failed while waiting for {what}: {e}");
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Frame loss in percent between two logs of the same track.
fn loss_pct(before: &TrackLog, after: &TrackLog) -> f64 {
    let got =
        after.frames.saturating_sub(before.frames) - after.spoofed.saturating_sub(before.spoofed);
    let lost = after.lost.saturating_sub(before.lost);
    if got + lost == 0 {
        return 100.0;
    }
    100.0 * lost as f64 / (got + lost) as f64
}

/// The `q` quantile of latency samples in milliseconds.
fn quantile_ms(samples: &mut [u64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
    Some(samples[i] as f64 / 1000.0)
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2} ms"))
}

/// The simulcast layer (index into `peer::LAYERS`) most video frames came on between two logs.
fn dominant_layer(before: &TrackLog, after: &TrackLog) -> Option<usize> {
    let counts: Vec<u64> = (0..peer::LAYERS.len())
        .map(|i| after.layers[i].saturating_sub(before.layers[i]))
        .collect();
    let (i, n) = counts.iter().enumerate().max_by_key(|(_, n)| **n)?;
    (*n > 0).then_some(i)
}

fn layer_counts(before: &TrackLog, after: &TrackLog) -> String {
    peer::LAYERS
        .iter()
        .enumerate()
        .map(|(i, (rid, ..))| format!("{rid}:{}", after.layers[i].saturating_sub(before.layers[i])))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A.12: a frozen participant's consent expires; it is removed and its tracks end.
async fn consent() -> anyhow::Result<Vec<String>> {
    let expiry = consultroom_sfu::CONSENT_EXPIRY;
    // The SFU checks expiry on its 250 ms tick; str0m's own timers add a little more.
    let stop_tolerance = Duration::from_secs(1);
    let unpublish_limit = Duration::from_secs(35);
    let host = Host::start().await?;
    let until = Instant::now() + SETUP * 2 + expiry + Duration::from_secs(40);
    let publisher = |tag| Opts {
        publish: Publish::Plain,
        tag,
        spoof_mline: false,
    };
    let a = Part::spawn(&host, 1, 1, publisher(1), until);
    let b = Part::spawn(
        &host,
        1,
        2,
        Opts {
            publish: Publish::No,
            tag: 2,
            spoof_mline: false,
        },
        until,
    );
    wait_for("A and B connected, B receiving A", &[&a, &b], SETUP, || {
        a.connected() && b.connected() && b.from(&a).frames > 60
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base = host.metrics().await?;
    let base_threads = host.server.threads()?;
    let c = Part::spawn(&host, 1, 3, publisher(3), until);
    wait_for(
        "C connected, B receiving C, C receiving A",
        &[&a, &b, &c],
        SETUP,
        || c.connected() && b.from(&c).frames > 60 && c.from(&a).frames > 60,
    )
    .await?;
    let with_c = host.metrics().await?;
    println!(
        "  with A+B: participants {} sessions {} published {} down {} threads {base_threads}; \
         with C: participants {} sessions {} published {} down {}",
        base.get("participants"),
        base.get("sessions"),
        base.get("published"),
        base.get("down"),
        with_c.get("participants"),
        with_c.get("sessions"),
        with_c.get("published"),
        with_c.get("down"),
    );

    // Freeze C.
    b.new_phase(&a);
    let b_a0 = b.from(&a);
    let c_rx0 = c.shared.state().rx_packets;
    let frozen_at = Instant::now();
    c.shared.frozen.store(true, Relaxed);
    let deadline = frozen_at + expiry + Duration::from_secs(15);
    let mut gone_at = None;
    let mut at_baseline_at = None;
    let last = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = Instant::now();
        let last = host.metrics().await?;
        if gone_at.is_none() && last.get("participants") < with_c.get("participants") {
            gone_at = Some(now);
        }
        let back = GAUGES.iter().all(|g| last.get(g) == base.get(g));
        if back && at_baseline_at.is_none() {
            at_baseline_at = Some(now);
        } else if !back {
            at_baseline_at = None;
        }
        let unpublished = b.shared.state().inactive_at.contains_key(&c.id);
        let quiet = c
            .shared
            .state()
            .last_rx
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(3));
        // Stay 2 s past the gauges' return to see that nothing more arrives at C.
        let settled = at_baseline_at
            .is_some_and(|t| now.saturating_duration_since(t) >= Duration::from_secs(2));
        if (gone_at.is_some() && unpublished && quiet && settled) || now >= deadline {
            break last;
        }
    };
    let threads = host.server.threads()?;
    let observed = frozen_at.elapsed();
    let (c_rx, c_last) = {
        let s = c.shared.state();
        (s.rx_packets - c_rx0, s.last_rx)
    };
    let inactive_at = b.shared.state().inactive_at.get(&c.id).copied();
    let after = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(frozen_at));
    let secs =
        |d: Option<Duration>| d.map_or("never".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    let stopped = after(c_last);
    let unpublished = after(inactive_at);
    let b_a1 = b.from(&a);
    let b_frames = b_a1.frames - b_a0.frames;
    let b_loss = loss_pct(&b_a0, &b_a1);
    println!(
        "  after the freeze ({:.1} s observed): C got {c_rx} datagrams, the last {} after the \
         freeze; participant gauge dropped after {}; B's offer stopping C's m-lines after {}; \
         B got {b_frames} frames of A (loss {b_loss:.2} %, longest gap {:.0} ms)",
        observed.as_secs_f64(),
        secs(stopped),
        secs(after(gone_at)),
        secs(unpublished),
        b_a1.max_gap.as_secs_f64() * 1000.0,
    );
    let mut checks = Checks::default();
    checks.check(
        c_rx > 0 && stopped.is_some_and(|d| d <= expiry + stop_tolerance),
        format!(
            "the SFU stopped sending to frozen C within {} s + {} s (last datagram {} after the freeze, {c_rx} after it in all)",
            expiry.as_secs(),
            stop_tolerance.as_secs(),
            secs(stopped)
        ),
    );
    checks.check(
        unpublished.is_some_and(|d| d <= unpublish_limit),
        format!(
            "C's tracks unpublished to B within {} s (B's offer with C's m-lines inactive after {})",
            unpublish_limit.as_secs(),
            secs(unpublished)
        ),
    );
    for g in GAUGES {
        checks.check(
            last.get(g) == base.get(g),
            format!(
                "gauge {g} back to its A+B baseline ({} with C, {} now, baseline {})",
                with_c.get(g),
                last.get(g),
                base.get(g)
            ),
        );
    }
    checks.check(
        threads == base_threads,
        format!("SFU host threads back to baseline ({threads}, baseline {base_threads})"),
    );
    // A sends 50 audio + 30 video frames per second.
    let expected = observed.as_secs_f64() * 80.0;
    checks.check(
        b_frames as f64 >= expected * 0.9
            && b_loss < 1.0
            && b_a1.max_gap <= Duration::from_millis(500),
        format!(
            "B kept receiving A throughout ({b_frames} frames of ~{expected:.0}, loss {b_loss:.2} %, longest gap {:.0} ms ≤ 500 ms)",
            b_a1.max_gap.as_secs_f64() * 1000.0
        ),
    );
    drop((a, b, c));
    host.server.stop().await;
    Ok(checks.failed)
}

/// Per-subscriber figures of one phase.
struct Phase {
    loss: f64,
    p50: Option<f64>,
    p95: Option<f64>,
    /// The same without the receiver's wait for retransmissions (see `TrackLog::arrival_us`).
    arrival_p50: Option<f64>,
    arrival_p95: Option<f64>,
}

impl Phase {
    fn of(before: &TrackLog, after: &TrackLog, samples: (Vec<u64>, Vec<u64>)) -> Phase {
        let (mut latency, mut arrival) = samples;
        Phase {
            loss: loss_pct(before, after),
            p50: quantile_ms(&mut latency, 0.5),
            p95: quantile_ms(&mut latency, 0.95),
            arrival_p50: quantile_ms(&mut arrival, 0.5),
            arrival_p95: quantile_ms(&mut arrival, 0.95),
        }
    }

    fn describe(&self) -> String {
        format!(
            "loss {:.2} % latency p50 {} p95 {} (first-packet arrival p50 {} p95 {})",
            self.loss,
            ms(self.p50),
            ms(self.p95),
            ms(self.arrival_p50),
            ms(self.arrival_p95)
        )
    }
}

fn phase(sub: &Part, publisher: &Part, before: &TrackLog) -> (Phase, TrackLog) {
    let after = sub.from(publisher);
    let samples = sub.new_phase(publisher);
    (Phase::of(before, &after, samples), after)
}

/// A.11: one impaired subscriber does not hurt the others and gets a lower layer.
async fn lossy(seconds: Duration) -> anyhow::Result<Vec<String>> {
    let baseline = (seconds / 2).clamp(Duration::from_secs(5), Duration::from_secs(15));
    let host = Host::start().await?;
    let until = Instant::now() + SETUP + baseline + seconds + Duration::from_secs(30);
    let sub = |tag| Opts {
        publish: Publish::No,
        tag,
        spoof_mline: false,
    };
    let p = Part::spawn(
        &host,
        1,
        1,
        Opts {
            publish: Publish::Simulcast,
            tag: 1,
            spoof_mline: false,
        },
        until,
    );
    let h1 = Part::spawn(&host, 1, 2, sub(2), until);
    let h2 = Part::spawn(&host, 1, 3, sub(3), until);
    let imp = Part::spawn(&host, 1, 4, sub(4), until);
    let subs = [&h1, &h2, &imp];
    wait_for(
        "the publisher and 3 subscribers connected, media flowing",
        &[&p, &h1, &h2, &imp],
        SETUP,
        || {
            p.connected()
                && subs
                    .iter()
                    .all(|s| s.connected() && s.from(&p).frames > 100)
        },
    )
    .await?;
    // Let layers settle (the SFU's estimates start at 2.5 Mbit/s).
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Baseline.
    let mut start: Vec<TrackLog> = subs
        .iter()
        .map(|s| {
            s.new_phase(&p);
            s.from(&p)
        })
        .collect();
    tokio::time::sleep(baseline).await;
    let mut base = Vec::new();
    for (i, s) in subs.iter().enumerate() {
        let (ph, after) = phase(s, &p, &start[i]);
        println!(
            "  baseline {:.0} s, subscriber {}: {} layers {}",
            baseline.as_secs_f64(),
            s.id,
            ph.describe(),
            layer_counts(&start[i], &after)
        );
        base.push((ph, start[i].clone(), after.clone()));
        start[i] = after;
    }

    // Impaired phase.
    let m0 = host.metrics().await?;
    let rss0 = host.server.rss_bytes()?;
    let mut rss_peak = rss0;
    imp.shared.impaired.store(true, Relaxed);
    let t0 = Instant::now();
    let mut half: Option<TrackLog> = None;
    let mut imp_late_samples = (Vec::new(), Vec::new());
    while t0.elapsed() < seconds {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rss_peak = rss_peak.max(host.server.rss_bytes().unwrap_or(0));
        if half.is_none() && t0.elapsed() >= seconds / 2 {
            half = Some(imp.from(&p));
            // Latency of the second half only (after the layer had time to move).
            let _ = imp.new_phase(&p);
        }
    }
    let m1 = host.metrics().await?;
    let rss1 = host.server.rss_bytes()?;
    let mut checks = Checks::default();
    let mut impaired = None;
    for (i, s) in subs.iter().enumerate() {
        let is_imp = s.id == imp.id;
        if is_imp {
            imp_late_samples = imp.new_phase(&p);
        }
        let (ph, after) = if is_imp {
            let after = s.from(&p);
            let samples = std::mem::take(&mut imp_late_samples);
            (Phase::of(&start[i], &after, samples), after)
        } else {
            phase(s, &p, &start[i])
        };
        println!(
            "  impaired {:.0} s, subscriber {}{}: {} layers {}",
            seconds.as_secs_f64(),
            s.id,
            if is_imp {
                " (impaired; latencies of the 2nd half)"
            } else {
                ""
            },
            ph.describe(),
            layer_counts(&start[i], &after)
        );
        if is_imp {
            impaired = Some((ph, after));
            continue;
        }
        let (b, ..) = &base[i];
        checks.check(
            ph.loss < 1.0,
            format!("healthy subscriber {} loss {:.2} % < 1 %", s.id, ph.loss),
        );
        // Loopback latencies are a millisecond or two, where 10 % is 100–200 µs: below the
        // scheduling noise of a 2-core machine running the SFU and every peer. So the bound
        // is 10 % of the baseline or 1 ms, whichever is larger.
        let ok = match (b.p50, ph.p50) {
            (Some(b), Some(n)) => n <= b + (b * 0.1).max(1.0),
            _ => false,
        };
        checks.check(
            ok,
            format!(
                "healthy subscriber {} p50 {} within max(10 %, 1 ms) of its baseline {}",
                s.id,
                ms(ph.p50),
                ms(b.p50)
            ),
        );
    }
    imp.shared.impaired.store(false, Relaxed);
    let (imp_ph, imp_end) = impaired.context("impaired subscriber measured")?;
    let imp_base = &base[2];
    let base_layer = dominant_layer(&imp_base.1, &imp_base.2);
    let half = half.unwrap_or_else(|| start[2].clone());
    let late_layer = dominant_layer(&half, &imp_end);
    let rid = |l: Option<usize>| l.map_or("none", |i| peer::LAYERS[i].0);
    {
        let s = imp.shared.state();
        println!(
            "  impairment (in-process, no netem): {} datagrams lost at random, {} over the \
             300 kbit/s bucket, {} delivered 200 ms late; impaired layers 2nd half {}",
            s.impair_lost,
            s.impair_rate_dropped,
            s.impair_delivered,
            layer_counts(&half, &imp_end)
        );
    }
    let delta = |k: &str| m1.get(k) - m0.get(k);
    println!(
        "  SFU during the impaired phase: dropped slow_subscriber +{} send_failed +{}, \
         keyframes upstream +{}, RSS {:.1} → {:.1} MB (peak {:.1})",
        delta("dropped_slow_subscriber"),
        delta("dropped_send_failed"),
        delta("keyframes_upstream"),
        rss0 as f64 / 1e6,
        rss1 as f64 / 1e6,
        rss_peak as f64 / 1e6
    );
    checks.check(
        matches!((base_layer, late_layer), (Some(b), Some(l)) if l < b),
        format!(
            "impaired subscriber moved to a lower simulcast layer (baseline mostly {}, 2nd half of the impaired phase mostly {})",
            rid(base_layer),
            rid(late_layer)
        ),
    );
    // "Counted, not queued": the SFU must not hold the slow subscriber's media back. The
    // frame latency above is mostly the receiving client waiting for retransmissions (30 %
    // loss); the first-packet arrival is the network path: the 200 ms delay plus whatever the
    // SFU queued. Its median must stay within 100 ms of the delay (str0m's pacer releases in
    // 40 ms bursts); its p95 is retransmitted first packets, so it is reported, not bounded.
    let queue_bound = peer::IMPAIR_DELAY.as_secs_f64() * 1000.0 + 100.0;
    checks.check(
        imp_ph.arrival_p50.is_some_and(|v| v <= queue_bound),
        format!(
            "the SFU does not queue for the impaired subscriber: first-packet arrival p50 {} ≤ {queue_bound:.0} ms (the 200 ms delay + 100 ms); drops counted: slow_subscriber +{}",
            ms(imp_ph.arrival_p50),
            delta("dropped_slow_subscriber")
        ),
    );
    let growth = rss_peak.saturating_sub(rss0) as f64 / 1e6;
    checks.check(
        growth <= 16.0,
        format!("SFU memory did not grow with the backlog (peak RSS +{growth:.1} MB ≤ 16 MB)"),
    );
    drop((p, h1, h2, imp));
    host.server.stop().await;
    Ok(checks.failed)
}

/// A.9: B sends RTP on A's SSRC and keyframe requests naming A's SSRC.
async fn spoof(seconds: Duration) -> anyhow::Result<Vec<String>> {
    let baseline = Duration::from_secs(5);
    let attack = seconds.min(Duration::from_secs(20));
    let host = Host::start().await?;
    let until = Instant::now() + SETUP + baseline + attack + Duration::from_secs(20);
    let a = Part::spawn(
        &host,
        1,
        1,
        Opts {
            publish: Publish::Plain,
            tag: 1,
            spoof_mline: false,
        },
        until,
    );
    let b = Part::spawn(
        &host,
        1,
        2,
        Opts {
            publish: Publish::Plain,
            tag: 2,
            spoof_mline: true,
        },
        until,
    );
    let c = Part::spawn(
        &host,
        1,
        3,
        Opts {
            publish: Publish::No,
            tag: 3,
            spoof_mline: false,
        },
        until,
    );
    wait_for(
        "A, B, C connected; C receiving A and B; B receiving A",
        &[&a, &b, &c],
        SETUP,
        || {
            [&a, &b, &c].iter().all(|p| p.connected())
                && c.from(&a).frames > 60
                && c.from(&b).frames > 60
                && b.from(&a).frames > 60
                && !a.shared.state().own_ssrcs.is_empty()
        },
    )
    .await?;
    let (video, video_rtx) = a
        .shared
        .state()
        .own_ssrcs
        .iter()
        .find(|(kind, ..)| kind.is_video())
        .map(|(_, s, r)| (*s, *r))
        .context("A's video SSRC")?;
    println!("  A's video SSRC (learnt out of band): {video} (rtx {video_rtx:?})");

    c.new_phase(&a);
    let c_a0 = c.from(&a);
    let plis0 = a.shared.state().keyframe_requests;
    tokio::time::sleep(baseline).await;
    let c_a1 = c.from(&a);
    let c_b1 = c.from(&b);
    let plis1 = a.shared.state().keyframe_requests;
    let m1 = host.metrics().await?;
    let base_gap = c_a1.max_gap;
    c.new_phase(&a);
    println!(
        "  baseline {:.0} s: A got {} keyframe requests; C got {} frames of A (lost {}, longest gap {:.0} ms)",
        baseline.as_secs_f64(),
        plis1 - plis0,
        c_a1.frames - c_a0.frames,
        c_a1.lost - c_a0.lost,
        base_gap.as_secs_f64() * 1000.0
    );

    *b.shared.spoof.lock().unwrap_or_else(|p| p.into_inner()) = Some(SpoofTarget {
        victim: a.id,
        video,
        video_rtx,
    });
    let t0 = Instant::now();
    tokio::time::sleep(attack).await;
    let took = t0.elapsed();
    let c_a2 = c.from(&a);
    let c_b2 = c.from(&b);
    let plis2 = a.shared.state().keyframe_requests;
    let m2 = host.metrics().await?;
    let (frames, spoof_plis, legit_plis, b_failed) = {
        let s = b.shared.state();
        (s.spoof_frames, s.spoof_plis, s.legit_plis, s.failed.clone())
    };
    let plis = plis2 - plis1;
    let allowed = (took.as_secs_f64() / KEYFRAME_THROTTLE.as_secs_f64()).floor() as u64 + 1;
    let spoof_at_a = c_a2.spoofed - c_a1.spoofed;
    let spoof_at_b = c_b2.spoofed - c_b1.spoofed;
    let lost_base = c_a1.lost - c_a0.lost;
    let lost = c_a2.lost - c_a1.lost;
    println!(
        "  attack {:.1} s: B wrote {frames} SPOF frames on A's SSRC, {spoof_plis} PLIs naming \
         A's SSRC, {legit_plis} PLIs on its own down track of A; the SFU got {} keyframe \
         requests from subscribers and sent {} upstream; A got {plis} keyframe requests; C got \
         {} frames of A ({spoof_at_a} SPOF, lost {lost}, longest gap {:.0} ms) and {spoof_at_b} \
         SPOF frames on B's own m-lines",
        took.as_secs_f64(),
        m2.get("keyframes_from_subscribers") - m1.get("keyframes_from_subscribers"),
        m2.get("keyframes_upstream") - m1.get("keyframes_upstream"),
        c_a2.frames - c_a1.frames,
        c_a2.max_gap.as_secs_f64() * 1000.0,
    );
    let mut checks = Checks::default();
    checks.check(
        b_failed.is_none() && frames > 0 && spoof_plis > 0,
        format!(
            "the attack ran ({frames} spoofed frames, {spoof_plis} spoofed PLIs{})",
            b_failed.map(|e| format!("; B: {e}")).unwrap_or_default()
        ),
    );
    checks.check(
        spoof_at_a == 0,
        format!("C received none of B's spoofed frames as A's stream ({spoof_at_a})"),
    );
    // Gaps are missing frames (probe sequence); a stall a viewer would notice (> 500 ms, as
    // in `consent`) also fails. Shorter stalls happen on a busy 2-core machine with a debug
    // build (up to ~350 ms seen without any fault), so they are only reported.
    checks.check(
        lost <= lost_base + 2 && c_a2.max_gap <= Duration::from_millis(500),
        format!(
            "A's stream at C shows no extra gaps (lost {lost} vs {lost_base} in the baseline; longest stall {:.0} ms ≤ 500 ms, baseline {:.0} ms)",
            c_a2.max_gap.as_secs_f64() * 1000.0,
            base_gap.as_secs_f64() * 1000.0
        ),
    );
    checks.check(
        plis <= allowed,
        format!(
            "A received {plis} keyframe requests ≤ {allowed} the throttle allows (one per {} ms on its one video track over {:.1} s)",
            KEYFRAME_THROTTLE.as_millis(),
            took.as_secs_f64()
        ),
    );

    // RTCP BYE naming A's SSRC: B closes its session (B leaves; A must not).
    c.new_phase(&a);
    let c_a3 = c.from(&a);
    b.shared.close.store(true, Relaxed);
    let bye = Duration::from_secs(3);
    tokio::time::sleep(bye).await;
    let c_a4 = c.from(&a);
    let m4 = host.metrics().await?;
    let bye_frames = c_a4.frames - c_a3.frames;
    let bye_lost = c_a4.lost - c_a3.lost;
    println!(
        "  {:.0} s after B's BYE (naming A's SSRC) and close: C got {bye_frames} frames of A \
         (lost {bye_lost}, longest gap {:.0} ms); SFU participants {}",
        bye.as_secs_f64(),
        c_a4.max_gap.as_secs_f64() * 1000.0,
        m4.get("participants")
    );
    let expected = bye.as_secs_f64() * 80.0;
    checks.check(
        bye_frames as f64 >= expected * 0.9
            && bye_lost <= lost_base + 2
            && c_a4.max_gap <= Duration::from_millis(500),
        format!(
            "A's stream at C went on after B's BYE naming A's SSRC ({bye_frames} frames of ~{expected:.0}, lost {bye_lost}, longest stall {:.0} ms ≤ 500 ms)",
            c_a4.max_gap.as_secs_f64() * 1000.0
        ),
    );
    drop((a, b, c));
    host.server.stop().await;
    Ok(checks.failed)
}
