//! Service announcements (F95–F96): create, list, expiry, delete one and all, room rules,
//! organisation isolation, validation, the signalling feed and its change callback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Duration;
use consultroom_clinic::WaitingRoomRef;
use serde_json::{Value, json};

use crate::support::*;

/// POST `/announcements`; returns (status, body).
async fn announce(app: &TestApp, http: &reqwest::Client, body: Value) -> (u16, Value) {
    let res = http
        .post(app.url("/announcements"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// DELETE `path`; returns (status, body or Null).
async fn delete(app: &TestApp, http: &reqwest::Client, path: &str) -> (u16, Value) {
    let res = http.delete(app.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn room(kind: &str, id: impl ToString) -> Value {
    json!({ "kind": kind, "id": id.to_string() })
}

/// The texts of a list response, in order.
fn texts(list: &Value) -> Vec<String> {
    list["announcements"]
        .as_array()
        .expect("announcements array")
        .iter()
        .map(|a| a["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn listed(app: &TestApp, http: &reqwest::Client, query: &str) -> Vec<String> {
    let (status, list) = get(http, &app.url(&format!("/announcements{query}"))).await;
    assert_eq!(status, 200, "{list}");
    texts(&list)
}

pub async fn create_list_expire_and_delete(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let http = app.login(DOC_CARDIO).await;
    let expires = app.clock_now() + Duration::minutes(30);

    let (status, first) = announce(
        &app,
        &http,
        json!({ "text": "  Running 10 minutes late  ", "scope": room("practitioner", w.doc_cardio) }),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    let a = &first["announcement"];
    assert_eq!(a["text"], "Running 10 minutes late", "trimmed");
    assert_eq!(a["scope"], room("practitioner", w.doc_cardio));
    assert_eq!(a["expires_at"], Value::Null);
    assert_eq!(a["created_by"]["id"], w.doc_cardio.to_string());
    assert_eq!(a["created_by"]["name"], DOC_CARDIO_NAME);
    let created_at: chrono::DateTime<chrono::Utc> =
        a["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(created_at, app.clock_now());
    let first_id = a["id"].as_str().unwrap().to_owned();

    let (status, second) = announce(
        &app,
        &http,
        json!({ "text": "Phones are down", "scope": room("department", w.cardio), "expires_at": expires.to_rfc3339() }),
    )
    .await;
    assert_eq!(status, 201, "{second}");
    let second_id = second["announcement"]["id"].as_str().unwrap().to_owned();
    let second_expiry: chrono::DateTime<chrono::Utc> = second["announcement"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(second_expiry, expires);

    // Newest first; the answer of POST is what the list shows.
    let (_, list) = get(&http, &app.url("/announcements")).await;
    assert_eq!(texts(&list), ["Phones are down", "Running 10 minutes late"]);
    assert_eq!(list["announcements"][0], second["announcement"]);
    assert_eq!(list["announcements"][1], first["announcement"]);

    // Hidden at its expiry (F96), still there with include_expired.
    app.clock.advance(Duration::minutes(30));
    assert_eq!(listed(&app, &http, "").await, ["Running 10 minutes late"]);
    assert_eq!(
        listed(&app, &http, "?include_expired=false").await,
        ["Running 10 minutes late"]
    );
    assert_eq!(
        listed(&app, &http, "?include_expired=true").await,
        ["Phones are down", "Running 10 minutes late"]
    );
    let (status, _) = get(&http, &app.url("/announcements?include_expired=maybe")).await;
    assert_eq!(status, 400);

    // Delete one: 204, gone, and a second delete is a 404.
    let (status, body) = delete(&app, &http, &format!("/announcements/{first_id}")).await;
    assert_eq!(status, 204, "{body}");
    assert!(listed(&app, &http, "?include_expired=true").await == ["Phones are down"]);
    let (status, body) = delete(&app, &http, &format!("/announcements/{first_id}")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(
        delete(&app, &http, "/announcements/not-a-uuid").await.0,
        404
    );

    // Delete all of one room (expired ones included); the other room keeps its own.
    for text in ["One", "Two"] {
        let (status, _) = announce(
            &app,
            &http,
            json!({ "text": text, "scope": room("practitioner", w.doc_cardio) }),
        )
        .await;
        assert_eq!(status, 201);
    }
    let path = format!("/announcements?scope_kind=department&scope_id={}", w.cardio);
    let (status, body) = delete(&app, &http, &path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "deleted": 1 }));
    assert_eq!(
        listed(&app, &http, "?include_expired=true").await,
        ["Two", "One"]
    );
    let path = format!(
        "/announcements?scope_kind=practitioner&scope_id={}",
        w.doc_cardio
    );
    assert_eq!(delete(&app, &http, &path).await.1, json!({ "deleted": 2 }));
    assert_eq!(delete(&app, &http, &path).await.1, json!({ "deleted": 0 }));
    assert!(
        listed(&app, &http, "?include_expired=true")
            .await
            .is_empty()
    );
    // A deleted announcement cannot be deleted again one by one either.
    let (status, _) = delete(&app, &http, &format!("/announcements/{second_id}")).await;
    assert_eq!(status, 404);
}

pub async fn room_rules_by_role(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let doc_cardio = app.login(DOC_CARDIO).await;
    let doc_derma = app.login(DOC_DERMA).await;
    let cardio_admin = app.login(CARDIO_ADMIN).await;
    let admin_a = app.login(ADMIN_A).await;
    let post = |http: &reqwest::Client, text: &str, scope: Value| {
        let body = json!({ "text": text, "scope": scope });
        let http = http.clone();
        let app = &app;
        async move { announce(app, &http, body).await }
    };

    // Practitioner: own room and own department's, not a colleague's or another department's.
    let (status, body) = post(&doc_cardio, "x", room("practitioner", w.doc_derma)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(
        post(&doc_cardio, "x", room("department", w.derma)).await.0,
        403
    );
    assert_eq!(
        post(&doc_cardio, "cardio room", room("department", w.cardio))
            .await
            .0,
        201
    );
    assert_eq!(
        post(&doc_derma, "derma doc", room("practitioner", w.doc_derma))
            .await
            .0,
        201
    );

    // Department admin: their department's room and its practitioners' rooms only.
    assert_eq!(
        post(
            &cardio_admin,
            "for cardio doc",
            room("practitioner", w.doc_cardio)
        )
        .await
        .0,
        201
    );
    assert_eq!(
        post(&cardio_admin, "x", room("practitioner", w.doc_derma))
            .await
            .0,
        403
    );
    assert_eq!(
        post(&cardio_admin, "x", room("department", w.derma))
            .await
            .0,
        403
    );
    assert_eq!(
        post(&cardio_admin, "x", room("practitioner", w.admin_a))
            .await
            .0,
        403
    );

    // Organisation admin: every room of the organisation.
    assert_eq!(
        post(&admin_a, "derma room", room("department", w.derma))
            .await
            .0,
        201
    );

    // Lists: the rooms each caller may manage, nothing else.
    assert_eq!(
        listed(&app, &admin_a, "").await,
        ["derma room", "for cardio doc", "derma doc", "cardio room"]
    );
    assert_eq!(
        listed(&app, &cardio_admin, "").await,
        ["for cardio doc", "cardio room"]
    );
    assert_eq!(
        listed(&app, &doc_cardio, "").await,
        ["for cardio doc", "cardio room"]
    );
    assert_eq!(
        listed(&app, &doc_derma, "").await,
        ["derma room", "derma doc"]
    );

    // Another room's announcement is invisible: 404 one by one, 403 for "delete all".
    let (_, list) = get(&doc_cardio, &app.url("/announcements")).await;
    let cardio_id = list["announcements"][1]["id"].as_str().unwrap().to_owned();
    let (status, _) = delete(&app, &doc_derma, &format!("/announcements/{cardio_id}")).await;
    assert_eq!(status, 404);
    let path = format!("/announcements?scope_kind=department&scope_id={}", w.cardio);
    assert_eq!(delete(&app, &doc_derma, &path).await.0, 403);
    assert_eq!(listed(&app, &doc_cardio, "").await.len(), 2, "untouched");
    // The department admin may delete what a practitioner of the department posted.
    let (status, _) = delete(&app, &cardio_admin, &format!("/announcements/{cardio_id}")).await;
    assert_eq!(status, 204);
}

pub async fn other_organisation_cannot_see_or_touch(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let doc_a = app.login(DOC_CARDIO).await;
    let admin_b = app.login(ADMIN_B).await;
    let (_, a) = announce(
        &app,
        &doc_a,
        json!({ "text": "Clinic A only", "scope": room("practitioner", w.doc_cardio) }),
    )
    .await;
    let a_id = a["announcement"]["id"].as_str().unwrap().to_owned();

    for scope in [
        room("practitioner", w.doc_cardio),
        room("department", w.cardio),
        room("department", uuid::Uuid::now_v7()),
        room("practitioner", uuid::Uuid::now_v7()),
    ] {
        let (status, body) =
            announce(&app, &admin_b, json!({ "text": "raid", "scope": scope })).await;
        assert_eq!(status, 404, "{scope}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, _) = delete(&app, &admin_b, &format!("/announcements/{a_id}")).await;
    assert_eq!(status, 404);
    for path in [
        format!(
            "/announcements?scope_kind=practitioner&scope_id={}",
            w.doc_cardio
        ),
        format!("/announcements?scope_kind=department&scope_id={}", w.cardio),
        "/announcements?scope_kind=department&scope_id=not-a-uuid".to_owned(),
    ] {
        assert_eq!(delete(&app, &admin_b, &path).await.0, 404, "{path}");
    }
    assert!(
        listed(&app, &admin_b, "?include_expired=true")
            .await
            .is_empty()
    );
    assert_eq!(listed(&app, &doc_a, "").await, ["Clinic A only"]);
}

pub async fn invalid_input_creates_nothing(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let http = app.login(DOC_CARDIO).await;
    let own = room("practitioner", w.doc_cardio);
    let now = app.clock_now();
    for bad in [
        json!({ "text": "", "scope": own }),
        json!({ "text": " \n\t ", "scope": own }),
        json!({ "text": "x".repeat(501), "scope": own }),
        json!({ "text": "bell\u{7}", "scope": own }),
        json!({ "text": "ok", "scope": own, "expires_at": (now - Duration::minutes(1)).to_rfc3339() }),
        json!({ "text": "ok", "scope": own, "expires_at": now.to_rfc3339() }),
        json!({ "text": "ok", "scope": own, "expires_at": "tomorrow" }),
        json!({ "text": "ok", "scope": { "kind": "lobby", "id": w.doc_cardio } }),
        json!({ "text": "ok", "scope": { "kind": "practitioner", "id": "nope" } }),
        json!({ "text": "ok" }),
        json!({ "scope": own }),
    ] {
        let (status, body) = announce(&app, &http, bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_input", "{bad}");
    }
    assert!(
        listed(&app, &http, "?include_expired=true")
            .await
            .is_empty()
    );
    assert!(app.clinic.active_announcements().await.unwrap().is_empty());

    // The limits themselves are accepted: 500 characters (not bytes), 1 s ahead.
    let (status, body) = announce(
        &app,
        &http,
        json!({ "text": "é".repeat(500), "scope": own, "expires_at": (now + Duration::seconds(1)).to_rfc3339() }),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    for path in [
        "/announcements",
        "/announcements?scope_kind=department",
        "/announcements?scope_kind=lobby&scope_id=0193b2c4-0000-7000-8000-0000000a11ce",
    ] {
        let (status, body) = delete(&app, &http, path).await;
        assert_eq!(status, 422, "{path}: {body}");
    }
    assert_eq!(listed(&app, &http, "").await.len(), 1);

    let anonymous = app.http();
    assert_eq!(get(&anonymous, &app.url("/announcements")).await.0, 401);
    assert_eq!(
        announce(&app, &anonymous, json!({ "text": "x", "scope": own }))
            .await
            .0,
        401
    );
}

pub async fn active_feed_and_change_callback(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let changes = Arc::new(AtomicUsize::new(0));
    let counter = changes.clone();
    app.clinic.subscribe(Arc::new(move |event| {
        if event == consultroom_clinic::ClinicEvent::AnnouncementsChanged {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }));
    let doc = app.login(DOC_CARDIO).await;
    let doc_b = app.login(DOC_B).await;
    let secret_text = "Zeppelin-Announcement-Text-4711";
    let expires = app.clock_now() + Duration::minutes(10);

    let (_, kept) = announce(
        &app,
        &doc,
        json!({ "text": secret_text, "scope": room("department", w.cardio) }),
    )
    .await;
    let (_, expiring) = announce(
        &app,
        &doc,
        json!({ "text": "Back at 10", "scope": room("practitioner", w.doc_cardio), "expires_at": expires.to_rfc3339() }),
    )
    .await;
    let (_, deleted) = announce(
        &app,
        &doc,
        json!({ "text": "Oops", "scope": room("practitioner", w.doc_cardio) }),
    )
    .await;
    let (status, _) = announce(
        &app,
        &doc_b,
        json!({ "text": "Clinic B", "scope": room("practitioner", w.doc_b) }),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(changes.load(Ordering::SeqCst), 4, "one call per create");

    let id = |v: &Value| v["announcement"]["id"].as_str().unwrap().to_owned();
    let (status, _) = delete(&app, &doc, &format!("/announcements/{}", id(&deleted))).await;
    assert_eq!(status, 204);
    assert_eq!(changes.load(Ordering::SeqCst), 5, "and per delete");
    // Refused requests and "delete all" of an empty room change nothing and call nothing.
    announce(
        &app,
        &doc,
        json!({ "text": "", "scope": room("department", w.cardio) }),
    )
    .await;
    let path = format!("/announcements?scope_kind=department&scope_id={}", w.derma);
    assert_eq!(delete(&app, &doc, &path).await.0, 403);
    let path = format!(
        "/announcements?scope_kind=practitioner&scope_id={}",
        w.doc_b
    );
    assert_eq!(delete(&app, &doc, &path).await.0, 404);
    assert_eq!(changes.load(Ordering::SeqCst), 5);

    let active = app.clinic.active_announcements().await.unwrap();
    let ids: Vec<&str> = active.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "{active:?}");
    assert!(ids.contains(&id(&kept).as_str()));
    assert!(ids.contains(&id(&expiring).as_str()));
    assert!(!ids.contains(&id(&deleted).as_str()), "deleted excluded");
    let kept_feed = active.iter().find(|a| a.id == id(&kept)).unwrap();
    assert_eq!(kept_feed.organisation_id, w.org_a.to_string());
    assert_eq!(kept_feed.scope, WaitingRoomRef::Department(w.cardio));
    assert_eq!(kept_feed.text, secret_text);
    assert_eq!(kept_feed.expires_at, None);
    let expiring_feed = active.iter().find(|a| a.id == id(&expiring)).unwrap();
    assert_eq!(
        expiring_feed.scope,
        WaitingRoomRef::Practitioner(w.doc_cardio)
    );
    assert_eq!(expiring_feed.expires_at, Some(expires));
    let b = active.iter().find(|a| a.text == "Clinic B").unwrap();
    assert_eq!(b.organisation_id, w.org_b.to_string());

    app.clock.advance(Duration::minutes(10));
    let active = app.clinic.active_announcements().await.unwrap();
    assert_eq!(active.len(), 2, "expired excluded: {active:?}");
    assert!(active.iter().all(|a| a.id != id(&expiring)));

    // Delete all counts as one change.
    let path = format!("/announcements?scope_kind=department&scope_id={}", w.cardio);
    assert_eq!(delete(&app, &doc, &path).await.1, json!({ "deleted": 1 }));
    assert_eq!(changes.load(Ordering::SeqCst), 6);
    assert_eq!(app.clinic.active_announcements().await.unwrap().len(), 1);

    assert!(
        !captured_logs().contains(secret_text),
        "announcement texts must not be logged"
    );
}
