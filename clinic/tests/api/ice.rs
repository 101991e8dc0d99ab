//! `GET /ice-servers`: TURN credentials in coturn's REST scheme, for staff sessions and holders
//! of a valid join token only.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Duration;
use consultroom_clinic::TurnConfig;
use serde_json::{Value, json};

use crate::support::*;

const TURN_SECRET: &[u8] = b"coturn-static-auth-secret-for-tests";
const TURN_URLS: [&str; 2] = [
    "turn:127.0.0.1:3478?transport=udp",
    "turns:turn.example.org:443?transport=tcp",
];

async fn spawn_with_turn(backend: &Backend, ttl_minutes: i64) -> TestApp {
    spawn_app_configured(backend, Options::default(), |config| {
        config.turn = Some(
            TurnConfig::new(
                TURN_URLS.iter().map(|u| u.to_string()).collect(),
                TURN_SECRET.to_vec(),
                ttl_minutes,
            )
            .expect("turn config"),
        );
    })
    .await
}

/// GET /ice-servers with an optional bearer token; returns (status, Cache-Control, body).
async fn ice_servers(
    app: &TestApp,
    http: &reqwest::Client,
    bearer: Option<&str>,
) -> (u16, String, Value) {
    let mut req = http.get(app.url("/ice-servers"));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let cache = res
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, cache, res.json().await.unwrap_or(Value::Null))
}

/// Checks one successful answer: the configured URLs, expiry = now + ttl, and an HMAC-SHA1
/// credential that coturn would accept.
fn assert_credentials(body: &Value, now_unix: i64, ttl_minutes: i64) {
    assert_eq!(body["ttl_seconds"], ttl_minutes * 60, "{body}");
    let servers = body["ice_servers"].as_array().expect("ice_servers");
    assert_eq!(servers.len(), 1, "{body}");
    let server = &servers[0];
    assert_eq!(server["urls"], json!(TURN_URLS));
    let username = server["username"].as_str().expect("username");
    let (expiry, id) = username.split_once(':').expect("<expiry>:<id>");
    assert_eq!(expiry.parse::<i64>().unwrap(), now_unix + ttl_minutes * 60);
    assert!(
        id.len() >= 16
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "opaque random id, got {id:?}"
    );
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, TURN_SECRET);
    let expected = STANDARD.encode(hmac::sign(&key, username.as_bytes()).as_ref());
    assert_eq!(server["credential"], expected);
}

pub async fn ice_servers_for_staff_and_join_token_holders(backend: Backend) {
    let app = spawn_with_turn(&backend, 30).await;
    let w = app.world().await;
    let now = t0().timestamp();

    // Nobody: 401, and nothing else is revealed.
    let anon = app.http();
    let (status, _, body) = ice_servers(&app, &anon, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert!(!body.to_string().contains("turn:"), "{body}");
    for bad in ["garbage", "", "a.b.c"] {
        let (status, _, _) = ice_servers(&app, &anon, Some(bad)).await;
        assert_eq!(status, 401, "bearer {bad:?}");
    }
    let res = anon
        .get(app.url("/ice-servers"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401, "not a bearer token");

    // Staff session (cookie).
    let staff = app.login(DOC_CARDIO).await;
    let (status, cache, body) = ice_servers(&app, &staff, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache, "no-store");
    assert_credentials(&body, now, 30);
    let (_, _, again) = ice_servers(&app, &staff, None).await;
    assert_ne!(
        again["ice_servers"][0]["username"], body["ice_servers"][0]["username"],
        "a fresh random id per request"
    );

    // A patient holding a join token from their invitation.
    let (status, booked) = app
        .book(
            &staff,
            json!({ "client_id": w.client_a, "starts_at": (t0() + Duration::minutes(10)).to_rfc3339(), "duration_minutes": 20 }),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    let (status, resolved) = app
        .resolve(&token_of(booked["invitation_url"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{resolved}");
    let patient_token = resolved["signalling_token"].as_str().unwrap().to_owned();
    let (status, cache, body) = ice_servers(&app, &anon, Some(&patient_token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache, "no-store");
    assert_credentials(&body, now, 30);
    assert!(
        !body.to_string().contains(CLIENT_A_NAME) && !body.to_string().contains("Jan"),
        "no patient name in the credentials: {body}"
    );

    // Expiry follows the injected clock.
    app.clock.advance(Duration::seconds(100));
    let (status, _, body) = ice_servers(&app, &anon, Some(&patient_token)).await;
    assert_eq!(status, 200, "{body}");
    assert_credentials(&body, now + 100, 30);

    // The join token expired (120 s + 5 s leeway): 401, even alongside a valid staff cookie.
    app.clock.advance(Duration::seconds(30));
    let (status, _, body) = ice_servers(&app, &anon, Some(&patient_token)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated");
    let (status, _, _) = ice_servers(&app, &staff, Some(&patient_token)).await;
    assert_eq!(
        status, 401,
        "a bad bearer token is not rescued by the cookie"
    );
    let (status, _, body) = ice_servers(&app, &staff, None).await;
    assert_eq!(status, 200, "{body}");
    assert_credentials(&body, now + 130, 30);

    // A staff join token works as a bearer token too (e.g. a client without the cookie).
    let (status, token) = post_empty(&staff, &app.url("/signalling/token")).await;
    assert_eq!(status, 200, "{token}");
    let (status, _, body) = ice_servers(&app, &anon, Some(token["token"].as_str().unwrap())).await;
    assert_eq!(status, 200, "{body}");
    assert_credentials(&body, now + 130, 30);
}

pub async fn ice_servers_without_turn_is_an_empty_list(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let (status, _, body) = ice_servers(&app, &app.http(), None).await;
    assert_eq!(status, 401, "{body}");
    let staff = app.login(DOC_CARDIO).await;
    let (status, cache, body) = ice_servers(&app, &staff, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(cache, "no-store");
    assert_eq!(body, json!({ "ice_servers": [], "ttl_seconds": 0 }));
}
