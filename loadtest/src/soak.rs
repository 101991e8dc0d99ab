//! The join/leave soak: consultations through the real signalling, `batch` at a time, each
//! connecting media for about a second and then leaving, until `joins` participants have joined.
//! Afterwards the server's RSS, `consultroom_sfu_participants` and OS thread count are compared
//! with the idle baseline (taken after one warm-up consultation, so one-time allocations such as
//! the SQLite pool and the first DTLS context do not count as a leak).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::task::JoinSet;

use crate::consultroom::Consultroom;
use crate::stats::Stats;

async fn cycle(c: &Consultroom, first: usize, batch: usize) -> anyhow::Result<u64> {
    let stats = Arc::new(Stats::default());
    let until = Instant::now() + Duration::from_millis(1500);
    let mut tasks = JoinSet::new();
    for n in first..first + batch {
        let (staff, patient) = c.consultation(n).await?;
        tasks.spawn(crate::consultroom::participant(staff, stats.clone(), until));
        tasks.spawn(crate::consultroom::participant(
            patient,
            stats.clone(),
            until,
        ));
    }
    while tasks.join_next().await.is_some() {}
    Ok(stats.connected.load(std::sync::atomic::Ordering::Relaxed))
}

/// Runs the soak and prints the comparison; fails if sessions do not return to zero.
pub async fn soak(bin: &Path, joins: usize, batch: usize) -> anyhow::Result<()> {
    let c = Consultroom::start(bin).await?;
    cycle(&c, 0, 1).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss0 = c.server.rss_bytes()?;
    let threads0 = c.server.threads()?;
    let cycles = joins.div_ceil(2 * batch);
    let started = Instant::now();
    let mut connected = 0;
    let mut peak = rss0;
    for i in 0..cycles {
        connected += cycle(&c, 1 + i * batch, batch).await?;
        peak = peak.max(c.server.rss_bytes()?);
    }
    // Let leaves and DTLS closes finish (bounded: a seat held for a dropped socket goes after
    // 30 s, a vanished media session after its 30 s consent expiry).
    let drained = Instant::now();
    let mut sessions = c.participants().await?;
    while sessions != 0.0 && drained.elapsed() < Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sessions = c.participants().await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let drain_secs = drained.elapsed().as_secs_f64();
    let rss1 = c.server.rss_bytes()?;
    let threads1 = c.server.threads()?;
    println!(
        "soak: {} joins ({} consultations, {} connected) in {:.0} s; RSS baseline {:.1} MB, peak {:.1} MB, after {:.1} MB ({:+.1} MB); threads {} → {}; SFU participants after: {} (drained in {:.1} s)",
        cycles * batch * 2,
        cycles * batch,
        connected,
        started.elapsed().as_secs_f64(),
        rss0 as f64 / 1e6,
        peak as f64 / 1e6,
        rss1 as f64 / 1e6,
        (rss1 as f64 - rss0 as f64) / 1e6,
        threads0,
        threads1,
        sessions,
        drain_secs
    );
    c.server.stop().await;
    if sessions != 0.0 {
        bail!("{sessions} SFU participants left after the soak");
    }
    Ok(())
}
