//! Care reminders — recalls (issue #15, F197–F206): rules validated and managed by role, the rule
//! engine on the injected clock (month ends, 29 February, DST in Europe/Amsterdam, the 30/31-day
//! colour boundary at local midnight, a service done early, late or entered afterwards), one
//! open recall per patient and service (a constraint), manual recalls, the views under
//! segregation, the forward preview, and the sending: bundled (three pets, one mail), exactly
//! once at the real SMTP sink, never re-sent after a rule is edited, and suppressed with its
//! reason for a deceased patient, an opted-out client, an appointment already booked (not a
//! cancelled one) and a service done since.

use std::time::Duration;

use chrono::{DateTime, Utc};
use consultroom_clinic::Store;
use consultroom_clinic::jobs::worker::{Worker, WorkerConfig};
use consultroom_clinic::mail;
use consultroom_clinic::recalls::RecallSender;
use consultroom_testkit::smtp::SmtpSink;
use consultroom_testkit::wait_until;
use reqwest::Method;
use serde_json::{Value, json};

use crate::jobs::with_tx;
use crate::mail::{app_sending_to, header_lines, wait_messages};
use crate::support::*;

async fn send(http: &reqwest::Client, method: Method, url: String, body: Value) -> (u16, Value) {
    let res = http.request(method, url).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A veterinary organisation in Amsterdam whose reminders go at 08:00 local.
async fn veterinary_amsterdam(app: &TestApp) {
    let admin = app.login(ADMIN_A).await;
    let (s, b) = send(
        &admin,
        Method::PUT,
        app.url("/organisation/settings"),
        json!({ "organisation_kind": "veterinary", "time_zone": "Europe/Amsterdam",
                "reminder_time": "08:00" }),
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

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

async fn animal(app: &TestApp, http: &reqwest::Client, client: &str, name: &str) -> String {
    let (s, b) = send(
        http,
        Method::POST,
        app.url(&format!("/clients/{client}/patients")),
        json!({ "name": name, "species": "Dog" }),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["patient"]["id"].as_str().unwrap().to_owned()
}

/// A client with `email` (of the cardio practitioner); returns its id.
async fn client(app: &TestApp, http: &reqwest::Client, name: &str, email: &str) -> String {
    let (s, b) = send(
        http,
        Method::POST,
        app.url("/clients"),
        json!({ "name": name, "email": email }),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["client"]["id"].as_str().unwrap().to_owned()
}

async fn rule(app: &TestApp, http: &reqwest::Client, body: Value) -> (u16, Value) {
    send(http, Method::POST, app.url("/recall-rules"), body).await
}

async fn ok_rule(app: &TestApp, admin: &reqwest::Client, body: Value) -> String {
    let (s, b) = rule(app, admin, body).await;
    assert_eq!(s, 201, "{b}");
    b["rule"]["id"].as_str().unwrap().to_owned()
}

async fn record(
    app: &TestApp,
    http: &reqwest::Client,
    patient: &str,
    service: &str,
    day: &str,
) -> (u16, Value) {
    send(
        http,
        Method::POST,
        app.url(&format!("/patients/{patient}/service-records")),
        json!({ "service_id": service, "performed_on": day }),
    )
    .await
}

async fn recorded(app: &TestApp, http: &reqwest::Client, patient: &str, service: &str, day: &str) {
    let (s, b) = record(app, http, patient, service, day).await;
    assert_eq!(s, 201, "{b}");
}

/// The patient's recalls (all statuses), by due date.
async fn recalls_of(app: &TestApp, http: &reqwest::Client, patient: &str) -> Vec<Value> {
    let (s, b) = get(http, &app.url(&format!("/patients/{patient}/recalls"))).await;
    assert_eq!(s, 200, "{b}");
    b["recalls"].as_array().unwrap().clone()
}

fn open(recalls: &[Value]) -> Vec<&Value> {
    recalls.iter().filter(|r| r["status"] == "open").collect()
}

/// `(offset_days, send_at, status)` of a recall's steps.
fn steps(r: &Value) -> Vec<(i64, DateTime<Utc>, String)> {
    r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["offset_days"].as_i64().unwrap_or(i64::MIN),
                s["send_at"].as_str().unwrap().parse().unwrap(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_field(status: u16, body: &Value, field: &str) {
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_input", "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
}

pub async fn recall_rules_are_checked_and_managed_by_admins(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    veterinary_amsterdam(&app).await;
    let admin = app.login(ADMIN_A).await;
    let rabies = service(&app, &admin, "Rabies vaccination").await;
    let primary = service(&app, &admin, "Primary vaccination").await;
    let booster = service(&app, &admin, "Booster").await;
    let base = json!({ "name": "Rabies yearly", "service_id": rabies,
                       "interval": { "count": 365, "unit": "days" }, "schedule": [-14, 0, 7] });
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    // Refused with the field and the reason; nothing stored.
    for (extra, field, says) in [
        (
            json!({ "interval": { "count": 0, "unit": "days" } }),
            "interval",
            "at least 1",
        ),
        (
            json!({ "interval": { "count": -3, "unit": "weeks" } }),
            "interval",
            "at least 1",
        ),
        (
            json!({ "interval": { "count": 2, "unit": "fortnights" } }),
            "interval",
            "unit",
        ),
        (json!({ "schedule": [-365, 0] }), "schedule", "past"),
        (json!({ "schedule": [] }), "schedule", "at least one"),
        (json!({ "schedule": [0, 0] }), "schedule", "twice"),
        (json!({ "channels": ["sms"] }), "channels", "only email"),
        (
            json!({ "template": { "subject": "Hi *|CLIENT_NAME|*", "body": "See *|LINK|*" } }),
            "template.body",
            "*|LINK|*",
        ),
        (
            json!({ "template": { "subject": "Hi *|NAME|*", "body": "x" } }),
            "template.subject",
            "*|NAME|*",
        ),
        (json!({ "internal": true }), "internal", "sends nothing"),
        (
            json!({ "service_id": w.client_a }),
            "service_id",
            "no such service",
        ),
        (json!({ "name": " " }), "name", "1 to 100"),
    ] {
        let (s, b) = rule(&app, &admin, with(extra.clone())).await;
        assert_field(s, &b, field);
        assert!(
            b["error"]["message"].as_str().unwrap().contains(says),
            "{extra}: {b}"
        );
    }
    let (_, b) = get(&admin, &app.url("/recall-rules")).await;
    assert_eq!(b["rules"], json!([]));

    // A booster three weeks after the primary shot; a day before is fine, 21 days before is not.
    let (s, b) = rule(
        &app,
        &admin,
        json!({ "name": "Booster", "service_id": primary, "due_service_id": booster,
                "interval": { "count": 3, "unit": "weeks" }, "schedule": [-21] }),
    )
    .await;
    assert_field(s, &b, "schedule");
    let (s, b) = rule(
        &app,
        &admin,
        json!({ "name": "Booster", "service_id": primary, "due_service_id": booster,
                "interval": { "count": 3, "unit": "weeks" }, "schedule": [0, -1] }),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["rule"]["schedule"], json!([-1, 0]), "sorted");
    assert_eq!(b["rule"]["channels"], json!(["email"]));
    assert_eq!(b["rule"]["template"], Value::Null);
    let booster_rule = b["rule"]["id"].as_str().unwrap().to_owned();
    let (s, b) = rule(&app, &admin, base.clone()).await;
    assert_eq!(s, 201, "{b}");
    let rabies_rule = b["rule"]["id"].as_str().unwrap().to_owned();
    let (s, b) = rule(&app, &admin, base.clone()).await;
    assert_eq!(s, 409, "one rule per service and due service: {b}");
    // An internal rule: a task for staff, no message.
    let surgery = service(&app, &admin, "Surgery").await;
    let call = service(&app, &admin, "Follow-up call").await;
    let (s, b) = rule(
        &app,
        &admin,
        json!({ "name": "Phone after surgery", "service_id": surgery, "due_service_id": call,
                "interval": { "count": 2, "unit": "days" }, "internal": true }),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["rule"]["internal"], true);
    assert_eq!(b["rule"]["channels"], json!([]));

    // Roles: a practitioner reads only; a department admin manages their department's rules.
    let doc = app.login(DOC_CARDIO).await;
    let (s, b) = get(&doc, &app.url("/recall-rules")).await;
    assert_eq!(s, 200);
    assert_eq!(b["rules"].as_array().unwrap().len(), 3);
    let dental = service(&app, &admin, "Dental check").await;
    let dental_rule = json!({ "name": "Dental", "service_id": dental,
                              "interval": { "count": 6, "unit": "months" } });
    let (s, _) = rule(&app, &doc, dental_rule.clone()).await;
    assert_eq!(s, 403);
    let cardio_admin = app.login(CARDIO_ADMIN).await;
    let mut other_dept = dental_rule.clone();
    other_dept["department_id"] = json!(w.derma);
    let (s, _) = rule(&app, &cardio_admin, other_dept).await;
    assert_eq!(s, 403);
    let (s, b) = rule(&app, &cardio_admin, dental_rule).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["rule"]["department_id"],
        json!(w.cardio),
        "their own department's"
    );
    assert_eq!(
        b["rule"]["schedule"],
        json!([0]),
        "by default on the due date"
    );
    let (s, _) = send(
        &cardio_admin,
        Method::DELETE,
        app.url(&format!("/recall-rules/{rabies_rule}")),
        json!({}),
    )
    .await;
    assert_eq!(
        s, 403,
        "an organisation-wide rule is the organisation admin's"
    );
    // Editing checks like creating.
    let (s, b) = send(
        &admin,
        Method::PUT,
        app.url(&format!("/recall-rules/{booster_rule}")),
        json!({ "name": "Booster", "service_id": primary, "due_service_id": booster,
                "interval": { "count": 0, "unit": "weeks" } }),
    )
    .await;
    assert_field(s, &b, "interval");
    // Another organisation's rule is not found; its list is empty.
    let admin_b = app.login(ADMIN_B).await;
    let (s, _) = send(
        &admin_b,
        Method::DELETE,
        app.url(&format!("/recall-rules/{rabies_rule}")),
        json!({}),
    )
    .await;
    assert_eq!(s, 404);
    let (_, b) = get(&admin_b, &app.url("/recall-rules")).await;
    assert_eq!(b["rules"], json!([]));
    let (s, _) = send(
        &admin,
        Method::DELETE,
        app.url(&format!("/recall-rules/{rabies_rule}")),
        json!({}),
    )
    .await;
    assert_eq!(s, 204);
    // A service named by a rule is not deleted (deactivated instead).
    let (s, b) = send(
        &admin,
        Method::DELETE,
        app.url(&format!("/services/{booster}")),
        json!({}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
}

pub async fn the_rule_engine_follows_the_calendar_and_the_local_clock(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    veterinary_amsterdam(&app).await;
    // 1 March 2032, 10:00 in Amsterdam (2032 is a leap year).
    app.clock.set(utc("2032-03-01T09:00:00Z"));
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let rabies = service(&app, &admin, "Rabies vaccination").await;
    let flea = service(&app, &admin, "Flea treatment").await;
    let heartworm = service(&app, &admin, "Heartworm test").await;
    let primary = service(&app, &admin, "Primary vaccination").await;
    let booster = service(&app, &admin, "Booster").await;
    let surgery = service(&app, &admin, "Surgery").await;
    let call = service(&app, &admin, "Follow-up call").await;
    for body in [
        json!({ "name": "Rabies", "service_id": rabies,
                "interval": { "count": 1, "unit": "years" }, "schedule": [-1, 0, 1] }),
        json!({ "name": "Flea", "service_id": flea,
                "interval": { "count": 1, "unit": "months" }, "schedule": [0] }),
        json!({ "name": "Heartworm", "service_id": heartworm,
                "interval": { "count": 392, "unit": "days" }, "schedule": [-1, 0] }),
        json!({ "name": "Booster", "service_id": primary, "due_service_id": booster,
                "interval": { "count": 3, "unit": "weeks" }, "schedule": [0] }),
        json!({ "name": "Phone after surgery", "service_id": surgery, "due_service_id": call,
                "interval": { "count": 2, "unit": "days" }, "internal": true }),
    ] {
        ok_rule(&app, &admin, body).await;
    }
    let owner = w.client_a.to_string();
    let rex = animal(&app, &doc, &owner, "Rex").await;
    let bella = animal(&app, &doc, &owner, "Bella").await;
    let max = animal(&app, &doc, &owner, "Max").await;

    // A service date in the future is refused, and plans nothing.
    let (s, b) = record(&app, &doc, &rex, &rabies, "2032-03-02").await;
    assert_field(s, &b, "performed_on");
    assert!(recalls_of(&app, &doc, &rex).await.is_empty());

    // 29 February + 1 year = 28 February; steps the day before, on and after, 08:00 winter time.
    recorded(&app, &doc, &rex, &rabies, "2032-02-29").await;
    // 31 January + 1 month = 29 February (leap year): already past, red, nothing to send.
    recorded(&app, &doc, &bella, &flea, "2032-01-31").await;
    // 392 days after 29 February 2032 is Sunday 27 March 2033, when the clocks go forward.
    recorded(&app, &doc, &bella, &heartworm, "2032-02-29").await;
    // The booster is a follow-up service: due three weeks after the primary shot.
    recorded(&app, &doc, &max, &primary, "2032-02-27").await;
    // An internal rule: a task with a due date and no sending.
    recorded(&app, &doc, &max, &surgery, "2032-03-01").await;

    let rex_r = recalls_of(&app, &doc, &rex).await;
    assert_eq!(rex_r.len(), 1, "{rex_r:?}");
    assert_eq!(rex_r[0]["due_on"], "2033-02-28");
    assert_eq!(rex_r[0]["colour"], "black");
    assert_eq!(rex_r[0]["rule_name"], "Rabies");
    assert_eq!(rex_r[0]["service_name"], "Rabies vaccination");
    assert_eq!(rex_r[0]["basis_on"], "2032-02-29");
    assert_eq!(
        steps(&rex_r[0]),
        [
            (-1, utc("2033-02-27T07:00:00Z"), "pending".to_owned()),
            (0, utc("2033-02-28T07:00:00Z"), "pending".to_owned()),
            (1, utc("2033-03-01T07:00:00Z"), "pending".to_owned()),
        ]
    );
    let bella_r = recalls_of(&app, &doc, &bella).await;
    assert_eq!(bella_r.len(), 2);
    let flea_r = bella_r
        .iter()
        .find(|r| r["service_name"] == "Flea treatment")
        .unwrap();
    assert_eq!(flea_r["due_on"], "2032-02-29");
    assert_eq!(flea_r["colour"], "red");
    assert!(steps(flea_r).is_empty(), "past steps are not planned");
    let hw = bella_r
        .iter()
        .find(|r| r["service_name"] == "Heartworm test")
        .unwrap();
    assert_eq!(hw["due_on"], "2033-03-27");
    assert_eq!(
        steps(hw),
        [
            (-1, utc("2033-03-26T07:00:00Z"), "pending".to_owned()), // CET, UTC+1
            (0, utc("2033-03-27T06:00:00Z"), "pending".to_owned()),  // CEST, UTC+2
        ]
    );
    let max_r = recalls_of(&app, &doc, &max).await;
    let boost = max_r
        .iter()
        .find(|r| r["service_name"] == "Booster")
        .unwrap();
    assert_eq!(boost["due_on"], "2032-03-19");
    assert_eq!(boost["colour"], "yellow");
    assert_eq!(
        steps(boost),
        [(0, utc("2032-03-19T07:00:00Z"), "pending".to_owned())]
    );
    let task = max_r
        .iter()
        .find(|r| r["service_name"] == "Follow-up call")
        .unwrap();
    assert_eq!(task["internal"], true);
    assert_eq!(task["due_on"], "2032-03-03");
    assert!(steps(task).is_empty(), "an internal recall sends nothing");
    // Three recalls send; the jobs are one per client and instant.
    let keys: Vec<String> = with_tx!(app.clinic.store(), tx => {
        sqlx::query_scalar::<_, String>(
            "select unique_key from job where kind = 'recall.send' order by run_at",
        )
            .fetch_all(&mut *tx)
            .await
            .unwrap()
    });
    assert_eq!(keys.len(), 6, "{keys:?}");
    let at = utc("2033-02-27T07:00:00Z").timestamp_millis();
    assert_eq!(keys[1], format!("recall:client:{owner}:at:{at}"));

    // The colour changes at local midnight, not UTC midnight: the booster (19 March) is 31 days
    // after 17 February. At 23:59:59 on 17 February in Amsterdam (22:59:59Z) it is black…
    app.clock.set(utc("2032-02-17T22:59:59Z"));
    let doc = app.login(DOC_CARDIO).await;
    let b = recalls_of(&app, &doc, &max).await;
    let boost = b.iter().find(|r| r["service_name"] == "Booster").unwrap();
    assert_eq!(boost["colour"], "black", "{boost}");
    // …and one second later, on 18 February locally (still the 17th in UTC), yellow (30 days).
    app.clock.set(utc("2032-02-17T23:00:00Z"));
    let b = recalls_of(&app, &doc, &max).await;
    let boost = b.iter().find(|r| r["service_name"] == "Booster").unwrap();
    assert_eq!(boost["colour"], "yellow", "{boost}");
    // Overdue from local midnight after the due date.
    app.clock.set(utc("2032-03-19T22:59:59Z"));
    let doc = app.login(DOC_CARDIO).await;
    let b = recalls_of(&app, &doc, &max).await;
    assert_eq!(
        b.iter().find(|r| r["service_name"] == "Booster").unwrap()["colour"],
        "yellow"
    );
    app.clock.set(utc("2032-03-19T23:00:00Z"));
    let b = recalls_of(&app, &doc, &max).await;
    assert_eq!(
        b.iter().find(|r| r["service_name"] == "Booster").unwrap()["colour"],
        "red"
    );
    // The list filters by colour with the same boundary.
    let (s, b) = get(&doc, &app.url("/recalls?colour=red")).await;
    assert_eq!(s, 200, "{b}");
    let red: Vec<&str> = b["recalls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["service_name"].as_str().unwrap())
        .collect();
    assert_eq!(red, ["Flea treatment", "Follow-up call", "Booster"], "{b}");
    assert_eq!(b["today"], "2032-03-20");
}

pub async fn a_service_done_early_late_or_entered_afterwards_moves_the_due_date(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    veterinary_amsterdam(&app).await;
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let rabies = service(&app, &admin, "Rabies vaccination").await;
    ok_rule(
        &app,
        &admin,
        json!({ "name": "Rabies", "service_id": rabies,
                "interval": { "count": 1, "unit": "years" }, "schedule": [-14, 0] }),
    )
    .await;
    let rex = animal(&app, &doc, &w.client_a.to_string(), "Rex").await;
    // t0 is 4 March 2030.
    recorded(&app, &doc, &rex, &rabies, "2030-03-01").await;
    let r = recalls_of(&app, &doc, &rex).await;
    assert_eq!(open(&r).len(), 1);
    assert_eq!(open(&r)[0]["due_on"], "2031-03-01");
    let first = open(&r)[0]["id"].clone();

    // Done early (50 days before it was due): completed; the next from the actual date.
    app.clock.set(utc("2031-01-10T10:00:00Z"));
    let doc = app.login(DOC_CARDIO).await;
    recorded(&app, &doc, &rex, &rabies, "2031-01-10").await;
    let r = recalls_of(&app, &doc, &rex).await;
    assert_eq!(open(&r).len(), 1, "never two open: {r:?}");
    assert_eq!(open(&r)[0]["due_on"], "2032-01-10");
    let old = r.iter().find(|x| x["id"] == first).unwrap();
    assert_eq!(old["status"], "completed");
    assert_eq!(old["closed_reason"], "service_done");
    // Its steps were never sent: cancelled with the reason.
    assert!(steps(old).iter().all(|(_, _, s)| s == "cancelled"), "{old}");
    assert!(
        old["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["reason"] == "service_done")
    );

    // Late: overdue (red) until it is done, then due a year after the actual date.
    app.clock.set(utc("2032-02-20T10:00:00Z"));
    let doc = app.login(DOC_CARDIO).await;
    let r = recalls_of(&app, &doc, &rex).await;
    assert_eq!(open(&r)[0]["colour"], "red");
    recorded(&app, &doc, &rex, &rabies, "2032-02-18").await;
    let r = recalls_of(&app, &doc, &rex).await;
    assert_eq!(open(&r).len(), 1);
    assert_eq!(open(&r)[0]["due_on"], "2033-02-18");
    assert_eq!(open(&r)[0]["colour"], "black");

    // An older vaccination entered afterwards changes nothing: the later record governs.
    recorded(&app, &doc, &rex, &rabies, "2029-05-05").await;
    let after = recalls_of(&app, &doc, &rex).await;
    assert_eq!(open(&after).len(), 1);
    assert_eq!(open(&after)[0]["id"], open(&r)[0]["id"]);
    assert_eq!(after.len(), r.len(), "no recall planned from history");

    // The database itself refuses a second open recall for the patient and service.
    let other = with_tx!(app.clinic.store(), tx => {
        let res = sqlx::query(
            "insert into recall (recall_id, organisation_id, client_id, patient_id, service_id, \
             origin, internal, due_on, due_at, status, created_at, updated_at) \
             select $1, organisation_id, client_id, patient_id, service_id, 'manual', internal, \
             due_on, due_at, 'open', created_at, updated_at from recall \
             where patient_id = $2 and status = 'open'",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(rex.as_str())
        .execute(&mut *tx)
        .await;
        res.is_err()
    });
    assert!(other, "recall_open_idx refuses a second open recall");
    // A manual one for the same service is refused by the API with the reason.
    let (s, b) = send(
        &doc,
        Method::POST,
        app.url("/recalls"),
        json!({ "patient_id": rex, "service_id": rabies, "due_on": "2033-01-01",
                "internal": true }),
    )
    .await;
    assert_eq!(s, 409, "{b}");
}

/// A worker that sends the outbox to `sink` and runs recall jobs, only when woken.
async fn sending_app(backend: &Backend, sink: &SmtpSink) -> (TestApp, Worker) {
    let (app, mail_only) = app_sending_to(backend, Some(sink.url())).await;
    mail_only.shutdown().await;
    let mut handlers = mail::sender::MailSender::handlers(&app.clinic);
    handlers.extend(RecallSender::handlers(&app.clinic));
    let worker = Worker::spawn(
        &app.clinic,
        handlers,
        WorkerConfig {
            poll: Duration::from_secs(3600),
            ..WorkerConfig::default()
        },
    );
    (app, worker)
}

/// `(status, count)` of recall send jobs, once none is queued or running with a due time
/// at or before now.
async fn settle(app: &TestApp) {
    let now = app.clock_now().timestamp_millis();
    app.clinic.wake_jobs();
    wait_until(Duration::from_secs(20), "due jobs done", || async {
        let busy: i64 = with_tx!(app.clinic.store(), tx => {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from job where status in ('queued', 'running') and run_at <= $1",
            )
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .unwrap()
        });
        if busy > 0 {
            app.clinic.wake_jobs();
        }
        (busy == 0).then_some(())
    })
    .await;
}

/// Recall mails of the outbox: `(to_address, status)`.
async fn recall_mails(app: &TestApp) -> Vec<(String, String)> {
    with_tx!(app.clinic.store(), tx => {
        sqlx::query_as::<_, (String, String)>(
            "select to_address, status from mail where kind = 'patient_recall' \
             order by created_at, mail_id",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap()
    })
}

fn to_of(raw: &str) -> String {
    header_lines(raw)
        .into_iter()
        .find(|h| h.starts_with("To:"))
        .unwrap_or_default()
}

pub async fn three_pets_get_one_mail_once_and_an_edited_rule_sends_nothing_again(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, worker) = sending_app(&backend, &sink).await;
    let w = app.world().await;
    veterinary_amsterdam(&app).await;
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let rabies = service(&app, &admin, "Rabies vaccination").await;
    let rule_body = json!({ "name": "Rabies", "service_id": rabies,
                            "interval": { "count": 1, "unit": "years" }, "schedule": [-14, 0] });
    let rule_id = ok_rule(&app, &admin, rule_body.clone()).await;
    let owner = w.client_a.to_string();
    let mut pets = Vec::new();
    for name in ["Rex", "Bella", "Max"] {
        let pet = animal(&app, &doc, &owner, name).await;
        recorded(&app, &doc, &pet, &rabies, "2030-03-01").await;
        pets.push(pet);
    }
    // The forward preview a fortnight before: one mail, three pets, to the client's address.
    app.clock.set(utc("2031-02-01T09:00:00Z"));
    let admin = app.login(ADMIN_A).await;
    let (s, b) = get(&admin, &app.url("/recalls/preview?days=20")).await;
    assert_eq!(s, 200, "{b}");
    let sendings = b["sendings"].as_array().unwrap();
    assert_eq!(sendings.len(), 1, "{b}");
    assert_eq!(sendings[0]["send_at"], "2031-02-15T07:00:00Z");
    assert_eq!(sendings[0]["client_id"], owner.as_str());
    let mails = sendings[0]["mails"].as_array().unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["channel"], "email");
    assert_eq!(mails[0]["to"], "patient@example.nl");
    assert_eq!(mails[0]["items"].as_array().unwrap().len(), 3);
    assert_eq!(mails[0]["items"][0]["rule_name"], "Rabies");
    assert_eq!(mails[0]["items"][0]["due_on"], "2031-03-01");
    assert_eq!(sendings[0]["suppressed"], json!([]));

    // Not yet due: nothing.
    app.clock.set(utc("2031-02-15T06:59:59Z"));
    settle(&app).await;
    assert!(recall_mails(&app).await.is_empty());
    // Due: one mail naming the three pets, at the SMTP server once.
    app.clock.set(utc("2031-02-15T07:00:01Z"));
    settle(&app).await;
    settle(&app).await;
    let messages = wait_messages(&sink, 1).await;
    assert_eq!(messages.len(), 1);
    let raw = &messages[0];
    assert!(to_of(raw).contains("patient@example.nl"), "{raw}");
    for name in ["Rex", "Bella", "Max"] {
        assert!(raw.contains(name), "{name} in the mail");
    }
    assert_eq!(
        recall_mails(&app).await,
        [("patient@example.nl".to_owned(), "sent".to_owned())]
    );
    // On the client's communication history, once.
    let doc = app.login(DOC_CARDIO).await;
    let (_, b) = get(&doc, &app.url(&format!("/clients/{owner}/communications"))).await;
    let kinds: Vec<&str> = b["communications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["patient_recall"], "{b}");
    // Each pet's step is sent with that mail.
    let r = recalls_of(&app, &doc, &pets[0]).await;
    let first = &r[0]["steps"][0];
    assert_eq!(first["status"], "sent");
    assert!(first["mail_id"].is_string());

    // Editing the rule (a new step a week before, a text of its own) re-plans only what is
    // pending: the fortnight's step is not sent again.
    let mut edited = rule_body.clone();
    edited["schedule"] = json!([-14, -7, 0]);
    edited["template"] = json!({ "subject": "Vaccination due for *|PATIENTS|*",
                                 "body": "Dear *|CLIENT_NAME|*,\n\n*|ITEMS|*\n\n*|ORGANISATION|*" });
    let admin = app.login(ADMIN_A).await;
    let (s, b) = send(
        &admin,
        Method::PUT,
        app.url(&format!("/recall-rules/{rule_id}")),
        edited,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    settle(&app).await;
    assert_eq!(sink.messages().len(), 1, "nothing re-sent by the edit");
    let r = recalls_of(&app, &doc, &pets[0]).await;
    let offsets: Vec<(i64, String)> = steps(&r[0]).into_iter().map(|(o, _, s)| (o, s)).collect();
    assert_eq!(
        offsets,
        [
            (-14, "sent".to_owned()),
            (-7, "pending".to_owned()),
            (0, "pending".to_owned())
        ]
    );
    // A week before: the second mail, in the rule's own words, still one for the three.
    app.clock.set(utc("2031-02-22T07:00:01Z"));
    settle(&app).await;
    settle(&app).await;
    let messages = wait_messages(&sink, 2).await;
    assert_eq!(messages.len(), 2);
    assert!(
        messages[1].contains("Vaccination due for Rex, Bella and Max"),
        "{}",
        messages[1]
    );
    // Waking again, or much later, sends nothing more for the past steps.
    settle(&app).await;
    assert_eq!(recall_mails(&app).await.len(), 2);
    worker.shutdown().await;
}

pub async fn no_wrong_message_each_suppression_is_recorded_with_its_reason(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, worker) = sending_app(&backend, &sink).await;
    let _w = app.world().await;
    veterinary_amsterdam(&app).await;
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let rabies = service(&app, &admin, "Rabies vaccination").await;
    ok_rule(
        &app,
        &admin,
        json!({ "name": "Rabies", "service_id": rabies,
                "interval": { "count": 1, "unit": "years" }, "schedule": [-14, 0] }),
    )
    .await;
    let mut owners = Vec::new();
    let mut pets = Vec::new();
    for who in ["deceased", "optout", "booked", "cancelled", "done", "fine"] {
        let c = client(
            &app,
            &doc,
            &format!("Owner {who}"),
            &format!("{who}@example.org"),
        )
        .await;
        let p = animal(&app, &doc, &c, "Pet").await;
        recorded(&app, &doc, &p, &rabies, "2030-03-01").await;
        owners.push(c);
        pets.push(p);
    }
    // Deceased: the death cancels the open recall and its steps in the same transaction.
    let (s, b) = send(
        &doc,
        Method::PUT,
        app.url(&format!("/patients/{}/deceased", pets[0])),
        json!({ "deceased_on": "2030-03-04" }),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let r = recalls_of(&app, &doc, &pets[0]).await;
    assert_eq!(r[0]["status"], "cancelled");
    assert_eq!(r[0]["closed_reason"], "patient_deceased");
    assert!(steps(&r[0]).iter().all(|(_, _, s)| s == "cancelled"));
    // A manual reminder for a deceased patient is refused.
    let (s, _) = send(
        &doc,
        Method::POST,
        app.url("/recalls"),
        json!({ "patient_id": pets[0], "title": "Call", "due_on": "2030-04-01",
                "internal": true }),
    )
    .await;
    assert_eq!(s, 409);
    // Opted out.
    let (s, b) = send(
        &doc,
        Method::PUT,
        app.url(&format!("/clients/{}/recall-opt-out", owners[1])),
        json!({ "opt_out": true }),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (_, b) = get(&doc, &app.url(&format!("/clients/{}/recalls", owners[1]))).await;
    assert_eq!(b["opt_out"], true);
    // Booked: an appointment on 20 February 2031; the other client's was cancelled.
    app.clock.set(utc("2031-02-01T09:00:00Z"));
    let doc = app.login(DOC_CARDIO).await;
    let admin = app.login(ADMIN_A).await;
    let mut appointment_ids = Vec::new();
    for owner in [&owners[2], &owners[3]] {
        let (s, b) = app
            .book(
                &doc,
                json!({ "client_id": owner, "local_start": "2031-02-20T10:00",
                        "duration_minutes": 15 }),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        appointment_ids.push(b["appointment"]["id"].as_str().unwrap().to_owned());
    }
    let (s, _) = post_empty(
        &doc,
        &app.url(&format!("/appointments/{}/cancel", appointment_ids[1])),
    )
    .await;
    assert_eq!(s, 200);
    // Done since: recorded early, the recall completes and its steps are cancelled.
    recorded(&app, &doc, &pets[4], &rabies, "2031-02-01").await;

    // The preview says what will happen, and why.
    // Twenty days ahead: the fortnight's step of each (the due date's falls later).
    let (s, b) = get(&admin, &app.url("/recalls/preview?days=20")).await;
    assert_eq!(s, 200, "{b}");
    let mut sent_to = Vec::new();
    let mut suppressed = Vec::new();
    for sending in b["sendings"].as_array().unwrap() {
        for m in sending["mails"].as_array().unwrap() {
            sent_to.push(m["to"].as_str().unwrap().to_owned());
        }
        for x in sending["suppressed"].as_array().unwrap() {
            suppressed.push((
                sending["client_name"].as_str().unwrap().to_owned(),
                x["reason"].as_str().unwrap().to_owned(),
            ));
        }
    }
    sent_to.sort();
    suppressed.sort();
    assert_eq!(
        sent_to,
        ["cancelled@example.org", "fine@example.org"],
        "{b}"
    );
    assert_eq!(
        suppressed,
        [
            ("Owner booked".to_owned(), "appointment_booked".to_owned()),
            ("Owner optout".to_owned(), "client_opted_out".to_owned()),
        ],
        "{b}"
    );

    // The appointments' own mails (two invitations, one cancellation) went out meanwhile.
    settle(&app).await;
    assert_eq!(wait_messages(&sink, 3).await.len(), 3);
    // The sending does exactly that.
    app.clock.set(utc("2031-02-15T07:00:01Z"));
    settle(&app).await;
    settle(&app).await;
    let messages = wait_messages(&sink, 5).await;
    assert_eq!(messages.len(), 5);
    let mut to: Vec<String> = messages
        .iter()
        .filter(|m| !m.contains("text/calendar"))
        .map(|m| to_of(m))
        .collect();
    to.sort();
    assert_eq!(to.len(), 2, "{to:?}");
    assert!(to[0].contains("cancelled@example.org") && to[1].contains("fine@example.org"));
    let doc = app.login(DOC_CARDIO).await;
    let reason_of = |r: &Vec<Value>| {
        r.iter()
            .flat_map(|x| x["steps"].as_array().unwrap().clone())
            .find(|s| s["offset_days"] == -14)
            .map(|s| (s["status"].clone(), s["reason"].clone()))
            .unwrap()
    };
    let expect = [
        (0, "cancelled", json!("patient_deceased")),
        (1, "suppressed", json!("client_opted_out")),
        (2, "suppressed", json!("appointment_booked")),
        (3, "sent", Value::Null),
        (4, "cancelled", json!("service_done")),
        (5, "sent", Value::Null),
    ];
    for (i, status, reason) in expect {
        let r = recalls_of(&app, &doc, &pets[i]).await;
        assert_eq!(reason_of(&r), (json!(status), reason), "pet {i}: {r:?}");
    }
    // The list shows the suppressions too (all statuses).
    let (_, b) = get(&doc, &app.url("/recalls?status=all&limit=200")).await;
    let reasons: Vec<&Value> = b["recalls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["steps"].as_array().unwrap())
        .filter_map(|s| s.get("reason"))
        .filter(|r| !r.is_null())
        .collect();
    assert!(reasons.contains(&&json!("appointment_booked")));
    worker.shutdown().await;
}

pub async fn manual_recalls_views_and_segregation(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    veterinary_amsterdam(&app).await;
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let exam = service(&app, &admin, "Annual exam").await;
    let rex = animal(&app, &doc, &w.client_a.to_string(), "Rex").await;
    let url = app.url("/recalls");
    // Refused with the field and the reason.
    for (body, field) in [
        (
            json!({ "patient_id": rex, "service_id": exam, "due_on": "2030-05-01",
                    "send_at": ["2030-03-04T08:00:00Z"] }),
            "send_at",
        ),
        (
            json!({ "patient_id": rex, "service_id": exam, "due_on": "2030-05-01" }),
            "send_at",
        ),
        (
            json!({ "patient_id": rex, "due_on": "2030-05-01", "internal": true }),
            "title",
        ),
        (
            json!({ "patient_id": rex, "service_id": exam, "due_on": "2030-05-01",
                    "send_at": ["2030-04-01T08:00:00Z"],
                    "text": { "subject": "Hi", "body": "*|APPOINTMENT|*" } }),
            "text.body",
        ),
    ] {
        let (s, b) = send(&doc, Method::POST, url.clone(), body).await;
        assert_field(s, &b, field);
    }
    let (s, b) = send(
        &doc,
        Method::POST,
        url.clone(),
        json!({ "patient_id": rex, "service_id": exam, "due_on": "2030-05-01",
                "send_at": ["2030-04-20T08:00:00Z", "2030-04-01T08:00:00Z"],
                "text": { "subject": "Exam for *|PATIENTS|*", "body": "Please call us." } }),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let manual = b["recall"].clone();
    assert_eq!(manual["origin"], "manual");
    assert_eq!(manual["colour"], "black", "58 days ahead");
    assert_eq!(manual["text"]["subject"], "Exam for *|PATIENTS|*");
    let times: Vec<&str> = manual["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["send_at"].as_str().unwrap())
        .collect();
    assert_eq!(times, ["2030-04-01T08:00:00Z", "2030-04-20T08:00:00Z"]);
    // An internal task on the client (its own patient), due today: yellow.
    let (s, b) = send(
        &doc,
        Method::POST,
        url.clone(),
        json!({ "patient_id": w.client_a, "title": "Phone about the lab results",
                "due_on": "2030-03-04", "internal": true }),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["recall"]["colour"], "yellow");
    let task = b["recall"]["id"].as_str().unwrap().to_owned();

    // The list: by due date, paged with a cursor, filtered.
    let (s, b) = get(&doc, &app.url("/recalls?limit=1")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["recalls"][0]["id"], task.as_str());
    let cursor = b["next_cursor"].as_str().unwrap().to_owned();
    let (_, b) = get(&doc, &app.url(&format!("/recalls?limit=1&cursor={cursor}"))).await;
    assert_eq!(b["recalls"][0]["id"], manual["id"]);
    assert_eq!(b["next_cursor"], Value::Null);
    let (_, b) = get(&doc, &app.url(&format!("/recalls?service_id={exam}"))).await;
    assert_eq!(b["recalls"].as_array().unwrap().len(), 1);
    let (_, b) = get(&doc, &app.url("/recalls?colour=yellow")).await;
    assert_eq!(b["recalls"].as_array().unwrap().len(), 1);
    let (_, b) = get(
        &doc,
        &app.url("/recalls?due_from=2030-04-01&due_to=2030-05-01"),
    )
    .await;
    assert_eq!(b["recalls"].as_array().unwrap().len(), 1);
    let (s, b) = get(&doc, &app.url("/recalls?cursor=nonsense")).await;
    assert_field(s, &b, "cursor");
    let (s, _) = get(&doc, &app.url("/recalls?colour=green")).await;
    assert!(s == 400 || s == 422);
    // On the client's and the patient's timeline.
    let (_, b) = get(&doc, &app.url(&format!("/clients/{}/timeline", w.client_a))).await;
    let recall_items = b["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "recall")
        .count();
    assert_eq!(recall_items, 2, "{b}");
    let (_, b) = get(&doc, &app.url(&format!("/patients/{rex}/timeline"))).await;
    assert!(
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == "recall")
    );

    // Closing: the task is done (by staff); a second close is a conflict.
    let (s, b) = post_empty(&doc, &app.url(&format!("/recalls/{task}/complete"))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["recall"]["status"], "completed");
    assert_eq!(b["recall"]["closed_reason"], "closed_by_staff");
    let (s, _) = post_empty(&doc, &app.url(&format!("/recalls/{task}/cancel"))).await;
    assert_eq!(s, 409);

    // Segregation: with strict client segregation the derma practitioner sees none of it.
    let (s, _) = send(
        &admin,
        Method::PUT,
        app.url("/organisation/settings"),
        json!({ "strict_client_segregation": true }),
    )
    .await;
    assert_eq!(s, 200);
    let derma = app.login(DOC_DERMA).await;
    let (_, b) = get(&derma, &app.url("/recalls?status=all")).await;
    assert_eq!(b["recalls"], json!([]), "{b}");
    let (s, _) = get(
        &derma,
        &app.url(&format!("/clients/{}/recalls", w.client_a)),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = post_empty(
        &derma,
        &app.url(&format!(
            "/recalls/{}/cancel",
            manual["id"].as_str().unwrap()
        )),
    )
    .await;
    assert_eq!(s, 404);
    let (_, b) = get(&derma, &app.url("/recalls/preview")).await;
    assert_eq!(b["sendings"], json!([]));
    // The organisation admin sees all; another organisation nothing.
    let (_, b) = get(&admin, &app.url("/recalls?status=all")).await;
    assert_eq!(b["recalls"].as_array().unwrap().len(), 2);
    let admin_b = app.login(ADMIN_B).await;
    let (_, b) = get(&admin_b, &app.url("/recalls?status=all")).await;
    assert_eq!(b["recalls"], json!([]));
    let (s, _) = get(&admin_b, &app.url(&format!("/patients/{rex}/recalls"))).await;
    assert_eq!(s, 404);
    let (s, _) = send(
        &admin_b,
        Method::PUT,
        app.url(&format!("/clients/{}/recall-opt-out", w.client_a)),
        json!({ "opt_out": true }),
    )
    .await;
    assert_eq!(s, 404);
}

/// A worker that claimed a recall job and died: nothing is sent while its lease runs; then the
/// next worker takes the job over and the mail goes once; the dead worker's late completion is
/// refused (its lease was lost).
pub async fn a_recall_job_whose_worker_died_is_sent_once_by_the_next(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, mail_only) = app_sending_to(&backend, Some(sink.url())).await;
    mail_only.shutdown().await;
    let w = app.world().await;
    veterinary_amsterdam(&app).await;
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let rabies = service(&app, &admin, "Rabies vaccination").await;
    ok_rule(
        &app,
        &admin,
        json!({ "name": "Rabies", "service_id": rabies,
                "interval": { "count": 1, "unit": "years" }, "schedule": [0] }),
    )
    .await;
    let rex = animal(&app, &doc, &w.client_a.to_string(), "Rex").await;
    recorded(&app, &doc, &rex, &rabies, "2030-03-01").await;
    app.clock.set(utc("2031-03-01T07:00:01Z"));
    let dead = app
        .clinic
        .store()
        .claim_job("dead-worker", app.clock_now(), Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the recall job is due");
    assert_eq!(dead.kind, "recall.send");
    let mut handlers = mail::sender::MailSender::handlers(&app.clinic);
    handlers.extend(RecallSender::handlers(&app.clinic));
    let worker = Worker::spawn(
        &app.clinic,
        handlers,
        WorkerConfig {
            poll: Duration::from_secs(3600),
            ..WorkerConfig::default()
        },
    );
    // Its lease still runs: nothing is sent.
    app.clinic.wake_jobs();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(recall_mails(&app).await.is_empty());
    // The lease expires: the next worker sends it, once.
    app.clock.advance(chrono::Duration::seconds(61));
    settle(&app).await;
    wait_until(Duration::from_secs(20), "the recall job done", || async {
        let state = app
            .clinic
            .store()
            .job_state(dead.id)
            .await
            .unwrap()
            .unwrap();
        (state.status == "done").then_some(())
    })
    .await;
    settle(&app).await;
    let messages = wait_messages(&sink, 1).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        recall_mails(&app).await,
        [("patient@example.nl".to_owned(), "sent".to_owned())]
    );
    // The dead worker wakes up late: its completion is refused, nothing is sent again.
    assert!(
        !app.clinic
            .store()
            .complete_job(&dead, app.clock_now())
            .await
            .unwrap()
    );
    settle(&app).await;
    assert_eq!(sink.messages().len(), 1);
    let r = recalls_of(&app, &doc_relogin(&app).await, &rex).await;
    assert_eq!(r[0]["steps"][0]["status"], "sent");
    worker.shutdown().await;
}

async fn doc_relogin(app: &TestApp) -> reqwest::Client {
    app.login(DOC_CARDIO).await
}
