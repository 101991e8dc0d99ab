//! Patient records (issue #15, first part): patients by organisation kind, the services
//! catalogue and service records, notes (edit, archive, the archived filter), the timeline
//! (types, order, cursor), and that all of it follows organisations, roles and segregation.

use chrono::Duration as Span;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

async fn send(http: &reqwest::Client, method: Method, url: String, body: Value) -> (u16, Value) {
    let res = http.request(method, url).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn set_kind(app: &TestApp, admin: &reqwest::Client, kind: &str) -> (u16, Value) {
    send(
        admin,
        Method::PUT,
        app.url("/organisation/settings"),
        json!({ "organisation_kind": kind }),
    )
    .await
}

/// Creates a patient (an animal) of `client`; returns its id.
async fn animal(
    app: &TestApp,
    http: &reqwest::Client,
    client: impl std::fmt::Display,
    name: &str,
) -> String {
    let (s, b) = send(
        http,
        Method::POST,
        app.url(&format!("/clients/{client}/patients")),
        json!({ "name": name, "species": "Dog", "breed": "Beagle", "date_of_birth": "2020-05-01" }),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["patient"]["id"].as_str().unwrap().to_owned()
}

/// Creates a catalogue service as `admin`; returns its id.
async fn service(app: &TestApp, admin: &reqwest::Client, name: &str) -> String {
    let (s, b) = send(
        admin,
        Method::POST,
        app.url("/services"),
        json!({ "name": name }),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["service"]["id"].as_str().unwrap().to_owned()
}

fn assert_field(status: u16, body: &Value, field: &str) {
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input", "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
}

pub async fn patients_follow_the_organisation_kind(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let patients = app.url(&format!("/clients/{}/patients", w.client_a));

    // Human (the default): the client is their own patient, and has no other.
    let (s, b) = get(&doc, &patients).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["organisation_kind"], "human");
    let list = b["patients"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{b}");
    assert_eq!(
        list[0]["id"],
        json!(w.client_a),
        "the own patient's id is the client's"
    );
    assert_eq!(list[0]["is_client"], true);
    assert_eq!(list[0]["name"], CLIENT_A_NAME);
    let (s, b) = send(
        &doc,
        Method::POST,
        patients.clone(),
        json!({"name": "Rex", "species": "Dog"}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    let own = app.url(&format!("/patients/{}", w.client_a));
    let (s, b) = send(
        &doc,
        Method::PUT,
        own.clone(),
        json!({"name": "Rex", "species": "Dog"}),
    )
    .await;
    assert_eq!(s, 409, "the own patient is edited as the client: {b}");
    // A new client gets its own patient too.
    let (s, b) = send(
        &doc,
        Method::POST,
        app.url("/clients"),
        json!({"name": "New Person"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let new_client = b["client"]["id"].as_str().unwrap().to_owned();
    let (_, b) = get(&doc, &app.url(&format!("/clients/{new_client}/patients"))).await;
    assert_eq!(b["patients"][0]["id"], new_client.as_str());

    // Only an organisation admin switches the kind.
    let (s, _) = set_kind(&app, &doc, "veterinary").await;
    assert_eq!(s, 403);
    let (s, b) = set_kind(&app, &admin, "veterinary").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["organisation_kind"], "veterinary");
    let (s, b) = set_kind(&app, &admin, "reptilian").await;
    assert_eq!(s, 422, "{b}");

    // Veterinary: the client owns animals; the own patient is not listed.
    let (_, b) = get(&doc, &patients).await;
    assert_eq!(b["patients"], json!([]), "{b}");
    let rex = animal(&app, &doc, w.client_a, "Rex").await;
    let bella = animal(&app, &doc, w.client_a, "Bella").await;
    let (_, b) = get(&doc, &patients).await;
    let names: Vec<&str> = b["patients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Bella", "Rex"], "by name");
    // The register finds the owner by the animal's name.
    let (_, b) = get(&doc, &app.url("/clients?q=REX")).await;
    assert_eq!(b["total"], 1, "{b}");
    assert_eq!(b["clients"][0]["id"], json!(w.client_a));
    let (s, b) = get(&doc, &app.url(&format!("/patients/{rex}"))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["patient"]["species"], "Dog");
    assert_eq!(b["patient"]["breed"], "Beagle");
    assert_eq!(b["patient"]["is_client"], false);
    assert_eq!(b["patient"]["deceased_on"], Value::Null);
    let (s, b) = send(
        &doc,
        Method::PUT,
        app.url(&format!("/patients/{bella}")),
        json!({"name": "Bella Two", "species": "Cat"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["patient"]["breed"], Value::Null, "left out: cleared");
    assert_eq!(b["patient"]["name"], "Bella Two");

    // Bad input names its field; nothing is created.
    let today = "2030-03-04";
    for (body, field) in [
        (json!({"name": "  ", "species": "Dog"}), "name"),
        (json!({"name": "x".repeat(101), "species": "Dog"}), "name"),
        (json!({"name": "Rex", "species": ""}), "species"),
        (
            json!({"name": "Rex", "species": "Dog", "breed": "b".repeat(61)}),
            "breed",
        ),
        (
            json!({"name": "Rex", "species": "Dog", "date_of_birth": "2030-03-05"}),
            "date_of_birth",
        ),
        (json!({"name": "Re\u{7}x", "species": "Dog"}), "name"),
    ] {
        let (s, b) = send(&doc, Method::POST, patients.clone(), body).await;
        assert_field(s, &b, field);
    }
    let (s, b) = send(
        &doc,
        Method::POST,
        patients.clone(),
        json!({"name": "Rex", "species": "Dog", "colour": "brown"}),
    )
    .await;
    assert_eq!(s, 422, "unknown fields are refused: {b}");
    let (_, b) = get(&doc, &patients).await;
    assert_eq!(b["patients"].as_array().unwrap().len(), 2);

    // Death: recorded with its date (not in the future, not before birth); undone by admins only.
    let deceased = app.url(&format!("/patients/{rex}/deceased"));
    let (s, b) = send(
        &doc,
        Method::PUT,
        deceased.clone(),
        json!({"deceased_on": "2030-03-05"}),
    )
    .await;
    assert_field(s, &b, "deceased_on");
    let (s, b) = send(
        &doc,
        Method::PUT,
        deceased.clone(),
        json!({"deceased_on": "2019-01-01"}),
    )
    .await;
    assert_field(s, &b, "deceased_on");
    let (s, b) = send(
        &doc,
        Method::PUT,
        deceased.clone(),
        json!({"deceased_on": today}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["patient"]["deceased_on"], today);
    let (s, _) = send(&doc, Method::DELETE, deceased.clone(), json!({})).await;
    assert_eq!(s, 403);
    let (s, b) = send(&admin, Method::DELETE, deceased.clone(), json!({})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["patient"]["deceased_on"], Value::Null);

    // Back to human only while no client owns an animal.
    let (s, b) = set_kind(&app, &admin, "human").await;
    assert_eq!(s, 409, "{b}");

    // Another organisation: its admin sees none of it.
    let admin_b = app.login(ADMIN_B).await;
    for url in [
        patients.clone(),
        app.url(&format!("/patients/{rex}")),
        app.url(&format!("/patients/{rex}/timeline")),
        own,
    ] {
        let (s, b) = get(&admin_b, &url).await;
        assert_eq!(s, 404, "{url}: {b}");
    }
    let (s, _) = send(
        &admin_b,
        Method::PUT,
        deceased,
        json!({"deceased_on": today}),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = send(
        &admin_b,
        Method::POST,
        patients,
        json!({"name": "X", "species": "Dog"}),
    )
    .await;
    assert_eq!(s, 404);
}

pub async fn services_catalogue_and_records(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let (s, _) = set_kind(&app, &admin, "veterinary").await;
    assert_eq!(s, 200);

    // Organisation admins change the catalogue; everyone reads it.
    let (s, b) = send(
        &doc,
        Method::POST,
        app.url("/services"),
        json!({"name": "Rabies vaccination"}),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    let (s, _) = send(
        &app.login(CARDIO_ADMIN).await,
        Method::POST,
        app.url("/services"),
        json!({"name": "X"}),
    )
    .await;
    assert_eq!(s, 403);
    let (s, b) = send(
        &admin,
        Method::POST,
        app.url("/services"),
        json!({"name": " Rabies vaccination ", "code": "RAB"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["service"]["name"], "Rabies vaccination");
    assert_eq!(b["service"]["code"], "RAB");
    assert_eq!(b["service"]["active"], true);
    let rabies = b["service"]["id"].as_str().unwrap().to_owned();
    let exam = service(&app, &admin, "Annual exam").await;
    let blood = service(&app, &admin, "Blood test").await;
    let (s, b) = send(
        &admin,
        Method::POST,
        app.url("/services"),
        json!({"name": "Rabies vaccination"}),
    )
    .await;
    assert_eq!(s, 409, "names are unique: {b}");
    let (s, b) = send(
        &admin,
        Method::POST,
        app.url("/services"),
        json!({"name": "Other", "code": "RAB"}),
    )
    .await;
    assert_eq!(s, 409, "codes are unique: {b}");
    let (s, b) = send(
        &admin,
        Method::POST,
        app.url("/services"),
        json!({"name": ""}),
    )
    .await;
    assert_field(s, &b, "name");
    let (s, b) = send(
        &admin,
        Method::POST,
        app.url("/services"),
        json!({"name": "X", "code": "c".repeat(33)}),
    )
    .await;
    assert_field(s, &b, "code");
    let (s, b) = get(&doc, &app.url("/services")).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = b["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Annual exam", "Blood test", "Rabies vaccination"]);
    // The same name in another organisation is another service.
    let admin_b = app.login(ADMIN_B).await;
    let other_rabies = service(&app, &admin_b, "Rabies vaccination").await;
    let (s, _) = send(
        &admin_b,
        Method::PUT,
        app.url(&format!("/services/{rabies}")),
        json!({"name": "Mine"}),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = send(
        &admin_b,
        Method::DELETE,
        app.url(&format!("/services/{rabies}")),
        json!({}),
    )
    .await;
    assert_eq!(s, 404);

    // Recording a service on a patient.
    let rex = animal(&app, &doc, w.client_a, "Rex").await;
    let records = app.url(&format!("/patients/{rex}/service-records"));
    let (s, b) = send(
        &doc,
        Method::POST,
        records.clone(),
        json!({"service_id": rabies, "performed_on": "2030-03-01", "note": "Left leg"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let r = &b["service_record"];
    assert_eq!(r["service_name"], "Rabies vaccination");
    assert_eq!(r["performed_on"], "2030-03-01");
    assert_eq!(r["performed_by"], json!(w.doc_cardio));
    assert_eq!(r["performed_by_name"], DOC_CARDIO_NAME);
    assert_eq!(r["patient_id"], rex.as_str());
    assert_eq!(r["note"], "Left leg");
    let (s, b) = send(
        &doc,
        Method::POST,
        records.clone(),
        json!({"service_id": exam, "performed_on": "2030-03-04", "performed_by": w.doc_derma}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["service_record"]["performed_by"], json!(w.doc_derma));
    // Refused with the reason: the future (in the organisation's zone), before birth, another
    // organisation's service or staff member, an unknown service, the client's own patient in a
    // veterinary organisation, an oversized note.
    for (body, field) in [
        (
            json!({"service_id": rabies, "performed_on": "2030-03-05"}),
            "performed_on",
        ),
        (
            json!({"service_id": rabies, "performed_on": "2019-12-31"}),
            "performed_on",
        ),
        (
            json!({"service_id": other_rabies, "performed_on": "2030-03-01"}),
            "service_id",
        ),
        (
            json!({"service_id": rabies, "performed_on": "2030-03-01", "performed_by": w.doc_b}),
            "performed_by",
        ),
        (
            json!({"service_id": rabies, "performed_on": "2030-03-01", "note": "n".repeat(2001)}),
            "note",
        ),
    ] {
        let (s, b) = send(&doc, Method::POST, records.clone(), body).await;
        assert_field(s, &b, field);
    }
    let (s, b) = send(
        &doc,
        Method::POST,
        records.clone(),
        json!({"service_id": "nonsense", "performed_on": "2030-03-01"}),
    )
    .await;
    assert_eq!(s, 422, "{b}");
    let (s, b) = send(
        &doc,
        Method::POST,
        app.url(&format!("/patients/{}/service-records", w.client_a)),
        json!({"service_id": rabies, "performed_on": "2030-03-01"}),
    )
    .await;
    assert_field(s, &b, "patient_id");
    // After a recorded death, nothing is recorded as done later.
    let (s, _) = send(
        &doc,
        Method::PUT,
        app.url(&format!("/patients/{rex}/deceased")),
        json!({"deceased_on": "2030-03-02"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, b) = send(
        &doc,
        Method::POST,
        records.clone(),
        json!({"service_id": blood, "performed_on": "2030-03-03"}),
    )
    .await;
    assert_field(s, &b, "performed_on");

    // A recorded service is not deleted but deactivated; an inactive one is not recorded.
    let (s, b) = send(
        &admin,
        Method::DELETE,
        app.url(&format!("/services/{rabies}")),
        json!({}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    let (s, b) = send(
        &admin,
        Method::PUT,
        app.url(&format!("/services/{rabies}")),
        json!({"name": "Rabies vaccination", "code": "RAB", "active": false}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["service"]["active"], false);
    let (_, b) = get(&doc, &app.url("/services")).await;
    assert_eq!(
        b["services"].as_array().unwrap().len(),
        2,
        "inactive left out: {b}"
    );
    let (_, b) = get(&doc, &app.url("/services?include_inactive=true")).await;
    assert_eq!(b["services"].as_array().unwrap().len(), 3);
    let (s, b) = send(
        &doc,
        Method::POST,
        records.clone(),
        json!({"service_id": rabies, "performed_on": "2030-03-01"}),
    )
    .await;
    assert_field(s, &b, "service_id");
    let (s, _) = send(
        &admin,
        Method::DELETE,
        app.url(&format!("/services/{blood}")),
        json!({}),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = send(
        &doc,
        Method::DELETE,
        app.url(&format!("/services/{exam}")),
        json!({}),
    )
    .await;
    assert_eq!(s, 403);
    // The client with records is kept.
    let (s, b) = send(
        &admin,
        Method::DELETE,
        app.url(&format!("/clients/{}", w.client_a)),
        json!({}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
}

pub async fn notes_are_edited_archived_and_filtered(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let derma = app.login(DOC_DERMA).await;
    let notes = app.url(&format!("/clients/{}/notes", w.client_a));
    let timeline = app.url(&format!("/clients/{}/timeline", w.client_a));

    let (s, b) = send(
        &doc,
        Method::POST,
        notes.clone(),
        json!({"text": "  Allergic to penicillin.\nCheck again.  "}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let note = b["note"]["id"].as_str().unwrap().to_owned();
    assert_eq!(b["note"]["text"], "Allergic to penicillin.\nCheck again.");
    assert_eq!(
        b["note"]["patient_id"],
        json!(w.client_a),
        "about the client: its own patient"
    );
    assert_eq!(b["note"]["author_id"], json!(w.doc_cardio));
    assert_eq!(b["note"]["editable"], true);
    assert_eq!(b["note"]["archived_at"], Value::Null);
    // Bad input.
    for body in [
        json!({"text": "   "}),
        json!({"text": "x".repeat(10_001)}),
        json!({"text": "a\u{0}b"}),
    ] {
        let (s, b) = send(&doc, Method::POST, notes.clone(), body).await;
        assert_field(s, &b, "text");
    }
    let (s, b) = send(
        &doc,
        Method::POST,
        notes.clone(),
        json!({"text": "x", "patient_id": w.client_b}),
    )
    .await;
    assert_field(s, &b, "patient_id");
    let huge = "x".repeat(70 * 1024);
    let (s, _) = send(&doc, Method::POST, notes.clone(), json!({ "text": huge })).await;
    assert_eq!(s, 413);

    // Edited by its author or an admin; another practitioner reads it only.
    let url = app.url(&format!("/notes/{note}"));
    let (s, b) = get(&derma, &url).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["note"]["editable"], false);
    let (s, _) = send(
        &derma,
        Method::PUT,
        url.clone(),
        json!({"text": "Mine now"}),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = post_empty(&derma, &format!("{url}/archive")).await;
    assert_eq!(s, 403);
    app.clock.advance(Span::minutes(5));
    let (s, b) = send(
        &doc,
        Method::PUT,
        url.clone(),
        json!({"text": "Allergic to penicillin."}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["note"]["text"], "Allergic to penicillin.");
    assert_eq!(b["note"]["edited_by"], json!(w.doc_cardio));
    let created: chrono::DateTime<chrono::Utc> =
        b["note"]["created_at"].as_str().unwrap().parse().unwrap();
    let edited: chrono::DateTime<chrono::Utc> =
        b["note"]["edited_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(created, t0(), "an edit keeps when it was written");
    assert_eq!(edited, t0() + Span::minutes(5));
    let (s, b) = send(&admin, Method::PUT, url.clone(), json!({"text": ""})).await;
    assert_field(s, &b, "text");

    // Archived: out of the timeline, in the "archived" filter; unarchived: back.
    let (s, b) = send(&doc, Method::POST, notes.clone(), json!({"text": "Second"})).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = post_empty(&admin, &format!("{url}/archive")).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["note"]["archived_at"].is_string());
    let (s, b) = post_empty(&admin, &format!("{url}/archive")).await;
    assert_eq!(s, 200, "a repeat is harmless: {b}");
    let texts = |b: &Value| -> Vec<String> {
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let (s, b) = get(&doc, &timeline).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(texts(&b), ["Second"]);
    let (_, b) = get(&doc, &format!("{timeline}?archived=only")).await;
    assert_eq!(texts(&b), ["Allergic to penicillin."]);
    let (_, b) = get(&doc, &format!("{timeline}?archived=include")).await;
    assert_eq!(texts(&b), ["Second", "Allergic to penicillin."]);
    let (s, b) = get(&doc, &format!("{timeline}?archived=maybe")).await;
    assert_eq!(s, 400, "a malformed query is a 400, as everywhere: {b}");
    let (s, b) = post_empty(&doc, &format!("{url}/unarchive")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["note"]["archived_at"], Value::Null);
    let (_, b) = get(&doc, &timeline).await;
    assert_eq!(texts(&b), ["Second", "Allergic to penicillin."]);

    // Another organisation's staff: not found.
    let admin_b = app.login(ADMIN_B).await;
    let (s, _) = get(&admin_b, &url).await;
    assert_eq!(s, 404);
    let (s, _) = send(&admin_b, Method::PUT, url.clone(), json!({"text": "x"})).await;
    assert_eq!(s, 404);
    let (s, _) = post_empty(&admin_b, &format!("{url}/archive")).await;
    assert_eq!(s, 404);
    let (s, _) = send(&admin_b, Method::POST, notes, json!({"text": "x"})).await;
    assert_eq!(s, 404);
}

pub async fn the_timeline_types_orders_and_pages_every_item(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let (s, _) = set_kind(&app, &admin, "veterinary").await;
    assert_eq!(s, 200);
    let exam = service(&app, &admin, "Annual exam").await;
    let rex = animal(&app, &doc, w.client_a, "Rex").await;
    let bella = animal(&app, &doc, w.client_a, "Bella").await;
    let note = |text: &'static str, patient: Option<String>| {
        let doc = doc.clone();
        let url = app.url(&format!("/clients/{}/notes", w.client_a));
        async move {
            let mut body = json!({ "text": text });
            if let Some(p) = patient {
                body["patient_id"] = json!(p);
            }
            let (s, b) = send(&doc, Method::POST, url, body).await;
            assert_eq!(s, 201, "{b}");
        }
    };
    // t0 = 2030-03-04 09:00Z (UTC: the organisation's zone by default).
    note("owner note", None).await; // 09:00
    app.clock.advance(Span::minutes(1));
    note("rex note", Some(rex.clone())).await; // 09:01
    app.clock.advance(Span::minutes(1));
    note("bella note", Some(bella.clone())).await; // 09:02
    // Performed two days ago: sorted at the end of that day (2030-03-02 23:59:59).
    let (s, b) = send(
        &doc,
        Method::POST,
        app.url(&format!("/patients/{rex}/service-records")),
        json!({"service_id": exam, "performed_on": "2030-03-02"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    // An appointment tomorrow (booking records its invitation mail to the client now, 09:03).
    app.clock.advance(Span::minutes(1));
    let (s, b) = app.book(&doc, json!({"client_id": w.client_a, "starts_at": "2030-03-05T10:00:00Z", "duration_minutes": 15})).await;
    assert_eq!(s, 201, "{b}");
    let appointment = b["appointment"]["id"].as_str().unwrap().to_owned();

    let timeline = app.url(&format!("/clients/{}/timeline", w.client_a));
    let (s, b) = get(&doc, &timeline).await;
    assert_eq!(s, 200, "{b}");
    let kinds: Vec<(String, String)> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["type"].as_str().unwrap().to_owned(),
                i["at"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let types: Vec<&str> = kinds.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "appointment",
            "communication",
            "note",
            "note",
            "note",
            "service_record"
        ],
        "{b}"
    );
    assert_eq!(b["next_cursor"], Value::Null);
    let items = b["items"].as_array().unwrap();
    assert_eq!(items[0]["id"], appointment.as_str());
    assert_eq!(items[0]["status"], "scheduled");
    assert_eq!(items[0]["openable"], true);
    assert_eq!(items[0]["practitioner_name"], DOC_CARDIO_NAME);
    assert_eq!(items[1]["channel"], "email");
    assert_eq!(items[1]["kind"], "appointment_invitation");
    assert_eq!(
        items[1]["viewable"], false,
        "a practitioner does not open mails"
    );
    let note_texts: Vec<&str> = items[2..5]
        .iter()
        .map(|i| i["text"].as_str().unwrap())
        .collect();
    assert_eq!(note_texts, ["bella note", "rex note", "owner note"]);
    assert_eq!(items[5]["service_name"], "Annual exam");
    let at: chrono::DateTime<chrono::Utc> = items[5]["at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        at,
        "2030-03-02T23:59:59Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );

    // Pages of two follow the same order, never repeating or skipping, also when an item is
    // added at the top meanwhile.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("{timeline}?limit=2&cursor={c}"),
            None => format!("{timeline}?limit=2"),
        };
        let (s, b) = get(&doc, &url).await;
        assert_eq!(s, 200, "{b}");
        for i in b["items"].as_array().unwrap() {
            seen.push(i["id"].as_str().unwrap().to_owned());
        }
        pages += 1;
        if pages == 1 {
            app.clock.advance(Span::minutes(1));
            note("late note", None).await;
        }
        match b["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let all: Vec<String> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, all);

    // A patient's timeline: its own records; the own patient's also the client's items.
    let (s, b) = get(&doc, &app.url(&format!("/patients/{rex}/timeline"))).await;
    assert_eq!(s, 200, "{b}");
    let types: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["note", "service_record"], "{b}");
    let (_, b) = get(
        &doc,
        &app.url(&format!("/patients/{}/timeline", w.client_a)),
    )
    .await;
    let types: Vec<&str> = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["appointment", "note", "communication", "note"],
        "{b}"
    );

    // Bad paging input.
    for q in [
        "limit=0",
        "limit=101",
        "cursor=garbage",
        "cursor=MTIzfHg",
        "unknown=1",
    ] {
        let (s, b) = get(&doc, &format!("{timeline}?{q}")).await;
        assert_eq!(
            s,
            if q.starts_with("unknown") { 400 } else { 422 },
            "{q}: {b}"
        );
    }
    // An admin opens the mail; a practitioner of another department not the appointment.
    let (_, b) = get(&admin, &timeline).await;
    let comm = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "communication")
        .unwrap()
        .clone();
    assert_eq!(comm["viewable"], true);
    let (_, b) = get(&app.login(DOC_DERMA).await, &timeline).await;
    let appt = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "appointment")
        .unwrap()
        .clone();
    assert_eq!(appt["openable"], false);
}

pub async fn records_follow_segregation(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let doc_cardio = app.login(DOC_CARDIO).await;
    let doc_derma = app.login(DOC_DERMA).await;
    let (s, _) = set_kind(&app, &admin, "veterinary").await;
    assert_eq!(s, 200);
    let exam = service(&app, &admin, "Annual exam").await;
    // A client of the cardio department, with an animal, a note and a service record.
    let (s, b) = send(
        &doc_cardio,
        Method::POST,
        app.url("/clients"),
        json!({"name": "Cardio Owner"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let client = b["client"]["id"].as_str().unwrap().to_owned();
    let rex = animal(&app, &doc_cardio, &client, "Rex").await;
    let (s, b) = send(
        &doc_cardio,
        Method::POST,
        app.url(&format!("/clients/{client}/notes")),
        json!({"text": "Cardio note", "patient_id": rex}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let note = b["note"]["id"].as_str().unwrap().to_owned();
    let reads = [
        format!("/clients/{client}/patients"),
        format!("/clients/{client}/timeline"),
        format!("/patients/{rex}"),
        format!("/patients/{rex}/timeline"),
        format!("/notes/{note}"),
    ];
    // No segregation: the derma practitioner sees it all.
    for path in &reads {
        let (s, b) = get(&doc_derma, &app.url(path)).await;
        assert_eq!(s, 200, "{path}: {b}");
    }
    // F6: derma sees none of it, reads or writes; the admins and cardio do.
    let (s, _) = send(
        &admin,
        Method::PUT,
        app.url("/organisation/settings"),
        json!({"strict_department_segregation": true}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, b) = get(&doc_derma, &app.url("/clients?q=rex")).await;
    assert_eq!(b["total"], 0, "the search follows segregation too: {b}");
    let (_, b) = get(&doc_cardio, &app.url("/clients?q=rex")).await;
    assert_eq!(b["total"], 1, "{b}");
    for path in &reads {
        let (s, b) = get(&doc_derma, &app.url(path)).await;
        assert_eq!(s, 404, "{path}: {b}");
        let (s, b) = get(&doc_cardio, &app.url(path)).await;
        assert_eq!(s, 200, "{path}: {b}");
        let (s, b) = get(&admin, &app.url(path)).await;
        assert_eq!(s, 200, "{path}: {b}");
    }
    for (method, path, body) in [
        (
            Method::POST,
            format!("/clients/{client}/patients"),
            json!({"name": "X", "species": "Cat"}),
        ),
        (
            Method::PUT,
            format!("/patients/{rex}"),
            json!({"name": "X", "species": "Cat"}),
        ),
        (
            Method::PUT,
            format!("/patients/{rex}/deceased"),
            json!({"deceased_on": "2030-03-01"}),
        ),
        (
            Method::POST,
            format!("/patients/{rex}/service-records"),
            json!({"service_id": exam, "performed_on": "2030-03-01"}),
        ),
        (
            Method::POST,
            format!("/clients/{client}/notes"),
            json!({"text": "x"}),
        ),
        (Method::PUT, format!("/notes/{note}"), json!({"text": "x"})),
        (Method::POST, format!("/notes/{note}/archive"), json!({})),
    ] {
        let (s, b) = send(&doc_derma, method, app.url(&path), body).await;
        assert_eq!(s, 404, "{path}: {b}");
    }
    // F9: a practitioner sees their own clients' records only.
    let (s, _) = send(
        &admin,
        Method::PUT,
        app.url("/organisation/settings"),
        json!({"strict_department_segregation": false, "strict_client_segregation": true}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = get(&doc_derma, &app.url(&format!("/patients/{rex}"))).await;
    assert_eq!(s, 404);
    let (s, _) = get(&doc_cardio, &app.url(&format!("/patients/{rex}"))).await;
    assert_eq!(s, 200);
    let (s, _) = get(
        &doc_derma,
        &app.url(&format!("/clients/{}/timeline", w.client_a)),
    )
    .await;
    assert_eq!(s, 404, "client A is no one's: the admins' alone");
}
