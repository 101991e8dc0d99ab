//! Connectivity probes (issue #4, F33/F37) through the whole stack: a check-only connection
//! asks the SFU for a loopback session and gets its own RTP back, with webrtc-rs as the
//! client; staff never hear of it; the session is removed on stop, on expiry and when the
//! connection closes. All traffic is on 127.0.0.1.

use std::time::Duration;

use serde_json::{Value, json};

use crate::peer::{Kind, TestPeer};
use crate::support::{TestApp, WsClient, spawn_app};

/// The value of the first sample of metric `name` (0 when absent).
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", app.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Waits (bounded, 10 s) until metric `name` equals `want`; returns the last value.
async fn metric_becomes(app: &TestApp, name: &str, want: f64) -> f64 {
    let mut v = metric(app, name).await;
    for _ in 0..100 {
        if v == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        v = metric(app, name).await;
    }
    v
}

/// A check-only connection: `joined` and nothing else.
async fn join_check(app: &TestApp) -> (WsClient, Value) {
    let mut ws = WsClient::connect(app).await;
    let token = app.patient_token().await;
    let joined = ws
        .request(json!({"type":"join","token":token,"check":true}))
        .await;
    assert_eq!(joined["type"], "joined", "{joined}");
    (ws, joined)
}

/// Starts a probe with `peer`'s offer and applies the answer.
async fn start_probe(ws: &mut WsClient, peer: &TestPeer) -> Value {
    let offer = peer.offer().await;
    let r = ws.request(json!({"type":"probe_offer","sdp":offer})).await;
    assert_eq!(r["type"], "probe_answer", "{r}");
    peer.accept_answer(r["sdp"].as_str().unwrap().to_owned())
        .await;
    r
}

/// Answers server `probe_offer`s for `dur`; returns the other frames seen.
async fn pump(ws: &mut WsClient, peer: &TestPeer, dur: Duration) -> Vec<Value> {
    let mut other = Vec::new();
    let deadline = tokio::time::Instant::now() + dur;
    while tokio::time::Instant::now() < deadline {
        let Some(frame) = ws.try_recv(Duration::from_millis(100)).await else {
            continue;
        };
        if frame["type"] == "probe_offer" {
            let answer = peer.answer(frame["sdp"].as_str().unwrap().to_owned()).await;
            let r = ws
                .request(json!({"type":"probe_answer","sdp":answer}))
                .await;
            assert_eq!(r["type"], "ok", "{r}");
        } else {
            other.push(frame);
        }
    }
    other
}

