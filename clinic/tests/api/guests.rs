//! Guests of an appointment (issue #4): who may invite, list and revoke; name validation; the
//! guest link's window and revocation; no guest names in logs.

use chrono::{DateTime, Duration, Utc};
use consultroom_clinic::JoinClaims;
use serde_json::{Value, json};

use crate::support::*;

/// A guest name that must never reach the logs.
const GUEST_NAME: &str = "Canary Guestname";

/// Books an appointment for client A with the cardio practitioner; returns its id.
async fn booked(app: &TestApp, w: &World, starts_at: DateTime<Utc>) -> String {
    let http = app.login(DOC_CARDIO).await;
    let (status, body) = app
        .book(&http, json!({ "client_id": w.client_a, "starts_at": starts_at.to_rfc3339(), "duration_minutes": 20 }))
        .await;
    assert_eq!(status, 201, "{body}");
    body["appointment"]["id"].as_str().unwrap().to_owned()
}

async fn invite(app: &TestApp, http: &reqwest::Client, id: &str, name: &str) -> (u16, Value) {
    let res = http
        .post(app.url(&format!("/appointments/{id}/guests")))
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn revoke(app: &TestApp, http: &reqwest::Client, id: &str, guest: &str) -> u16 {
    http.delete(app.url(&format!("/appointments/{id}/guests/{guest}")))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn guest_names(app: &TestApp, http: &reqwest::Client, id: &str) -> (u16, Vec<String>) {
    let (status, body) = get(http, &app.url(&format!("/appointments/{id}/guests"))).await;
    let names = body["guests"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|g| g["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    (status, names)
}

/// The `g.` token of a guest link.
fn guest_token(body: &Value) -> String {
    let token = token_of(body["invitation_url"].as_str().unwrap());
    assert!(token.starts_with("g."), "{token}");
    token
}

pub async fn guests_roles_resolve_and_revoke(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let start = app.clock_now() + Duration::minutes(10);
    let id = booked(&app, &w, start).await;

    let doc = app.login(DOC_CARDIO).await;
    let (status, body) = invite(&app, &doc, &id, "  Ann Interpreter ").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["guest"]["name"], "Ann Interpreter");
    assert!(
        body["invitation_url"]
            .as_str()
            .unwrap()
            .starts_with("http://consultroom.test/join#g.")
    );
    let guest_id = body["guest"]["id"].as_str().unwrap().to_owned();
    let token = guest_token(&body);

    // Who may manage the appointment may invite and list; others get a 404.
    let cardio_admin = app.login(CARDIO_ADMIN).await;
    let admin_a = app.login(ADMIN_A).await;
    assert_eq!(invite(&app, &cardio_admin, &id, "Colleague").await.0, 201);
    assert_eq!(invite(&app, &admin_a, &id, "Family").await.0, 201);
    let (status, names) = guest_names(&app, &doc, &id).await;
    assert_eq!(status, 200);
    assert_eq!(names, ["Ann Interpreter", "Colleague", "Family"]);
    for outsider in [DOC_DERMA, ADMIN_B, DOC_B] {
        let http = app.login(outsider).await;
        assert_eq!(
            invite(&app, &http, &id, "Intruder").await.0,
            404,
            "{outsider}"
        );
        assert_eq!(guest_names(&app, &http, &id).await.0, 404, "{outsider}");
        assert_eq!(revoke(&app, &http, &id, &guest_id).await, 404, "{outsider}");
    }
    assert_eq!(invite(&app, &doc, "not-a-uuid", "X").await.0, 404);
    assert_eq!(
        guest_names(&app, &app.http(), &id).await.0,
        401,
        "no session"
    );
    assert_eq!(guest_names(&app, &doc, &id).await.1.len(), 3);

    // The link resolves to a guest join token (the client's name is not revealed), with the
    // appointment's department's waiting-room text like the client's.
    let res = admin_a
        .put(app.url("/organisation/settings"))
        .json(&json!({
            "waiting_room_text": "Welcome.",
            "department_waiting_room_texts": { w.cardio.to_string(): "Cardiology welcomes you." },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (status, resolved) = app.resolve(&token).await;
    assert_eq!(
        resolved["settings"]["waiting_room_text"], "Cardiology welcomes you.",
        "{resolved}"
    );
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["guest"], true);
    assert_eq!(resolved["patient_display_name"], "Ann Interpreter");
    // No language for a guest: their page follows their browser (issue #14).
    assert_eq!(resolved["language"], Value::Null);
    assert!(!resolved.to_string().contains(CLIENT_A_NAME));
    let claims = app
        .clinic
        .verify_join_token(resolved["signalling_token"].as_str().unwrap())
        .expect("guest token verifies");
    match claims {
        JoinClaims::Guest(g) => {
            assert_eq!(g.appointment_id.to_string(), id);
            assert_eq!(g.organisation_id, w.org_a);
            assert_eq!(g.practitioner_id, w.doc_cardio);
            assert_eq!(g.display_name, "Ann Interpreter");
            assert_eq!(g.guest_id.to_string(), guest_id);
        }
        other => panic!("expected a guest token, got {other:?}"),
    }

    // Revoked: refused like an unknown link, gone from the list, a second revoke is a 404.
    assert_eq!(revoke(&app, &doc, &id, &guest_id).await, 204);
    let (status, body) = app.resolve(&token).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "invitation_not_found");
    assert_eq!(revoke(&app, &doc, &id, &guest_id).await, 404);
    assert_eq!(
        guest_names(&app, &doc, &id).await.1,
        ["Colleague", "Family"]
    );
    // A tampered guest token is unknown.
    let mut tampered = token.clone();
    tampered.push('A');
    assert_eq!(app.resolve(&tampered).await.0, 404);
    assert_eq!(app.resolve("g.").await.0, 404);
}

pub async fn guest_name_is_validated(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let id = booked(&app, &w, app.clock_now() + Duration::minutes(10)).await;
    let doc = app.login(DOC_CARDIO).await;
    for bad in ["", "   ", "Ann\nInterpreter", "Ann\u{7}", &"x".repeat(101)] {
        let (status, body) = invite(&app, &doc, &id, bad).await;
        assert_eq!(status, 422, "{bad:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_input");
    }
    let res = doc
        .post(app.url(&format!("/appointments/{id}/guests")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422);
    assert!(guest_names(&app, &doc, &id).await.1.is_empty());
    assert_eq!(invite(&app, &doc, &id, &"é".repeat(100)).await.0, 201);
}

pub async fn guest_link_window_and_appointment_state(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let start = t0() + Duration::hours(3);
    let id = booked(&app, &w, start).await;
    let doc = app.login(DOC_CARDIO).await;
    let (_, body) = invite(&app, &doc, &id, "Ann Interpreter").await;
    let token = guest_token(&body);

    app.clock
        .set(start - Duration::minutes(60) - Duration::seconds(1));
    let (status, body) = app.resolve(&token).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "invitation_too_early");
    assert!(!body.to_string().contains("Ann Interpreter"));
    app.clock.set(start - Duration::minutes(60));
    assert_eq!(app.resolve(&token).await.0, 200);
    app.clock
        .set(start + Duration::minutes(60) + Duration::seconds(1));
    let (status, body) = app.resolve(&token).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "invitation_expired");

    // A cancelled appointment closes its guests' links, and takes no new guests.
    app.clock.set(start);
    assert_eq!(app.resolve(&token).await.0, 200);
    // (The clock moved past the session's idle timeout: sign in again.)
    let doc = app.login(DOC_CARDIO).await;
    let (status, _) = post_empty(&doc, &app.url(&format!("/appointments/{id}/cancel"))).await;
    assert_eq!(status, 200);
    let (status, body) = app.resolve(&token).await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "invitation_cancelled");
    assert_eq!(invite(&app, &doc, &id, "Late Guest").await.0, 409);
}

pub async fn guest_names_never_in_logs(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let id = booked(&app, &w, app.clock_now() + Duration::minutes(10)).await;
    let doc = app.login(DOC_CARDIO).await;
    let (status, body) = invite(&app, &doc, &id, GUEST_NAME).await;
    assert_eq!(status, 201);
    let token = guest_token(&body);
    let bare = token.trim_start_matches("g.").to_owned();
    assert_eq!(app.resolve(&token).await.0, 200);
    guest_names(&app, &doc, &id).await;
    revoke(&app, &doc, &id, body["guest"]["id"].as_str().unwrap()).await;
    assert_eq!(app.resolve(&token).await.0, 404);
    drop(app);
    let logs = captured_logs();
    assert!(logs.contains("guest invited"), "the event is logged");
    assert!(!logs.contains(GUEST_NAME), "guest name in logs");
    assert!(!logs.contains(&bare), "guest token in logs");
}
