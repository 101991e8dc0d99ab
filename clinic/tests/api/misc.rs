//! Body handling, unknown routes, headers, the OpenAPI document and the demo seed.

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::support::*;

pub async fn malformed_json_gets_json_400(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let http = app.login(DOC_CARDIO).await;
    for url in [
        app.url("/auth/login"),
        app.url("/clients"),
        app.url("/invitations/resolve"),
    ] {
        let res = http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body("{\"name\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{url}");
        assert!(
            res.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_input");
    }
    // Missing content type: JSON 415.
    let res = http
        .post(app.url("/clients"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    // Wrong types: JSON 422.
    let res = http
        .post(app.url("/appointments"))
        .json(&json!({ "client_id": 5, "starts_at": "soon", "duration_minutes": "long" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_input");
}

pub async fn oversized_body_gets_413(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let http = app.login(DOC_CARDIO).await;
    let big = json!({ "name": "x".repeat(70 * 1024) }).to_string();
    for url in [app.url("/clients"), app.url("/invitations/resolve")] {
        let res = http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413, "{url}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "payload_too_large");
    }
    // Just under the limit is read (and then validated).
    let fits = json!({ "name": "x".repeat(60 * 1024) }).to_string();
    let res = http
        .post(app.url("/clients"))
        .header(CONTENT_TYPE, "application/json")
        .body(fits)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
}

pub async fn unknown_route_gets_json_404(backend: Backend) {
    let app = spawn_app(&backend).await;
    let (status, body) = get(&app.http(), &app.url("/no/such/thing")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

/// One request of [`every_api_error_is_json`].
type Row<'a> = (
    &'a reqwest::Client,
    &'static str,
    String,
    Option<&'static str>,
    &'static str,
    u16,
);

/// Every error under `/api/v1` is the JSON error shape, whatever went wrong: malformed query
/// strings and path segments, wrong content types, bad JSON, unknown routes, wrong methods.
pub async fn every_api_error_is_json(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let admin = app.login(ADMIN_A).await;
    let anonymous = app.http();
    let id = uuid::Uuid::now_v7();
    const JSON: Option<&str> = Some("application/json");
    const TEXT: Option<&str> = Some("text/plain");
    // (client, method, path with query, content type, body, expected status or 0 for any 4xx)
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        // Query strings: repeated, mistyped, not UTF-8.
        (&admin, "GET", "/external-participants?group_id=a&group_id=b".into(), None, "", 400),
        (&admin, "GET", "/external-participants?group_id=%FF".into(), None, "", 0),
        (&admin, "GET", "/appointments?from=a&from=b".into(), None, "", 400),
        (&admin, "GET", "/appointments?from=%FF%FE".into(), None, "", 0),
        (&admin, "GET", "/announcements?include_expired=maybe".into(), None, "", 400),
        (&admin, "DELETE", "/announcements?scope_kind=a&scope_kind=b".into(), None, "", 400),
        (&admin, "GET", "/chat/channels?client_id=a&client_id=b".into(), None, "", 400),
        (&admin, "GET", format!("/chat/channels/{id}/messages?after_seq=minus"), None, "", 400),
        (&admin, "GET", "/chat/access".into(), None, "", 400),
        (&admin, "GET", "/chat/access?client_id=a&client_id=b".into(), None, "", 400),
        // Path segments that do not decode, or are no ids.
        (&admin, "GET", "/appointments/%FF".into(), None, "", 400),
        (&admin, "POST", "/appointments/%FF/cancel".into(), None, "", 400),
        (&admin, "GET", "/appointments/not-a-uuid".into(), None, "", 404),
        (&admin, "GET", "/external-participants/%C3%28".into(), None, "", 400),
        (&admin, "DELETE", "/participant-groups/%FF".into(), None, "", 400),
        (&admin, "GET", "/widgets/%FF".into(), None, "", 400),
        (&admin, "DELETE", format!("/widgets/{id}/images/%FF"), None, "", 0),
        (&admin, "GET", format!("/appointments/{id}/guests"), None, "", 404),
        (&admin, "DELETE", format!("/appointments/{id}/guests/%FF"), None, "", 400),
        (&admin, "DELETE", "/walkin/me/ranges/%FF".into(), None, "", 400),
        (&admin, "POST", "/chat/channels/%FF/read".into(), JSON, "{}", 400),
        (&admin, "DELETE", "/announcements/%FF".into(), None, "", 400),
        (&anonymous, "GET", "/public/widgets/%FF".into(), None, "", 400),
        (&anonymous, "GET", "/public/widgets/%FF/availability/stream".into(), None, "", 400),
        (&anonymous, "GET", format!("/public/widgets/{id}/images/%FF"), None, "", 0),
        (&anonymous, "POST", "/public/widgets/%FF/visits".into(), JSON, "{}", 400),
        // Bodies: wrong content type, bad JSON, wrong shape.
        (&admin, "POST", "/clients".into(), TEXT, "{}", 415),
        (&admin, "POST", "/clients".into(), None, "{}", 415),
        (&admin, "POST", "/clients".into(), JSON, "{\"name\": ", 400),
        (&admin, "POST", "/clients".into(), JSON, "[1, 2]", 422),
        (&admin, "PUT", "/organisation/settings".into(), Some("application/x-www-form-urlencoded"), "a=b", 415),
        (&admin, "POST", "/external-participants".into(), JSON, "null", 422),
        (&anonymous, "POST", "/auth/login".into(), JSON, "{\"email\": 5}", 422),
        (&anonymous, "POST", "/invitations/resolve".into(), TEXT, "x", 415),
        // Unknown routes and wrong methods.
        (&admin, "GET", "/no/such/thing".into(), None, "", 404),
        (&anonymous, "POST", "/no/such/thing".into(), JSON, "{}", 404),
        (&admin, "GET", "/appointments/a/b/c".into(), None, "", 404),
        (&admin, "DELETE", "/me".into(), None, "", 405),
        (&admin, "PATCH", "/clients".into(), JSON, "{}", 405),
        (&anonymous, "GET", "/auth/login".into(), None, "", 405),
        (&admin, "PUT", format!("/appointments/{id}/cancel"), None, "", 405),
        (&anonymous, "DELETE", "/public/widgets/x/visits".into(), None, "", 405),
    ];
    for (client, method, path, content_type, body, expected) in table {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = client.request(method.clone(), format!("{}/api/v1{path}", app.base));
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        if !body.is_empty() {
            req = req.body(body.to_owned());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let what = format!("{method} {path} → {status}");
        assert!((400..500).contains(&status), "{what}: not a 4xx");
        if expected != 0 {
            assert_eq!(status, expected, "{what}");
        }
        let ct = res
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "{what}: content type {ct:?}"
        );
        let v: Value = res.json().await.unwrap_or(Value::Null);
        assert!(v["error"]["code"].is_string(), "{what}: {v}");
        assert!(v["error"]["message"].is_string(), "{what}: {v}");
        if status == 405 {
            assert_eq!(v["error"]["code"], "method_not_allowed", "{what}");
        }
    }
}

pub async fn security_headers_on_api_responses(backend: Backend) {
    let app = spawn_app(&backend).await;
    let res = app.http().get(app.url("/me")).send().await.unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
}

pub async fn openapi_lists_every_served_route(backend: Backend) {
    let app = spawn_app(&backend).await;
    let (status, doc) = get(&app.http(), &app.url("/openapi.json")).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let http = app.http();
    let routes = consultroom_clinic::Clinic::routes();
    assert!(routes.len() >= 11);
    for (method, path) in routes {
        let op = &doc["paths"][&path][method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {path} missing from openapi.json");
        assert!(
            op["responses"].is_object(),
            "{method} {path} has no responses"
        );
        // And the server really serves it (no route-level 404 or 405).
        let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        let res = http
            .request(method.clone(), format!("{}{concrete}", app.base))
            .header(CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), 405, "{method} {path}");
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert_ne!(
            body["error"]["message"], "route not found",
            "{method} {path}"
        );
    }
}

pub async fn demo_seed_is_idempotent_and_usable(backend: Backend) {
    let app = spawn_app(&backend).await;
    let store = app.clinic.store();
    let now = app.clock_now();
    let first = consultroom_clinic::demo::seed(store, now, "first-password", "http://demo.test/")
        .await
        .unwrap();
    let second = consultroom_clinic::demo::seed(store, now, "second-password", "http://demo.test")
        .await
        .unwrap();
    assert_eq!(second.email, "demo@consultroom.test");
    assert_eq!(second.password, "second-password");
    assert!(second.invitation_url.starts_with("http://demo.test/join#"));
    assert_ne!(first.invitation_url, second.invitation_url);

    // The password was reset by the second run.
    let login = |password: &'static str| {
        let url = app.url("/auth/login");
        async move {
            let http = reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap();
            let res = http
                .post(url)
                .json(&json!({ "email": "demo@consultroom.test", "password": password }))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), http)
        }
    };
    assert_eq!(login("first-password").await.0, 401);
    let (status, http) = login("second-password").await;
    assert_eq!(status, 200);

    // One organisation, two clients, and 2 appointments per run, all visible to the practitioner.
    let (_, clients) = get(&http, &app.url("/clients")).await;
    assert_eq!(clients["clients"].as_array().unwrap().len(), 2);
    let (_, list) = get(&http, &app.url("/appointments")).await;
    assert_eq!(list["appointments"].as_array().unwrap().len(), 4);
    let (_, me) = get(&http, &app.url("/me")).await;
    assert_eq!(me["name"], "Dr. Anna de Vries");

    // The returned link is open right now.
    let (status, body) = app.resolve(&token_of(&second.invitation_url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["appointment"]["practitioner_name"],
        "Dr. Anna de Vries"
    );
    // "Starts now" means within the next few minutes, so a patient who follows the link at
    // once is on time, not late.
    let starts: chrono::DateTime<chrono::Utc> = body["appointment"]["starts_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        starts > now && starts <= now + chrono::Duration::minutes(3),
        "{starts} vs {now}"
    );
}

/// `consultroom demo-organisation` (the browser tests give every file its own organisation): a
/// second demo-shaped organisation beside the demo clinic, with its own logins, widget,
/// clients and appointments, and nothing of the other organisation in view.
pub async fn demo_organisation_is_separate_from_the_demo_clinic(backend: Backend) {
    use consultroom_clinic::demo::{self, DemoOrganisation};
    let app = spawn_app(&backend).await;
    let store = app.clinic.store();
    let now = app.clock_now();
    demo::seed(store, now, "demo-password", "http://demo.test")
        .await
        .unwrap();
    let org = DemoOrganisation::named("E2E chat 1a2b").expect("a valid name");
    assert_eq!(org.practitioner_email, "demo@e2e-chat-1a2b.test");
    assert_eq!(org.admin_email, "admin@e2e-chat-1a2b.test");
    let info = demo::seed_organisation(store, &org, now, "other-password", "http://demo.test")
        .await
        .unwrap();
    assert_eq!(info.organisation, "E2E chat 1a2b");
    assert_eq!(info.email, org.practitioner_email);
    assert_eq!(info.admin_email, org.admin_email);
    assert_eq!(info.practitioner_name, "Dr. Anna de Vries");
    assert_eq!(info.department, "General practice");

    let login = |email: String, password: &'static str| {
        let url = app.url("/auth/login");
        async move {
            let http = reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap();
            let res = http
                .post(url)
                .json(&json!({ "email": email, "password": password }))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), http)
        }
    };
    // Its own password; the demo clinic's logins are untouched.
    assert_eq!(
        login(org.practitioner_email.clone(), "demo-password")
            .await
            .0,
        401
    );
    assert_eq!(
        login(demo::PRACTITIONER_EMAIL.into(), "demo-password")
            .await
            .0,
        200
    );
    let (status, doc) = login(org.practitioner_email.clone(), "other-password").await;
    assert_eq!(status, 200);
    let (status, admin) = login(org.admin_email.clone(), "other-password").await;
    assert_eq!(status, 200);

    // Only its own clients, appointments and widget are in view.
    let (_, clients) = get(&doc, &app.url("/clients")).await;
    assert_eq!(clients["clients"].as_array().unwrap().len(), 2, "{clients}");
    let (_, list) = get(&doc, &app.url("/appointments")).await;
    assert_eq!(list["appointments"].as_array().unwrap().len(), 2, "{list}");
    let (_, widgets) = get(&admin, &app.url("/widgets")).await;
    let widgets = widgets["widgets"].as_array().unwrap();
    assert_eq!(widgets.len(), 1, "{widgets:?}");
    assert_eq!(widgets[0]["name"], "Demo walk-in widget");
    // Its link is open now and leads to its own practitioner.
    let (status, body) = app.resolve(&token_of(&info.invitation_url)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["appointment"]["practitioner_name"],
        "Dr. Anna de Vries"
    );

    // Seeding it again updates it in place (no second organisation, logins still unique).
    let again = demo::seed_organisation(store, &org, now, "third-password", "http://demo.test")
        .await
        .unwrap();
    assert_ne!(again.invitation_url, info.invitation_url);
    assert_eq!(
        login(org.practitioner_email.clone(), "third-password")
            .await
            .0,
        200
    );
    let (_, clients) = get(&doc, &app.url("/clients")).await;
    assert_eq!(clients["clients"].as_array().unwrap().len(), 2, "{clients}");
}

pub async fn directory_lists_own_organisation_only(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let http = app.login(DOC_DERMA).await;
    let (status, body) = get(&http, &app.url("/directory")).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["practitioners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // Practitioners and department admins of Clinic A; not its organisation admin, not Clinic B.
    assert_eq!(names, ["Cardio Admin", DOC_CARDIO_NAME, "Dr. Derma"]);
    let depts: Vec<&str> = body["departments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(depts, [w.cardio.to_string(), w.derma.to_string()]);
    let text = body.to_string();
    assert!(
        !text.contains("@a.test"),
        "no e-mail addresses of colleagues"
    );
    assert!(!text.contains("Dr. B"));
    let (status, _) = get(&app.http(), &app.url("/directory")).await;
    assert_eq!(status, 401);
}

/// Request bodies are read as the OpenAPI document (JSON Schema) reads them: an integer field takes
/// `2.0` (JavaScript clients send it) but not `2.5`, and a body must be a JSON object — serde
/// alone refused the first and read a struct from an array (`["weekly", 2, …]`).
pub async fn request_bodies_read_json_as_json_schema_does(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let http = app.login(DOC_CARDIO).await;
    let url = app.url("/walkin/me/ranges");
    let post = |body: String| {
        http.post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };
    let res =
        post(r#"{"kind": "weekly", "weekday": 2.0, "start": "09:00", "end": "10:00"}"#.into())
            .await
            .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["ranges"][0]["weekday"], 2, "{body}");
    for bad in [
        r#"{"kind": "weekly", "weekday": 2.5, "start": "09:00", "end": "10:00"}"#,
        r#"{"kind": "weekly", "weekday": "2", "start": "09:00", "end": "10:00"}"#,
        r#"["weekly", 2, null, "09:00", "10:00"]"#,
        r#""weekly""#,
    ] {
        let res = post(bad.into()).await.unwrap();
        assert_eq!(res.status(), 422, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_input", "{bad}");
    }
}
