//! The outbox's operations (issue #12): acknowledging a failed mail (roles, scope, the badge,
//! who and when), the limit on test mails, a client's communication history (F196: visibility,
//! segregation, order, which entries open), and "forgot password" (the same answer for every
//! address, a link for the active staff member only, the limits per address and per source).

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Duration as Span;
use consultroom_clinic::forgot_password::{
    ANSWER, PER_ADDRESS_BURST, PER_ADDRESS_PERIOD, PER_SOURCE_BURST,
};
use consultroom_clinic::ids::MailId;
use consultroom_clinic::mail::http::{TEST_MAIL_BURST, TEST_MAIL_PERIOD};
use consultroom_clinic::mail::{self, MailKind, MailStatus, OutgoingMail, Related};
use consultroom_clinic::{ClientId, Clinic, DepartmentId, OrganisationId, StaffId, Store};
use consultroom_testkit::wait_until;
use serde_json::{Value, json};

use crate::jobs::with_tx;
use crate::support::*;

fn mail_for(
    org: OrganisationId,
    client: Option<ClientId>,
    department: Option<DepartmentId>,
    subject: &str,
) -> OutgoingMail {
    OutgoingMail {
        organisation_id: org,
        kind: MailKind::AppointmentInvitation,
        to_name: "Jan".to_owned(),
        to_address: "patient@example.nl".to_owned(),
        subject: subject.to_owned(),
        text_body: "Your appointment.\n".to_owned(),
        html_body: "<p>Your appointment.</p>".to_owned(),
        calendar: None,
        related: Related {
            department_id: department,
            client_id: client,
            ..Related::default()
        },
        created_by: None,
    }
}

/// Records `mail` (no worker runs: it stays `queued` unless the test says otherwise).
async fn record(clinic: &Clinic, mail: &OutgoingMail) -> MailId {
    let stamp = clinic.mail_stamp();
    with_tx!(clinic.store(), tx => {
        let q = mail::enqueue(&mut *tx, mail, &stamp).await.unwrap();
        tx.commit().await.unwrap();
        q.id
    })
}

