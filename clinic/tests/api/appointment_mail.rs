//! The appointment mails end to end through a real SMTP server (aiosmtpd): booking records the
//! invitation in the booking's transaction (a keyed repeat sends nothing twice), each participant
//! with an address gets their own link, the calendar lifecycle (one UID, SEQUENCE 0 → 1 → 2,
//! REQUEST → REQUEST → CANCEL) parsed back by Python's `icalendar`, the link works until the
//! cancellation; reminders at the organisation's local time, replaced on reschedule, dropped on
//! cancel, recorded once, and none when reminders are off; a client address the outbox refuses
//! refuses the booking and writes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use consultroom_clinic::Store;
use consultroom_clinic::appointments::ReminderSender;
use consultroom_clinic::jobs::worker::{Worker, WorkerConfig};
use consultroom_clinic::mail;
use consultroom_testkit::smtp::SmtpSink;
use consultroom_testkit::wait_until;
use serde_json::{Value, json};

use crate::jobs::with_tx;
use crate::mail::{app_sending_to, header_lines, wait_messages};
use crate::support::*;
use crate::templates::{part_body, python_parse_ics};

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> (u16, Value) {
    let res = http.request(method, url).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn amsterdam(app: &TestApp, extra: Value) {
    let admin = app.login(ADMIN_A).await;
    let mut body = json!({ "time_zone": "Europe/Amsterdam" });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (s, b) = send(
        &admin,
        reqwest::Method::PUT,
        app.url("/organisation/settings"),
        body,
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

/// `(status, run_at)` of the job with `key`, if stored.
async fn job_by_key(store: &Store, key: &str) -> Option<(String, DateTime<Utc>)> {
    let row: Option<(String, i64)> = with_tx!(store, tx => {
        sqlx::query_as("select status, run_at from job where unique_key = $1")
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .unwrap()
    });
    row.map(|(s, ms)| (s, DateTime::from_timestamp_millis(ms).unwrap()))
}

/// Reminder jobs of `appointment` by status.
async fn reminder_jobs(store: &Store, appointment: &str) -> Vec<(String, String)> {
    with_tx!(store, tx => {
        sqlx::query_as::<_, (String, String)>(
            "select unique_key, status from job where unique_key like $1 order by unique_key",
        )
        .bind(format!("appointment:{appointment}:reminder:%"))
        .fetch_all(&mut *tx)
        .await
        .unwrap()
    })
}

/// Mail rows of `appointment`: `(kind, to_address, status)`, oldest first.
async fn mails_of(store: &Store, appointment: &str) -> Vec<(String, String, String)> {
    with_tx!(store, tx => {
        sqlx::query_as::<_, (String, String, String)>(
            "select kind, to_address, status from mail where appointment_id = $1 \
             order by created_at, mail_id",
        )
        .bind(appointment.parse::<consultroom_clinic::ids::AppointmentId>().unwrap())
        .fetch_all(&mut *tx)
        .await
        .unwrap()
    })
}

async fn wait_all_sent(store: &Store, appointment: &str, n: usize) {
    wait_until(
        Duration::from_secs(20),
        "the appointment's mails sent",
        || async {
            let m = mails_of(store, appointment).await;
            (m.len() == n && m.iter().all(|(_, _, s)| s == "sent")).then_some(())
        },
    )
    .await
}

fn message_to<'a>(messages: &'a [String], to: &str, method: &str) -> &'a String {
    messages
        .iter()
        .find(|m| {
            header_lines(m)
                .iter()
                .any(|h| h.starts_with("To:") && h.contains(to))
                && m.contains(&format!("method={method}"))
        })
        .unwrap_or_else(|| panic!("no {method} message to {to}"))
}

fn calendar(raw: &str, method: &str) -> Value {
    let ics = part_body(
        raw,
        &format!("Content-Type: text/calendar; charset=utf-8; method={method}"),
    );
    python_parse_ics(&ics)
}

pub async fn booking_rescheduling_and_cancelling_mail_every_participant(backend: Backend) {
    use reqwest::Method;
    let sink = SmtpSink::start();
    let (app, worker) = app_sending_to(&backend, Some(sink.url())).await;
    let w = app.world().await;
    amsterdam(&app, json!({})).await;
    let doc = app.login(DOC_CARDIO).await;
    // A guest with an address (their own link) and one without (no mail).
    let (s, guest) = send(
        &doc,
        Method::POST,
        app.url("/external-participants"),
        json!({ "name": "Gert Interpreter", "email": "gert@interpreters.example" }),
    )
    .await;
    assert_eq!(s, 201, "{guest}");
    let guest_id = guest["external_participant"]["id"]
        .as_str()
        .or_else(|| guest["id"].as_str())
        .expect("the record's id")
        .to_owned();
    let body = json!({
        "client_id": w.client_a,
        "local_start": "2030-03-05T10:00",
        "duration_minutes": 20,
        "personal_message": "Please have your medication list ready.",
        "guests": [{ "external_participant_id": guest_id }, { "name": "Partner" }],
    });
    let book = |key: &'static str| {
        let doc = doc.clone();
        let url = app.url("/appointments");
        let body = body.clone();
        async move {
            let res = doc
                .post(url)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (s, booked) = book("booking-1").await;
    assert_eq!(s, 201, "{booked}");
    let id = booked["appointment"]["id"].as_str().unwrap().to_owned();
    let client_url = booked["invitation_url"].as_str().unwrap().to_owned();
    let guest_url = booked["guests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["guest"]["name"] == "Gert Interpreter")
        .unwrap()["invitation_url"]
        .as_str()
        .unwrap()
        .to_owned();
    // The keyed repeat answers the same booking and records nothing more.
    let (s, again) = book("booking-1").await;
    assert_eq!(s, 201, "{again}");
    assert_eq!(again["appointment"]["id"], booked["appointment"]["id"]);
    wait_all_sent(app.clinic.store(), &id, 2).await;
    let messages = wait_messages(&sink, 2).await;
    assert_eq!(
        messages.len(),
        2,
        "one invitation per participant with an address"
    );

    let to_client = message_to(&messages, "patient@example.nl", "REQUEST");
    let to_guest = message_to(&messages, "gert@interpreters.example", "REQUEST");
    // Each gets their own link, and only their own address is in their message.
    assert!(to_client.contains(&client_url), "the client's link");
    assert!(!to_client.contains(&guest_url));
    assert!(to_guest.contains(&guest_url), "the guest's link");
    assert!(!to_guest.contains(&client_url));
    assert!(!to_client.contains("gert@interpreters.example"));
    assert!(to_client.contains("Please have your medication list ready."));
    let invite = calendar(to_client, "REQUEST");
    assert_eq!(invite["method"], "REQUEST", "{invite}");
    let ev = &invite["events"][0];
    assert_eq!(ev["sequence"], 0);
    // 10:00 in Amsterdam in March (UTC+1).
    assert_eq!(ev["dtstart"], "2030-03-05T09:00:00+00:00");
    let uid = ev["uid"].clone();
    // The reminder: on the day at 08:00 local (07:00Z).
    let (status, at) = job_by_key(
        app.clinic.store(),
        &format!("appointment:{id}:reminder:email:0"),
    )
    .await
    .expect("a reminder job");
    assert_eq!(status, "queued");
    assert_eq!(at, "2030-03-05T07:00:00Z".parse::<DateTime<Utc>>().unwrap());

    // Reschedule: an update with the same UID and SEQUENCE 1; the reminder follows.
    let (s, b) = send(
        &doc,
        Method::POST,
        app.url(&format!("/appointments/{id}/reschedule")),
        json!({ "local_start": "2030-03-06T11:00" }),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    wait_all_sent(app.clinic.store(), &id, 4).await;
    let messages = wait_messages(&sink, 4).await;
    let updates: Vec<Value> = messages[2..]
        .iter()
        .map(|m| calendar(m, "REQUEST"))
        .collect();
    for u in &updates {
        assert_eq!(u["events"][0]["uid"], uid, "{u}");
        assert_eq!(u["events"][0]["sequence"], 1, "{u}");
        assert_eq!(
            u["events"][0]["dtstart"], "2030-03-06T10:00:00+00:00",
            "{u}"
        );
    }
    assert_eq!(
        reminder_jobs(app.clinic.store(), &id).await,
        vec![(
            format!("appointment:{id}:reminder:email:1"),
            "queued".to_owned()
        )],
        "the old reminder is replaced"
    );
    let (_, at) = job_by_key(
        app.clinic.store(),
        &format!("appointment:{id}:reminder:email:1"),
    )
    .await
    .unwrap();
    assert_eq!(at, "2030-03-06T07:00:00Z".parse::<DateTime<Utc>>().unwrap());

    // Half an hour before the new start the link from the mail opens the waiting room.
    app.clock.set("2030-03-06T09:30:00Z".parse().unwrap());
    let doc = app.login(DOC_CARDIO).await; // the clock jumped past the session's life
    let (s, b) = app.resolve(&token_of(&client_url)).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = app.resolve(&token_of(&guest_url)).await;
    assert_eq!(s, 200, "{b}");

    // Cancel: METHOD:CANCEL, SEQUENCE 2, no reminder left, the link refused.
    let (s, b) = post_empty(&doc, &app.url(&format!("/appointments/{id}/cancel"))).await;
    assert_eq!(s, 200, "{b}");
    wait_all_sent(app.clinic.store(), &id, 6).await;
    let messages = wait_messages(&sink, 6).await;
    let cancel = calendar(
        message_to(&messages[4..], "patient@example.nl", "CANCEL"),
        "CANCEL",
    );
    assert_eq!(cancel["method"], "CANCEL");
    assert_eq!(cancel["events"][0]["uid"], uid);
    assert_eq!(cancel["events"][0]["sequence"], 2);
    assert_eq!(cancel["events"][0]["status"], "CANCELLED");
    // No reminder left pending. (The clock stands past the reminder's time here, so this test's
    // worker, which runs mail jobs only, may already have taken the reminder job and failed it
    // for want of a handler: only a queued one would still go out.)
    let left = reminder_jobs(app.clinic.store(), &id).await;
    assert!(left.iter().all(|(_, s)| s != "queued"), "{left:?}");
    let (s, _) = app.resolve(&token_of(&client_url)).await;
    assert_ne!(s, 200, "a cancelled appointment's link is refused");
    // Cancelling again changes nothing and mails nothing.
    let (s, _) = post_empty(&doc, &app.url(&format!("/appointments/{id}/cancel"))).await;
    assert_eq!(s, 200);
    assert_eq!(mails_of(app.clinic.store(), &id).await.len(), 6);
    let kinds: Vec<String> = mails_of(app.clinic.store(), &id)
        .await
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert_eq!(
        kinds,
        [
            "appointment_invitation",
            "appointment_invitation",
            "appointment_update",
            "appointment_update",
            "appointment_cancellation",
            "appointment_cancellation"
        ]
    );
    worker.shutdown().await;
}

pub async fn reminders_go_once_at_the_local_time_and_never_for_a_cancelled_appointment(
    backend: Backend,
) {
    use reqwest::Method;
    let sink = SmtpSink::start();
    // One worker runs both kinds (as `serve` does), only when woken.
    let (app, mail_only) = app_sending_to(&backend, Some(sink.url())).await;
    mail_only.shutdown().await;
    let mut handlers = mail::sender::MailSender::handlers(&app.clinic);
    handlers.extend(ReminderSender::handlers(&app.clinic));
    let worker = Worker::spawn(
        &app.clinic,
        handlers,
        WorkerConfig {
            poll: Duration::from_secs(3600),
            ..WorkerConfig::default()
        },
    );
    let w = app.world().await;
    amsterdam(
        &app,
        json!({ "reminder_days_before": 1, "reminder_time": "18:30" }),
    )
    .await;
    let doc = app.login(DOC_CARDIO).await;
    let book = |doc: &reqwest::Client, local: &'static str| {
        let doc = doc.clone();
        let url = app.url("/appointments");
        let client = w.client_a;
        async move {
            let res = doc
                .post(url)
                .json(&json!({ "client_id": client, "local_start": local, "duration_minutes": 15 }))
                .send()
                .await
                .unwrap();
            let b: Value = res.json().await.unwrap();
            b["appointment"]["id"].as_str().expect("booked").to_owned()
        }
    };
    let kept = book(&doc, "2030-03-06T09:00").await;
    let cancelled = book(&doc, "2030-03-06T09:30").await;
    let (s, _) = post_empty(&doc, &app.url(&format!("/appointments/{cancelled}/cancel"))).await;
    assert_eq!(s, 200);
    wait_all_sent(app.clinic.store(), &kept, 1).await;
    wait_all_sent(app.clinic.store(), &cancelled, 2).await;
    // The day before at 18:30 local: 2030-03-05T17:30Z.
    let key = format!("appointment:{kept}:reminder:email:0");
    let (_, at) = job_by_key(app.clinic.store(), &key).await.unwrap();
    assert_eq!(at, "2030-03-05T17:30:00Z".parse::<DateTime<Utc>>().unwrap());
    assert!(
        reminder_jobs(app.clinic.store(), &cancelled)
            .await
            .is_empty()
    );

    // Not yet due: waking the worker sends nothing.
    app.clock.set(at - chrono::Duration::seconds(1));
    app.clinic.wake_jobs();
    assert_eq!(
        job_by_key(app.clinic.store(), &key).await.unwrap().0,
        "queued"
    );
    // Due: the reminder is recorded, then sent, once.
    app.clock.set(at + chrono::Duration::seconds(1));
    app.clinic.wake_jobs();
    wait_until(Duration::from_secs(20), "the reminder job done", || async {
        (job_by_key(app.clinic.store(), &key).await.unwrap().0 == "done").then_some(())
    })
    .await;
    app.clinic.wake_jobs();
    wait_all_sent(app.clinic.store(), &kept, 2).await;
    let rows = mails_of(app.clinic.store(), &kept).await;
    assert_eq!(rows[1].0, "appointment_reminder");
    assert_eq!(rows[1].1, "patient@example.nl");
    // The reminder's send job is due just before the reminder was (not at "now"): the worker
    // sends it before any other job that fell due with the reminder (a burst at 08:00).
    let send_due: i64 = with_tx!(app.clinic.store(), tx => {
        sqlx::query_scalar(
            "select j.run_at from mail m join job j on j.job_id = m.job_id \
             where m.appointment_id = $1 and m.kind = 'appointment_reminder'",
        )
        .bind(kept.parse::<consultroom_clinic::ids::AppointmentId>().unwrap())
        .fetch_one(&mut *tx)
        .await
        .unwrap()
    });
    assert_eq!(
        send_due,
        (at - chrono::Duration::milliseconds(1)).timestamp_millis()
    );
    let messages = wait_messages(&sink, 4).await;
    let reminder = messages
        .iter()
        .find(|m| !m.contains("text/calendar"))
        .expect("the reminder (no calendar part)");
    assert!(
        header_lines(reminder)
            .iter()
            .any(|h| h.starts_with("To:") && h.contains("patient@example.nl"))
    );
    assert!(reminder.contains("/join#"), "the reminder carries the link");
    // Waking again records nothing more.
    app.clinic.wake_jobs();
    app.clock.advance(chrono::Duration::days(2));
    app.clinic.wake_jobs();
    assert_eq!(mails_of(app.clinic.store(), &kept).await.len(), 2);
    assert!(
        mails_of(app.clinic.store(), &cancelled)
            .await
            .iter()
            .all(|(k, _, _)| k != "appointment_reminder")
    );

    // Reminders off: a new booking gets no reminder job.
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let (s, b) = send(
        &admin,
        Method::PUT,
        app.url("/organisation/settings"),
        json!({ "appointment_reminders": false }),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let quiet = book(&doc, "2030-03-09T09:00").await;
    assert!(reminder_jobs(app.clinic.store(), &quiet).await.is_empty());
    // Bad settings are refused by name.
    for (field, value) in [
        ("reminder_time", json!("8 uur")),
        ("reminder_days_before", json!(15)),
    ] {
        let (s, b) = send(
            &admin,
            Method::PUT,
            app.url("/organisation/settings"),
            json!({ field: value }),
        )
        .await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["error"]["field"], field);
    }
    worker.shutdown().await;
}

pub async fn a_client_address_the_outbox_refuses_refuses_the_booking(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    // An address stored before today's checks (an import): lettre cannot send to it.
    with_tx!(app.clinic.store(), tx => {
        sqlx::query("update client set email = $1 where client_id = $2")
            .bind("jan at example")
            .bind(w.client_a)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    });
    let doc = app.login(DOC_CARDIO).await;
    let (s, b) = app
        .book(
            &doc,
            json!({ "client_id": w.client_a, "local_start": "2030-03-05T10:00", "duration_minutes": 15 }),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["field"], "client_id");
    assert!(
        !b.to_string().contains("jan at example"),
        "the address is not echoed"
    );
    let (s, list) = get(
        &doc,
        &app.url("/appointments?from=2030-03-01T00:00:00Z&to=2030-03-31T00:00:00Z"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(list["appointments"], json!([]), "nothing half-created");
}

pub async fn a_new_client_is_created_with_its_booking_or_not_at_all(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    amsterdam(&app, json!({})).await;
    let doc = app.login(DOC_CARDIO).await;
    let clients = |q: &'static str| {
        let doc = doc.clone();
        let url = app.url(&format!("/clients?q={q}"));
        async move { get(&doc, &url).await.1["total"].as_i64().unwrap() }
    };
    let nina = json!({ "name": "Nina Newclient", "email": "nina@example.org", "language": "de" });
    // Refused booking (a local time the clocks skip): no client left behind.
    let (s, b) = app
        .book(&doc, json!({ "new_client": nina, "local_start": "2030-03-31T02:30", "duration_minutes": 15 }))
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["field"], "local_start");
    assert_eq!(clients("Newclient").await, 0);
    // Both or neither: refused.
    for body in [
        json!({ "client_id": w.client_a, "new_client": nina, "local_start": "2030-03-05T10:00", "duration_minutes": 15 }),
        json!({ "local_start": "2030-03-05T10:00", "duration_minutes": 15 }),
    ] {
        let (s, b) = app.book(&doc, body).await;
        assert_eq!(s, 422, "{b}");
    }
    // An invalid address is refused with the register's reason, nothing created.
    let (s, b) = app
        .book(&doc, json!({ "new_client": { "name": "Nina Newclient", "email": "nina@" }, "local_start": "2030-03-05T10:00", "duration_minutes": 15 }))
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["error"]["field"], "email");
    assert_eq!(clients("Newclient").await, 0);
    // Booked: the client exists, filed with the practitioner and department, and is mailed.
    let (s, b) = app
        .book(&doc, json!({ "new_client": nina, "local_start": "2030-03-05T10:00", "duration_minutes": 15 }))
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["mailed_to"], "nina@example.org");
    let client_id = b["appointment"]["client"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, c) = get(&doc, &app.url(&format!("/clients/{client_id}"))).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["client"]["practitioner_id"], json!(w.doc_cardio));
    assert_eq!(c["client"]["department_id"], json!(w.cardio));
    assert_eq!(c["client"]["language"], "de");
    let id = b["appointment"]["id"].as_str().unwrap().to_owned();
    let rows = mails_of(app.clinic.store(), &id).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "appointment_invitation");
    assert_eq!(rows[0].1, "nina@example.org");
    // A client number that is taken: 409, and neither client nor appointment is written.
    let (s, b) = send(
        &doc,
        Method::PUT,
        app.url(&format!("/clients/{client_id}")),
        json!({ "name": "Nina Newclient", "email": "nina@example.org", "client_number": "N-1" }),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = app
        .book(&doc, json!({ "new_client": { "name": "Otto Taken", "client_number": "N-1" }, "local_start": "2030-03-06T10:00", "duration_minutes": 15 }))
        .await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(clients("Taken").await, 0);
    let (_, list) = get(
        &doc,
        &app.url("/appointments?from=2030-03-01T00:00:00Z&to=2030-04-01T00:00:00Z"),
    )
    .await;
    assert_eq!(list["appointments"].as_array().unwrap().len(), 1);
}

