//! `loadtest sfu-server`: the consultroom SFU crate alone (`consultroom_sfu::Sfu`) in its own
//! process, so its CPU and memory are measured apart from the load generator, for room shapes
//! the product's signalling cannot make yet (one publisher → many subscribers, 3-party rooms).
//!
//! Control channel: TCP on 127.0.0.1, one JSON object per line, one connection per participant:
//! `{"t":"join","room":1,"participant":7}`, then `offer`/`answer` with `sdp` both ways, and
//! `{"t":"metrics"}` → `{"t":"metrics","forwarded":n,"participants":n,...}` (plus the gauges and
//! drop/keyframe counters `loadtest faults` checks: `sessions`, `rooms`, `published`, `down`,
//! `dropped_slow_subscriber`, `dropped_send_failed`, `keyframes_upstream`,
//! `keyframes_from_subscribers`). Closing the connection is `Sfu::leave`. It mirrors what
//! `signalling` does with the same API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use consultroom_sfu::{ParticipantId, PublishPolicy, RoomId, Sfu, SfuConfig, SfuEvent};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::peer::{self, PeerSpec, SigIn, SigOut};
use crate::stats::Stats;

/// Runs the SFU host until killed (or Ctrl-C).
pub async fn serve() -> anyhow::Result<()> {
    let registry = prometheus::Registry::new();
    let config = SfuConfig {
        bind: "127.0.0.1:0".parse()?,
        announce: vec!["127.0.0.1".parse()?],
        loops: 1,
        tcp_bind: None,
    };
    let sfu = Sfu::start(config, &registry).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!(
        "sfu-server ready control={} media={}",
        listener.local_addr()?,
        sfu.local_addr()
    );
    let registry = Arc::new(registry);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let (sfu, registry) = (sfu.clone(), registry.clone());
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, sfu, registry).await {
                        eprintln!("sfu-server connection: {e:#}");
                    }
                });
            }
        }
    }
    sfu.shutdown().await;
    Ok(())
}

fn metric(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric())
        .map(|m| m.get_counter().get_value() + m.get_gauge().get_value())
        .sum()
}

/// Sum of the series of `name` whose label `label` has the value `value`.
fn labelled(registry: &prometheus::Registry, name: &str, label: &str, value: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == label && l.value() == value)
        })
        .map(|m| m.get_counter().get_value() + m.get_gauge().get_value())
        .sum()
}

fn metrics_reply(registry: &prometheus::Registry) -> Value {
    let objects = |kind| labelled(registry, "consultroom_sfu_loop_objects", "kind", kind);
    let dropped = |reason| {
        labelled(
            registry,
            "consultroom_sfu_datagrams_dropped_total",
            "reason",
            reason,
        )
    };
    let keyframes = |direction| {
        labelled(
            registry,
            "consultroom_sfu_keyframe_requests_total",
            "direction",
            direction,
        )
    };
    json!({"t": "metrics",
        "forwarded": metric(registry, "consultroom_sfu_packets_forwarded_total"),
        "participants": metric(registry, "consultroom_sfu_participants"),
        "rooms": metric(registry, "consultroom_sfu_rooms"),
        "sessions": objects("sessions"),
        "published": objects("published_tracks"),
        "down": objects("down_tracks"),
        "dropped_slow_subscriber": dropped("slow_subscriber"),
        "dropped_send_failed": dropped("send_failed"),
        "keyframes_upstream": keyframes("in"),
        "keyframes_from_subscribers": keyframes("out")})
}

