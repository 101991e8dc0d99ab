//! Organisation settings: defaults, who may read and change them, validation that changes
//! nothing, organisation isolation, and the permissions join tokens carry.

use consultroom_clinic::JoinClaims;
use serde_json::{Value, json};

use crate::support::*;

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub async fn settings_defaults_roles_and_validation(backend: Backend) {
    let app = spawn_app(&backend).await;
    let _w = app.world().await;
    let url = app.url("/organisation/settings");

    let (status, _) = send(app.http().get(&url)).await;
    assert_eq!(status, 401);

    let doc = app.login(DOC_CARDIO).await;
    let (status, body) = send(doc.get(&url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["screen_sharing"], true);
    assert_eq!(body["chat_after_consultation"], "keep");
    assert_eq!(body["disclaimer"], "");

    // Practitioners and department admins may read but not change.
    for email in [DOC_CARDIO, CARDIO_ADMIN] {
        let http = app.login(email).await;
        let (status, body) = send(http.put(&url).json(&json!({"screen_sharing": false}))).await;
        assert_eq!(status, 403, "{email}: {body}");
    }

    let admin = app.login(ADMIN_A).await;
    let (status, body) = send(admin.put(&url).json(&json!({
        "screen_sharing": false,
        "disclaimer": "  I understand this is not for emergencies.  ",
        "waiting_room_text": "The room opens at {opens_at}."
    })))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["screen_sharing"], false);
    assert_eq!(
        body["file_sharing"], true,
        "fields left out keep their value"
    );
    assert_eq!(
        body["disclaimer"],
        "I understand this is not for emergencies."
    );

    // Invalid requests change nothing.
    for bad in [
        json!({"waiting_room_text": "Hello {patient_name}"}),
        json!({"disclaimer": "x".repeat(2001)}),
        json!({"continuous_chat": false}),
        json!({"screen_sharing": "no"}),
        json!({"unknown_setting": true}),
        json!({"file_sharing": false, "disclaimer": "bell\u{7}"}),
    ] {
        let (status, body) = send(admin.put(&url).json(&bad)).await;
        assert!(status == 422 || status == 400, "{bad}: {status} {body}");
        assert_eq!(body["error"]["code"], "invalid_input", "{bad}");
    }
    let (_, now) = send(doc.get(&url)).await;
    assert_eq!(now["file_sharing"], true);
    assert_eq!(now["screen_sharing"], false);
    assert_eq!(
        now["disclaimer"],
        "I understand this is not for emergencies."
    );

    // Another organisation keeps its own (default) settings.
    let other = app.login(ADMIN_B).await;
    let (_, theirs) = send(other.get(&url)).await;
    assert_eq!(theirs["screen_sharing"], true);
    assert_eq!(theirs["disclaimer"], "");
}

pub async fn join_tokens_carry_the_permissions(backend: Backend) {
    let app = spawn_app(&backend).await;
    let _w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let token_permissions = |body: Value| match app
        .clinic
        .verify_join_token(body["token"].as_str().unwrap())
    {
        Ok(JoinClaims::Staff(s)) => s.permissions,
        other => panic!("expected staff claims, got {other:?}"),
    };

    let (status, body) = send(doc.post(app.url("/signalling/token"))).await;
    assert_eq!(status, 200);
    let before = token_permissions(body);
    assert!(before.screen_share && before.file_sharing);

    let (status, _) = send(admin.put(app.url("/organisation/settings")).json(&json!({
        "screen_sharing": false,
        "file_sharing": false,
        "chat_in_waiting_room": false
    })))
    .await;
    assert_eq!(status, 200);
    let (_, body) = send(doc.post(app.url("/signalling/token"))).await;
    let after = token_permissions(body);
    assert!(!after.screen_share && !after.file_sharing && !after.chat_in_waiting_room);

    // Organisation B's tokens are not affected.
    let doc_b = app.login(DOC_B).await;
    let (_, body) = send(doc_b.post(app.url("/signalling/token"))).await;
    assert!(token_permissions(body).screen_share);
}

