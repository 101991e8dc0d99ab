//! TURN credentials through the whole server: the `--turn-*` options reach
//! `GET /api/v1/ice-servers`, which answers staff sessions and join-token holders only, with
//! credentials coturn (`use-auth-secret`) would accept; half a TURN configuration is refused.

use std::sync::Arc;

use consultroom::App;
use consultroom::config::{Redacted, ServeArgs};
use consultroom_clinic::{Clock, MockClock};
use serde_json::Value;

use crate::support::{Backend, backends, spawn_app_with, test_now};

const SECRET: &str = "it-static-auth-secret";
const URLS: [&str; 2] = [
    "turn:127.0.0.1:3478?transport=udp",
    "turns:turn.example.org:443?transport=tcp",
];

async fn get(client: &reqwest::Client, url: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = client.get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    assert_eq!(
        res.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    (status, res.json().await.unwrap_or(Value::Null))
}

fn check(body: &Value, now_unix: i64) {
    assert_eq!(body["ttl_seconds"], 15 * 60, "{body}");
    let server = &body["ice_servers"][0];
    assert_eq!(server["urls"], serde_json::json!(URLS));
    let username = server["username"].as_str().unwrap();
    let (expiry, _) = username.split_once(':').unwrap();
    assert_eq!(expiry.parse::<i64>().unwrap(), now_unix + 15 * 60);
    // `turn_credential` is checked against independent HMAC-SHA1 vectors in the clinic crate.
    assert_eq!(
        server["credential"],
        consultroom_clinic::ice::turn_credential(SECRET.as_bytes(), username)
    );
}

#[tokio::test]
async fn ice_servers_through_the_composed_server() {
    for backend in backends() {
        let secret_dir = tempfile::tempdir().unwrap();
        let secret_file = secret_dir.path().join("turn.secret");
        // A trailing newline (as `echo` writes it) is not part of the secret.
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let app = spawn_app_with(backend, |args| {
            args.turn_url = URLS.iter().map(|u| u.to_string()).collect();
            args.turn_secret_file = Some(secret_file.clone());
            args.turn_ttl_minutes = 15;
        })
        .await;
        let url = format!("{}/api/v1/ice-servers", app.base);
        let now = app.clock.now().timestamp();

        let (status, body) = get(&reqwest::Client::new(), &url, None).await;
        assert_eq!(status, 401, "{backend:?}: {body}");
        let (status, _) = get(&reqwest::Client::new(), &url, Some("not-a-token")).await;
        assert_eq!(status, 401, "{backend:?}");

        let (status, body) = get(&app.staff_client().await, &url, None).await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        check(&body, now);

        let patient = app.patient_token().await;
        let (status, body) = get(&reqwest::Client::new(), &url, Some(&patient)).await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        check(&body, now);

        app.clock.advance(chrono::Duration::seconds(126));
        let (status, _) = get(&reqwest::Client::new(), &url, Some(&patient)).await;
        assert_eq!(status, 401, "{backend:?}: expired join token");
        app.stop().await;
    }
}

#[tokio::test]
async fn without_turn_options_the_list_is_empty() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let (status, body) = get(
        &app.staff_client().await,
        &format!("{}/api/v1/ice-servers", app.base),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"ice_servers": [], "ttl_seconds": 0})
    );
    app.stop().await;
}

/// Changes a test's server options.
type Configure = Box<dyn Fn(&mut ServeArgs)>;

#[tokio::test]
async fn half_a_turn_configuration_is_refused_at_start_up() {
    consultroom::init_crypto();
    let dir = tempfile::tempdir().unwrap();
    let base = ServeArgs {
        http: "127.0.0.1:0".parse().unwrap(),
        admin: "127.0.0.1:0".parse().unwrap(),
        media_bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        ..ServeArgs::default()
    };
    let clock = Arc::new(MockClock::new(test_now()));
    let cases: [(&str, Configure); 4] = [
        (
            "needs the shared secret",
            Box::new(|a| a.turn_url = vec![URLS[0].into()]),
        ),
        (
            "without --turn-url",
            Box::new(|a| a.turn_secret = Some(Redacted(SECRET.into()))),
        ),
        (
            "invalid TURN configuration",
            Box::new(|a| {
                a.turn_url = vec!["stun:127.0.0.1:3478".into()];
                a.turn_secret = Some(Redacted(SECRET.into()));
            }),
        ),
        (
            "not both",
            Box::new(|a| {
                a.turn_url = vec![URLS[0].into()];
                a.turn_secret = Some(Redacted(SECRET.into()));
                a.turn_secret_file = Some("/nonexistent".into());
            }),
        ),
    ];
    for (expected, configure) in cases {
        let mut args = base.clone();
        configure(&mut args);
        let err = match App::build(&args, clock.clone()).await {
            Ok(_) => panic!("{expected}: the server started"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(expected), "{expected}: {err}");
        assert!(!err.contains(SECRET), "the secret is never shown: {err}");
        assert!(!format!("{args:?}").contains(SECRET), "Debug redacts it");
    }
}
