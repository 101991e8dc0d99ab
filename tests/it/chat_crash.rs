//! Ack-after-commit under SIGKILL (RELIABILITY.md #42, issue #5): the real binary on a temporary
//! SQLite data directory takes a burst of chat messages from several connections, is killed
//! with SIGKILL in the middle of it, and restarted. Every message that was acknowledged is
//! there, none twice; retrying every message with its client id then stores each exactly once.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "kill nine chat";
const CONNECTIONS: usize = 5;
/// Within the per-connection burst allowance (200 frames, one of them the join).
const PER_CONNECTION: usize = 190;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Server {
    child: Child,
    base: String,
    invitation_url: Option<String>,
}

fn start(dir: &std::path::Path, demo: bool) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_consultroom"));
    if demo {
        cmd.arg("demo").args(["--demo-password", PASSWORD]);
    } else {
        cmd.arg("serve");
    }
    cmd.args(["--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args([
            "--media-bind",
            "127.0.0.1:0",
            "--media-announce",
            "127.0.0.1",
        ])
        .args(["--media-loops", "1"])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("the consultroom binary starts");
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut invitation_url = None;
    for line in out.lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("demo invitation_url=") {
            invitation_url = Some(url.to_owned());
        }
        if let Some(rest) = line.strip_prefix("consultroom ready http=") {
            let base = rest.split_whitespace().next().unwrap().to_owned();
            return Server {
                child,
                base,
                invitation_url,
            };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server exited before it was ready");
}

async fn staff_client(base: &str) -> reqwest::Client {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = c
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": consultroom_clinic::demo::PRACTITIONER_EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c
}

async fn staff_ws(base: &str, http: &reqwest::Client) -> Ws {
    let v: Value = http
        .post(format!("{base}/api/v1/signalling/token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("ws://{}/ws", base.trim_start_matches("http://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    ws.send(Message::Text(
        json!({"id":"j","type":"join","token":v["token"]})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    ws
}

/// Every stored message of the channel, through the HTTP API: (seq, client_msg_id).
async fn stored(base: &str, http: &reqwest::Client, channel: &str) -> Vec<(i64, String)> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let v: Value = http
            .get(format!(
                "{base}/api/v1/chat/channels/{channel}/messages?after_seq={after}&limit=200"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for m in v["messages"].as_array().unwrap() {
            after = m["seq"].as_i64().unwrap();
            all.push((after, m["client_msg_id"].as_str().unwrap().to_owned()));
        }
        if v["has_more"] != true {
            return all;
        }
    }
}

type Acks = Arc<Mutex<HashMap<String, i64>>>;

/// `CONNECTIONS` staff connections each pipeline `PER_CONNECTION` messages (client ids
/// `c<conn>-m<i>`) and record every ack they see in `acked`.
async fn burst(
    base: &str,
    http: &reqwest::Client,
    channel: &str,
    acked: Acks,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let ws = staff_ws(base, http).await;
        let (acked, channel) = (acked.clone(), channel.to_owned());
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            let sender = async {
                for i in 0..PER_CONNECTION {
                    let cid = format!("c{c}-m{i}");
                    let frame = json!({"id":cid,"type":"chat_send","channel_id":channel,
                                       "client_msg_id":cid,"text":format!("burst {cid}")});
                    if tx
                        .send(Message::Text(frame.to_string().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            };
            let reader = async {
                while let Some(Ok(m)) = rx.next().await {
                    if let Message::Text(t) = m {
                        let v: Value = serde_json::from_str(t.as_str()).unwrap();
                        if v["type"] == "chat_ack" {
                            let cid = v["client_msg_id"].as_str().unwrap().to_owned();
                            acked
                                .lock()
                                .unwrap()
                                .insert(cid, v["seq"].as_i64().unwrap());
                        }
                    }
                }
            };
            tokio::join!(sender, reader);
        }));
    }
    tasks
}

#[tokio::test]
async fn acknowledged_messages_survive_sigkill_and_retries_store_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), true);
    let base = server.base.clone();
    assert!(server.invitation_url.is_some());
    let http = staff_client(&base).await;
    let list: Value = http
        .get(format!("{base}/api/v1/chat/channels"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let channel = list["channels"][0]["channel_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a channel for the demo appointment: {list}"))
        .to_owned();

    // The burst: every connection pipelines its messages and records the acks it sees.
    let acked: Acks = Arc::default();
    let tasks = burst(&base, &http, &channel, acked.clone()).await;
    // Kill in the middle of the burst.
    let total = CONNECTIONS * PER_CONNECTION;
    for _ in 0..500 {
        if acked.lock().unwrap().len() >= total / 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        !acked.is_empty() && acked.len() < total,
        "killed mid-burst: {} of {total} acknowledged",
        acked.len()
    );

    // Restart on the same data directory.
    let mut server = start(dir.path(), false);
    let base = server.base.clone();
    let http = staff_client(&base).await;
    let rows = stored(&base, &http, &channel).await;
    let by_id: HashMap<&str, i64> = rows.iter().map(|(s, c)| (c.as_str(), *s)).collect();
    assert_eq!(by_id.len(), rows.len(), "no message stored twice");
    for (cid, seq) in &acked {
        assert_eq!(
            by_id.get(cid.as_str()),
            Some(seq),
            "acknowledged message {cid} is there with its seq"
        );
    }
    let seqs: Vec<i64> = rows.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=rows.len() as i64).collect::<Vec<_>>(),
        "gap-free"
    );

    // The clients retry everything (acknowledged or not) with the same ids.
    let retried: Acks = Arc::default();
    let tasks = burst(&base, &http, &channel, retried.clone()).await;
    for _ in 0..1000 {
        if retried.lock().unwrap().len() >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for t in tasks {
        t.abort();
    }
    let retried = retried.lock().unwrap().clone();
    assert_eq!(retried.len(), total, "every retry acknowledged");
    for (cid, seq) in &acked {
        assert_eq!(retried.get(cid), Some(seq), "a retry keeps the first seq");
    }
    let rows = stored(&base, &http, &channel).await;
    assert_eq!(rows.len(), total, "each message exactly once");
    let ids: HashSet<&str> = rows.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(ids.len(), total);
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("consultroom.db").display()
    ))
    .await
    .unwrap();
    let check: String = sqlx::query_scalar("pragma integrity_check")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    db.close().await;
}
