//! The client register and scheduling (issue #12): register rules, segregation (F6, F9), local
//! times and DST, past starts, the personal message, `Idempotency-Key`, reschedule and cancel.

use serde_json::{Value, json};

use crate::support::*;

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
    key: Option<&str>,
) -> (u16, Value, bool) {
    let mut req = http.request(method, url).json(&body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let replayed = res.headers().get("idempotent-replayed").is_some();
    (status, res.json().await.unwrap_or(Value::Null), replayed)
}

async fn set_settings(app: &TestApp, body: Value) {
    let admin = app.login(ADMIN_A).await;
    let (s, b, _) = send(
        &admin,
        reqwest::Method::PUT,
        app.url("/organisation/settings"),
        body,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

async fn count(app: &TestApp, http: &reqwest::Client) -> usize {
    let (s, b) = get(
        http,
        &app.url("/appointments?from=2030-01-01T00:00:00Z&to=2030-04-01T00:00:00Z"),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    b["appointments"].as_array().unwrap().len()
}

pub async fn client_register_rules(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let (s, b, _) = send(&doc, Method::POST, app.url("/clients"), json!({"name": "Anna Register", "client_number": "EPD-1", "language": "nl", "date_of_birth": "1980-02-03"}), None).await;
    assert_eq!(s, 201, "{b}");
    let anna = b["client"]["id"].as_str().unwrap().to_owned();
    assert_eq!(b["client"]["language"], "nl");
    assert_eq!(b["client"]["department_id"], json!(w.cardio));
    assert_eq!(b["client"]["practitioner_id"], json!(w.doc_cardio));
    // The number is unique per organisation, not across organisations.
    let (s, _, _) = send(
        &admin,
        Method::POST,
        app.url("/clients"),
        json!({"name": "Other", "client_number": "EPD-1"}),
        None,
    )
    .await;
    assert_eq!(s, 409);
    let admin_b = app.login(ADMIN_B).await;
    let (s, _, _) = send(
        &admin_b,
        Method::POST,
        app.url("/clients"),
        json!({"name": "Other", "client_number": "EPD-1"}),
        None,
    )
    .await;
    assert_eq!(s, 201);
    // Invalid e-mail and phone: named field, nothing created.
    for (field, body) in [
        ("email", json!({"name": "X", "email": "x@y"})),
        ("phone", json!({"name": "X", "phone": "call me"})),
    ] {
        let (s, b, _) = send(&admin, Method::POST, app.url("/clients"), body, None).await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["error"]["field"], field);
    }
    // Search by name part, number, date of birth; paging.
    for q in ["q=register", "q=EPD-1", "date_of_birth=1980-02-03"] {
        let (s, b) = get(&admin, &app.url(&format!("/clients?{q}"))).await;
        assert_eq!(s, 200);
        assert_eq!(b["total"], 1, "{q}: {b}");
        assert_eq!(b["clients"][0]["id"], anna.as_str());
    }
    let (_, b) = get(&admin, &app.url("/clients?limit=1&offset=1")).await;
    assert_eq!(b["total"], 2);
    assert_eq!(b["clients"].as_array().unwrap().len(), 1);
    let (s, _) = get(&admin, &app.url("/clients?limit=0")).await;
    assert_eq!(s, 422);
    // Edit; another organisation's client is a 404.
    let (s, b, _) = send(&doc, Method::PUT, app.url(&format!("/clients/{anna}")), json!({"name": "Anna Edited", "client_number": "EPD-1", "language": "de", "department_id": w.cardio, "practitioner_id": w.doc_cardio}), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["client"]["language"], "de");
    let (s, _) = get(&admin, &app.url(&format!("/clients/{}", w.client_b))).await;
    assert_eq!(s, 404);
    let (s, _, _) = send(
        &admin,
        Method::DELETE,
        app.url(&format!("/clients/{}", w.client_b)),
        json!({}),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // Delete: not by practitioners; not while appointments exist.
    let (s, _, _) = send(
        &doc,
        Method::DELETE,
        app.url(&format!("/clients/{anna}")),
        json!({}),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = app.book(&doc, json!({"client_id": anna, "starts_at": (t0() + chrono::Duration::hours(1)).to_rfc3339(), "duration_minutes": 10})).await;
    assert_eq!(s, 201);
    let (s, b, _) = send(
        &admin,
        Method::DELETE,
        app.url(&format!("/clients/{anna}")),
        json!({}),
        None,
    )
    .await;
    assert_eq!(s, 409);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("appointments")
    );
    let (s, b, _) = send(
        &admin,
        Method::POST,
        app.url("/clients"),
        json!({"name": "Gone Soon"}),
        None,
    )
    .await;
    let gone = b["client"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s, 201);
    let (s, _, _) = send(
        &admin,
        Method::DELETE,
        app.url(&format!("/clients/{gone}")),
        json!({}),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = get(&admin, &app.url(&format!("/clients/{gone}"))).await;
    assert_eq!(s, 404);
}

pub async fn segregation_narrows_the_register(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let doc_cardio = app.login(DOC_CARDIO).await;
    let doc_derma = app.login(DOC_DERMA).await;
    let (_, b, _) = send(
        &doc_cardio,
        Method::POST,
        app.url("/clients"),
        json!({"name": "Cardio Patient"}),
        None,
    )
    .await;
    let cardio_client = b["client"]["id"].as_str().unwrap().to_owned();
    // No segregation: everyone sees every client.
    let (_, b) = get(&doc_derma, &app.url("/clients")).await;
    assert_eq!(b["total"], 2);
    // F6: derma sees neither the cardio client nor the one in no department (F8); admins all.
    set_settings(&app, json!({"strict_department_segregation": true})).await;
    let (_, b) = get(&doc_derma, &app.url("/clients")).await;
    assert_eq!(b["total"], 0, "{b}");
    let (s, _) = get(&doc_derma, &app.url(&format!("/clients/{cardio_client}"))).await;
    assert_eq!(s, 404);
    let (s, _) = app.book(&doc_derma, json!({"client_id": cardio_client, "starts_at": (t0() + chrono::Duration::hours(1)).to_rfc3339(), "duration_minutes": 10})).await;
    assert_eq!(s, 404);
    let (_, b) = get(&admin, &app.url("/clients")).await;
    assert_eq!(b["total"], 2);
    let (s, _, _) = send(
        &doc_derma,
        Method::POST,
        app.url("/clients"),
        json!({"name": "X", "department_id": w.cardio}),
        None,
    )
    .await;
    assert_eq!(s, 403);
    // F9 alone: a practitioner sees their own clients only (assigned, or with an appointment).
    set_settings(
        &app,
        json!({"strict_department_segregation": false, "strict_client_segregation": true}),
    )
    .await;
    let (_, b) = get(&doc_derma, &app.url("/clients")).await;
    assert_eq!(b["total"], 0, "{b}");
    let (_, b) = get(&doc_cardio, &app.url("/clients")).await;
    assert_eq!(b["total"], 1, "{b}");
    let (s, _) = app.book(&admin, json!({"client_id": w.client_a, "practitioner_id": w.doc_derma, "starts_at": (t0() + chrono::Duration::hours(1)).to_rfc3339(), "duration_minutes": 10})).await;
    assert_eq!(s, 201);
    let (_, b) = get(&doc_derma, &app.url("/clients")).await;
    assert_eq!(b["total"], 1, "{b}");
}

pub async fn local_times_dst_past_and_message(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    set_settings(&app, json!({"time_zone": "Europe/Amsterdam"})).await;
    let doc = app.login(DOC_CARDIO).await;
    let url = app.url("/appointments");
    let base = |extra: Value| {
        let mut b = json!({"client_id": w.client_a, "duration_minutes": 15});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    // t0 = 2030-03-04 09:00Z = 10:00 in Amsterdam.
    let (s, b, _) = send(
        &doc,
        Method::POST,
        url.clone(),
        base(json!({"local_start": "2030-03-04T11:30"})),
        None,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["appointment"]["starts_at"], "2030-03-04T10:30:00Z");
    assert_eq!(b["appointment"]["local_start"], "2030-03-04T11:30:00+01:00");
    assert_eq!(b["time_zone"], "Europe/Amsterdam");
    // Spring forward (2030-03-31): 02:30 does not exist.
    let (s, b, _) = send(
        &doc,
        Method::POST,
        url.clone(),
        base(json!({"local_start": "2030-03-31T02:30"})),
        None,
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["field"], "local_start");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("03:00"),
        "{b}"
    );
    // Fall back is the earlier instant (documented choice).
    let (s, b, _) = send(
        &doc,
        Method::POST,
        url.clone(),
        base(json!({"local_start": "2030-10-27T02:30"})),
        None,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["appointment"]["starts_at"], "2030-10-27T00:30:00Z");
    // Past, and an oversized message: refused, nothing created.
    let before = count(&app, &doc).await;
    let (s, b, _) = send(
        &doc,
        Method::POST,
        url.clone(),
        base(json!({"local_start": "2030-03-04T09:00"})),
        None,
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("past"),
        "{b}"
    );
    let (s, b, _) = send(&doc, Method::POST, url.clone(), base(json!({"starts_at": "2030-03-04T12:00:00Z", "personal_message": "x".repeat(10 * 1024), "guests": [{"name": "Guest"}]})), None).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["field"], "personal_message");
    assert_eq!(count(&app, &doc).await, before);
    // Day overview in local time.
    let (s, b) = get(&doc, &app.url("/appointments?day=2030-03-04")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["from"], "2030-03-04T00:00:00+01:00");
    assert_eq!(b["appointments"].as_array().unwrap().len(), 1);
    let (_, b) = get(
        &doc,
        &app.url(&format!(
            "/appointments?week=2030-03-06&department_id={}",
            w.derma
        )),
    )
    .await;
    assert_eq!(b["appointments"].as_array().unwrap().len(), 0);
    // An unknown zone is refused.
    let admin = app.login(ADMIN_A).await;
    let (s, _, _) = send(
        &admin,
        Method::PUT,
        app.url("/organisation/settings"),
        json!({"time_zone": "Mars/Base"}),
        None,
    )
    .await;
    assert_eq!(s, 422);
}

pub async fn idempotency_reschedule_and_cancel(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let doc = app.login(DOC_CARDIO).await;
    let url = app.url("/appointments");
    let body = json!({"client_id": w.client_a, "starts_at": "2030-03-04T12:00:00Z", "duration_minutes": 15, "personal_message": "Bring your list", "guests": [{"name": "Interpreter"}]});
    let (s, first, replayed) =
        send(&doc, Method::POST, url.clone(), body.clone(), Some("k-1")).await;
    assert_eq!(s, 201, "{first}");
    assert!(!replayed);
    assert_eq!(first["guests"].as_array().unwrap().len(), 1);
    let (s, again, replayed) =
        send(&doc, Method::POST, url.clone(), body.clone(), Some("k-1")).await;
    assert_eq!(s, 201);
    assert!(replayed);
    assert_eq!(again["appointment"]["id"], first["appointment"]["id"]);
    assert_eq!(again["invitation_url"], first["invitation_url"]);
    assert_eq!(again["guests"], first["guests"]);
    assert_eq!(count(&app, &doc).await, 1);
    let mut other = body.clone();
    other["duration_minutes"] = json!(20);
    let (s, b, _) = send(&doc, Method::POST, url.clone(), other, Some("k-1")).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(count(&app, &doc).await, 1);
    // Keys are per organisation.
    let doc_b = app.login(DOC_B).await;
    let (s, b, replayed) = send(&doc_b, Method::POST, url.clone(), json!({"client_id": w.client_b, "starts_at": "2030-03-04T12:00:00Z", "duration_minutes": 15}), Some("k-1")).await;
    assert_eq!(s, 201, "{b}");
    assert!(!replayed);
    // The link is shown again on the appointment's page.
    let id = first["appointment"]["id"].as_str().unwrap();
    let (s, page) = get(&doc, &app.url(&format!("/appointments/{id}"))).await;
    assert_eq!(s, 200);
    assert_eq!(page["invitation_url"], first["invitation_url"]);
    assert_eq!(page["appointment"]["personal_message"], "Bring your list");
    // Reschedule: another organisation's is a 404; the past is refused; then it moves.
    let resched = app.url(&format!("/appointments/{id}/reschedule"));
    let (s, _, _) = send(
        &doc_b,
        Method::POST,
        resched.clone(),
        json!({"starts_at": "2030-03-05T12:00:00Z"}),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _, _) = send(
        &doc,
        Method::POST,
        resched.clone(),
        json!({"starts_at": "2030-03-01T12:00:00Z"}),
        None,
    )
    .await;
    assert_eq!(s, 422);
    let (s, b, _) = send(
        &doc,
        Method::POST,
        resched.clone(),
        json!({"starts_at": "2030-03-05T12:00:00Z", "duration_minutes": 30}),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["appointment"]["starts_at"], "2030-03-05T12:00:00Z");
    assert_eq!(b["appointment"]["duration_minutes"], 30);
    // Cancel: the link is refused, and a cancelled appointment cannot be rescheduled.
    let (s, _) = post_empty(&doc, &app.url(&format!("/appointments/{id}/cancel"))).await;
    assert_eq!(s, 200);
    let (s, b) = app
        .resolve(&token_of(first["invitation_url"].as_str().unwrap()))
        .await;
    assert_eq!(s, 410, "{b}");
    let (s, _, _) = send(
        &doc,
        Method::POST,
        resched,
        json!({"starts_at": "2030-03-05T13:00:00Z"}),
        None,
    )
    .await;
    assert_eq!(s, 409);
    // After the keep time the key books anew.
    app.clock.set(t0() + chrono::Duration::hours(25));
    let doc = app.login(DOC_CARDIO).await;
    let mut later = body.clone();
    later["starts_at"] = json!("2030-03-06T12:00:00Z");
    let (s, b, _) = send(&doc, Method::POST, url.clone(), later.clone(), Some("k-1")).await;
    assert_eq!(s, 201, "{b}");
    assert_ne!(b["appointment"]["id"], first["appointment"]["id"]);
}

pub async fn roles_and_groups_at_booking(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let doc_cardio = app.login(DOC_CARDIO).await;
    let doc_derma = app.login(DOC_DERMA).await;
    let cardio_admin = app.login(CARDIO_ADMIN).await;
    // A group with two members, booked as guests with the appointment (F74).
    let (s, b, _) = send(
        &admin,
        Method::POST,
        app.url("/participant-groups"),
        json!({"name": "Family"}),
        None,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let family = b["group"]["id"].as_str().unwrap().to_owned();
    for name in ["Zus Jansen", "Broer Jansen"] {
        let (s, b, _) = send(
            &admin,
            Method::POST,
            app.url("/external-participants"),
            json!({"name": name, "group_ids": [family]}),
            None,
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    let (s, b, _) = send(&admin, Method::POST, app.url("/appointments"), json!({"client_id": w.client_a, "practitioner_id": w.doc_derma, "starts_at": "2030-03-04T12:00:00Z", "duration_minutes": 20, "guests": [{"group_id": family}, {"name": "Tolk"}]}), None).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["guests"].as_array().unwrap().len(), 3, "{b}");
    let id = b["appointment"]["id"].as_str().unwrap().to_owned();
    let (_, listed) = get(&admin, &app.url(&format!("/appointments/{id}/guests"))).await;
    assert_eq!(listed["guests"].as_array().unwrap().len(), 3);
    // A group of another organisation is not found, and nothing is booked.
    let before = count(&app, &admin).await;
    let (s, _, _) = send(&admin, Method::POST, app.url("/appointments"), json!({"client_id": w.client_a, "starts_at": "2030-03-04T12:00:00Z", "duration_minutes": 20, "guests": [{"group_id": "01900000-0000-7000-8000-000000000000"}]}), None).await;
    assert_eq!(s, 404);
    assert_eq!(count(&app, &admin).await, before);
    // Roles: the derma appointment is not the cardio practitioner's nor the cardio admin's.
    for http in [&doc_cardio, &cardio_admin] {
        let (s, _) = get(http, &app.url(&format!("/appointments/{id}"))).await;
        assert_eq!(s, 404);
        let (s, _, _) = send(
            http,
            Method::POST,
            app.url(&format!("/appointments/{id}/reschedule")),
            json!({"starts_at": "2030-03-04T13:00:00Z"}),
            None,
        )
        .await;
        assert_eq!(s, 404);
        let (s, _) = post_empty(http, &app.url(&format!("/appointments/{id}/cancel"))).await;
        assert_eq!(s, 404);
    }
    let (s, b, _) = send(
        &doc_derma,
        Method::POST,
        app.url(&format!("/appointments/{id}/reschedule")),
        json!({"local_start": "2030-03-04T14:00", "duration_minutes": 30}),
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // The organisation's default zone is UTC.
    assert_eq!(b["appointment"]["starts_at"], "2030-03-04T14:00:00Z");
    assert_eq!(b["time_zone"], "UTC");
    // Per-practitioner overview (F66).
    let (_, b) = get(
        &admin,
        &app.url(&format!(
            "/appointments?day=2030-03-04&practitioner_id={}",
            w.doc_cardio
        )),
    )
    .await;
    assert_eq!(b["appointments"].as_array().unwrap().len(), 0);
    let (_, b) = get(
        &admin,
        &app.url(&format!(
            "/appointments?day=2030-03-04&practitioner_id={}",
            w.doc_derma
        )),
    )
    .await;
    assert_eq!(b["appointments"].as_array().unwrap().len(), 1);
}
