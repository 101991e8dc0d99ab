//! Reconnection (issue #3) through the whole stack: a patient's WebSocket drops in a
//! consultation, the practitioner sees them reconnecting (not leaving), and a new connection with
//! a fresh token resumes the seat — same participant id, same SFU participant, media again after
//! an ICE restart on the same webrtc-rs peer connection, nobody duplicated. After the grace
//! period (the injected clock moves on) the seat is released like a leave.

use std::time::Duration;

use crate::peer::{Kind, TestPeer};
use serde_json::{Value, json};

use crate::support::{TestApp, WsClient, spawn_app};

/// Answer server renegotiations for `dur`; returns the other frames seen meanwhile.
async fn pump(ws: &mut WsClient, peer: &TestPeer, dur: Duration) -> Vec<Value> {
    let mut other = Vec::new();
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
        } else {
            other.push(frame);
        }
    }
    other
}

async fn publish(ws: &mut WsClient, sdp: String, peer: &TestPeer) {
    let r = ws.request(json!({"type":"media_offer","sdp":sdp})).await;
    assert_eq!(r["type"], "media_answer", "{r}");
    peer.accept_answer(r["sdp"].as_str().unwrap().to_owned())
        .await;
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", app.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))
        .map(str::to_owned)
}

struct Consultation {
    staff: WsClient,
    patient: WsClient,
    staff_peer: TestPeer,
    patient_peer: TestPeer,
    _pubs: (crate::peer::Publisher, crate::peer::Publisher),
    consultation_id: String,
    patient_id: String,
}