/// Issue #12 ("each participant gets their own link"): a guest added to a booked appointment
/// whose record has an address gets the invitation by mail — their own link, the appointment's
/// UID and current SEQUENCE — recorded with the guest; one without an address gets none; the
/// client gets nothing new. A later reschedule reaches the guest too (their link is derived).
pub async fn a_guest_added_later_gets_their_own_invitation_mail(backend: Backend) {
    use reqwest::Method;
    let sink = SmtpSink::start();
    let (app, worker) = app_sending_to(&backend, Some(sink.url())).await;
    let w = app.world().await;
    amsterdam(&app, json!({})).await;
    let doc = app.login(DOC_CARDIO).await;
    let (s, booked) = send(
        &doc,
        Method::POST,
        app.url("/appointments"),
        json!({ "client_id": w.client_a, "local_start": "2030-03-05T10:00", "duration_minutes": 20 }),
    )
    .await;
    assert_eq!(s, 201, "{booked}");
    let id = booked["appointment"]["id"].as_str().unwrap().to_owned();
    wait_all_sent(app.clinic.store(), &id, 1).await;
    let first = calendar(&wait_messages(&sink, 1).await[0], "REQUEST");
    let uid = first["events"][0]["uid"].clone();
    // Rescheduled once: SEQUENCE 1 before the guest comes.
    let (s, b) = send(
        &doc,
        Method::POST,
        app.url(&format!("/appointments/{id}/reschedule")),
        json!({ "local_start": "2030-03-05T11:00" }),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    wait_all_sent(app.clinic.store(), &id, 2).await;

    let (s, record) = send(
        &doc,
        Method::POST,
        app.url("/external-participants"),
        json!({ "name": "Ilse Interpreter", "email": "ilse@interpreters.example" }),
    )
    .await;
    assert_eq!(s, 201, "{record}");
    let record_id = record["external_participant"]["id"]
        .as_str()
        .or_else(|| record["id"].as_str())
        .expect("the record's id")
        .to_owned();
    let (s, invited) = send(
        &doc,
        Method::POST,
        app.url(&format!("/appointments/{id}/guests")),
        json!({ "external_participant_id": record_id }),
    )
    .await;
    assert_eq!(s, 201, "{invited}");
    assert_eq!(invited["emailed"], true);
    let guest_url = invited["invitation_url"].as_str().unwrap().to_owned();
    let (s, ad_hoc) = send(
        &doc,
        Method::POST,
        app.url(&format!("/appointments/{id}/guests")),
        json!({ "name": "Partner" }),
    )
    .await;
    assert_eq!(s, 201, "{ad_hoc}");
    assert_eq!(ad_hoc["emailed"], false, "no address, no mail");

    wait_all_sent(app.clinic.store(), &id, 3).await;
    let messages = wait_messages(&sink, 3).await;
    assert_eq!(messages.len(), 3, "only the guest's invitation is new");
    let to_guest = message_to(&messages, "ilse@interpreters.example", "REQUEST");
    assert!(to_guest.contains(&guest_url), "the guest's own link");
    assert!(!to_guest.contains("patient@example.nl"));
    let invite = calendar(to_guest, "REQUEST");
    assert_eq!(invite["events"][0]["uid"], uid);
    assert_eq!(invite["events"][0]["sequence"], 1);
    assert_eq!(invite["events"][0]["dtstart"], "2030-03-05T10:00:00+00:00");
    // The link in the mail resolves as the guest.
    app.clock
        .set("2030-03-05T09:55:00Z".parse::<DateTime<Utc>>().unwrap());
    let (s, resolved) = app.resolve(&token_of(&guest_url)).await;
    assert_eq!(s, 200, "{resolved}");
    assert_eq!(resolved["guest"], true);
    assert_eq!(resolved["patient_display_name"], "Ilse Interpreter");

    // A second reschedule reaches the client and the guest: SEQUENCE 2 for both (signed in
    // again: the clock moved past the first session).
    let doc = app.login(DOC_CARDIO).await;
    let (s, b) = send(
        &doc,
        Method::POST,
        app.url(&format!("/appointments/{id}/reschedule")),
        json!({ "local_start": "2030-03-05T12:00" }),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    wait_all_sent(app.clinic.store(), &id, 5).await;
    let messages = wait_messages(&sink, 5).await;
    for m in &messages[3..] {
        assert_eq!(calendar(m, "REQUEST")["events"][0]["sequence"], 2);
    }
    assert!(messages[3..].iter().any(|m| m.contains(&guest_url)));
    worker.shutdown().await;
}
