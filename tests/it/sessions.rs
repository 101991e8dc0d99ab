//! Staff sessions and live signalling (issue #10): ending a login session (logout; deactivation
//! and password change later) closes the WebSockets opened with it and refuses its join tokens,
//! and leaves the staff member's other sessions alone.

use consultroom_clinic::auth::SessionEndReason;
use consultroom_clinic::ids::StaffId;
use serde_json::{Value, json};

use crate::support::*;

async fn me_status(app: &TestApp, client: &reqwest::Client) -> u16 {
    client
        .get(format!("{}/api/v1/me", app.base))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `join` with `token` is refused as docs/protocol.md says: `invalid_token`, then 1008.
async fn assert_join_refused(app: &TestApp, token: &str) {
    let mut ws = WsClient::connect(app).await;
    let r = ws.request(json!({"type":"join","token":token})).await;
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], "invalid_token", "{r}");
    assert_eq!(ws.closed().await, Some(1008));
}

#[tokio::test]
async fn logout_closes_the_sessions_websockets_and_refuses_its_earlier_tokens_on_every_backend() {
    for backend in backends() {
        let app = spawn_app_on(backend).await;
        // Two logins of the same practitioner: sessions A and B.
        let a = app.staff_client().await;
        let b = app.staff_client().await;
        let token_a = app.staff_token_with(&a).await;
        let unused_a = app.staff_token_with(&a).await;
        let check_a = app.staff_token_with(&a).await;
        let token_b = app.staff_token_with(&b).await;

        let (mut ws_a, joined_a) = WsClient::join(&app, &token_a).await;
        ws_a.recv_type("waiting_snapshot").await;
        // A check-only connection of session A (device check): closed too.
        let mut check = WsClient::connect(&app).await;
        let r = check
            .request(json!({"type":"join","token":check_a,"check":true}))
            .await;
        assert_eq!(r["type"], "joined", "{r}");
        let (mut ws_b, _) = WsClient::join(&app, &token_b).await;
        ws_b.recv_type("waiting_snapshot").await;
        // Session A is in a consultation with the demo patient.
        let (mut patient, _) = WsClient::join(&app, &app.patient_token().await).await;
        let arrived = ws_a.recv_type("waiting_arrived").await;
        let pid = arrived["entry"]["participant_id"].as_str().unwrap();
        let r = ws_a
            .request(json!({"type":"admit","participant_id":pid}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
        patient.recv_type("consultation_started").await;
        // Session A's chat list, with the patient's name, is served before the logout.
        let r = ws_a.request(json!({"type":"chat_channels"})).await;
        assert_eq!(r["type"], "chat_channel_list", "{r}");

        let res = a
            .post(format!("{}/api/v1/auth/logout", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 204);

        // Session A's sockets are closed at once with 1008 `session_ended` (bounded wait: 5 s).
        assert_eq!(
            ws_a.closed_with().await,
            Some((1008, "session_ended".to_owned()))
        );
        assert_eq!(
            check.closed_with().await,
            Some((1008, "session_ended".to_owned()))
        );
        // The practitioner left the consultation as with `leave_consultation`.
        let left = patient.recv_type("participant_left").await;
        assert_eq!(left["participant_id"], joined_a["participant_id"], "{left}");
        // A token minted with session A before the logout no longer joins.
        assert_join_refused(&app, &unused_a).await;

        // Session B is untouched: its socket still answers, its cookie still works.
        let r = ws_b.request(json!({"type":"chat_channels"})).await;
        assert_eq!(r["type"], "chat_channel_list", "{r}");
        assert_eq!(me_status(&app, &b).await, 200);
        let later_b = app.staff_token_with(&b).await;

        // Ending every session of the staff member (deactivation, password change) closes B.
        let me: Value = b
            .get(format!("{}/api/v1/me", app.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let staff_id: StaffId = me["id"].as_str().unwrap().parse().unwrap();
        let ended = app
            .clinic
            .end_staff_sessions(staff_id, SessionEndReason::Deactivated)
            .await
            .unwrap();
        assert_eq!(ended, 1, "A was already ended");
        assert_eq!(
            ws_b.closed_with().await,
            Some((1008, "session_ended".to_owned()))
        );
        assert_join_refused(&app, &later_b).await;
        assert_eq!(me_status(&app, &b).await, 401);
        app.stop().await;
    }
}

/// Issue #12: an admin deactivating a staff member over the API closes every WebSocket of theirs
/// at once (1008 `session_ended`); their cookie, join tokens and login are refused from then on,
/// and reactivation lets them log in again (their ended sessions stay ended).
#[tokio::test]
async fn deactivation_through_the_api_closes_the_staff_members_websockets_on_every_backend() {
    for backend in backends() {
        let app = spawn_app_on(backend).await;
        let practitioner = app.staff_client().await;
        let token = app.staff_token_with(&practitioner).await;
        let unused = app.staff_token_with(&practitioner).await;
        let (mut ws, _) = WsClient::join(&app, &token).await;
        ws.recv_type("waiting_snapshot").await;
        let me: Value = practitioner
            .get(format!("{}/api/v1/me", app.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let staff_id = me["id"].as_str().unwrap().to_owned();

        let admin = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let login = admin
            .post(format!("{}/api/v1/auth/login", app.base))
            .json(&json!({"email": consultroom_clinic::demo::ADMIN_EMAIL, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200);
        let res = admin
            .post(format!("{}/api/v1/staff/{staff_id}/deactivate", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);

        assert_eq!(
            ws.closed_with().await,
            Some((1008, "session_ended".to_owned()))
        );
        assert_join_refused(&app, &unused).await;
        assert_eq!(me_status(&app, &practitioner).await, 401);
        let relogin = |password: &'static str| {
            let base = app.base.clone();
            let email = app.demo_email.clone();
            async move {
                reqwest::Client::new()
                    .post(format!("{base}/api/v1/auth/login"))
                    .json(&json!({"email": email, "password": password}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(
            relogin(PASSWORD).await,
            401,
            "a deactivated account cannot log in"
        );

        let res = admin
            .post(format!("{}/api/v1/staff/{staff_id}/reactivate", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(relogin(PASSWORD).await, 200);
        assert_eq!(
            me_status(&app, &practitioner).await,
            401,
            "ended sessions stay ended"
        );
        app.stop().await;
    }
}
