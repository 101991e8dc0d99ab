//! Walk-in hours: availability (switch, one-off and weekly ranges across DST), widget
//! configuration rules, images, the CSS sanitiser through the API, intake validation, walk-in
//! visit tokens, public endpoints and rate limits.

use std::net::SocketAddr;

use chrono::{DateTime, Duration, Utc};
use consultroom_clinic::{JoinClaims, WidgetId};
use serde_json::{Value, json};

use crate::support::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("instant")
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Whether `staff` is listed as available in `org` right now (by the clinic's clock).
async fn available(app: &TestApp, w: &World, staff: consultroom_clinic::StaffId) -> bool {
    app.clinic
        .available_practitioners(w.org_a)
        .await
        .unwrap()
        .iter()
        .any(|p| p.staff_id == staff)
}

fn widget_body(w: &World) -> Value {
    json!({
        "name": "Walk-in hours",
        "department_ids": [w.cardio],
        "texts": { "title": "Walk-in consultation", "walk_in": "Come in!", "absent": "Nobody is available." },
        "colours": { "title": "#112233", "text": "#445566" },
        "intake": { "name": "required", "date_of_birth": "required", "phone": "hidden", "email": "optional",
                    "accept_terms": true, "terms_text": "I agree to the terms." },
        "allowed_origins": ["https://www.clinic-a.test", "http://127.0.0.1:*"],
        "custom_css": "h1 { font-family: Georgia, serif; }"
    })
}

/// Creates the standard widget as admin A; returns its id.
async fn create_widget(app: &TestApp, w: &World) -> String {
    let admin = app.login(ADMIN_A).await;
    let (status, body) = send(admin.post(app.url("/widgets")).json(&widget_body(w))).await;
    assert_eq!(status, 201, "{body}");
    body["widget"]["id"].as_str().unwrap().to_owned()
}

pub async fn walkin_availability_switch_once_weekly_dst(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let doc = app.login(DOC_CARDIO).await;
    let (status, body) = get(&doc, &app.url("/walkin/me")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["switch_on"], false);
    assert_eq!(body["time_zone"], "Europe/Amsterdam");
    assert_eq!(body["available_now"], false);
    assert!(!available(&app, &w, w.doc_cardio).await);

    // The switch: one request each way.
    let (status, body) = send(
        doc.put(app.url("/walkin/me"))
            .json(&json!({ "switch_on": true })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["available_now"], true);
    assert!(available(&app, &w, w.doc_cardio).await);
    assert!(!available(&app, &w, w.doc_derma).await);
    let (_, body) = send(
        doc.put(app.url("/walkin/me"))
            .json(&json!({ "switch_on": false })),
    )
    .await;
    assert_eq!(body["available_now"], false);
    assert!(!available(&app, &w, w.doc_cardio).await);

    // Weekly: every Sunday 09:00–10:00 Amsterdam time.
    let (status, body) = send(
        doc.post(app.url("/walkin/me/ranges"))
            .json(&json!({ "kind": "weekly", "weekday": 7, "start": "09:00", "end": "10:00" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let weekly_id = body["ranges"][0]["id"].as_str().unwrap().to_owned();
    // (instant, available?) — winter is UTC+1, summer (from 31 March 2030) UTC+2, back on 27 October.
    let cases = [
        ("2030-03-24T07:59:00Z", false),
        ("2030-03-24T08:00:00Z", true),
        ("2030-03-24T08:59:00Z", true),
        ("2030-03-24T09:00:00Z", false),
        ("2030-03-31T06:59:00Z", false),
        ("2030-03-31T07:00:00Z", true),
        ("2030-03-31T07:59:00Z", true),
        ("2030-03-31T08:30:00Z", false),
        ("2030-10-27T07:30:00Z", false),
        ("2030-10-27T08:00:00Z", true),
        ("2030-10-27T08:59:00Z", true),
        ("2030-10-28T08:30:00Z", false), // a Monday
    ];
    for (instant, want) in cases {
        app.clock.set(at(instant));
        assert_eq!(available(&app, &w, w.doc_cardio).await, want, "{instant}");
    }

    // One-off on 5 March 2030 15:00–16:00 local = 14:00–15:00 UTC.
    app.clock.set(t0());
    let (status, body) =
        send(doc.post(app.url("/walkin/me/ranges")).json(
            &json!({ "kind": "once", "date": "2030-03-05", "start": "15:00", "end": "16:00" }),
        ))
        .await;
    assert_eq!(status, 201, "{body}");
    let once = body["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "once")
        .unwrap()
        .clone();
    assert_eq!(once["starts_at"], "2030-03-05T14:00:00Z");
    assert_eq!(once["start"], "15:00");
    app.clock.set(at("2030-03-05T14:30:00Z"));
    assert!(available(&app, &w, w.doc_cardio).await);
    // A day later the old session has idled out: sign in again.
    let doc = app.login(DOC_CARDIO).await;
    let (_, me) = get(&doc, &app.url("/walkin/me")).await;
    assert_eq!(me["scheduled_now"], true);
    assert_eq!(me["switch_on"], false);
    app.clock.set(at("2030-03-05T15:00:00Z"));
    assert!(!available(&app, &w, w.doc_cardio).await);
    app.clock.set(at("2030-03-05T14:59:00Z"));

    // A different time zone moves the weekly range with it.
    let (status, _) = send(
        doc.put(app.url("/walkin/me"))
            .json(&json!({ "time_zone": "America/New_York" })),
    )
    .await;
    assert_eq!(status, 200);
    app.clock.set(at("2030-03-24T13:30:00Z")); // Sunday 09:30 EDT
    assert!(available(&app, &w, w.doc_cardio).await);

    // Bad input: nothing changes.
    app.clock.set(t0());
    let doc = app.login(DOC_CARDIO).await;
    for bad in [
        json!({ "kind": "weekly", "weekday": 8, "start": "09:00", "end": "10:00" }),
        json!({ "kind": "weekly", "weekday": 1, "start": "10:00", "end": "09:00" }),
        json!({ "kind": "weekly", "weekday": 1, "start": "9:00", "end": "10:00" }),
        json!({ "kind": "weekly", "weekday": 1, "start": "23:00", "end": "24:30" }),
        json!({ "kind": "once", "date": "2030-03-01", "start": "09:00", "end": "10:00" }),
        json!({ "kind": "once", "date": "05-03-2030", "start": "09:00", "end": "10:00" }),
        json!({ "kind": "monthly", "start": "09:00", "end": "10:00" }),
    ] {
        let (status, body) = send(doc.post(app.url("/walkin/me/ranges")).json(&bad)).await;
        assert_eq!(status, 422, "{bad} → {body}");
        assert_eq!(body["error"]["code"], "invalid_input");
    }
    let (status, _) = send(
        doc.put(app.url("/walkin/me"))
            .json(&json!({ "time_zone": "Mars/Olympus" })),
    )
    .await;
    assert_eq!(status, 422);
    let (_, me) = get(&doc, &app.url("/walkin/me")).await;
    assert_eq!(me["ranges"].as_array().unwrap().len(), 2);
    assert_eq!(me["time_zone"], "America/New_York");

    // Someone else cannot delete the range; the owner can, once.
    let other = app.login(DOC_DERMA).await;
    let path = app.url(&format!("/walkin/me/ranges/{weekly_id}"));
    assert_eq!(send(other.delete(&path)).await.0, 404);
    assert_eq!(send(doc.delete(&path)).await.0, 200);
    assert_eq!(send(doc.delete(&path)).await.0, 404);
    assert_eq!(
        get(&reqwest::Client::new(), &app.url("/walkin/me")).await.0,
        401
    );
}

pub async fn walkin_widget_crud_roles(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let body = widget_body(&w);
    for email in [DOC_CARDIO, CARDIO_ADMIN] {
        let http = app.login(email).await;
        assert_eq!(
            send(http.post(app.url("/widgets")).json(&body)).await.0,
            403,
            "{email}"
        );
        assert_eq!(get(&http, &app.url("/widgets")).await.0, 403, "{email}");
    }
    let (status, created) = send(admin.post(app.url("/widgets")).json(&body)).await;
    assert_eq!(status, 201, "{created}");
    let widget = &created["widget"];
    let id = widget["id"].as_str().unwrap().to_owned();
    assert_eq!(
        widget["allowed_origins"],
        json!(["https://www.clinic-a.test", "http://127.0.0.1:*"])
    );
    assert_eq!(
        widget["frame_url"],
        format!("http://consultroom.test/widget/{id}")
    );
    assert_eq!(widget["has_logo"], false);
    let (_, list) = get(&admin, &app.url("/widgets")).await;
    assert_eq!(list["widgets"].as_array().unwrap().len(), 1);

    // Another organisation's admin: 404 everywhere, and nothing changes.
    let admin_b = app.login(ADMIN_B).await;
    let path = app.url(&format!("/widgets/{id}"));
    assert_eq!(get(&admin_b, &path).await.0, 404);
    assert_eq!(send(admin_b.put(&path).json(&body)).await.0, 404);
    assert_eq!(send(admin_b.delete(&path)).await.0, 404);
    assert_eq!(
        get(&admin_b, &app.url("/widgets")).await.1["widgets"],
        json!([])
    );
    // Org B's admin cannot point a widget of theirs at org A's department.
    let (status, _) = send(admin_b.post(app.url("/widgets")).json(&body)).await;
    assert_eq!(status, 422);

    // Invalid settings: 422 with a clear message, the stored widget unchanged.
    let mut bad_cases = Vec::new();
    for (pointer, value) in [
        ("/allowed_origins", json!(["https://x.test; script-src *"])),
        ("/allowed_origins", json!(["https://x.test/path"])),
        ("/colours/title", json!("red")),
        ("/department_ids", json!([])),
        ("/department_ids", json!([uuid::Uuid::new_v4()])),
        (
            "/custom_css",
            json!("@import url(https://evil.test/x.css);"),
        ),
        (
            "/custom_css",
            json!("body { background: url(https://evil.test/t.png) }"),
        ),
        ("/custom_css", json!("</style><script>alert(1)</script>")),
        ("/name", json!("")),
        ("/name", json!("x".repeat(101))),
        ("/intake/terms_text", json!("")),
    ] {
        let mut b = body.clone();
        *b.pointer_mut(pointer).unwrap() = value.clone();
        bad_cases.push((pointer, value, b));
    }
    for (pointer, value, b) in bad_cases {
        let (status, res) = send(admin.put(&path).json(&b)).await;
        assert_eq!(status, 422, "{pointer} = {value}: {res}");
        assert_eq!(res["error"]["code"], "invalid_input");
        assert!(!res["error"]["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(get(&admin, &path).await.1["widget"], *widget);

    let mut changed = body.clone();
    changed["name"] = json!("Renamed");
    changed["department_ids"] = json!([w.cardio, w.derma]);
    let (status, res) = send(admin.put(&path).json(&changed)).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["widget"]["name"], "Renamed");
    assert_eq!(send(admin.delete(&path)).await.0, 204);
    assert_eq!(get(&admin, &path).await.0, 404);
    assert_eq!(
        get(
            &reqwest::Client::new(),
            &app.url(&format!("/public/widgets/{id}"))
        )
        .await
        .0,
        404
    );
}

pub async fn walkin_images_are_sniffed(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let id = create_widget(&app, &w).await;
    let admin = app.login(ADMIN_A).await;
    let path = app.url(&format!("/widgets/{id}/images/logo"));
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    let upload =
        |ct: &'static str, bytes: Vec<u8>| admin.put(&path).header("content-type", ct).body(bytes);
    let (status, res) = send(upload(
        "image/png",
        b"<!doctype html><script>alert(1)</script>".to_vec(),
    ))
    .await;
    assert_eq!(status, 422, "HTML named .png: {res}");
    assert_eq!(send(upload("text/html", png.clone())).await.0, 415);
    assert_eq!(
        send(upload("image/svg+xml", b"<svg/>".to_vec())).await.0,
        415
    );
    assert_eq!(send(upload("image/jpeg", png.clone())).await.0, 422);
    let (status, _) = send(upload("image/png", vec![0x89; 300 * 1024])).await;
    assert_eq!(status, 413);
    let public = reqwest::Client::new();
    let public_path = app.url(&format!("/public/widgets/{id}/images/logo"));
    assert_eq!(public.get(&public_path).send().await.unwrap().status(), 404);

    let (status, res) = send(upload("image/png", png.clone())).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["widget"]["has_logo"], true);
    let got = public.get(&public_path).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
    assert_eq!(got.bytes().await.unwrap().to_vec(), png);
    // Only the organisation's admins upload.
    let doc = app.login(DOC_CARDIO).await;
    let (status, _) = send(
        doc.put(&path)
            .header("content-type", "image/png")
            .body(png.clone()),
    )
    .await;
    assert_eq!(status, 403);
    let (status, res) = send(admin.delete(&path)).await;
    assert_eq!(
        (status, res["widget"]["has_logo"].clone()),
        (200, json!(false))
    );
}

pub async fn walkin_public_endpoints_and_stream(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let id = create_widget(&app, &w).await;
    let public = reqwest::Client::new();
    let base = app.url(&format!("/public/widgets/{id}"));
    let (status, cfg) = get(&public, &base).await;
    assert_eq!(status, 200, "{cfg}");
    assert_eq!(cfg["texts"]["title"], "Walk-in consultation");
    assert_eq!(cfg["intake"]["date_of_birth"], "required");
    assert_eq!(cfg["allowed_origins"][0], "https://www.clinic-a.test");
    assert!(
        cfg.get("name").is_none(),
        "the admin-only name is not public"
    );
    assert_eq!(
        get(&public, &app.url("/public/widgets/not-a-uuid")).await.0,
        404
    );
    let unknown = app.url(&format!("/public/widgets/{}", WidgetId::new()));
    assert_eq!(get(&public, &unknown).await.0, 404);

    let (_, avail) = get(&public, &format!("{base}/availability")).await;
    assert_eq!(avail["any_available"], false);
    assert_eq!(avail["departments"][0]["name"], "Cardio");
    let doc = app.login(DOC_CARDIO).await;
    send(
        doc.put(app.url("/walkin/me"))
            .json(&json!({ "switch_on": true })),
    )
    .await;
    // Derma is not on the widget: its practitioner never shows.
    let derma = app.login(DOC_DERMA).await;
    send(
        derma
            .put(app.url("/walkin/me"))
            .json(&json!({ "switch_on": true })),
    )
    .await;
    let (_, avail) = get(&public, &format!("{base}/availability")).await;
    assert_eq!(avail["any_available"], true);
    assert_eq!(
        avail["departments"],
        json!([{ "id": w.cardio, "name": "Cardio",
                 "practitioners": [{ "id": w.doc_cardio, "name": DOC_CARDIO_NAME }] }])
    );

    let mut res = public
        .get(format!("{base}/availability/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), res.chunk())
            .await
            .expect("first event in time")
            .unwrap()
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: availability"), "{text}");
    assert!(text.contains(DOC_CARDIO_NAME), "{text}");
    // A change is pushed.
    send(
        doc.put(app.url("/walkin/me"))
            .json(&json!({ "switch_on": false })),
    )
    .await;
    let mut next = String::new();
    while !next.contains("\"any_available\":false") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), res.chunk())
            .await
            .expect("change pushed in time")
            .unwrap()
            .expect("stream open");
        next.push_str(&String::from_utf8_lossy(&chunk));
    }

    let css = public
        .get(format!("{base}/style.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let css = css.text().await.unwrap();
    assert!(css.contains("--cr-title-colour: #112233"), "{css}");
    assert!(css.contains("font-family: Georgia"), "{css}");
}

/// Posts an intake to widget `id`; returns (status, body).
async fn intake(app: &TestApp, http: &reqwest::Client, id: &str, body: Value) -> (u16, Value) {
    let url = app.url(&format!("/public/widgets/{id}/visits"));
    send(http.post(url).json(&body)).await
}

pub async fn walkin_intake_validation_and_visit_token(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let id = create_widget(&app, &w).await;
    let widget_id: WidgetId = id.parse().unwrap();
    let doc = app.login(DOC_CARDIO).await;
    send(
        doc.put(app.url("/walkin/me"))
            .json(&json!({ "switch_on": true })),
    )
    .await;
    let public = reqwest::Client::new();
    let valid = json!({ "practitioner_id": w.doc_cardio, "name": "Wanda Walkin",
                        "date_of_birth": "1980-05-17", "email": "wanda@example.nl", "accept_terms": true });
    let with = |k: &str, v: Value| {
        let mut b = valid.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = valid.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases = [
        (without("name"), "name", "Name is required"),
        (with("name", json!("   ")), "name", "Name is required"),
        (
            with("name", json!("x".repeat(10 * 1024))),
            "name",
            "Name must be at most 100 characters",
        ),
        (
            with("name", json!("Evil\u{0}Name")),
            "name",
            "Name contains characters that are not allowed",
        ),
        (
            without("date_of_birth"),
            "date_of_birth",
            "Date of birth is required",
        ),
        (
            with("date_of_birth", json!("2030-03-05")),
            "date_of_birth",
            "Date of birth cannot be in the future",
        ),
        (
            with("date_of_birth", json!("17-05-1980")),
            "date_of_birth",
            "Date of birth must be a date such as 1980-05-17",
        ),
        (
            with("email", json!("not-an-email")),
            "email",
            "E-mail address must look like name@example.nl",
        ),
        (
            with("email", json!("a@b")),
            "email",
            "E-mail address must look like name@example.nl",
        ),
        (
            with("accept_terms", json!(false)),
            "accept_terms",
            "Please accept the terms to continue",
        ),
        (
            with("practitioner_id", json!("nobody")),
            "practitioner_id",
            "Choose a practitioner",
        ),
    ];
    for (body, field, message) in cases {
        let (status, res) = intake(&app, &public, &id, body).await;
        assert_eq!(status, 422, "{field}: {res}");
        assert_eq!(res["error"]["code"], "invalid_input");
        assert_eq!(res["error"]["field"], field);
        assert_eq!(res["error"]["message"], message);
    }
    // Not available through this widget (derma is not one of its departments) → 409.
    let (status, _) = intake(
        &app,
        &public,
        &id,
        with("practitioner_id", json!(w.doc_derma)),
    )
    .await;
    assert_eq!(status, 409);
    // Unknown fields and far-too-large bodies are refused too.
    assert_eq!(
        intake(&app, &public, &id, with("is_admin", json!(true)))
            .await
            .0,
        422
    );
    assert_eq!(
        intake(
            &app,
            &public,
            &id,
            with("name", json!("x".repeat(20 * 1024)))
        )
        .await
        .0,
        413
    );
    assert_eq!(
        app.clinic
            .store()
            .count_walkin_visits(widget_id)
            .await
            .unwrap(),
        0
    );

    // A valid intake; phone is hidden on this widget, so it is ignored rather than stored.
    let (status, res) = intake(&app, &public, &id, with("phone", json!("<script>"))).await;
    assert_eq!(status, 201, "{res}");
    assert_eq!(
        app.clinic
            .store()
            .count_walkin_visits(widget_id)
            .await
            .unwrap(),
        1
    );
    assert_eq!(res["visit"]["practitioner_name"], DOC_CARDIO_NAME);
    let url = res["join_url"].as_str().unwrap();
    let token = url
        .strip_prefix("http://consultroom.test/join#")
        .expect("join url shape");
    assert!(token.starts_with("w."), "{token}");

    let (status, resolved) = app.resolve(token).await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["walk_in"], true);
    assert_eq!(resolved["appointment"], Value::Null);
    assert_eq!(resolved["patient_display_name"], "Wanda Walkin");
    assert_eq!(resolved["visit"]["practitioner_name"], DOC_CARDIO_NAME);
    match app
        .clinic
        .verify_join_token(resolved["signalling_token"].as_str().unwrap())
        .unwrap()
    {
        JoinClaims::WalkIn(c) => {
            assert_eq!(c.visit_id.to_string(), res["visit"]["id"].as_str().unwrap());
            assert_eq!(c.practitioner_id, w.doc_cardio);
            assert_eq!(c.organisation_id, w.org_a);
            assert_eq!(c.display_name, "Wanda Walkin");
        }
        other => panic!("expected a walk-in token, got {other:?}"),
    }
    // Tampered tokens are unknown; expired and completed visits are gone.
    assert_eq!(app.resolve("w.AAAA").await.0, 404);
    assert_eq!(app.resolve("w.not base64!").await.0, 404);
    app.clock.advance(Duration::hours(2) + Duration::seconds(1));
    assert_eq!(
        app.resolve(token).await.1["error"]["code"],
        "invitation_expired"
    );
    app.clock.set(t0());
    let visit_id = res["visit"]["id"].as_str().unwrap();
    assert!(app.clinic.complete_walk_in(visit_id).await.unwrap());
    assert!(!app.clinic.complete_walk_in(visit_id).await.unwrap());
    assert_eq!(app.resolve(token).await.0, 410);
    // The intake data is not logged.
    let logs = captured_logs();
    assert!(!logs.contains("Wanda Walkin") && !logs.contains("wanda@example.nl"));
}

pub async fn walkin_rate_limit_per_source(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let id = create_widget(&app, &w).await;
    let doc = app.login(DOC_CARDIO).await;
    send(
        doc.put(app.url("/walkin/me"))
            .json(&json!({ "switch_on": true })),
    )
    .await;
    // A server with peer addresses, as the real binary runs it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.clinic.router();
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    let url = format!("http://{addr}/api/v1/public/widgets/{id}/visits");
    let http = reqwest::Client::new();
    let body = json!({ "practitioner_id": w.doc_cardio, "name": "Raider", "date_of_birth": "1990-01-01",
                       "accept_terms": true });
    let mut created = 0;
    let mut limited = None;
    for _ in 0..12 {
        let res = http.post(&url).json(&body).send().await.unwrap();
        match res.status().as_u16() {
            201 => created += 1,
            429 => {
                let retry = res.headers()["retry-after"].to_str().unwrap().to_owned();
                limited = Some((retry, res.json::<Value>().await.unwrap()));
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let (retry, res) = limited.expect("the 11th attempt from one address is refused");
    assert_eq!(created, 10);
    assert!(retry.parse::<u64>().unwrap() >= 1);
    assert_eq!(res["error"]["code"], "rate_limited");
    let widget_id: WidgetId = id.parse().unwrap();
    assert_eq!(
        app.clinic
            .store()
            .count_walkin_visits(widget_id)
            .await
            .unwrap(),
        10
    );
    server.abort();
}

/// One source (a client behind the trusted proxy) holds at most 20 availability streams; its next
/// one is 429 with `Retry-After`, while another source still gets a stream.
pub async fn walkin_streams_are_capped_per_source(backend: Backend) {
    let app = spawn_app_configured(&backend, Options::default(), |c| {
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let w = app.world().await;
    let id = create_widget(&app, &w).await;
    // A server with peer addresses, as the real binary runs it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.clinic.router();
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    let url = format!("http://{addr}/api/v1/public/widgets/{id}/availability/stream");
    let http = reqwest::Client::new();
    let open = |source: &'static str| http.get(&url).header("x-forwarded-for", source).send();

    let mut held = Vec::new();
    for i in 0..20 {
        let res = open("203.0.113.7").await.unwrap();
        assert_eq!(res.status(), 200, "stream {i} of source A");
        held.push(res);
    }
    let res = open("203.0.113.7").await.unwrap();
    assert_eq!(res.status(), 429, "the 21st stream of source A");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["retry_after_seconds"], retry);

    // Another source is not affected.
    let b = open("198.51.100.9").await.unwrap();
    assert_eq!(b.status(), 200, "source B still gets a stream");

    // IPv6 sources count by /64: twenty in one /64, then refused; the next /64 is another source.
    for i in 0..20 {
        let hop = if i % 2 == 0 {
            "2001:db8:0:1::1"
        } else {
            "2001:db8:0:1:ffff::2"
        };
        let res = open(hop).await.unwrap();
        assert_eq!(res.status(), 200, "IPv6 stream {i}");
        held.push(res);
    }
    assert_eq!(open("2001:db8:0:1::3").await.unwrap().status(), 429);
    assert_eq!(open("2001:db8:0:2::1").await.unwrap().status(), 200);
    drop(held);
    server.abort();
}