pub async fn department_waiting_room_texts(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let url = app.url("/organisation/settings");
    let texts = |pairs: &[(String, &str)]| -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.clone(), Value::String((*v).to_owned())))
                .collect(),
        )
    };
    let (status, body) = send(admin.put(&url).json(&json!({
        "waiting_room_text": "Welcome.",
        "department_waiting_room_texts": texts(&[
            (w.cardio.to_string(), "Cardiology opens at {opens_at}."),
            (w.derma.to_string(), "  "),
        ]),
    })))
    .await;
    assert_eq!(status, 200, "{body}");
    let stored = body["department_waiting_room_texts"].as_object().unwrap();
    assert_eq!(stored.len(), 1, "an empty text is not stored: {body}");

    // Another organisation's department, or a bad placeholder, changes nothing.
    let admin_b = app.login(ADMIN_B).await;
    let (_, theirs) = send(admin_b.get(&url)).await;
    assert!(
        theirs["department_waiting_room_texts"]
            .as_object()
            .unwrap()
            .is_empty()
    );
    for bad in [
        json!({"department_waiting_room_texts": texts(&[(uuid::Uuid::now_v7().to_string(), "x")])}),
        json!({"department_waiting_room_texts": texts(&[(w.cardio.to_string(), "{name}")])}),
    ] {
        let (status, body) = send(admin.put(&url).json(&bad)).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["error"]["field"], "department_waiting_room_texts");
    }
    let (_, now) = send(admin.get(&url)).await;
    assert_eq!(
        now["department_waiting_room_texts"][w.cardio.to_string()],
        "Cardiology opens at {opens_at}."
    );

    // A patient of a cardiology appointment gets the department's text; of a department
    // without its own text, the organisation's.
    let starts = (app.clock_now() + chrono::Duration::minutes(10)).to_rfc3339();
    for (department, practitioner, expected) in [
        (w.cardio, w.doc_cardio, "Cardiology opens at {opens_at}."),
        (w.derma, w.doc_derma, "Welcome."),
    ] {
        let body = json!({ "client_id": w.client_a, "practitioner_id": practitioner,
                           "department_id": department, "starts_at": starts, "duration_minutes": 10 });
        let (status, booked) = app.book(&admin, body).await;
        assert_eq!(status, 201, "{booked}");
        let token = token_of(booked["invitation_url"].as_str().unwrap());
        let (status, resolved) = app.resolve(&token).await;
        assert_eq!(status, 200, "{resolved}");
        assert_eq!(resolved["settings"]["waiting_room_text"], expected);
    }
}

pub async fn the_after_consultation_text_reaches_the_patient(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let url = app.url("/organisation/settings");
    // Too long, or with control characters: refused by name, nothing changes.
    for bad in ["x".repeat(2001), "bell\u{7}".to_owned()] {
        let (status, body) = send(
            admin
                .put(&url)
                .json(&json!({ "after_consultation_text": bad })),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["field"], "after_consultation_text");
    }
    let (_, before) = send(admin.get(&url)).await;
    assert_eq!(before["after_consultation_text"], "");
    let text = "Your prescription is at the pharmacy.\nQuestions? Call 020 123 4567.";
    let (status, body) = send(
        admin
            .put(&url)
            .json(&json!({ "after_consultation_text": format!("  {text}  ") })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["after_consultation_text"], text);
    // A practitioner may not change it.
    let doc = app.login(DOC_CARDIO).await;
    let (status, _) = send(
        doc.put(&url)
            .json(&json!({ "after_consultation_text": "x" })),
    )
    .await;
    assert_eq!(status, 403);
    // The patient's page gets it with the invitation.
    let starts = (app.clock_now() + chrono::Duration::minutes(10)).to_rfc3339();
    let (status, booked) = app
        .book(
            &doc,
            json!({ "client_id": w.client_a, "starts_at": starts, "duration_minutes": 10 }),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    let (status, resolved) = app
        .resolve(&token_of(booked["invitation_url"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["settings"]["after_consultation_text"], text);
}
