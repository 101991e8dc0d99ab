//! Media through the whole stack: two participants signal over the real WebSocket and exchange
//! synthetic Opus and VP8 RTP through the SFU, using webrtc-rs (an independent WebRTC stack) as
//! the client. All traffic is on 127.0.0.1.

use std::time::Duration;

use crate::peer::{Kind, TestPeer};
use serde_json::json;

use crate::support::{WsClient, spawn_app};

/// Answer server renegotiations for `dur`.
async fn pump(ws: &mut WsClient, peer: &TestPeer, dur: Duration) {
    let deadline = tokio::time::Instant::now() + dur;
    while tokio::time::Instant::now() < deadline {
        let Some(frame) = ws.try_recv(Duration::from_millis(100)).await else {
            continue;
        };
        if frame["type"] == "media_offer" {
            let answer = peer.answer(frame["sdp"].as_str().unwrap().to_owned()).await;
            let r = ws
                .request(json!({"type":"media_answer","sdp":answer}))
                .await;
            assert_eq!(r["type"], "ok", "{r}");
        }
    }
}

async fn publish(ws: &mut WsClient, peer: &TestPeer) {
    let offer = peer.offer().await;
    let r = ws.request(json!({"type":"media_offer","sdp":offer})).await;
    assert_eq!(r["type"], "media_answer", "{r}");
    peer.accept_answer(r["sdp"].as_str().unwrap().to_owned())
        .await;
}

#[tokio::test]
async fn admitted_participants_exchange_audio_and_video_through_the_sfu() {
    let app = spawn_app().await;
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    let (mut patient, _) = WsClient::join(&app, &app.patient_token().await).await;
    let arrived = staff.recv_type("waiting_arrived").await;
    let pid = arrived["entry"]["participant_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Waiting: the patient's offer is refused, so it can neither send nor receive media.
    let waiting_peer = TestPeer::new().await;
    let _waiting_tracks = waiting_peer.add_synthetic_tracks().await;
    let offer = waiting_peer.offer().await;
    let r = patient
        .request(json!({"type":"media_offer","sdp":offer}))
        .await;
    assert_eq!(r["code"], "invalid_state");
    waiting_peer.close().await;

    let r = staff
        .request(json!({"type":"admit","participant_id":pid}))
        .await;
    assert_eq!(r["type"], "ok");
    staff.recv_type("consultation_started").await;
    patient.recv_type("consultation_started").await;

    let staff_peer = TestPeer::new().await;
    let patient_peer = TestPeer::new().await;
    let _staff_pub = staff_peer.add_synthetic_tracks().await.start();
    let _patient_pub = patient_peer.add_synthetic_tracks().await.start();
    publish(&mut staff, &staff_peer).await;
    publish(&mut patient, &patient_peer).await;

    // Keep answering renegotiations while media starts flowing (bounded: 20 s).
    let mut ok = false;
    for _ in 0..20 {
        tokio::join!(
            pump(&mut staff, &staff_peer, Duration::from_millis(500)),
            pump(&mut patient, &patient_peer, Duration::from_millis(500)),
        );
        let counts = [
            staff_peer.received().packets(Kind::Audio),
            staff_peer.received().packets(Kind::Video),
            patient_peer.received().packets(Kind::Audio),
            patient_peer.received().packets(Kind::Video),
        ];
        if counts.iter().all(|n| *n >= 20) {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "both sides receive audio and video: staff a={} v={}, patient a={} v={}",
        staff_peer.received().packets(Kind::Audio),
        staff_peer.received().packets(Kind::Video),
        patient_peer.received().packets(Kind::Audio),
        patient_peer.received().packets(Kind::Video),
    );

    // The SFU counted what it forwarded.
    let metrics = reqwest::get(format!("{}/metrics", app.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let forwarded: f64 = metrics
        .lines()
        .find(|l| l.starts_with("consultroom_sfu_packets_forwarded_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(forwarded >= 80.0, "forwarded packets counted: {forwarded}");

    let r = staff.request(json!({"type":"end_consultation"})).await;
    assert_eq!(r["type"], "ok");
    patient.recv_type("consultation_ended").await;
    staff_peer.close().await;
    patient_peer.close().await;
    app.stop().await;
}

#[tokio::test]
async fn invalid_sdp_is_refused_and_the_connection_stays_usable() {
    let app = spawn_app().await;
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
    for sdp in [
        "garbage".to_owned(),
        "v=0\r\n".to_owned(),
        format!("v=0\r\n{}", "a=x\r\n".repeat(5000)),
        String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x41]).into_owned(),
    ] {
        let r = patient
            .request(json!({"type":"media_offer","sdp":sdp}))
            .await;
        assert_eq!(r["code"], "invalid_sdp", "{r}");
    }
    let r = patient
        .request(json!({"type":"ice_candidate","candidate":"candidate:nonsense"}))
        .await;
    assert_eq!(r["type"], "error");
    assert_eq!(
        patient.request(json!({"type":"ping"})).await["type"],
        "pong"
    );

    // Garbage datagrams on the media port do not hurt the server.
    let media = app.media_addr;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..200u32 {
        let len = (i as usize * 7) % 1600;
        let data: Vec<u8> = (0..len).map(|j| (j as u32 * 31 + i) as u8).collect();
        let _ = sock.send_to(&data, media).await;
    }
    // Still serving: a real offer works afterwards.
    let p = TestPeer::new().await;
    let _t = p.add_synthetic_tracks().await;
    publish(&mut patient, &p).await;
    p.close().await;
    app.stop().await;
}