/// Staff admits the demo patient; both publish synthetic audio and video until both receive.
async fn consultation_with_media(app: &TestApp) -> Consultation {
    let (mut staff, _) = WsClient::join(app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    let (mut patient, joined) = WsClient::join(app, &app.patient_token().await).await;
    let patient_id = joined["participant_id"].as_str().unwrap().to_owned();
    staff.recv_type("waiting_arrived").await;
    let r = staff
        .request(json!({"type":"admit","participant_id":patient_id}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    staff.recv_type("consultation_started").await;
    let started = patient.recv_type("consultation_started").await;
    let consultation_id = started["consultation_id"].as_str().unwrap().to_owned();

    let staff_peer = TestPeer::new().await;
    let patient_peer = TestPeer::new().await;
    let staff_pub = staff_peer.add_synthetic_tracks().await.start();
    let patient_pub = patient_peer.add_synthetic_tracks().await.start();
    publish(&mut staff, staff_peer.offer().await, &staff_peer).await;
    publish(&mut patient, patient_peer.offer().await, &patient_peer).await;
    let mut c = Consultation {
        staff,
        patient,
        staff_peer,
        patient_peer,
        _pubs: (staff_pub, patient_pub),
        consultation_id,
        patient_id,
    };
    assert!(
        flowing_both_ways(&mut c, 20).await,
        "media flows before the drop"
    );
    c
}

/// Pumps both sides until each has received ≥ `more` new video and audio packets (≤ 20 s).
async fn flowing_both_ways(c: &mut Consultation, more: u64) -> bool {
    let base = [
        c.staff_peer.received().packets(Kind::Audio),
        c.staff_peer.received().packets(Kind::Video),
        c.patient_peer.received().packets(Kind::Audio),
        c.patient_peer.received().packets(Kind::Video),
    ];
    for _ in 0..40 {
        let (a, b) = tokio::join!(
            pump(&mut c.staff, &c.staff_peer, Duration::from_millis(500)),
            pump(&mut c.patient, &c.patient_peer, Duration::from_millis(500)),
        );
        for f in a.iter().chain(&b) {
            assert_ne!(f["type"], "participant_joined", "nobody joins twice: {f}");
            assert_ne!(f["type"], "participant_left", "nobody leaves: {f}");
        }
        let now = [
            c.staff_peer.received().packets(Kind::Audio),
            c.staff_peer.received().packets(Kind::Video),
            c.patient_peer.received().packets(Kind::Audio),
            c.patient_peer.received().packets(Kind::Video),
        ];
        if now.iter().zip(base).all(|(n, b)| *n >= b + more) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_patient_resumes_the_same_seat_and_media_after_an_ice_restart() {
    let app = spawn_app().await;
    let mut c = consultation_with_media(&app).await;
    let streams_before = c.staff_peer.received().stream_ids();
    assert_eq!(metric(&app, "consultroom_sfu_participants").await, 2.0);

    // The patient's socket goes away without a close frame (network drop).
    let Consultation { patient, .. } = &mut c;
    let dropped = std::mem::replace(patient, WsClient::connect(&app).await);
    drop(dropped);
    let mut seen = Vec::new();
    let reconnecting = loop {
        let f = c.staff.recv().await;
        if f["type"] == "participant_reconnecting" {
            break f;
        }
        seen.push(f);
    };
    assert_eq!(reconnecting["participant_id"], c.patient_id.as_str());
    assert!(
        seen.iter().all(|f| f["type"] != "participant_left"),
        "reconnecting, not left: {seen:?}"
    );
    // The media session is kept meanwhile.
    assert_eq!(metric(&app, "consultroom_sfu_participants").await, 2.0);

    // A new connection with a fresh token asks for the seat back.
    let token = app.patient_token().await;
    let joined = c
        .patient
        .request(json!({"type":"join","token":token,"resume":c.consultation_id}))
        .await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["participant_id"], c.patient_id.as_str(), "same id");
    let started = c.patient.recv_type("consultation_started").await;
    assert_eq!(started["resumed"], true, "{started}");
    assert_eq!(started["consultation_id"], c.consultation_id.as_str());
    assert_eq!(started["participants"].as_array().unwrap().len(), 2);
    let resumed = c.staff.recv_type("participant_resumed").await;
    assert_eq!(resumed["participant_id"], c.patient_id.as_str());

    // ICE restart on the same peer connection, through the new socket.
    let old_ufrag = ufrag(&c.patient_peer.pc().local_description().await.unwrap().sdp);
    let offer = c.patient_peer.restart_offer().await;
    assert_ne!(ufrag(&offer), old_ufrag, "the offer restarts ICE");
    publish(&mut c.patient, offer, &c.patient_peer).await;
    assert!(
        flowing_both_ways(&mut c, 30).await,
        "media flows both ways after the ICE restart: staff a={} v={}, patient a={} v={}",
        c.staff_peer.received().packets(Kind::Audio),
        c.staff_peer.received().packets(Kind::Video),
        c.patient_peer.received().packets(Kind::Audio),
        c.patient_peer.received().packets(Kind::Video),
    );
    // Same media participant: no new stream for the practitioner, nobody counted twice.
    assert_eq!(c.staff_peer.received().stream_ids(), streams_before);
    assert_eq!(metric(&app, "consultroom_sfu_participants").await, 2.0);

    // The resumed connection acts as the patient: mute reaches the practitioner.
    let r = c
        .patient
        .request(json!({"type":"mute","audio":false,"video":true}))
        .await;
    assert_eq!(r["type"], "ok");
    let muted = c.staff.recv_type("participant_muted").await;
    assert_eq!(muted["participant_id"], c.patient_id.as_str());

    let r = c.staff.request(json!({"type":"end_consultation"})).await;
    assert_eq!(r["type"], "ok");
    c.patient.recv_type("consultation_ended").await;
    c.staff_peer.close().await;
    c.patient_peer.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_grace_period_the_seat_is_released_and_resume_is_refused() {
    let app = spawn_app().await;
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    let (patient, joined) = WsClient::join(&app, &app.patient_token().await).await;
    let pid = joined["participant_id"].as_str().unwrap().to_owned();
    staff.recv_type("waiting_arrived").await;
    staff
        .request(json!({"type":"admit","participant_id":pid}))
        .await;
    let started = staff.recv_type("consultation_started").await;
    let cid = started["consultation_id"].as_str().unwrap().to_owned();

    drop(patient);
    staff.recv_type("participant_reconnecting").await;
    // Nothing happens before the 30 s are over (the ticker runs every second)…
    app.clock.advance(chrono::Duration::seconds(29));
    assert!(
        staff.try_recv(Duration::from_millis(2500)).await.is_none(),
        "still reconnecting at 29 s"
    );
    // …and then the seat goes exactly like a leave.
    app.clock.advance(chrono::Duration::seconds(2));
    let left = staff.recv_type("participant_left").await;
    assert_eq!(left["participant_id"], pid.as_str());

    // Too late: the new connection is told, and waits again as a fresh arrival.
    let mut back = WsClient::connect(&app).await;
    let token = app.patient_token().await;
    let joined = back
        .request(json!({"type":"join","token":token,"resume":cid}))
        .await;
    assert_eq!(joined["type"], "joined");
    let ended = back.recv().await;
    assert_eq!(ended["type"], "consultation_ended", "{ended}");
    assert_eq!(ended["reason"], "connection_lost");
    back.recv_type("waiting").await;
    app.stop().await;
}

/// Issue #11: a consultation that started on time runs past start + 60 min, when the invitation
/// link no longer yields a join token. The hub has pushed the patient a fresh one meanwhile
/// (`token_refresh`), and with it a dropped patient gets their seat back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_who_drops_after_the_invitation_window_resumes_with_the_pushed_token() {
    let app = spawn_app().await;
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    let (mut patient, joined) = WsClient::join(&app, &app.patient_token().await).await;
    let pid = joined["participant_id"].as_str().unwrap().to_owned();
    staff.recv_type("waiting_arrived").await;
    let r = staff
        .request(json!({"type":"admit","participant_id":pid}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    let started = patient.recv_type("consultation_started").await;
    let cid = started["consultation_id"].as_str().unwrap().to_owned();

    // The consultation runs on past the window (the demo appointment starts within three
    // minutes of the test's start, its window closes an hour later): the link is refused now.
    app.clock.advance(chrono::Duration::minutes(65));
    let r = app.resolve(&app.invitation_token()).await;
    assert_eq!(r.status(), 410, "the window is closed");

    // The hub pushes a fresh token (its refresh runs every second on the injected clock).
    let pushed = patient.recv_type("token_refresh").await;
    let token = pushed["token"].as_str().expect("a token").to_owned();
    let expires_at: chrono::DateTime<chrono::Utc> =
        pushed["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(expires_at > app.clinic.now(), "{pushed}");

    // The patient's socket drops; their seat is held.
    drop(patient);
    let reconnecting = staff.recv_type("participant_reconnecting").await;
    assert_eq!(reconnecting["participant_id"], pid.as_str());

    // Back with the pushed token: the same seat.
    let mut back = WsClient::connect(&app).await;
    let joined = back
        .request(json!({"type":"join","token":token,"resume":cid}))
        .await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["participant_id"], pid.as_str(), "same seat");
    let started = back.recv_type("consultation_started").await;
    assert_eq!(started["resumed"], true, "{started}");
    let resumed = staff.recv_type("participant_resumed").await;
    assert_eq!(resumed["participant_id"], pid.as_str());

    app.stop().await;
}
