//! The signalling protocol through a real WebSocket against the real server.

use consultroom_clinic::Clock;
use serde_json::json;

use crate::support::{WsClient, backends, spawn_app, spawn_app_on};

#[tokio::test]
async fn waiting_room_arrival_admit_and_end_on_every_backend() {
    for backend in backends() {
        let app = spawn_app_on(backend).await;
        let (mut staff, joined) = WsClient::join(&app, &app.staff_token().await).await;
        assert_eq!(joined["role"], "staff");
        let snap = staff.recv_type("waiting_snapshot").await;
        assert_eq!(snap["entries"], json!([]), "empty waiting room first");

        let (mut patient, joined) = WsClient::join(&app, &app.patient_token().await).await;
        assert_eq!(joined["role"], "patient");
        let waiting = patient.recv_type("waiting").await;
        assert_eq!(
            waiting["punctuality"],
            "on_time",
            "{backend:?} {waiting} now={}",
            app.clock.now()
        );

        let arrived = staff.recv_type("waiting_arrived").await;
        let entry = &arrived["entry"];
        assert_eq!(entry["punctuality"], "on_time");
        assert!(entry["display_name"].as_str().unwrap().len() > 1);
        let pid = entry["participant_id"].as_str().unwrap().to_owned();

        // A waiting patient may not send media and receives nothing of consultations.
        let r = patient
            .request(json!({"type":"media_offer","sdp":"v=0"}))
            .await;
        assert_eq!(r["code"], "invalid_state");
        // Nor may a patient admit anyone.
        let r = patient
            .request(json!({"type":"admit","participant_id":pid}))
            .await;
        assert_eq!(r["code"], "forbidden");

        let r = staff
            .request(json!({"type":"admit","participant_id":pid}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
        let left = staff.recv_type("waiting_left").await;
        assert_eq!(left["participant_id"], pid.as_str());
        let started = staff.recv_type("consultation_started").await;
        assert_eq!(started["participants"].as_array().unwrap().len(), 2);
        let started_p = patient.recv_type("consultation_started").await;
        assert_eq!(started["consultation_id"], started_p["consultation_id"]);

        // Admitting again: the patient is no longer waiting.
        let r = staff
            .request(json!({"type":"admit","participant_id":pid}))
            .await;
        assert_eq!(r["code"], "invalid_state");

        let r = patient
            .request(json!({"type":"mute","audio":false,"video":true}))
            .await;
        assert_eq!(r["type"], "ok");
        let muted = staff.recv_type("participant_muted").await;
        assert_eq!(muted["audio"], false);

        let r = patient.request(json!({"type":"end_consultation"})).await;
        assert_eq!(r["code"], "forbidden", "patients cannot end");
        let r = staff.request(json!({"type":"end_consultation"})).await;
        assert_eq!(r["type"], "ok");
        let ended = patient.recv_type("consultation_ended").await;
        assert_eq!(ended["reason"], "ended");
        staff.recv_type("consultation_ended").await;

        // The appointment is marked completed.
        let c = app.staff_client().await;
        let mut list = serde_json::Value::Null;
        let mut completed = false;
        for _ in 0..50 {
            list = c
                .get(format!("{}/api/v1/appointments", app.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if list["appointments"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["status"] == "completed")
            {
                completed = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            completed,
            "appointment completed after the consultation: {list}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn malformed_and_unknown_frames_get_errors_and_keep_the_connection() {
    let app = spawn_app().await;
    let (mut c, _) = WsClient::join(&app, &app.staff_token().await).await;
    c.recv_type("waiting_snapshot").await;
    c.send_raw("{not json").await;
    let e = c.recv().await;
    assert_eq!(e["type"], "error");
    assert_eq!(e["code"], "malformed_json");
    c.send_raw("[1,2,3]").await;
    assert_eq!(c.recv().await["code"], "malformed_json");
    let e = c.request(json!({"type":"launch_rockets"})).await;
    assert_eq!(e["code"], "invalid_message");
    let e = c.request(json!({"type":"admit"})).await;
    assert_eq!(e["code"], "invalid_message", "missing field");
    let pong = c.request(json!({"type":"ping"})).await;
    assert_eq!(pong["type"], "pong", "connection still usable");
    app.stop().await;
}

#[tokio::test]
async fn every_frame_of_a_burst_is_answered_with_its_reply_to_and_long_ids_are_refused() {
    // Found by an independent client: `rate_limited` errors carried no `reply_to`, and an `id`
    // over 64 bytes was silently dropped from the reply.
    let app = spawn_app().await;
    let (mut c, _) = WsClient::join(&app, &app.staff_token().await).await;
    c.recv_type("waiting_snapshot").await;
    c.send_raw(json!({"id": "x".repeat(65), "type": "ping"}).to_string())
        .await;
    let e = c.recv_until(|m| m["type"] == "error").await;
    assert_eq!(e["code"], "invalid_message", "{e}");
    assert!(e.get("reply_to").is_none(), "{e}");
    const N: usize = 260; // beyond the burst of 200
    for i in 0..N {
        c.send_raw(json!({"id": format!("r{i}"), "type": "ping"}).to_string())
            .await;
    }
    let mut answered = std::collections::HashSet::new();
    let mut limited = 0;
    while answered.len() < N {
        let m = c.recv().await;
        let Some(reply_to) = m["reply_to"].as_str() else {
            continue; // a pushed event
        };
        match m["type"].as_str() {
            Some("pong") => {}
            Some("error") => {
                assert_eq!(m["code"], "rate_limited", "{m}");
                limited += 1;
            }
            other => panic!("unexpected reply {other:?}: {m}"),
        }
        assert!(answered.insert(reply_to.to_owned()), "answered twice: {m}");
    }
    assert!(limited > 0, "a burst beyond 200 frames is rate limited");
    app.stop().await;
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let app = spawn_app().await;
    let (mut c, _) = WsClient::join(&app, &app.staff_token().await).await;
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(70 * 1024));
    c.send_raw(big).await;
    assert_eq!(c.closed().await, Some(1009));
    // Far beyond the transport limit too.
    let (mut c, _) = WsClient::join(&app, &app.staff_token().await).await;
    c.send_raw("y".repeat(2 * 1024 * 1024)).await;
    let code = c.closed().await;
    assert!(code == Some(1009) || code.is_none(), "closed: {code:?}");
    app.stop().await;
}

#[tokio::test]
async fn bad_and_expired_tokens_are_refused() {
    let app = spawn_app().await;
    let mut c = WsClient::connect(&app).await;
    let e = c
        .request(json!({"type":"join","token":"not-a-token"}))
        .await;
    assert_eq!(e["code"], "invalid_token");
    assert_eq!(c.closed().await, Some(1008));

    // A valid token, presented after it expired.
    let token = app.staff_token().await;
    app.clock.advance(chrono::Duration::minutes(5));
    let mut c = WsClient::connect(&app).await;
    let e = c.request(json!({"type":"join","token":token})).await;
    assert_eq!(e["code"], "invalid_token");
    assert_eq!(e["message"], "token expired");
    assert_eq!(c.closed().await, Some(1008));

    // Messages before join are refused.
    let mut c = WsClient::connect(&app).await;
    let e = c.request(json!({"type":"ping"})).await;
    assert_eq!(e["code"], "not_joined");
    app.stop().await;
}

#[tokio::test]
async fn patient_who_reconnects_appears_once_and_late_patients_are_marked_late() {
    let app = spawn_app().await;
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    // The demo appointment starts within the next three minutes; ten minutes on, the patient
    // is late.
    app.clock.advance(chrono::Duration::minutes(10));
    let (mut p1, _) = WsClient::join(&app, &app.patient_token().await).await;
    assert_eq!(p1.recv_type("waiting").await["punctuality"], "late");
    let first = staff.recv_type("waiting_arrived").await;
    assert_eq!(first["entry"]["punctuality"], "late");
    // Same link again (e.g. a refreshed tab): old connection replaced, one entry, same place.
    let (_p2, joined) = WsClient::join(&app, &app.patient_token().await).await;
    assert_eq!(joined["participant_id"], first["entry"]["participant_id"]);
    let updated = staff.recv_type("waiting_updated").await;
    assert_eq!(
        updated["entry"]["participant_id"],
        first["entry"]["participant_id"]
    );
    assert_eq!(updated["entry"]["reconnecting"], false);
    assert_eq!(p1.closed().await, Some(1001));
    // A second staff tab sees exactly one waiting patient.
    let (mut tab2, _) = WsClient::join(&app, &app.staff_token().await).await;
    let snap = tab2.recv_type("waiting_snapshot").await;
    assert_eq!(snap["entries"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn dropped_patient_keeps_their_place_while_reconnecting_then_leaves() {
    let app = spawn_app().await;
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    let (patient, _) = WsClient::join(&app, &app.patient_token().await).await;
    let arrived = staff.recv_type("waiting_arrived").await;
    let pid = arrived["entry"]["participant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(patient);
    let updated = staff.recv_type("waiting_updated").await;
    assert_eq!(updated["entry"]["reconnecting"], true);
    let r = staff
        .request(json!({"type":"admit","participant_id":pid}))
        .await;
    assert_eq!(
        r["code"], "invalid_state",
        "cannot admit while reconnecting"
    );
    // The grace period passes (the hub checks the injected clock every second).
    app.clock.advance(chrono::Duration::seconds(31));
    let left = staff.recv_type("waiting_left").await;
    assert_eq!(left["participant_id"], pid.as_str());
    app.stop().await;
}

#[tokio::test]
async fn patient_sees_queue_position_and_an_estimate_once_the_practitioner_is_online() {
    let app = spawn_app().await;
    let (mut patient, _) = WsClient::join(&app, &app.patient_token().await).await;
    let status = patient.recv_type("queue_status").await;
    assert_eq!(status["position"], 1);
    assert!(
        status.get("estimated_start_at").is_none(),
        "no practitioner online: no estimate"
    );
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    // The practitioner is free, so the patient is expected at their appointment time.
    let status = patient.recv_type("queue_status").await;
    assert_eq!(status["position"], 1);
    let estimate: chrono::DateTime<chrono::Utc> = status["estimated_start_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = app.clock.now();
    assert!(
        estimate > now && estimate <= now + chrono::Duration::minutes(3),
        "estimate {estimate} is the demo appointment's start (now {now})"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_floods_without_reading_is_dropped() {
    // Found by an independent client: beyond the queue, over-limit frames got no answer and the
    // connection was not closed either (the close went into the same full queue). Now every
    // frame is answered or the connection ends. A small receive buffer makes the server's
    // writes stall at once, as for a client that does not read.
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let app = spawn_app().await;
    let token = app.staff_token().await;
    let addr: std::net::SocketAddr = app
        .ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .parse()
        .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(app.ws_url.as_str(), tcp)
        .await
        .unwrap();
    ws.send(Message::Text(
        json!({"id":"j","type":"join","token":token})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let ping = Message::Text(
        json!({"id":"p","type":"ping","pad":"x".repeat(200)})
            .to_string()
            .into(),
    );
    let started = std::time::Instant::now();
    let mut sent = 0;
    let dropped = loop {
        if sent == 200_000 || started.elapsed() > std::time::Duration::from_secs(30) {
            break false;
        }
        match tokio::time::timeout(std::time::Duration::from_secs(5), ws.send(ping.clone())).await {
            Ok(Ok(())) => sent += 1,
            // The server dropped the connection (reset / broken pipe), or stopped reading it.
            Ok(Err(_)) | Err(_) => break true,
        }
    };
    assert!(
        dropped,
        "the server answered nothing and kept reading {sent} frames in {:?}",
        started.elapsed()
    );
    // The server is fine: another client is answered.
    let (mut c, _) = WsClient::join(&app, &app.staff_token().await).await;
    assert_eq!(c.request(json!({"type":"ping"})).await["type"], "pong");
    app.stop().await;
}
