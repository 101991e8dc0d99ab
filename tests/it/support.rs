//! `spawn_app()`: a real server on port 0 with a fresh SQLite database (or a fresh PostgreSQL
//! database, `consultroom_testkit::TestDatabase`, when `TEST_PG_URL` is set and the test asks for it), a controllable clock, the demo
//! clinic seeded, and small HTTP/WebSocket client helpers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use consultroom::App;
use consultroom::config::ServeArgs;
use consultroom_clinic::MockClock;
use consultroom_testkit::TestDatabase;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

pub const PASSWORD: &str = "correct horse battery staple";

pub use consultroom_testkit::{Backend, backends};

/// A running server.
pub struct TestApp {
    pub base: String,
    pub admin: String,
    pub ws_url: String,
    pub media_addr: std::net::SocketAddr,
    pub clock: Arc<MockClock>,
    pub demo_email: String,
    pub invitation_url: String,
    /// The server's `--data-dir` (database, secret, consultation files).
    pub data_dir: std::path::PathBuf,
    /// The running server's clinic service (for what has no HTTP API yet).
    pub clinic: consultroom_clinic::Clinic,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The PostgreSQL database (SQLite lives in `data_dir`); removed after the server stopped.
    database: Option<TestDatabase>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// The invitation token of the demo appointment that starts "now".
    pub fn invitation_token(&self) -> String {
        self.invitation_url
            .split_once('#')
            .map(|(_, t)| t.to_owned())
            .expect("invitation URL carries the token in the fragment")
    }

