//! Patient data, credentials and tokens never reach the logs.

use chrono::Duration;
use serde_json::{Value, json};

use crate::support::*;

pub async fn no_pii_in_logs(backend: Backend) {
    // spawn_app installs a process-wide subscriber that captures every test's logs.
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let http = app.login(DOC_CARDIO).await;
    let _ = reqwest::Client::new()
        .post(app.url("/auth/login"))
        .json(&json!({ "email": "canary-login@a.test", "password": "canary-password" }))
        .send()
        .await
        .unwrap();
    let res = http
        .post(app.url("/clients"))
        .json(&json!({ "name": "Canary Patientname", "email": "canary@patient.test", "phone": "+31 6 1357 2468" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (status, booked) = app
        .book(&http, json!({ "client_id": w.client_a, "starts_at": (app.clock_now() + Duration::minutes(5)).to_rfc3339(), "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 201);
    let token = token_of(booked["invitation_url"].as_str().unwrap());
    let (status, resolved) = app.resolve(&token).await;
    assert_eq!(status, 200);
    let (status, signalling) = post_empty(&http, &app.url("/signalling/token")).await;
    assert_eq!(status, 200);
    let id = booked["appointment"]["id"].as_str().unwrap();
    post_empty(&http, &app.url(&format!("/appointments/{id}/cancel"))).await;
    assert_eq!(app.resolve(&token).await.0, 410);
    drop(app);

    let logs = captured_logs();
    assert!(
        logs.contains(&format!("appointment booked appointment_id={id}")),
        "capture works: {logs}"
    );
    let canaries: Vec<String> = vec![
        CLIENT_A_NAME.into(),
        DOC_CARDIO_NAME.into(),
        DOC_CARDIO.into(),
        PASSWORD.into(),
        "Canary Patientname".into(),
        "canary@patient.test".into(),
        "1357 2468".into(),
        "canary-login@a.test".into(),
        "canary-password".into(),
        token,
        str_of(&resolved["signalling_token"]),
        str_of(&signalling["token"]),
    ];
    for canary in canaries {
        assert!(!logs.contains(&canary), "{canary:?} found in logs:\n{logs}");
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().expect("string").to_owned()
}
