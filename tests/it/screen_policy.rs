//! Screen sharing switched off by the organisation (F126): a join token minted after the change
//! carries the permission, and the server refuses a screen track in `media_offer` with
//! `forbidden` before anything is applied; the same connection can then publish without it.

use crate::peer::{Kind, TestPeer};
use serde_json::{Value, json};

use crate::support::{PASSWORD, WsClient, spawn_app};

/// The mids of the sending m-lines of `sdp`, in order.
fn mids(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=mid:"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn screen_share_forbidden_by_the_organisation_is_refused_and_nothing_applied() {
    let app = spawn_app().await;
    let admin = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = admin
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"email": consultroom_clinic::demo::ADMIN_EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin
        .put(format!("{}/api/v1/organisation/settings", app.base))
        .json(&json!({"screen_sharing": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    let (mut patient, _) = WsClient::join(&app, &app.patient_token().await).await;
    let arrived = staff.recv_type("waiting_arrived").await;
    let pid = arrived["entry"]["participant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = staff
        .request(json!({"type":"admit","participant_id":pid}))
        .await;
    assert_eq!(r["type"], "ok");
    patient.recv_type("consultation_started").await;

    // Microphone, camera and a screen: refused as a whole.
    let sharer = TestPeer::new().await;
    let _tracks = sharer.add_synthetic_tracks().await;
    let _screen = sharer.add_track_of(Kind::Video).await;
    let offer = sharer.offer().await;
    let m = mids(&offer);
    assert_eq!(m.len(), 3, "{m:?}");
    let tracks = json!([
        {"mid": m[0], "source": "microphone"},
        {"mid": m[1], "source": "camera"},
        {"mid": m[2], "source": "screen"},
    ]);
    let r: Value = patient
        .request(json!({"type":"media_offer","sdp":offer,"tracks":tracks}))
        .await;
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], "forbidden", "{r}");
    sharer.close().await;

    // The same connection publishes camera and microphone fine afterwards.
    let plain = TestPeer::new().await;
    let _tracks = plain.add_synthetic_tracks().await;
    let offer = plain.offer().await;
    let r: Value = patient
        .request(json!({"type":"media_offer","sdp":offer}))
        .await;
    assert_eq!(r["type"], "media_answer", "{r}");
    plain.close().await;
    app.stop().await;
}