    /// A reqwest client with a cookie store, logged in as the demo practitioner.
    pub async fn staff_client(&self) -> reqwest::Client {
        let c = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let r = c
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({"email": self.demo_email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "demo login works");
        c
    }

    /// A staff join token for the WebSocket.
    pub async fn staff_token(&self) -> String {
        self.staff_token_with(&self.staff_client().await).await
    }

    /// A staff join token minted with `client`'s session.
    pub async fn staff_token_with(&self, client: &reqwest::Client) -> String {
        let v: Value = client
            .post(format!("{}/api/v1/signalling/token", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["token"].as_str().expect("token").to_owned()
    }

    /// `POST /api/v1/invitations/resolve` with an invitation link's token.
    pub async fn resolve(&self, token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/api/v1/invitations/resolve", self.base))
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap()
    }

    /// A patient join token for the demo appointment.
    pub async fn patient_token(&self) -> String {
        let v: Value = self
            .resolve(&self.invitation_token())
            .await
            .json()
            .await
            .unwrap();
        v["signalling_token"]
            .as_str()
            .unwrap_or_else(|| panic!("resolve gave no token: {v}"))
            .to_owned()
    }

    /// Stop the server gracefully and wait for it.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    /// Send the shutdown signal without waiting (as SIGTERM does).
    pub fn signal_shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Wait up to `limit` for the server to stop after `signal_shutdown`; true if it did.
    pub async fn stopped_within(&mut self, limit: Duration) -> bool {
        match self.task.take() {
            Some(t) => tokio::time::timeout(limit, t).await.is_ok(),
            None => true,
        }
    }

    /// The public listener's address.
    pub fn http_addr(&self) -> std::net::SocketAddr {
        self.base
            .trim_start_matches("http://")
            .parse()
            .expect("base is http://ip:port")
    }

    async fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        if let Some(db) = self.database.take() {
            db.remove().await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A fixed "now" for tests: the demo appointment starts at this instant.
pub fn test_now() -> DateTime<Utc> {
    // Round to the minute so that appointment times are tidy.
    use chrono::{DurationRound, TimeDelta};
    Utc::now()
        .duration_trunc(TimeDelta::minutes(1))
        .expect("in range")
}

/// Start a server on SQLite.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Backend::Sqlite).await
}

/// Start a server on the given backend.
pub async fn spawn_app_on(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Start a server on the given backend, with a last say over its options (e.g. TURN).
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    consultroom::init_crypto();
    crate::pii::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut args = ServeArgs {
        http: "127.0.0.1:0".parse().unwrap(),
        admin: "127.0.0.1:0".parse().unwrap(),
        media_bind: "127.0.0.1:0".parse().unwrap(),
        media_announce: vec!["127.0.0.1".parse().unwrap()],
        data_dir: dir.path().to_path_buf(),
        shutdown_deadline_secs: 2,
        drain_window_secs: 0,
        ..ServeArgs::default()
    };
    let mut database = None;
    if backend == Backend::Postgres {
        let db = TestDatabase::create(backend).await;
        args.database_url = Some(db.url().to_owned());
        database = Some(db);
    }
    configure(&mut args);
    let now = test_now();
    let clock = Arc::new(MockClock::new(now));
    let app = App::build(&args, clock.clone()).await.expect("app builds");
    let base = format!("http://{}", app.http_addr());
    let admin = format!("http://{}", app.admin_addr());
    let media_addr = app.media_addr();
    let clinic = app.clinic.clone();
    let info = consultroom_clinic::demo::seed(&app.store, now, PASSWORD, &base)
        .await
        .expect("demo seed");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run(async move {
        let _ = stop_rx.await;
    }));
    TestApp {
        ws_url: format!("ws://{}/ws", base.trim_start_matches("http://")),
        base,
        admin,
        media_addr,
        clock,
        demo_email: info.email,
        invitation_url: info.invitation_url,
        data_dir: dir.path().to_path_buf(),
        clinic,
        stop: Some(stop_tx),
        task: Some(task),
        database,
        _dir: dir,
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A signalling client over a real WebSocket.
pub struct WsClient {
    ws: Ws,
    next_id: u64,
}

impl WsClient {
    pub async fn connect(app: &TestApp) -> WsClient {
        let (ws, _) = tokio_tungstenite::connect_async(app.ws_url.as_str())
            .await
            .expect("ws connects");
        WsClient { ws, next_id: 1 }
    }

    /// Connect and join with `token`; returns the client and the `joined` frame.
    pub async fn join(app: &TestApp, token: &str) -> (WsClient, Value) {
        let mut c = WsClient::connect(app).await;
        let joined = c.request(json!({"type":"join","token":token})).await;
        assert_eq!(joined["type"], "joined", "{joined}");
        (c, joined)
    }

    pub async fn send_raw(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::Text(text.into().into()))
            .await
            .expect("ws send");
    }

    /// Send `msg` with a fresh id and wait for the frame that replies to it.
    pub async fn request(&mut self, mut msg: Value) -> Value {
        let id = format!("r{}", self.next_id);
        self.next_id += 1;
        msg["id"] = json!(id);
        self.send_raw(msg.to_string()).await;
        self.recv_until(|v| v["reply_to"] == id).await
    }

    /// The next JSON frame (panics after 5 s or on close).
    pub async fn recv(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .expect("a frame within 5 s")
                .expect("stream open")
                .expect("ws ok");
            match m {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Close(c) => panic!("closed: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next JSON frame, or `None` if none arrives within `wait`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        loop {
            match tokio::time::timeout(wait, self.ws.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
                Ok(Some(Ok(Message::Close(c)))) => panic!("closed: {c:?}"),
                Ok(Some(Ok(_))) => continue,
                Ok(other) => panic!("ws failed: {other:?}"),
            }
        }
    }

    /// Receive frames until one matches `pred`; returns it.
    pub async fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..50 {
            let v = self.recv().await;
            if pred(&v) {
                return v;
            }
        }
        panic!("no matching frame in 50 frames");
    }

    /// Receive frames until one of `type`.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        self.recv_until(|v| v["type"] == ty).await
    }

    /// Wait for the server to close (frames before the close are skipped); returns the close
    /// code and reason.
    pub async fn closed_with(&mut self) -> Option<(u16, String)> {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await {
                Ok(Some(Ok(Message::Close(c)))) => {
                    return c.map(|c| (u16::from(c.code), c.reason.as_str().to_owned()));
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => return None,
                Err(_) => panic!("not closed within 5 s"),
            }
        }
    }

    /// Wait for the server to close; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await {
                Ok(Some(Ok(Message::Close(c)))) => return c.map(|c| u16::from(c.code)),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_))) | Ok(None) => return None,
                Err(_) => panic!("not closed within 5 s"),
            }
        }
    }
}
