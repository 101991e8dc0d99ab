//! Guests through the composed server (issue #4): a `g.` link resolves to a join token that the
//! hub maps onto a guest, who waits for the client outside the waiting list and follows them into
//! the consultation.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// The demo appointment's id (the one whose invitation `app.invitation_url` is).
async fn demo_appointment_id(app: &TestApp, staff: &reqwest::Client) -> String {
    let resolved: Value = app
        .resolve(&app.invitation_token())
        .await
        .json()
        .await
        .unwrap();
    let list: Value = staff
        .get(format!("{}/api/v1/appointments", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["appointments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["client"]["name"] == resolved["patient_display_name"])
        .and_then(|a| a["id"].as_str())
        .unwrap_or_else(|| panic!("demo appointment not listed: {list}"))
        .to_owned()
}

#[tokio::test]
async fn a_guest_waits_for_the_client_and_follows_them_in_on_every_backend() {
    for backend in backends() {
        let app = spawn_app_on(backend).await;
        let http = app.staff_client().await;
        let id = demo_appointment_id(&app, &http).await;
        let res = http
            .post(format!("{}/api/v1/appointments/{id}/guests", app.base))
            .json(&json!({"name": "Ann Interpreter"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
        let body: Value = res.json().await.unwrap();
        let link = body["invitation_url"].as_str().unwrap();
        let token = link.split_once('#').unwrap().1;
        let resolved: Value = app.resolve(token).await.json().await.unwrap();
        let guest_token = resolved["signalling_token"].as_str().unwrap().to_owned();

        let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
        staff.recv_type("waiting_snapshot").await;
        let (mut guest, joined) = WsClient::join(&app, &guest_token).await;
        assert_eq!(joined["role"], "patient");
        assert_eq!(joined["display_name"], "Ann Interpreter");
        let waiting = guest.recv_type("waiting").await;
        assert_eq!(waiting["reason"], "waiting_for_client", "{waiting}");
        // Not in the practitioner's waiting list; no queue status for the guest.
        assert!(staff.try_recv(Duration::from_millis(300)).await.is_none());
        assert!(guest.try_recv(Duration::from_millis(300)).await.is_none());

        let (mut patient, _) = WsClient::join(&app, &app.patient_token().await).await;
        let arrived = staff.recv_type("waiting_arrived").await;
        let pid = arrived["entry"]["participant_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = staff
            .request(json!({"type":"admit","participant_id":pid}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
        let started = guest.recv_type("consultation_started").await;
        let participants = started["participants"].as_array().unwrap();
        assert_eq!(participants.len(), 3, "{started}");
        assert_eq!(
            participants.iter().filter(|p| p["guest"] == true).count(),
            1
        );
        let joined = staff.recv_type("participant_joined").await;
        assert_eq!(joined["participant"]["guest"], true);
        assert_eq!(joined["participant"]["display_name"], "Ann Interpreter");
        let joined = patient.recv_type("participant_joined").await;
        assert_eq!(joined["participant"]["guest"], true);

        // A second guest is in too; revoking the first one's link puts them out at once.
        let res = http
            .post(format!("{}/api/v1/appointments/{id}/guests", app.base))
            .json(&json!({"name": "Bert Buur"}))
            .send()
            .await
            .unwrap();
        let second: Value = res.json().await.unwrap();
        let token = second["invitation_url"].as_str().unwrap();
        let token = token.split_once('#').unwrap().1;
        let resolved: Value = app.resolve(token).await.json().await.unwrap();
        let (mut guest2, _) =
            WsClient::join(&app, resolved["signalling_token"].as_str().unwrap()).await;
        guest2.recv_type("consultation_started").await;
        let guest_pid = joined["participant"]["participant_id"].as_str().unwrap();
        let guest_id = body["guest"]["id"].as_str().unwrap();
        let res = http
            .delete(format!(
                "{}/api/v1/appointments/{id}/guests/{guest_id}",
                app.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 204);
        assert_eq!(guest.closed().await, Some(1008), "revoked: closed at once");
        for ws in [&mut staff, &mut patient, &mut guest2] {
            let left = ws.recv_type("participant_left").await;
            assert_eq!(left["participant_id"], guest_pid, "{left}");
        }
        // The revoked link no longer resolves.
        let link_token = link.split_once('#').unwrap().1;
        let res = app.resolve(link_token).await;
        assert_eq!(res.status().as_u16(), 404);

        let r = staff.request(json!({"type":"end_consultation"})).await;
        assert_eq!(r["type"], "ok", "{r}");
        let ended = guest2.recv_type("consultation_ended").await;
        assert_eq!(ended["reason"], "ended");
        app.stop().await;
    }
}