#[tokio::test]
async fn a_check_only_connection_gets_its_own_media_back_and_staff_never_see_it() {
    let app = spawn_app().await;
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    let snapshot = staff.recv_type("waiting_snapshot").await;
    assert_eq!(snapshot["entries"].as_array().map(Vec::len), Some(0));

    let (mut check, _) = join_check(&app).await;
    assert!(
        check.try_recv(Duration::from_millis(300)).await.is_none(),
        "a check-only connection gets nothing after joined"
    );
    // It may do nothing but probe.
    let r = check.request(json!({"type":"chat_channels"})).await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let r = check
        .request(json!({"type":"media_offer","sdp":"v=0"}))
        .await;
    assert_eq!(r["code"], "forbidden", "{r}");

    let peer = TestPeer::new().await;
    let _publisher = peer.add_synthetic_tracks().await.start();
    let answer = start_probe(&mut check, &peer).await;
    assert_eq!(answer["seconds"], 20);
    // Every SFU media port (one per media loop), for the advice to IT.
    let udp: Vec<u64> = answer["udp_ports"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    assert!(udp.contains(&u64::from(app.media_addr.port())), "{answer}");
    assert_eq!(answer["tcp_ports"], json!([]), "no ICE-TCP configured");
    let r = check
        .request(json!({"type":"probe_offer","sdp":peer.offer_sdp().await}))
        .await;
    assert_eq!(r["code"], "invalid_state", "one probe at a time: {r}");

    // The echo arrives: our own audio and video, through the SFU and back (bounded: 15 s).
    let mut echoed = false;
    for _ in 0..30 {
        let other = pump(&mut check, &peer, Duration::from_millis(500)).await;
        assert!(other.is_empty(), "unexpected frames: {other:?}");
        if peer.received().packets(Kind::Audio) >= 20 && peer.received().packets(Kind::Video) >= 20
        {
            echoed = true;
            break;
        }
    }
    assert!(
        echoed,
        "the probe echoes audio and video: a={} v={}",
        peer.received().packets(Kind::Audio),
        peer.received().packets(Kind::Video)
    );
    assert!(peer.wait_connected(Duration::from_secs(1)).await);
    // The echo carries the probe's own stream id, in the probe id space.
    let ids = peer.received().stream_ids();
    assert!(!ids.is_empty());
    for id in &ids {
        let n: u64 = id
            .strip_prefix("participant-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("stream id {id}"));
        assert!(n >= consultroom_signalling::state::PROBE_ID_BASE, "{id}");
    }
    assert_eq!(
        metric(&app, "consultroom_signalling_probes_running").await,
        1.0
    );
    assert_eq!(
        metric(&app, "consultroom_signalling_probes_connected_total").await,
        1.0
    );
    assert_eq!(metric(&app, "consultroom_sfu_participants").await, 1.0);

    // The practitioner heard of none of it.
    assert!(
        staff.try_recv(Duration::from_millis(300)).await.is_none(),
        "staff get no frame about a check-only connection or its probe"
    );

    let r = check.request(json!({"type":"probe_stop"})).await;
    assert_eq!(r["type"], "ok", "{r}");
    assert_eq!(
        metric_becomes(&app, "consultroom_sfu_participants", 0.0).await,
        0.0
    );
    assert_eq!(
        metric(&app, "consultroom_signalling_probes_running").await,
        0.0
    );
    peer.close().await;

    // A second probe on the same connection expires after its 20 s (the hub's clock).
    let peer = TestPeer::new().await;
    let _publisher = peer.add_synthetic_tracks().await.start();
    start_probe(&mut check, &peer).await;
    app.clock.advance(chrono::Duration::seconds(21));
    let ended = check.recv_type("probe_ended").await;
    assert_eq!(ended["reason"], "expired");
    assert_eq!(
        metric_becomes(&app, "consultroom_sfu_participants", 0.0).await,
        0.0
    );
    assert_eq!(
        metric(&app, "consultroom_signalling_probes_started_total").await,
        2.0
    );
    peer.close().await;
    app.stop().await;
}

#[tokio::test]
async fn probes_need_a_join_stay_out_of_consultations_and_go_with_their_connection() {
    let app = spawn_app().await;
    // Not joined yet: refused.
    let mut raw = WsClient::connect(&app).await;
    let r = raw.request(json!({"type":"probe_offer","sdp":"v=0"})).await;
    assert_eq!(r["code"], "not_joined", "{r}");

    // A probe goes when its connection closes (the patient then joins for real).
    let (mut check, _) = join_check(&app).await;
    let peer = TestPeer::new().await;
    let _publisher = peer.add_synthetic_tracks().await.start();
    start_probe(&mut check, &peer).await;
    assert_eq!(
        metric(&app, "consultroom_signalling_probes_running").await,
        1.0
    );
    drop(check);
    assert_eq!(
        metric_becomes(&app, "consultroom_signalling_probes_running", 0.0).await,
        0.0
    );
    assert_eq!(
        metric_becomes(&app, "consultroom_sfu_participants", 0.0).await,
        0.0
    );
    peer.close().await;
    // A waiting patient may probe on its ordinary connection; staff see only the arrival.
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    let (mut patient, _) = WsClient::join(&app, &app.patient_token().await).await;
    let pid = staff.recv_type("waiting_arrived").await["entry"]["participant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let peer = TestPeer::new().await;
    let _publisher = peer.add_synthetic_tracks().await.start();
    start_probe(&mut patient, &peer).await;
    assert!(peer.wait_connected(Duration::from_secs(10)).await);
    assert!(
        staff.try_recv(Duration::from_millis(300)).await.is_none(),
        "nothing about the probe reaches staff"
    );

    // Admission ends the probe; the consultation's media is separate.
    let r = staff
        .request(json!({"type":"admit","participant_id":pid}))
        .await;
    assert_eq!(r["type"], "ok");
    let ended = patient.recv_type("probe_ended").await;
    assert_eq!(ended["reason"], "consultation_started");
    patient.recv_type("consultation_started").await;
    let r = patient
        .request(json!({"type":"probe_offer","sdp":"v=0"}))
        .await;
    assert_eq!(
        r["code"], "invalid_state",
        "no probe in a consultation: {r}"
    );
    let r = staff.request(json!({"type":"end_consultation"})).await;
    assert_eq!(r["type"], "ok");
    peer.close().await;

    app.stop().await;
}