async fn post_json(http: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let res = http.post(url).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub async fn a_failed_mail_is_acknowledged_and_test_mails_are_limited(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let store = app.clinic.store();
    let failed = record(&app.clinic, &mail_for(w.org_a, None, Some(w.cardio), "A")).await;
    store
        .record_mail_attempt(
            failed,
            MailStatus::Failed,
            1,
            Some("550 5.1.1 No such user here"),
            app.clock_now(),
        )
        .await
        .unwrap();
    let queued = record(&app.clinic, &mail_for(w.org_a, None, Some(w.cardio), "B")).await;
    let cardio = app.login(CARDIO_ADMIN).await;
    let (_, list) = get(&cardio, &app.url("/mail")).await;
    assert_eq!(list["failed_mail_count"], 1, "{list}");

    let ack = |id: MailId| app.url(&format!("/mail/{id}/acknowledge"));
    // Practitioners may not; another organisation's admin gets a 404, as does an unknown id.
    let (status, _) = post_empty(&app.login(DOC_CARDIO).await, &ack(failed)).await;
    assert_eq!(status, 403);
    let (status, _) = post_empty(&app.login(ADMIN_B).await, &ack(failed)).await;
    assert_eq!(status, 404);
    let (status, _) = post_empty(&cardio, &app.url("/mail/not-an-id/acknowledge")).await;
    assert_eq!(status, 404);
    // Only a failed mail.
    let (status, body) = post_empty(&cardio, &ack(queued)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    let (_, body) = get(&cardio, &app.url(&format!("/mail/{queued}"))).await;
    assert_eq!(body["mail"]["acknowledged"], Value::Null);
    let (_, list) = get(&cardio, &app.url("/mail")).await;
    assert_eq!(list["failed_mail_count"], 1, "nothing changed: {list}");

    app.clock.advance(Span::minutes(5));
    let at = app.clock_now();
    let (status, body) = post_empty(&cardio, &ack(failed)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["failed_mail_count"], 0, "{body}");
    assert_eq!(body["mail"]["status"], "failed", "it stays failed");
    let acknowledged = &body["mail"]["acknowledged"];
    assert_eq!(acknowledged["by"], json!(w.cardio_admin), "{body}");
    assert_eq!(acknowledged["by_name"], "Cardio Admin");
    let when: chrono::DateTime<chrono::Utc> = acknowledged["at"].as_str().unwrap().parse().unwrap();
    assert_eq!(when, at);
    let (_, list) = get(&cardio, &app.url("/mail?status=failed")).await;
    assert_eq!(list["failed_mail_count"], 0);
    assert_eq!(list["total"], 1, "still listed: {list}");
    assert_eq!(list["mails"][0]["acknowledged"]["by_name"], "Cardio Admin");
    // A repeat (by the organisation admin) keeps the first acknowledgement.
    app.clock.advance(Span::minutes(5));
    let (status, body) = post_empty(&app.login(ADMIN_A).await, &ack(failed)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mail"]["acknowledged"]["by"], json!(w.cardio_admin));

    // Test mails: a burst per staff member, then 429 with Retry-After until a cell is back.
    let admin = app.login(ADMIN_A).await;
    for i in 0..TEST_MAIL_BURST {
        let (status, body) = post_json(
            &admin,
            &app.url("/mail/test"),
            json!({"to": format!("me{i}@clinic-a.test")}),
        )
        .await;
        assert_eq!(status, 202, "test mail {i}: {body}");
    }
    let res = admin
        .post(app.url("/mail/test"))
        .json(&json!({"to": "more@clinic-a.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry, TEST_MAIL_PERIOD.as_secs());
    // Another admin is not limited by it; after the period one more goes through.
    let (status, _) = post_json(
        &cardio,
        &app.url("/mail/test"),
        json!({"to": "cardio@clinic-a.test"}),
    )
    .await;
    assert_eq!(status, 202);
    app.clock.advance(Span::from_std(TEST_MAIL_PERIOD).unwrap());
    let (status, _) = post_json(
        &admin,
        &app.url("/mail/test"),
        json!({"to": "more@clinic-a.test"}),
    )
    .await;
    assert_eq!(status, 202);
    let (_, list) = get(&admin, &app.url("/mail?kind=test&limit=100")).await;
    assert_eq!(
        list["total"],
        i64::from(TEST_MAIL_BURST) + 2,
        "the refused one is not recorded"
    );
}

pub async fn a_clients_communication_history_follows_the_register(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let first = record(
        &app.clinic,
        &mail_for(w.org_a, Some(w.client_a), Some(w.cardio), "First"),
    )
    .await;
    app.clock.advance(Span::minutes(1));
    let second = record(
        &app.clinic,
        &mail_for(w.org_a, Some(w.client_a), Some(w.derma), "Second"),
    )
    .await;
    app.clinic
        .store()
        .record_mail_attempt(second, MailStatus::Sent, 1, None, app.clock_now())
        .await
        .unwrap();
    // Not the client's: another client, no client, another organisation.
    record(&app.clinic, &mail_for(w.org_a, None, None, "Other")).await;
    record(
        &app.clinic,
        &mail_for(w.org_b, Some(w.client_b), None, "Clinic B"),
    )
    .await;
    let history = |id: ClientId| app.url(&format!("/clients/{id}/communications"));

    let admin = app.login(ADMIN_A).await;
    let (status, body) = get(&admin, &history(w.client_a)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 2);
    let list = body["communications"].as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second.to_string(), first.to_string()], "newest first");
    assert_eq!(list[0]["subject"], "Second");
    assert_eq!(list[0]["kind"], "appointment_invitation");
    assert_eq!(list[0]["status"], "sent");
    assert_eq!(list[0]["channel"], "email");
    let sent_at: chrono::DateTime<chrono::Utc> =
        list[0]["sent_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(sent_at, app.clock_now());
    assert_eq!(list[1]["status"], "queued");
    assert_eq!(list[1]["sent_at"], Value::Null);
    assert!(list.iter().all(|m| m["viewable"] == true));
    // Paging.
    let (_, body) = get(&admin, &format!("{}?limit=1&offset=1", history(w.client_a))).await;
    assert_eq!(body["communications"][0]["id"], json!(first));
    assert_eq!(body["total"], 2);
    let (status, body) = get(&admin, &format!("{}?limit=0", history(w.client_a))).await;
    assert_eq!(status, 422, "{body}");

    // A department admin opens their department's mails only; a practitioner none.
    let (status, body) = get(&app.login(CARDIO_ADMIN).await, &history(w.client_a)).await;
    assert_eq!(status, 200, "{body}");
    let viewable: Vec<(Value, Value)> = body["communications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["subject"].clone(), m["viewable"].clone()))
        .collect();
    assert_eq!(
        viewable,
        [
            (json!("Second"), json!(false)),
            (json!("First"), json!(true))
        ]
    );
    let doc = app.login(DOC_CARDIO).await;
    let (status, body) = get(&doc, &history(w.client_a)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["communications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["viewable"] == false)
    );

    // Another organisation's client, an unknown one and a malformed id: 404.
    let (status, _) = get(&admin, &history(w.client_b)).await;
    assert_eq!(status, 404);
    let (status, _) = get(&app.login(ADMIN_B).await, &history(w.client_a)).await;
    assert_eq!(status, 404);
    let (status, _) = get(&admin, &history(ClientId::new())).await;
    assert_eq!(status, 404);
    let (status, _) = get(&admin, &app.url("/clients/nope/communications")).await;
    assert_eq!(status, 404);

    // Segregated departments (F6): a client in no department is the organisation admins' alone.
    let res = admin
        .put(app.url("/organisation/settings"))
        .json(&json!({"strict_department_segregation": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, _) = get(&doc, &history(w.client_a)).await;
    assert_eq!(status, 404);
    let (status, _) = get(&app.login(CARDIO_ADMIN).await, &history(w.client_a)).await;
    assert_eq!(status, 404);
    let (status, _) = get(&admin, &history(w.client_a)).await;
    assert_eq!(status, 200);
}

/// `(purpose, unused)` of every set-password link of `staff`.
async fn links_of(store: &Store, staff: StaffId) -> Vec<(String, bool)> {
    const SQL: &str = "select purpose, used_at is null from set_password_link where staff_id = $1 \
                       order by created_at";
    match store {
        Store::Sqlite(pool) => sqlx::query_as::<_, (String, bool)>(SQL)
            .bind(staff)
            .fetch_all(pool)
            .await
            .unwrap(),
        Store::Postgres(pool) => sqlx::query_as::<_, (String, bool)>(SQL)
            .bind(staff)
            .fetch_all(pool)
            .await
            .unwrap(),
    }
}

async fn forgot(
    http: &reqwest::Client,
    url: &str,
    email: &str,
    from: Option<&str>,
) -> (u16, Option<u64>, String) {
    let mut req = http.post(url).json(&json!({ "email": email }));
    if let Some(f) = from {
        req = req.header("x-forwarded-for", f);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry, res.text().await.unwrap())
}

async fn wait_handled(clinic: &Clinic, n: u64) {
    wait_until(
        Duration::from_secs(20),
        "forgot-password requests handled",
        || async { (clinic.forgot_password_handled() >= n).then_some(()) },
    )
    .await;
}

pub async fn forgot_password_answers_the_same_and_issues_for_the_active_only(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let store = app.clinic.store();
    let admin = app.login(ADMIN_A).await;
    let (status, body) = post_empty(
        &admin,
        &app.url(&format!("/staff/{}/deactivate", w.doc_derma)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let http = reqwest::Client::new();
    let url = app.url("/auth/forgot-password");
    let mut answers = Vec::new();
    for email in [
        DOC_DERMA,
        "nobody@a.test",
        // Typed with spaces and capitals: the same account.
        "  Doc-Cardio@A.test ",
    ] {
        answers.push(forgot(&http, &url, email, None).await);
    }
    for (status, retry, body) in &answers {
        assert_eq!((*status, *retry), (202, None), "{body}");
        assert_eq!(body, &answers[0].2, "every answer is the same");
    }
    let body: Value = serde_json::from_str(&answers[0].2).unwrap();
    assert_eq!(body, json!({ "message": ANSWER }));
    wait_handled(&app.clinic, 3).await;
    assert_eq!(
        links_of(store, w.doc_cardio).await,
        [("reset".to_owned(), true)]
    );
    assert!(links_of(store, w.doc_derma).await.is_empty());
    // A second request replaces the first link. Shutting down waits for an answered request's
    // work: once `finish_background` returns, its link is there without any polling.
    let (status, _, _) = forgot(&http, &url, DOC_CARDIO, None).await;
    assert_eq!(status, 202);
    assert!(app.clinic.finish_background(Duration::from_secs(20)).await);
    assert_eq!(app.clinic.forgot_password_handled(), 4);
    assert_eq!(
        links_of(store, w.doc_cardio).await,
        [("reset".to_owned(), false), ("reset".to_owned(), true)]
    );
    // Not an address: a clear refusal.
    for bad in ["", "nope", &format!("{}@a.test", "x".repeat(300))] {
        let (status, _, body) = forgot(&http, &url, bad, None).await;
        assert_eq!(status, 422, "{bad:?}: {body}");
    }
}

/// Serves the router with peer addresses, 127.0.0.1 trusted as a proxy; the base URL.
async fn serve_behind_proxy(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.clinic.router();
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    format!("http://{addr}/api/v1/auth/forgot-password")
}

pub async fn forgot_password_is_limited_per_address_and_per_source(backend: Backend) {
    let app = spawn_app_configured(&backend, Options::default(), |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let w = app.world().await;
    let url = serve_behind_proxy(&app).await;
    let http = reqwest::Client::new();
    // Per address, known or not alike (each from its own source).
    for (n, email) in [DOC_CARDIO, "nobody@a.test"].into_iter().enumerate() {
        for i in 0..PER_ADDRESS_BURST {
            let from = format!("192.0.2.{}", n * 10 + i as usize + 1);
            let (status, _, body) = forgot(&http, &url, email, Some(&from)).await;
            assert_eq!(status, 202, "{email} #{i}: {body}");
        }
        let (status, retry, body) = forgot(&http, &url, email, Some("192.0.2.99")).await;
        assert_eq!(status, 429, "{email}: {body}");
        assert_eq!(retry, Some(PER_ADDRESS_PERIOD.as_secs()));
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
            "rate_limited"
        );
    }
    wait_handled(&app.clinic, u64::from(PER_ADDRESS_BURST) * 2).await;
    assert_eq!(
        links_of(app.clinic.store(), w.doc_cardio).await.len(),
        PER_ADDRESS_BURST as usize,
        "the refused request issued nothing"
    );
    // After the period, one more.
    app.clock
        .advance(Span::from_std(PER_ADDRESS_PERIOD).unwrap());
    let (status, _, _) = forgot(&http, &url, DOC_CARDIO, Some("192.0.2.98")).await;
    assert_eq!(status, 202);

    // Per source: many addresses from one source.
    let source = "198.51.100.7";
    for i in 0..PER_SOURCE_BURST {
        let (status, _, body) = forgot(&http, &url, &format!("p{i}@x.test"), Some(source)).await;
        assert_eq!(status, 202, "#{i}: {body}");
    }
    let (status, retry, _) = forgot(&http, &url, "last@x.test", Some(source)).await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|r| r > 0));
    let (status, _, _) = forgot(&http, &url, "last@x.test", Some("198.51.100.8")).await;
    assert_eq!(
        status, 202,
        "another source, and the address was not charged"
    );
}
