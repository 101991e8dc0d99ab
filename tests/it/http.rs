//! The composed server over HTTP: operations endpoints, the embedded web client, security
//! headers and body limits. (The clinic API's own rules are tested in `clinic/tests`.)

use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn health_readiness_and_metrics_on_the_admin_listener() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    assert_eq!(
        c.get(format!("{}/healthz", app.admin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(format!("{}/readyz", app.admin))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let m = c
        .get(format!("{}/metrics", app.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "consultroom_sfu_rooms",
        "consultroom_sfu_participants",
        "consultroom_sfu_packets_forwarded_total",
        "consultroom_sfu_bytes_forwarded_total",
        "consultroom_sfu_connect_seconds",
        "consultroom_signalling_connections",
        "consultroom_clinic_password_checks_total",
        "consultroom_clinic_password_checks_refused_busy_total",
    ] {
        assert!(m.contains(name), "metrics lack {name}");
    }
    // The admin endpoints are not on the public listener.
    assert_eq!(
        c.get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    app.stop().await;
}

#[tokio::test]
async fn web_client_is_served_with_security_headers() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    for path in ["/", "/join"] {
        let r = c.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(
            h["permissions-policy"]
                .to_str()
                .unwrap()
                .contains("camera=(self)")
        );
        let body = r.text().await.unwrap();
        assert!(body.contains("<html"), "{path} is the real page");
    }
    // The API is not frameable either.
    let r = c
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let doc: serde_json::Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // Traversal finds nothing.
    let r = c
        .get(format!("{}/../Cargo.toml", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .get(format!("{}/%2e%2e/Cargo.toml", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn login_errors_and_oversized_bodies_are_clear_and_change_nothing() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"email": app.demo_email, "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_credentials");

    let huge = "x".repeat(2 * 1024 * 1024);
    let r = c
        .post(format!("{}/api/v1/auth/login", app.base))
        .header("content-type", "application/json")
        .body(format!(r#"{{"email":"a@b.c","password":"{huge}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    app.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_closes_websockets_with_going_away() {
    let app = spawn_app().await;
    let (mut ws, _) = crate::support::WsClient::join(&app, &app.staff_token().await).await;
    ws.recv_type("waiting_snapshot").await;
    app.stop().await;
    assert_eq!(ws.closed().await, Some(1001));
}