async fn connection(
    stream: TcpStream,
    sfu: Sfu,
    registry: Arc<prometheus::Registry>,
) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Value>(64);
    let writer = tokio::spawn(async move {
        while let Some(v) = rx.recv().await {
            let line = format!("{v}\n");
            if write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let mut lines = BufReader::new(read).lines();
    let mut me: Option<ParticipantId> = None;
    // Events are read in the same task as commands, so our answer to an offer is written before
    // the server offer that the offer caused (the SFU queues the event after the reply).
    let (etx, mut erx) = mpsc::channel(16);
    loop {
        let line = tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => line,
                None => break,
            },
            Some(e) = erx.recv() => {
                let v = match e {
                    SfuEvent::Offer { sdp } => json!({"t": "offer", "sdp": sdp}),
                    SfuEvent::Connected => json!({"t": "connected"}),
                    SfuEvent::Disconnected => json!({"t": "disconnected"}),
                    // Active-speaker and any later events: the load peers do not need them.
                    _ => continue,
                };
                tx.send(v).await?;
                continue;
            }
        };
        let v: Value = serde_json::from_str(&line)?;
        let sdp = v["sdp"].as_str().unwrap_or_default().to_owned();
        match (v["t"].as_str().unwrap_or_default(), me) {
            ("metrics", _) => tx.send(metrics_reply(&registry)).await?,
            ("join", None) => {
                let p = ParticipantId(v["participant"].as_u64().unwrap_or_default());
                let room = RoomId(v["room"].as_u64().unwrap_or_default());
                sfu.join(room, p, etx.clone()).await?;
                me = Some(p);
            }
            ("offer", Some(p)) => {
                let answer = sfu.offer(p, sdp, PublishPolicy::default()).await?;
                tx.send(json!({"t": "answer", "sdp": answer})).await?;
            }
            ("answer", Some(p)) => sfu.answer(p, sdp).await?,
            (t, _) => return Err(anyhow!("unexpected control message {t}")),
        }
    }
    if let Some(p) = me {
        sfu.leave(p).await;
    }
    drop(tx);
    let _ = writer.await;
    Ok(())
}

/// Asks the host for every metric of its reply (see the module docs).
pub async fn query_all(control: SocketAddr) -> anyhow::Result<Value> {
    let mut stream = TcpStream::connect(control).await?;
    stream.write_all(b"{\"t\":\"metrics\"}\n").await?;
    let mut lines = BufReader::new(stream).lines();
    let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await??
        .context("no metrics reply")?;
    Ok(serde_json::from_str(&line)?)
}

/// Asks the host for `(packets forwarded, participants)`.
pub async fn query_metrics(control: SocketAddr) -> anyhow::Result<(f64, f64)> {
    let v = query_all(control).await?;
    Ok((
        v["forwarded"].as_f64().unwrap_or(0.0),
        v["participants"].as_f64().unwrap_or(0.0),
    ))
}

/// Opens a control connection and joins participant `id` to `room` on it (the host keeps the
/// seat while the connection is open).
pub(crate) async fn join(
    control: SocketAddr,
    room: u64,
    id: u64,
) -> anyhow::Result<(OwnedReadHalf, OwnedWriteHalf)> {
    let stream = TcpStream::connect(control).await?;
    let (read, mut write) = stream.into_split();
    write
        .write_all(format!("{}\n", json!({"t":"join","room":room,"participant":id})).as_bytes())
        .await?;
    Ok((read, write))
}

/// Joins one synthetic participant to `room` through the control channel and runs its peer
/// until `until`. Returns when the peer ends (the connection close makes the host leave).
pub async fn participant(
    control: SocketAddr,
    room: u64,
    id: u64,
    publish: bool,
    stats: Arc<Stats>,
    until: Instant,
) -> anyhow::Result<()> {
    let (read, mut write) = join(control, room, id).await?;
    let (in_tx, in_rx) = mpsc::channel(16);
    let (out_tx, mut out_rx) = mpsc::channel(16);
    let spec = PeerSpec {
        publish,
        offer_first: true,
        bind: std::net::Ipv4Addr::LOCALHOST.into(),
    };
    let peer = tokio::spawn(peer::run(spec, stats, in_rx, out_tx, until));
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let sdp = v["sdp"].as_str().unwrap_or_default().to_owned();
            let msg = match v["t"].as_str() {
                Some("offer") => SigIn::Offer(sdp),
                Some("answer") => SigIn::Answer(sdp),
                _ => continue,
            };
            if in_tx.send(msg).await.is_err() {
                break;
            }
        }
    });
    while let Some(out) = out_rx.recv().await {
        let v = match out {
            SigOut::Offer(sdp) => json!({"t": "offer", "sdp": sdp}),
            SigOut::Answer(sdp) => json!({"t": "answer", "sdp": sdp}),
            SigOut::Connected => continue,
        };
        write.write_all(format!("{v}\n").as_bytes()).await?;
    }
    reader.abort();
    peer.await?
}
