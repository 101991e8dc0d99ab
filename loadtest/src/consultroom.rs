//! Driving the real `consultroom` binary: start it (`demo` on port 0 with a scratch data dir),
//! book appointments through the HTTP API, and bring each staff member + patient pair into a
//! consultation through the signalling WebSocket exactly as the web client does
//! (docs/protocol.md): join, admit, `media_offer`/`media_answer`, server renegotiation.
//!
//! Version 1 of the protocol makes a consultation exactly one staff connection + one patient
//! (`admit` creates a two-person room), so the only shape here is "pairs": both publish, each
//! receives the other. Several rooms are several staff connections (tabs) of the demo
//! practitioner, each admitting its own patient.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::peer::{self, PeerSpec, SigIn, SigOut};
use crate::procfs::{Server, scratch_dir};
use crate::stats::Stats;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const PASSWORD: &str = "loadtest-demo-password";

/// A running consultroom server and a logged-in staff HTTP client.
pub struct Consultroom {
    pub server: Server,
    pub http: String,
    pub admin: String,
    client: reqwest::Client,
}

impl Consultroom {
    /// Starts `bin demo` on loopback with a fresh data dir and logs in as the demo practitioner.
    pub async fn start(bin: &Path) -> anyhow::Result<Consultroom> {
        let dir = scratch_dir("consultroom")?;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(["demo", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args([
                "--media-bind",
                "127.0.0.1:0",
                "--media-announce",
                "127.0.0.1",
            ])
            .args(["--demo-password", PASSWORD, "--shutdown-deadline-secs", "1"])
            .args(["--drain-window-secs", "0"])
            .arg("--data-dir")
            .arg(&dir)
            .env("RUST_LOG", "warn");
        let server =
            Server::spawn(cmd, "consultroom ready", Duration::from_secs(60), Some(dir)).await?;
        let http = server.field("http").context("no http= in ready line")?;
        let admin = server.field("admin").context("no admin= in ready line")?;
        let email = server
            .field("practitioner_email")
            .context("no demo practitioner_email line")?;
        let client = reqwest::Client::builder().cookie_store(true).build()?;
        let r = client
            .post(format!("{http}/api/v1/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("demo login failed: {}", r.status());
        }
        Ok(Consultroom {
            server,
            http,
            admin,
            client,
        })
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let r = self
            .client
            .post(format!("{}{path}", self.http))
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path} → {status}: {v}");
        }
        Ok(v)
    }

    /// Books an appointment starting now for a new client; returns `(staff token, patient token)`.
    async fn book(&self, n: usize) -> anyhow::Result<(String, String)> {
        let c = self
            .post(
                "/api/v1/clients",
                json!({"name": format!("Load Patient {n}")}),
            )
            .await?;
        let client_id = c["client"]["id"].as_str().context("client id")?.to_owned();
        let starts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let a = self
            .post(
                "/api/v1/appointments",
                json!({"client_id": client_id, "starts_at": starts, "duration_minutes": 60}),
            )
            .await?;
        let url = a["invitation_url"].as_str().context("invitation_url")?;
        let (_, invitation) = url.split_once('#').context("token after #")?;
        let r: Value = reqwest::Client::new()
            .post(format!("{}/api/v1/invitations/resolve", self.http))
            .json(&json!({"token": invitation}))
            .send()
            .await?
            .json()
            .await?;
        let patient = r["signalling_token"].as_str().context("signalling_token")?;
        let s = self.post("/api/v1/signalling/token", json!({})).await?;
        let staff = s["token"].as_str().context("staff token")?;
        Ok((staff.to_owned(), patient.to_owned()))
    }

    /// Brings one staff + patient pair into a consultation and returns their two sockets.
    pub async fn consultation(&self, n: usize) -> anyhow::Result<(Ws, Ws)> {
        let (staff_token, patient_token) = self.book(n).await?;
        let ws_url = format!("{}/ws", self.http.replacen("http://", "ws://", 1));
        let (mut staff, _) = tokio_tungstenite::connect_async(&ws_url).await?;
        let (mut patient, _) = tokio_tungstenite::connect_async(&ws_url).await?;
        send(
            &mut staff,
            json!({"id":"j","type":"join","token":staff_token}),
        )
        .await?;
        expect(&mut staff, "joined").await?;
        send(
            &mut patient,
            json!({"id":"j","type":"join","token":patient_token}),
        )
        .await?;
        let joined = expect(&mut patient, "joined").await?;
        let pid = joined["participant_id"]
            .as_str()
            .context("participant_id")?;
        send(
            &mut staff,
            json!({"id":"a","type":"admit","participant_id":pid}),
        )
        .await?;
        expect(&mut staff, "consultation_started").await?;
        expect(&mut patient, "consultation_started").await?;
        Ok((staff, patient))
    }

    /// `consultroom_sfu_packets_forwarded_total` from the admin listener.
    pub async fn forwarded(&self) -> anyhow::Result<f64> {
        let text = reqwest::get(format!("{}/metrics", self.admin))
            .await?
            .text()
            .await?;
        Ok(prom_value(&text, "consultroom_sfu_packets_forwarded_total").unwrap_or(0.0))
    }

    /// `consultroom_sfu_participants` from the admin listener.
    pub async fn participants(&self) -> anyhow::Result<f64> {
        let text = reqwest::get(format!("{}/metrics", self.admin))
            .await?
            .text()
            .await?;
        Ok(prom_value(&text, "consultroom_sfu_participants").unwrap_or(0.0))
    }
}

/// The value of an unlabelled sample in Prometheus text format.
pub fn prom_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn send(ws: &mut Ws, v: Value) -> anyhow::Result<()> {
    ws.send(Message::text(v.to_string())).await?;
    Ok(())
}

/// Reads frames until one of type `ty` (bounded: 10 s, 100 frames); errors abort.
async fn expect(ws: &mut Ws, ty: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..100 {
        let msg = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .map_err(|_| anyhow!("no {ty} within 10 s"))?
            .context("socket closed")??;
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t)?;
        match v["type"].as_str() {
            Some(t) if t == ty => return Ok(v),
            Some("error") => bail!("server error while waiting for {ty}: {v}"),
            _ => {}
        }
    }
    bail!("no {ty} in 100 frames")
}

