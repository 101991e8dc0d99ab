//! Janus (Debian `janus` 1.1.2, VideoRoom plugin) as the reference SFU: a config directory
//! written by the tool (HTTP transport on 127.0.0.1 only, ICE restricted to the private
//! namespace's dummy interface — see `netns` for why not `lo` —, no STUN,
//! mDNS ignored, every other plugin and transport disabled), and the VideoRoom API over HTTP
//! with one long-poll session for all handles.
//!
//! Room shape: each publisher is a `joinandconfigure` publisher handle that offers; each
//! subscription is a subscriber handle (`join` ptype subscriber → Janus offers → we `start` with
//! the answer). Janus forwards RTP without depacketizing; the peers are the same str0m peers as
//! against consultroom.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::peer::{self, PeerSpec, SigIn, SigOut};
use crate::procfs::{Server, scratch_dir};
use crate::stats::Stats;

const LIB: &str = "/usr/lib/x86_64-linux-gnu/janus";
const VIDEOROOM: &str = "janus.plugin.videoroom";

type Handlers = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Value>>>>;

/// A running Janus with one API session.
pub struct Janus {
    pub server: Server,
    base: String,
    session: u64,
    client: reqwest::Client,
    handlers: Handlers,
    tx: AtomicU64,
    poller: tokio::task::JoinHandle<()>,
}

fn write_config(dir: &Path, port: u16) -> anyhow::Result<()> {
    let disabled_plugins = [
        "audiobridge",
        "duktape",
        "echotest",
        "lua",
        "nosip",
        "recordplay",
        "sip",
        "streaming",
        "textroom",
        "videocall",
        "voicemail",
    ]
    .map(|p| format!("libjanus_{p}.so"))
    .join(",");
    let disabled_transports = ["mqtt", "nanomsg", "pfunix", "rabbitmq", "websockets"]
        .map(|p| format!("libjanus_{p}.so"))
        .join(",");
    let d = dir.display();
    let iface = crate::netns::IFACE;
    std::fs::write(
        dir.join("janus.jcfg"),
        format!(
            r#"general: {{
  configs_folder = "{d}"
  plugins_folder = "{LIB}/plugins"
  transports_folder = "{LIB}/transports"
  events_folder = "{LIB}/events"
  loggers_folder = "{LIB}/loggers"
  debug_level = 3
  session_timeout = 120
}}
certificates: {{
}}
media: {{
  rtp_port_range = "20000-60000"
}}
nat: {{
  nice_debug = false
  ignore_mdns = true
  full_trickle = false
  ice_enforce_list = "{iface}"
}}
plugins: {{
  disable = "{disabled_plugins}"
}}
transports: {{
  disable = "{disabled_transports}"
}}
loggers: {{
  disable = "libjanus_jsonlog.so"
}}
events: {{
  broadcast = false
}}
"#
        ),
    )?;
    std::fs::write(
        dir.join("janus.transport.http.jcfg"),
        format!(
            "general: {{\n  json = \"compact\"\n  base_path = \"/janus\"\n  http = true\n  port = {port}\n  ip = \"127.0.0.1\"\n  https = false\n}}\nadmin: {{\n  admin_http = false\n}}\n"
        ),
    )?;
    std::fs::write(dir.join("janus.plugin.videoroom.jcfg"), "general: {\n}\n")?;
    Ok(())
}

