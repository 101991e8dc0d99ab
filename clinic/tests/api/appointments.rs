//! Appointments and clients: CRUD, role rules and organisation isolation.

use chrono::Duration;
use serde_json::{Value, json};

use crate::support::*;

fn starts(app: &TestApp, minutes: i64) -> String {
    (app.clock_now() + Duration::minutes(minutes)).to_rfc3339()
}

fn ids(list: &Value) -> Vec<String> {
    list["appointments"]
        .as_array()
        .expect("appointments array")
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

pub async fn create_list_get_cancel(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let http = app.login(DOC_CARDIO).await;

    let (status, later) = app
        .book(&http, json!({ "client_id": w.client_a, "starts_at": starts(&app, 120), "duration_minutes": 30 }))
        .await;
    assert_eq!(status, 201, "{later}");
    let (status, first) = app
        .book(&http, json!({ "client_id": w.client_a, "starts_at": starts(&app, 30), "duration_minutes": 15 }))
        .await;
    assert_eq!(status, 201, "{first}");
    let url = first["invitation_url"].as_str().unwrap();
    assert!(url.starts_with("http://consultroom.test/join#"), "{url}");
    assert!(token_of(url).len() >= 22, "at least 128 bits");
    let a = &first["appointment"];
    assert_eq!(a["client"]["id"], w.client_a.to_string());
    assert_eq!(a["client"]["name"], CLIENT_A_NAME);
    assert_eq!(a["practitioner"]["id"], w.doc_cardio.to_string());
    assert_eq!(a["practitioner"]["name"], DOC_CARDIO_NAME);
    assert_eq!(
        a["department_id"],
        w.cardio.to_string(),
        "defaults to the practitioner's"
    );
    assert_eq!(a["duration_minutes"], 15);
    assert_eq!(a["status"], "scheduled");

    // Listed in start order.
    let (status, list) = get(&http, &app.url("/appointments")).await;
    assert_eq!(status, 200);
    let first_id = a["id"].as_str().unwrap().to_owned();
    let later_id = later["appointment"]["id"].as_str().unwrap().to_owned();
    assert_eq!(ids(&list), vec![first_id.clone(), later_id.clone()]);

    let (status, got) = get(&http, &app.url(&format!("/appointments/{first_id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(got["appointment"], *a);

    let (status, cancelled) =
        post_empty(&http, &app.url(&format!("/appointments/{first_id}/cancel"))).await;
    assert_eq!(status, 200);
    assert_eq!(cancelled["appointment"]["status"], "cancelled");
    // Idempotent.
    let (status, again) =
        post_empty(&http, &app.url(&format!("/appointments/{first_id}/cancel"))).await;
    assert_eq!(status, 200);
    assert_eq!(again["appointment"]["status"], "cancelled");

    // Unknown or malformed ids are 404.
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(
        get(&http, &app.url(&format!("/appointments/{unknown}")))
            .await
            .0,
        404
    );
    assert_eq!(
        get(&http, &app.url("/appointments/not-a-uuid")).await.0,
        404
    );

    // Invalid input.
    let (status, body) = app
        .book(&http, json!({ "client_id": w.client_a, "starts_at": starts(&app, 30), "duration_minutes": 0 }))
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_input");
}

pub async fn list_defaults_to_today_and_validates_range(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let http = app.login(DOC_CARDIO).await;
    // t0 is 09:00 UTC: 16 h later is tomorrow.
    let (_, today) = app
        .book(&http, json!({ "client_id": w.client_a, "starts_at": starts(&app, 60), "duration_minutes": 10 }))
        .await;
    let (_, tomorrow) = app
        .book(&http, json!({ "client_id": w.client_a, "starts_at": starts(&app, 16 * 60), "duration_minutes": 10 }))
        .await;
    let (_, list) = get(&http, &app.url("/appointments")).await;
    assert_eq!(
        ids(&list),
        vec![today["appointment"]["id"].as_str().unwrap()]
    );

    let from = "2030-03-05T00:00:00Z";
    let to = "2030-03-06T00:00:00%2B00:00";
    let (status, list) = get(
        &http,
        &app.url(&format!("/appointments?from={from}&to={to}")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&list),
        vec![tomorrow["appointment"]["id"].as_str().unwrap()]
    );

    let (status, body) = get(&http, &app.url("/appointments?from=yesterday")).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_input");
    let (status, _) = get(
        &http,
        &app.url(&format!("/appointments?from={from}&to={from}")),
    )
    .await;
    assert_eq!(status, 422);
}

pub async fn practitioner_sees_and_books_only_own(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let cardio = app.login(DOC_CARDIO).await;
    let derma = app.login(DOC_DERMA).await;

    let (status, body) = app
        .book(&cardio, json!({ "client_id": w.client_a, "practitioner_id": w.doc_derma, "starts_at": starts(&app, 30), "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");

    let (_, own) = app
        .book(&cardio, json!({ "client_id": w.client_a, "practitioner_id": w.doc_cardio, "starts_at": starts(&app, 30), "duration_minutes": 10 }))
        .await;
    let own_id = own["appointment"]["id"].as_str().unwrap().to_owned();
    let (_, theirs) = app
        .book(&derma, json!({ "client_id": w.client_a, "starts_at": starts(&app, 40), "duration_minutes": 10 }))
        .await;
    let their_id = theirs["appointment"]["id"].as_str().unwrap().to_owned();

    let (_, list) = get(&cardio, &app.url("/appointments")).await;
    assert_eq!(ids(&list), vec![own_id.clone()]);
    // A colleague's appointment in the same organisation is simply not visible.
    assert_eq!(
        get(&cardio, &app.url(&format!("/appointments/{their_id}")))
            .await
            .0,
        404
    );
    assert_eq!(
        post_empty(
            &cardio,
            &app.url(&format!("/appointments/{their_id}/cancel"))
        )
        .await
        .0,
        404
    );
    let (_, still) = get(&derma, &app.url(&format!("/appointments/{their_id}"))).await;
    assert_eq!(still["appointment"]["status"], "scheduled");
}

pub async fn department_admin_is_limited_to_department(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(CARDIO_ADMIN).await;
    let cardio = app.login(DOC_CARDIO).await;
    let derma = app.login(DOC_DERMA).await;

    let (_, c) = app
        .book(&cardio, json!({ "client_id": w.client_a, "starts_at": starts(&app, 30), "duration_minutes": 10 }))
        .await;
    let (_, d) = app
        .book(&derma, json!({ "client_id": w.client_a, "starts_at": starts(&app, 40), "duration_minutes": 10 }))
        .await;
    let c_id = c["appointment"]["id"].as_str().unwrap().to_owned();
    let d_id = d["appointment"]["id"].as_str().unwrap().to_owned();

    let (_, list) = get(&admin, &app.url("/appointments")).await;
    assert_eq!(ids(&list), vec![c_id.clone()]);
    assert_eq!(
        get(&admin, &app.url(&format!("/appointments/{c_id}")))
            .await
            .0,
        200
    );
    assert_eq!(
        get(&admin, &app.url(&format!("/appointments/{d_id}")))
            .await
            .0,
        404
    );

    // Books for a practitioner of their department; not for another department.
    let (status, body) = app
        .book(&admin, json!({ "client_id": w.client_a, "practitioner_id": w.doc_cardio, "starts_at": starts(&app, 50), "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .book(&admin, json!({ "client_id": w.client_a, "practitioner_id": w.doc_derma, "starts_at": starts(&app, 50), "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = app
        .book(&admin, json!({ "client_id": w.client_a, "practitioner_id": w.doc_cardio, "department_id": w.derma, "starts_at": starts(&app, 50), "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 403);
}

pub async fn organisation_admin_sees_everything_in_organisation(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let (status, c) = app
        .book(&admin, json!({ "client_id": w.client_a, "practitioner_id": w.doc_cardio, "starts_at": starts(&app, 30), "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 201);
    let (status, d) = app
        .book(&admin, json!({ "client_id": w.client_a, "practitioner_id": w.doc_derma, "starts_at": starts(&app, 40), "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 201);
    assert_eq!(d["appointment"]["department_id"], w.derma.to_string());
    let (_, list) = get(&admin, &app.url("/appointments")).await;
    assert_eq!(
        ids(&list),
        vec![
            c["appointment"]["id"].as_str().unwrap(),
            d["appointment"]["id"].as_str().unwrap()
        ]
    );
    // The admin (default practitioner = self) can also book for themself.
    let (status, me) = app
        .book(&admin, json!({ "client_id": w.client_a, "starts_at": starts(&app, 50), "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        me["appointment"]["practitioner"]["id"],
        w.admin_a.to_string()
    );
}

pub async fn other_organisation_is_not_found(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let doc_a = app.login(DOC_CARDIO).await;
    let admin_a = app.login(ADMIN_A).await;
    let admin_b = app.login(ADMIN_B).await;
    let doc_b = app.login(DOC_B).await;
    let (_, a) = app
        .book(&doc_a, json!({ "client_id": w.client_a, "starts_at": starts(&app, 30), "duration_minutes": 10 }))
        .await;
    let a_id = a["appointment"]["id"].as_str().unwrap().to_owned();

    for http in [&admin_b, &doc_b] {
        let (status, body) = get(http, &app.url(&format!("/appointments/{a_id}"))).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(
            post_empty(http, &app.url(&format!("/appointments/{a_id}/cancel")))
                .await
                .0,
            404
        );
        let (_, list) = get(http, &app.url("/appointments")).await;
        assert!(ids(&list).is_empty());
        let (_, clients) = get(http, &app.url("/clients")).await;
        let names: Vec<&str> = clients["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec![CLIENT_B_NAME]);
    }
    // B cannot book A's client, and A cannot book B's practitioner or client.
    let (status, body) = app
        .book(&doc_b, json!({ "client_id": w.client_a, "starts_at": starts(&app, 30), "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = app
        .book(&admin_a, json!({ "client_id": w.client_a, "practitioner_id": w.doc_b, "starts_at": starts(&app, 30), "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .book(&admin_a, json!({ "client_id": w.client_b, "practitioner_id": w.doc_cardio, "starts_at": starts(&app, 30), "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .book(&admin_b, json!({ "client_id": w.client_b, "practitioner_id": w.doc_b, "department_id": w.cardio, "starts_at": starts(&app, 30), "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 404);
    // A's appointment is untouched.
    let (_, still) = get(&doc_a, &app.url(&format!("/appointments/{a_id}"))).await;
    assert_eq!(still["appointment"]["status"], "scheduled");
}

pub async fn completed_appointment_cannot_be_cancelled(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let http = app.login(DOC_CARDIO).await;
    let (_, a) = app
        .book(&http, json!({ "client_id": w.client_a, "starts_at": starts(&app, 0), "duration_minutes": 10 }))
        .await;
    let id: consultroom_clinic::AppointmentId =
        a["appointment"]["id"].as_str().unwrap().parse().unwrap();
    assert!(app.clinic.complete_appointment(id).await.unwrap());
    assert!(
        !app.clinic.complete_appointment(id).await.unwrap(),
        "idempotent"
    );
    let (_, got) = get(&http, &app.url(&format!("/appointments/{id}"))).await;
    assert_eq!(got["appointment"]["status"], "completed");
    let (status, body) = post_empty(&http, &app.url(&format!("/appointments/{id}/cancel"))).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "conflict");
}

pub async fn clients_create_list_and_validate(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let http = app.login(DOC_CARDIO).await;
    let res = http
        .post(app.url("/clients"))
        .json(&json!({ "name": "  Anna Aardema ", "email": "anna@example.nl", "phone": "+31 6 1234 5678", "date_of_birth": "1980-02-29" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["client"]["name"], "Anna Aardema");
    assert_eq!(created["client"]["date_of_birth"], "1980-02-29");

    let (_, list) = get(&http, &app.url("/clients")).await;
    let names: Vec<&str> = list["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Anna Aardema", CLIENT_A_NAME]);
    assert_eq!(list["clients"][0]["email"], "anna@example.nl");

    for bad in [
        json!({ "name": "" }),
        json!({ "name": "x".repeat(201) }),
        json!({ "name": "Ok", "email": "not-an-email" }),
        json!({ "name": "Ok", "phone": "call me maybe" }),
        json!({ "name": "Ok", "date_of_birth": "2099-01-01" }),
        json!({ "name": "Ok", "date_of_birth": "31-12-1980" }),
        json!({ "email": "a@b.nl" }),
    ] {
        let res = http
            .post(app.url("/clients"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_input", "{bad}");
    }
}

pub async fn department_waiting_room_needs_a_department(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let doc = app.login(DOC_CARDIO).await;
    let admin = app.login(ADMIN_A).await;
    let doc_b = app.login(DOC_B).await;

    let (status, body) = app
        .book(&doc, json!({ "client_id": w.client_a, "starts_at": starts(&app, 30), "duration_minutes": 10, "waiting_room": "department" }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["appointment"]["waiting_room"], "department");
    assert_eq!(body["appointment"]["department_id"], w.cardio.to_string());
    let id = body["appointment"]["id"].as_str().unwrap().to_owned();
    let (_, got) = get(&doc, &app.url(&format!("/appointments/{id}"))).await;
    assert_eq!(got["appointment"], body["appointment"]);

    for default in [
        json!({}),
        json!({ "waiting_room": null }),
        json!({ "waiting_room": "practitioner" }),
    ] {
        let mut req = json!({ "client_id": w.client_a, "starts_at": starts(&app, 40), "duration_minutes": 10 });
        req.as_object_mut()
            .unwrap()
            .extend(default.as_object().unwrap().clone());
        let (status, body) = app.book(&doc, req).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["appointment"]["waiting_room"], "practitioner");
    }

    // The organisation admin belongs to no department: only with an explicit one.
    let (status, body) = app
        .book(&admin, json!({ "client_id": w.client_a, "starts_at": starts(&app, 30), "duration_minutes": 10, "waiting_room": "department" }))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("department"),
        "{body}"
    );
    let (status, body) = app
        .book(&admin, json!({ "client_id": w.client_a, "department_id": w.derma, "starts_at": starts(&app, 30), "duration_minutes": 10, "waiting_room": "department" }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["appointment"]["waiting_room"], "department");
    let (status, body) = app
        .book(&doc_b, json!({ "client_id": w.client_b, "starts_at": starts(&app, 30), "duration_minutes": 10, "waiting_room": "department" }))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = app
        .book(&doc, json!({ "client_id": w.client_a, "starts_at": starts(&app, 30), "duration_minutes": 10, "waiting_room": "lobby" }))
        .await;
    assert_eq!(status, 422);

    // Refused bookings created nothing.
    let (_, list) = get(&doc_b, &app.url("/appointments")).await;
    assert!(ids(&list).is_empty());
    let (_, list) = get(&admin, &app.url("/appointments")).await;
    assert_eq!(ids(&list).len(), 5);
}

pub async fn join_tokens_name_the_waiting_room(backend: Backend) {
    use consultroom_clinic::{JoinClaims, WaitingRoomRef};
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let doc = app.login(DOC_CARDIO).await;
    let patient_claims = |token: &str| match app.clinic.verify_join_token(token) {
        Ok(JoinClaims::Patient(p)) => p,
        other => panic!("expected patient claims, got {other:?}"),
    };

    for (kind, room) in [
        ("department", WaitingRoomRef::Department(w.cardio)),
        ("practitioner", WaitingRoomRef::Practitioner(w.doc_cardio)),
    ] {
        let (status, body) = app
            .book(&doc, json!({ "client_id": w.client_a, "starts_at": starts(&app, 5), "duration_minutes": 25, "waiting_room": kind }))
            .await;
        assert_eq!(status, 201, "{body}");
        let token = token_of(body["invitation_url"].as_str().unwrap());
        let (status, resolved) = app.resolve(&token).await;
        assert_eq!(status, 200, "{resolved}");
        let p = patient_claims(resolved["signalling_token"].as_str().unwrap());
        assert_eq!(p.waiting_room, room, "{kind}");
        assert_eq!(p.duration_minutes, 25);
        assert_eq!(
            p.practitioner_id, w.doc_cardio,
            "still names the practitioner"
        );
    }

    // Staff tokens list the department rooms they watch: their own department only.
    for (email, expected) in [
        (DOC_CARDIO, vec![w.cardio]),
        (CARDIO_ADMIN, vec![w.cardio]),
        (ADMIN_A, vec![]),
    ] {
        let http = app.login(email).await;
        let (status, body) = post_empty(&http, &app.url("/signalling/token")).await;
        assert_eq!(status, 200);
        match app
            .clinic
            .verify_join_token(body["token"].as_str().unwrap())
        {
            Ok(JoinClaims::Staff(s)) => assert_eq!(s.department_ids, expected, "{email}"),
            other => panic!("expected staff claims, got {other:?}"),
        }
    }
}