/// Runs one publishing peer over a joined, admitted signalling socket until `until`.
pub async fn participant(ws: Ws, stats: Arc<Stats>, until: Instant) -> anyhow::Result<()> {
    let (mut sink, mut stream) = ws.split();
    let (in_tx, in_rx) = mpsc::channel(16);
    let (out_tx, mut out_rx) = mpsc::channel(16);
    let spec = PeerSpec {
        publish: true,
        offer_first: true,
        bind: std::net::Ipv4Addr::LOCALHOST.into(),
    };
    let peer = tokio::spawn(peer::run(spec, stats, in_rx, out_tx, until));
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    let mut n = 0u64;
    loop {
        tokio::select! {
            out = out_rx.recv() => {
                let v = match out {
                    None => break,
                    Some(SigOut::Offer(sdp)) => json!({"type": "media_offer", "sdp": sdp}),
                    Some(SigOut::Answer(sdp)) => json!({"type": "media_answer", "sdp": sdp}),
                    Some(SigOut::Connected) => continue,
                };
                n += 1;
                let mut v = v;
                v["id"] = json!(format!("m{n}"));
                sink.send(Message::text(v.to_string())).await?;
            }
            msg = stream.next() => {
                let Some(Ok(Message::Text(t))) = msg else { break };
                let v: Value = serde_json::from_str(&t)?;
                let sdp = v["sdp"].as_str().unwrap_or_default().to_owned();
                let m = match v["type"].as_str() {
                    Some("media_answer") => SigIn::Answer(sdp),
                    Some("media_offer") => SigIn::Offer(sdp),
                    Some("error") => {
                        eprintln!("signalling error: {v}");
                        continue;
                    }
                    _ => continue,
                };
                if in_tx.send(m).await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                sink.send(Message::text(json!({"type": "ping"}).to_string())).await?;
            }
        }
    }
    // Hang up like the apps do (without it the server holds the seat for its 30 s resume grace).
    let _ = sink
        .send(Message::text(
            json!({"id": "bye", "type": "leave_consultation"}).to_string(),
        ))
        .await;
    let _ = sink.send(Message::Close(None)).await;
    peer.await?
}