impl Janus {
    /// Starts `janus` with a scratch config and opens one API session.
    pub async fn start() -> anyhow::Result<Janus> {
        let dir = scratch_dir("janus")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        write_config(&dir, port)?;
        let mut cmd = tokio::process::Command::new("janus");
        cmd.arg("-C").arg(dir.join("janus.jcfg"));
        cmd.arg("-F").arg(&dir);
        let server = Server::spawn(cmd, "", Duration::from_secs(1), Some(dir)).await?;
        let base = format!("http://127.0.0.1:{port}/janus");
        let client = reqwest::Client::new();
        let mut up = false;
        for _ in 0..100 {
            if client
                .get(format!("{base}/info"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !up {
            bail!("janus did not answer on {base}/info within 10 s");
        }
        let v = post(
            &client,
            &base,
            json!({"janus": "create", "transaction": "c"}),
        )
        .await?;
        let session = v["data"]["id"].as_u64().context("session id")?;
        let handlers: Handlers = Arc::default();
        let poller = tokio::spawn(long_poll(
            client.clone(),
            format!("{base}/{session}"),
            handlers.clone(),
        ));
        Ok(Janus {
            server,
            base,
            session,
            client,
            handlers,
            tx: AtomicU64::new(0),
            poller,
        })
    }

    fn transaction(&self) -> String {
        format!("t{}", self.tx.fetch_add(1, Relaxed))
    }

    /// Attaches a VideoRoom handle; its asynchronous events arrive on the returned receiver.
    async fn attach(&self) -> anyhow::Result<(u64, mpsc::UnboundedReceiver<Value>)> {
        let url = format!("{}/{}", self.base, self.session);
        let body =
            json!({"janus": "attach", "plugin": VIDEOROOM, "transaction": self.transaction()});
        let v = post(&self.client, &url, body).await?;
        let handle = v["data"]["id"].as_u64().context("handle id")?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(handle, tx);
        Ok((handle, rx))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::UnboundedSender<Value>>> {
        self.handlers.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/{}/{}", self.base, self.session, handle);
        let mut m = json!({"janus": "message", "body": body, "transaction": self.transaction()});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        post(&self.client, &url, m).await
    }

    async fn trickle_done(&self, handle: u64) -> anyhow::Result<()> {
        let url = format!("{}/{}/{}", self.base, self.session, handle);
        let m = json!({"janus": "trickle", "candidate": {"completed": true}, "transaction": self.transaction()});
        post(&self.client, &url, m).await.map(|_| ())
    }

    /// Creates VideoRoom `room` for up to `publishers` publishers.
    pub async fn create_room(&self, room: u64, publishers: usize) -> anyhow::Result<()> {
        let (handle, _rx) = self.attach().await?;
        let v = self
            .message(
                handle,
                json!({"request": "create", "room": room, "publishers": publishers + 2,
                       "audiocodec": "opus", "videocodec": "vp8", "bitrate": 0,
                       "fir_freq": 2, "notify_joining": false}),
                None,
            )
            .await?;
        let data = &v["plugindata"]["data"];
        if data["videoroom"] != "created" {
            bail!("janus create room: {v}");
        }
        Ok(())
    }

    /// Runs one publisher in `room`; `feed` receives its feed id once it is joined and connected.
    pub async fn publisher(
        self: Arc<Self>,
        room: u64,
        stats: Arc<Stats>,
        until: Instant,
        feed: oneshot::Sender<u64>,
    ) -> anyhow::Result<()> {
        let (handle, mut events) = self.attach().await?;
        let (in_tx, in_rx) = mpsc::channel(16);
        let (out_tx, mut out_rx) = mpsc::channel(16);
        let spec = PeerSpec {
            publish: true,
            offer_first: true,
            bind: crate::netns::ADDR.into(),
        };
        let peer = tokio::spawn(peer::run(spec, stats, in_rx, out_tx, until));
        let mut feed = Some(feed);
        let mut feed_id = None;
        let mut connected = false;
        loop {
            tokio::select! {
                out = out_rx.recv() => match out {
                    None => break,
                    Some(SigOut::Offer(sdp)) => {
                        let body = json!({"request": "joinandconfigure", "ptype": "publisher",
                                          "room": room, "audio": true, "video": true});
                        self.message(handle, body, Some(json!({"type": "offer", "sdp": sdp}))).await?;
                        self.trickle_done(handle).await?;
                    }
                    Some(SigOut::Answer(_)) => bail!("janus publisher got an offer"),
                    Some(SigOut::Connected) => connected = true,
                },
                Some(ev) = events.recv() => {
                    if let Some(id) = ev["plugindata"]["data"]["id"].as_u64()
                        && ev["plugindata"]["data"]["videoroom"] == "joined"
                    {
                        feed_id = Some(id);
                    }
                    if let Some(sdp) = ev["jsep"]["sdp"].as_str() {
                        let _ = in_tx.send(SigIn::Answer(sdp.to_owned())).await;
                    }
                    if let Some(c) = ev["candidate"]["candidate"].as_str() {
                        let _ = in_tx.send(SigIn::Candidate(c.to_owned())).await;
                    }
                    if ev["plugindata"]["data"]["error"].is_string() {
                        bail!("janus publisher: {ev}");
                    }
                }
            }
            if connected
                && let Some(id) = feed_id
                && let Some(tx) = feed.take()
            {
                let _ = tx.send(id);
            }
        }
        self.lock().remove(&handle);
        peer.await?
    }

    /// Runs one subscription to `feed` in `room`.
    pub async fn subscriber(
        self: Arc<Self>,
        room: u64,
        feed: u64,
        stats: Arc<Stats>,
        until: Instant,
    ) -> anyhow::Result<()> {
        let (handle, mut events) = self.attach().await?;
        let (in_tx, in_rx) = mpsc::channel(16);
        let (out_tx, mut out_rx) = mpsc::channel(16);
        let spec = PeerSpec {
            publish: false,
            offer_first: false,
            bind: crate::netns::ADDR.into(),
        };
        let peer = tokio::spawn(peer::run(spec, stats, in_rx, out_tx, until));
        let body = json!({"request": "join", "ptype": "subscriber", "room": room,
                          "streams": [{"feed": feed}]});
        self.message(handle, body.clone(), None).await?;
        let mut retries = 0;
        loop {
            tokio::select! {
                out = out_rx.recv() => match out {
                    None => break,
                    Some(SigOut::Answer(sdp)) => {
                        let jsep = json!({"type": "answer", "sdp": sdp});
                        self.message(handle, json!({"request": "start"}), Some(jsep)).await?;
                        self.trickle_done(handle).await?;
                    }
                    Some(_) => {}
                },
                Some(ev) = events.recv() => {
                    if let Some(sdp) = ev["jsep"]["sdp"].as_str()
                        && ev["jsep"]["type"] == "offer"
                    {
                        let _ = in_tx.send(SigIn::Offer(sdp.to_owned())).await;
                    }
                    if let Some(c) = ev["candidate"]["candidate"].as_str() {
                        let _ = in_tx.send(SigIn::Candidate(c.to_owned())).await;
                    }
                    // 428 "No such feed": the publisher is connected but not yet active in
                    // the room; ask again (bounded).
                    if ev["plugindata"]["data"]["error_code"] == 428 && retries < 50 {
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        self.message(handle, body.clone(), None).await?;
                    } else if ev["plugindata"]["data"]["error"].is_string() {
                        bail!("janus subscriber: {ev}");
                    }
                }
            }
        }
        self.lock().remove(&handle);
        peer.await?
    }
}

impl Janus {
    /// Stops the poller and the server.
    pub async fn stop(self) {
        self.poller.abort();
        self.server.stop().await;
    }
}

async fn post(client: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<Value> {
    let v: Value = client.post(url).json(&body).send().await?.json().await?;
    match v["janus"].as_str() {
        Some("success" | "ack" | "event") => Ok(v),
        _ => Err(anyhow!("janus: {v}")),
    }
}

/// Reads session events (bounded batches, 30 s long polls) and routes them by handle. Ends
/// when the `Janus` is gone or after 50 failed polls in a row (the server is gone).
async fn long_poll(client: reqwest::Client, url: String, handlers: Handlers) {
    let mut failures = 0;
    while Arc::strong_count(&handlers) > 1 && failures < 50 {
        let Ok(r) = client.get(format!("{url}?maxev=50")).send().await else {
            failures += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        failures = 0;
        let Ok(v) = r.json::<Value>().await else {
            continue;
        };
        let events = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        for ev in events {
            if std::env::var_os("LOADTEST_SERVER_LOG").is_some() {
                eprintln!("[janus event] {}", truncate(&ev));
            }
            let Some(sender) = ev["sender"].as_u64() else {
                continue;
            };
            let map = handlers.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(tx) = map.get(&sender) {
                let _ = tx.send(ev);
            }
        }
    }
}

fn truncate(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(6000).collect()
}
