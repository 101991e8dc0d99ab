//! Invitation windows, refusals and join tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use consultroom_clinic::{JoinClaims, JoinTokenError};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::*;

/// Books an appointment for client A with the cardio practitioner at `starts_at`; returns
/// (appointment id, invitation token).
async fn booked(app: &TestApp, w: &World, starts_at: DateTime<Utc>) -> (String, String) {
    let http = app.login(DOC_CARDIO).await;
    let (status, body) = app
        .book(&http, json!({ "client_id": w.client_a, "starts_at": starts_at.to_rfc3339(), "duration_minutes": 20 }))
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["appointment"]["id"].as_str().unwrap().to_owned(),
        token_of(body["invitation_url"].as_str().unwrap()),
    )
}

pub async fn window_boundaries_with_injected_clock(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let start = t0() + Duration::hours(3);
    let (id, token) = booked(&app, &w, start).await;

    app.clock
        .set(start - Duration::minutes(60) - Duration::seconds(1));
    let (status, body) = app.resolve(&token).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "invitation_too_early");
    assert_eq!(body["error"]["opens_at"], "2030-03-04T11:00:00Z");

    app.clock.set(start - Duration::minutes(60));
    let (status, body) = app.resolve(&token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["patient_display_name"], CLIENT_A_NAME);
    assert_eq!(body["appointment"]["practitioner_name"], DOC_CARDIO_NAME);
    assert_eq!(body["appointment"]["starts_at"], "2030-03-04T12:00:00Z");
    assert_eq!(body["appointment"]["duration_minutes"], 20);
    // The client's language (issue #14): the patient page's language.
    assert_eq!(body["language"], "en");
    let http = app.login(DOC_CARDIO).await;
    let (status, booked_de) = app
        .book(&http, json!({ "new_client": { "name": "Greta Sprache", "language": "de" }, "starts_at": start.to_rfc3339(), "duration_minutes": 20 }))
        .await;
    assert_eq!(status, 201, "{booked_de}");
    let (status, body_de) = app
        .resolve(&token_of(booked_de["invitation_url"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{body_de}");
    assert_eq!(body_de["language"], "de");
    let claims = app
        .clinic
        .verify_join_token(body["signalling_token"].as_str().unwrap())
        .expect("patient token verifies");
    match claims {
        JoinClaims::Patient(p) => {
            assert_eq!(p.appointment_id.to_string(), id);
            assert_eq!(p.organisation_id, w.org_a);
            assert_eq!(p.practitioner_id, w.doc_cardio);
            assert_eq!(p.display_name, CLIENT_A_NAME);
            assert_eq!(p.appointment_starts_at, start);
        }
        other => panic!("expected a patient token, got {other:?}"),
    }

    app.clock.set(start + Duration::minutes(60));
    assert_eq!(app.resolve(&token).await.0, 200);

    app.clock
        .set(start + Duration::minutes(60) + Duration::seconds(1));
    let (status, body) = app.resolve(&token).await;
    assert_eq!(status, 410);
    assert_eq!(body["error"]["code"], "invitation_expired");
}

pub async fn configurable_window(backend: Backend) {
    // The window comes from the config; check a custom one through the clinic's own rules.
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let start = t0() + Duration::hours(3);
    let (_, token) = booked(&app, &w, start).await;
    let mut config = consultroom_clinic::ClinicConfig::new(
        "http://consultroom.test",
        JWT_SECRET.to_vec(),
        axum_extra::extract::cookie::Key::generate(),
    );
    config.invitation_before = Duration::minutes(10);
    config.invitation_after = Duration::minutes(5);
    let clock = std::sync::Arc::new(consultroom_clinic::MockClock::new(
        start - Duration::minutes(11),
    ));
    let clinic = consultroom_clinic::Clinic::new(app.clinic.store().clone(), config, clock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(axum::serve(listener, clinic.router()).into_future());
    let resolve = |token: String| {
        let url = format!("{base}/api/v1/invitations/resolve");
        async move {
            let res = reqwest::Client::new()
                .post(url)
                .json(&json!({ "token": token }))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = resolve(token.clone()).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["opens_at"], "2030-03-04T11:50:00Z");
    clock.set(start - Duration::minutes(10));
    assert_eq!(resolve(token.clone()).await.0, 200);
    clock.set(start + Duration::minutes(5) + Duration::seconds(1));
    assert_eq!(resolve(token).await.0, 410);
    server.abort();
}

pub async fn cancelled_unknown_and_tampered_tokens_are_refused(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let (id, token) = booked(&app, &w, t0()).await;
    assert_eq!(app.resolve(&token).await.0, 200);

    // Unknown and tampered tokens look the same.
    let mut tampered = token.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unknown = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let (s1, b1) = app.resolve(&tampered).await;
    let (s2, b2) = app.resolve(&unknown).await;
    let (s3, b3) = app.resolve("not base64 at all!").await;
    assert_eq!((s1, s2, s3), (404, 404, 404));
    assert_eq!(b1, b2);
    assert_eq!(b2, b3);
    assert_eq!(b1["error"]["code"], "invitation_not_found");

    let http = app.login(DOC_CARDIO).await;
    assert_eq!(
        post_empty(&http, &app.url(&format!("/appointments/{id}/cancel")))
            .await
            .0,
        200
    );
    let (status, body) = app.resolve(&token).await;
    assert_eq!(status, 410);
    assert_eq!(body["error"]["code"], "invitation_cancelled");
}

pub async fn refusals_reveal_no_names(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let start = t0() + Duration::hours(5);
    let (id, token) = booked(&app, &w, start).await;
    let forbidden = [
        CLIENT_A_NAME,
        DOC_CARDIO_NAME,
        "Clinic A",
        "patient@example.nl",
        &id,
    ];
    let check = |body: &Value| {
        let text = body.to_string();
        for word in forbidden {
            assert!(!text.contains(word), "{word} leaked in {text}");
        }
        assert_eq!(
            body.as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["error"]
        );
    };
    let (status, body) = app.resolve(&token).await;
    assert_eq!(status, 403);
    check(&body);
    // Booked before the clock moves on: an appointment in the past cannot be booked.
    let (_, token2) = booked(&app, &w, start).await;
    app.clock.set(start + Duration::hours(2));
    let (status, body) = app.resolve(&token).await;
    assert_eq!(status, 410);
    check(&body);
    let http = app.login(DOC_CARDIO).await;
    let (_, list) = get(
        &http,
        &app.url(&format!(
            "/appointments?from={}&to={}",
            "2030-03-04T00:00:00Z", "2030-03-05T00:00:00Z"
        )),
    )
    .await;
    for a in list["appointments"].as_array().unwrap() {
        post_empty(
            &http,
            &app.url(&format!(
                "/appointments/{}/cancel",
                a["id"].as_str().unwrap()
            )),
        )
        .await;
    }
    let (status, body) = app.resolve(&token2).await;
    assert_eq!(status, 410);
    check(&body);
}

fn forge(claims: &Value, alg: Algorithm, secret: &[u8]) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

pub async fn join_tokens_verify_and_reject(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let http = app.login(DOC_CARDIO).await;
    let (status, body) = post_empty(&http, &app.url("/signalling/token")).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_at"], "2030-03-04T09:02:00Z");
    let token = body["token"].as_str().unwrap().to_owned();
    match app.clinic.verify_join_token(&token).expect("staff token") {
        JoinClaims::Staff(s) => {
            assert_eq!(s.staff_id, w.doc_cardio);
            assert_eq!(s.organisation_id, w.org_a);
            assert_eq!(s.display_name, DOC_CARDIO_NAME);
        }
        other => panic!("expected staff claims, got {other:?}"),
    }
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["aud"], "consultroom-signalling");
    assert_eq!(payload["iss"], "consultroom");
    assert_eq!(payload["kind"], "staff");
    let iat = payload["iat"].as_i64().unwrap();
    assert_eq!(payload["nbf"].as_i64().unwrap(), iat);
    assert_eq!(payload["exp"].as_i64().unwrap(), iat + 120);

    // Expiry, with at most 5 s leeway, against the injected clock.
    app.clock.advance(Duration::seconds(124));
    assert!(app.clinic.verify_join_token(&token).is_ok());
    app.clock.advance(Duration::seconds(2));
    assert_eq!(
        app.clinic.verify_join_token(&token),
        Err(JoinTokenError::Expired)
    );
    app.clock.set(t0());

    let good = payload.clone();
    assert!(
        app.clinic
            .verify_join_token(&forge(&good, Algorithm::HS256, JWT_SECRET))
            .is_ok()
    );
    let invalid = |t: String| {
        assert_eq!(
            app.clinic.verify_join_token(&t),
            Err(JoinTokenError::Invalid)
        )
    };

    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("consultroom-widget");
    invalid(forge(&wrong_aud, Algorithm::HS256, JWT_SECRET));
    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("someone-else");
    invalid(forge(&wrong_iss, Algorithm::HS256, JWT_SECRET));
    let mut future = good.clone();
    future["nbf"] = json!(iat + 60);
    invalid(forge(&future, Algorithm::HS256, JWT_SECRET));
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    invalid(forge(&no_exp, Algorithm::HS256, JWT_SECRET));
    let mut other_kind = good.clone();
    other_kind["kind"] = json!("widget");
    invalid(forge(&other_kind, Algorithm::HS256, JWT_SECRET));
    // Wrong key, and another HMAC algorithm with the right key.
    invalid(forge(
        &good,
        Algorithm::HS256,
        b"another-secret-another-secret-!!",
    ));
    invalid(forge(&good, Algorithm::HS512, JWT_SECRET));

    // Tampered signature and tampered payload.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    sig[0] ^= 1;
    parts[2] = URL_SAFE_NO_PAD.encode(sig);
    invalid(parts.join("."));
    let mut evil = payload.clone();
    evil["staff_id"] = json!(w.admin_a);
    let forged_payload = URL_SAFE_NO_PAD.encode(evil.to_string());
    let original: Vec<&str> = token.split('.').collect();
    invalid(format!(
        "{}.{}.{}",
        original[0], forged_payload, original[2]
    ));

    // alg=none, with and without a signature part.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let body_part = URL_SAFE_NO_PAD.encode(good.to_string());
    invalid(format!("{none_header}.{body_part}."));
    invalid(format!("{none_header}.{body_part}.{}", original[2]));
    // Garbage and oversize.
    invalid("not.a.jwt".to_owned());
    invalid("x".repeat(16 * 1024));
}

pub async fn completed_consultation_closes_the_invitation(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let (id, token) = booked(&app, &w, t0()).await;
    assert_eq!(app.resolve(&token).await.0, 200);
    app.clinic
        .complete_appointment(id.parse().unwrap())
        .await
        .unwrap();
    let (status, body) = app.resolve(&token).await;
    assert_eq!(status, 410);
    assert_eq!(body["error"]["code"], "invitation_expired");
}

/// Issue #11: the successor of a held join token follows the seat, not the invitation window —
/// a patient still gets one after start + 60 min (when the link is refused), nobody gets one
/// once the appointment is cancelled, a guest link revoked or a staff session ended, and a
/// chat-only token is never turned into a join token.
pub async fn refreshed_join_tokens_follow_the_seat(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let start = t0() + Duration::hours(3);
    let (id, token) = booked(&app, &w, start).await;
    app.clock.set(start);
    let http = app.login(DOC_CARDIO).await;
    let (status, body) = app.resolve(&token).await;
    assert_eq!(status, 200, "{body}");
    let held = body["signalling_token"].as_str().unwrap().to_owned();
    let res = http
        .post(app.url(&format!("/appointments/{id}/guests")))
        .json(&json!({ "name": "Interpreter" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let invited: Value = res.json().await.unwrap();
    let guest_id = invited["guest"]["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .resolve(&token_of(invited["invitation_url"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{body}");
    let guest_token = body["signalling_token"].as_str().unwrap().to_owned();

    // A staff token is refreshed while its login session lives, and not after logout.
    let other = app.login(DOC_CARDIO).await;
    let (status, staff) = post_empty(&other, &app.url("/signalling/token")).await;
    assert_eq!(status, 200, "{staff}");
    let staff_token = staff["token"].as_str().unwrap().to_owned();
    let refreshed = app.clinic.refresh_join_token(&staff_token).await.unwrap();
    assert!(refreshed.is_some());
    assert_eq!(post_empty(&other, &app.url("/auth/logout")).await.0, 204);
    let refreshed = app.clinic.refresh_join_token(&staff_token).await.unwrap();
    assert!(refreshed.is_none(), "ended session");

    // Past the window: the link is refused, the held token is refreshed (same patient).
    app.clock.set(start + Duration::minutes(61));
    assert_eq!(app.resolve(&token).await.0, 410);
    assert_eq!(
        app.clinic.verify_join_token(&held),
        Err(JoinTokenError::Expired),
        "the held token itself is not checked against the clock when refreshed"
    );
    let (fresh, expires_at) = app
        .clinic
        .refresh_join_token(&held)
        .await
        .unwrap()
        .expect("the seat is valid");
    assert_eq!(expires_at, app.clock_now() + Duration::seconds(120));
    match app.clinic.verify_join_token(&fresh).unwrap() {
        JoinClaims::Patient(p) => {
            assert_eq!(p.appointment_id.to_string(), id);
            assert_eq!(p.display_name, CLIENT_A_NAME);
        }
        other => panic!("expected a patient token, got {other:?}"),
    }
    assert!(
        app.clinic
            .refresh_join_token(&fresh)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        app.clinic
            .refresh_join_token(&guest_token)
            .await
            .unwrap()
            .is_some()
    );
    // Not a token of ours, or tampered: nothing.
    assert!(
        app.clinic
            .refresh_join_token("x.y.z")
            .await
            .unwrap()
            .is_none()
    );
    let mut tampered = fresh.clone();
    tampered.pop();
    assert!(
        app.clinic
            .refresh_join_token(&tampered)
            .await
            .unwrap()
            .is_none()
    );

    // A revoked guest gets nothing.
    let http = app.login(DOC_CARDIO).await;
    let status = http
        .delete(app.url(&format!("/appointments/{id}/guests/{guest_id}")))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    assert!(
        app.clinic
            .refresh_join_token(&guest_token)
            .await
            .unwrap()
            .is_none()
    );

    // A chat-only token is never refreshed into a join token, nor taken for one.
    let (chat, _) = app
        .clinic
        .issue_token(&consultroom_clinic::Grant::Chat(
            consultroom_clinic::ChatClaims {
                organisation_id: w.org_a,
                appointment_id: id.parse().unwrap(),
            },
        ))
        .unwrap();
    assert!(
        app.clinic
            .refresh_join_token(&chat)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        app.clinic.verify_join_token(&chat),
        Err(JoinTokenError::Invalid)
    );

    // A cancelled appointment: nothing for the patient.
    let (status, body) = post_empty(&http, &app.url(&format!("/appointments/{id}/cancel"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        app.clinic
            .refresh_join_token(&fresh)
            .await
            .unwrap()
            .is_none()
    );
}
