//! Connections and lifecycle (issue #10): slow clients cannot take the server offline, idle
//! connections are closed, `/readyz` reports a drain before the drain starts, and the data
//! directory is private.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::support::{Backend, PASSWORD, TestApp, WsClient, spawn_app_with};

/// The value of a metric line that starts with `prefix` (0 when absent).
async fn metric(app: &TestApp, prefix: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", app.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A connection from `source` (any 127/8 address: loopback accepts them all).
async fn connect_from(source: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::from((source, 0)))?;
    s.connect(to).await
}

/// Read until the server closes (EOF or reset); how long that took, or `None` within `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return t0.elapsed(),
                Ok(_) => continue,
            }
        }
    })
    .await
    .ok()
}

/// One HTTP/1.1 response with a `Content-Length` body; returns its status.
async fn read_response(s: &mut TcpStream) -> u16 {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before a whole response");
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .expect("a content-length");
        if data.len() >= end + 4 + len {
            return head[9..12].parse().unwrap();
        }
    }
}

const HALF_HEADER: &[u8] = b"GET /api/v1/me HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slo";
const HALF_BODY: &[u8] = b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\n\
    Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"email\":\"a@b.c\",";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_take_the_server_offline() {
    const SOURCES: usize = 11;
    const PER_SOURCE: usize = 50;
    const HEADER: Duration = Duration::from_secs(5);
    // Client and server sockets both count against this process's open-file limit.
    let limit = consultroom::serve::fdlimit::raise().unwrap_or(1024) as usize;
    let n = 1100.min(limit.saturating_sub(300) / 2);
    assert!(n > SOURCES * PER_SOURCE, "open-file limit {limit} too low");

    let app = spawn_app_with(Backend::Sqlite, |a| {
        a.http_header_timeout_secs = HEADER.as_secs();
        a.http_body_timeout_secs = HEADER.as_secs();
        a.http_idle_timeout_secs = 60;
        a.http_max_connections_per_source = PER_SOURCE;
    })
    .await;
    // A consultation in progress, and a logged-in practitioner.
    let staff_http = app.staff_client().await;
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    let (mut patient, _) = WsClient::join(&app, &app.patient_token().await).await;
    let pid = staff.recv_type("waiting_arrived").await["entry"]["participant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    staff
        .request(json!({"type":"admit","participant_id":pid}))
        .await;
    patient.recv_type("consultation_started").await;

    // The attack: half headers, headers with half a body, and silence, from 11 addresses.
    let to = app.http_addr();
    let attack_started = Instant::now();
    let mut attackers = Vec::with_capacity(n);
    for i in 0..n {
        let source = Ipv4Addr::new(127, 0, 0, 2 + (i % SOURCES) as u8);
        let mut s = connect_from(source, to).await.expect("connect");
        let payload = match i % 3 {
            0 => HALF_HEADER,
            1 => HALF_BODY,
            _ => b"",
        };
        // Refused connections are already closed; a failed write is expected there.
        let _ = s.write_all(payload).await;
        attackers.push((Instant::now(), s));
    }
    let connected = attack_started.elapsed();
    assert!(
        connected < HEADER / 2,
        "the attack connected in {connected:?}"
    );

    // Meanwhile: health checks answer within 1 s, staff can log in and work, the
    // consultation's WebSockets answer.
    for path in ["/healthz", "/readyz"] {
        let r = tokio::time::timeout(
            Duration::from_secs(1),
            reqwest::get(format!("{}{path}", app.admin)),
        )
        .await
        .unwrap_or_else(|_| panic!("{path} answers within 1 s under attack"))
        .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let login = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"email": app.demo_email, "password": PASSWORD}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("login answers under attack");
    assert_eq!(login.status(), 200);
    let me = staff_http
        .get(format!("{}/api/v1/me", app.base))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("/api/v1/me answers under attack");
    assert_eq!(me.status(), 200);
    for ws in [&mut staff, &mut patient] {
        assert_eq!(ws.request(json!({"type":"ping"})).await["type"], "pong");
    }

    // The per-source cap held: every source beyond its 50 was closed at accept, and the
    // attack (still held: the header timeout has not passed) is what is open.
    let refused = metric(
        &app,
        "consultroom_http_connections_refused_total{listener=\"public\",reason=\"per_source\"}",
    )
    .await;
    assert_eq!(refused as usize, n - SOURCES * PER_SOURCE);
    let open = metric(
        &app,
        "consultroom_http_connections_open{listener=\"public\"}",
    )
    .await as usize;
    assert!(
        (SOURCES * PER_SOURCE..=SOURCES * PER_SOURCE + 10).contains(&open),
        "open connections: {open}"
    );
    assert!(
        attack_started.elapsed() < HEADER,
        "the checks ran while the attack was held"
    );

    // Then the server closes every slow connection: by the header timeout (or, for the half
    // bodies, the body's grace time after the header), never later.
    let slack = Duration::from_secs(2);
    let closes =
        futures_util::future::join_all(attackers.into_iter().map(|(at, mut s)| async move {
            let waited = at.elapsed();
            closed_within(&mut s, (HEADER + slack).saturating_sub(waited))
                .await
                .map(|d| d + waited)
        }))
        .await;
    let open_after: Vec<usize> = closes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_none())
        .map(|(i, _)| i)
        .collect();
    assert!(
        open_after.is_empty(),
        "{} slow connections still open {:?} after connecting (first: #{:?})",
        open_after.len(),
        HEADER + slack,
        open_after.first()
    );
    for reason in ["header", "body"] {
        let closed = metric(
            &app,
            &format!(
                "consultroom_http_connections_timed_out_total{{listener=\"public\",reason=\"{reason}\"}}"
            ),
        )
        .await;
        assert!(closed > 0.0, "closed for {reason}: {closed}");
    }
    // Still serving.
    assert_eq!(staff.request(json!({"type":"ping"})).await["type"], "pong");
    app.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_but_websockets_are_not() {
    let app = spawn_app_with(Backend::Sqlite, |a| {
        a.http_header_timeout_secs = 1;
        a.http_idle_timeout_secs = 3;
    })
    .await;
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;

    let mut s = TcpStream::connect(app.http_addr()).await.unwrap();
    s.write_all(b"GET /api/v1/nothing-here HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await, 404);
    // A second request on the same connection: keep-alive works.
    s.write_all(b"GET /api/v1/nothing-here HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut s).await, 404);
    let idle = closed_within(&mut s, Duration::from_secs(6))
        .await
        .expect("an idle connection is closed");
    // The idle timeout, not the (shorter) header timeout, applies between requests.
    assert!(
        idle >= Duration::from_millis(2800) && idle <= Duration::from_secs(5),
        "closed after {idle:?}"
    );
    // The WebSocket, idle just as long, is the hub's business and stays open.
    assert_eq!(staff.request(json!({"type":"ping"})).await["type"], "pong");
    assert!(
        metric(
            &app,
            "consultroom_http_connections_timed_out_total{listener=\"public\",reason=\"idle\"}"
        )
        .await
            >= 1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn readyz_reports_draining_while_everything_still_serves() {
    const WINDOW: Duration = Duration::from_secs(3);
    let mut app = spawn_app_with(Backend::Sqlite, |a| {
        a.drain_window_secs = WINDOW.as_secs();
        a.shutdown_deadline_secs = 2;
    })
    .await;
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    let c = reqwest::Client::new();
    assert_eq!(
        c.get(format!("{}/readyz", app.admin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    app.signal_shutdown();
    let t0 = Instant::now();
    let mut draining = false;
    while t0.elapsed() < Duration::from_secs(1) {
        let r = c.get(format!("{}/readyz", app.admin)).send().await.unwrap();
        if r.status() == 503 {
            assert_eq!(r.text().await.unwrap(), "draining");
            draining = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(draining, "/readyz turns 503 at once");
    // Everything else still serves: health, a new public connection, the WebSocket.
    assert_eq!(
        c.get(format!("{}/healthz", app.admin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let fresh = reqwest::Client::new();
    assert_eq!(
        fresh
            .get(format!("{}/api/v1/openapi.json", app.base))
            .send()
            .await
            .expect("the public listener still accepts")
            .status(),
        200
    );
    assert_eq!(staff.request(json!({"type":"ping"})).await["type"], "pong");
    assert!(t0.elapsed() < WINDOW, "checked within the drain window");

    // Then the drain: WebSockets go away, and the server stops within window + deadline.
    assert_eq!(staff.closed().await, Some(1001));
    assert!(
        app.stopped_within(WINDOW + Duration::from_secs(2) + Duration::from_secs(3))
            .await,
        "stopped within the drain window and the deadline"
    );
    assert!(
        c.get(format!("{}/healthz", app.admin))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_err(),
        "the admin listener is gone once the server has stopped"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut fresh = None;
    let app = spawn_app_with(Backend::Sqlite, |a| {
        a.data_dir = a.data_dir.join("fresh/data");
        fresh = Some(a.data_dir.clone());
    })
    .await;
    let dir = fresh.unwrap();
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&dir), 0o700, "data directory");
    assert_eq!(mode(&dir.join("consultation-files")), 0o700);
    for f in [
        "consultroom.db",
        "consultroom.db-wal",
        "consultroom.db-shm",
        "secret.key",
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    app.stop().await;
}
