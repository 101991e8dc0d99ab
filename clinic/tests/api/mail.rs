//! The e-mail outbox through a real SMTP server (aiosmtpd, `consultroom_testkit::smtp`): the raw
//! message as received (headers, both parts, the calendar part, Message-ID), no header
//! injection through names or subjects, connection refused then delivered, 4xx retried then
//! delivered, 5xx at RCPT failed and not retried (and shown in `GET /mail`), "do not send
//! e-mails" holding mail; and the HTTP API's roles, scoping and refusals.

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Span;
use consultroom_clinic::jobs::worker::{Worker, WorkerConfig};
use consultroom_clinic::mail::{
    self, CalendarMethod, CalendarPart, MailKind, OutgoingMail, Related, SmtpMailer,
};
use consultroom_clinic::{Clinic, OrganisationId, Store};
use consultroom_testkit::smtp::{SmtpSink, free_port};
use consultroom_testkit::wait_until;
use serde_json::{Value, json};

use crate::jobs::with_tx;
use crate::support::*;

const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Consultroom//test//EN\r\n\
METHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:appointment-1@consultroom.test\r\nSEQUENCE:0\r\n\
DTSTAMP:20300304T090000Z\r\nDTSTART:20300304T100000Z\r\nDTEND:20300304T101500Z\r\n\
SUMMARY:Video consultation\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

fn mail_to(org: OrganisationId, name: &str, address: &str, subject: &str) -> OutgoingMail {
    OutgoingMail {
        organisation_id: org,
        kind: MailKind::AppointmentInvitation,
        to_name: name.to_owned(),
        to_address: address.to_owned(),
        subject: subject.to_owned(),
        text_body:
            "Your appointment is on 4 March at 10:00.\nJoin: https://consultroom.test/join#t\n"
                .to_owned(),
        html_body: "<p>Your appointment is on <b>4 March</b> at 10:00.</p>".to_owned(),
        calendar: Some(CalendarPart {
            method: CalendarMethod::Request,
            ics: ICS.to_owned(),
        }),
        related: Related::default(),
        created_by: None,
    }
}

/// A clinic whose mail goes to `smtp_url`, with a worker that acts only when woken.
pub async fn app_sending_to(backend: &Backend, smtp_url: Option<String>) -> (TestApp, Worker) {
    let app = spawn_app_configured(backend, Options::default(), |config| {
        config.mail.from = "Clinic A <noreply@consultroom.test>".parse().unwrap();
        config.mail.mailer = smtp_url.map(|u| {
            Arc::new(SmtpMailer::from_url(&u).expect("smtp url")) as Arc<dyn mail::Mailer>
        });
    })
    .await;
    let worker = Worker::spawn(
        &app.clinic,
        mail::sender::MailSender::handlers(&app.clinic),
        WorkerConfig {
            poll: Duration::from_secs(3600),
            ..WorkerConfig::default()
        },
    );
    (app, worker)
}

pub async fn enqueue(clinic: &Clinic, mail: &OutgoingMail) -> mail::Queued {
    let stamp = clinic.mail_stamp();
    let queued = with_tx!(clinic.store(), tx => {
        let q = mail::enqueue(&mut *tx, mail, &stamp).await.unwrap();
        tx.commit().await.unwrap();
        q
    });
    clinic.wake_jobs();
    queued
}

pub async fn wait_status(
    store: &Store,
    id: consultroom_clinic::ids::MailId,
    status: &str,
    attempts: i32,
) -> mail::db::MailRow {
    wait_until(Duration::from_secs(20), status, || async {
        store
            .mail_by_id(id)
            .await
            .unwrap()
            .filter(|m| m.status == status && m.attempts == attempts)
    })
    .await
}

pub async fn wait_messages(sink: &SmtpSink, n: usize) -> Vec<String> {
    wait_until(
        Duration::from_secs(20),
        "messages at the SMTP server",
        || async {
            let m = sink.messages();
            (m.len() >= n).then_some(m)
        },
    )
    .await
}

/// The header block of a raw message, unfolded.
pub fn header_lines(raw: &str) -> Vec<String> {
    let head = raw.replace("\r\n", "\n");
    let head = head.split("\n\n").next().unwrap_or("").to_owned();
    let mut lines: Vec<String> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = lines.last_mut() {
                last.push_str(line);
            }
        } else {
            lines.push(line.to_owned());
        }
    }
    lines
}

pub async fn the_received_message_has_both_parts_the_calendar_and_its_message_id(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, worker) = app_sending_to(&backend, Some(sink.url())).await;
    let w = app.world().await;
    // CR/LF in the name and the subject must not become headers of their own.
    let mail = mail_to(
        w.org_a,
        "Jan\r\nBcc: spy@evil.test",
        "jan@example.org",
        "Your appointment\r\nX-Injected: yes",
    );
    let queued = enqueue(&app.clinic, &mail).await;
    let row = wait_status(app.clinic.store(), queued.id, "sent", 1).await;
    let messages = wait_messages(&sink, 1).await;
    assert_eq!(messages.len(), 1);
    let raw = &messages[0];
    let headers = header_lines(raw);
    let named = |name: &str| {
        headers
            .iter()
            .filter(|h| {
                h.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        named("Message-ID"),
        [format!("Message-ID: {}", row.message_id)]
    );
    assert_eq!(row.message_id, queued.message_id);
    assert!(queued.message_id.ends_with("@consultroom.test>"));
    assert!(named("Bcc").is_empty(), "{raw}");
    assert!(named("X-Injected").is_empty(), "{raw}");
    assert_eq!(
        named("Subject"),
        ["Subject: Your appointment  X-Injected: yes"]
    );
    assert_eq!(named("To").len(), 1);
    // The name is one encoded word (RFC 2047) inside the one To header.
    let to = named("To");
    assert_eq!(to.len(), 1);
    let word = to[0]
        .strip_prefix("To: =?utf-8?b?")
        .and_then(|r| r.strip_suffix("?= <jan@example.org>"))
        .unwrap_or_else(|| panic!("{to:?}"));
    use base64::Engine as _;
    let name = base64::engine::general_purpose::STANDARD
        .decode(word)
        .unwrap();
    assert_eq!(String::from_utf8(name).unwrap(), "Jan  Bcc: spy@evil.test");
    assert_eq!(
        named("From"),
        ["From: \"Clinic A\" <noreply@consultroom.test>"]
    );
    // Only the one recipient got it.
    assert_eq!(sink.rcpt_log().trim(), "250 jan@example.org");
    // multipart/mixed [ multipart/alternative [plain, html, calendar], invite.ics ]
    assert!(
        named("Content-Type")[0].contains("multipart/mixed"),
        "{raw}"
    );
    assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");
    assert!(
        raw.contains("Content-Type: text/plain; charset=utf-8"),
        "{raw}"
    );
    assert!(
        raw.contains("Content-Type: text/html; charset=utf-8"),
        "{raw}"
    );
    assert!(
        raw.contains("Content-Type: text/calendar; charset=utf-8; method=REQUEST"),
        "{raw}"
    );
    assert!(raw.contains("filename=\"invite.ics\""), "{raw}");
    assert!(
        raw.contains("Join: https://consultroom.test/join#t"),
        "{raw}"
    );
    assert!(raw.contains("<b>4 March</b>"), "{raw}");
    // The calendar arrives intact, inline and attached.
    let normalised = raw.replace("\r\n", "\n");
    let ics = ICS.replace("\r\n", "\n");
    assert_eq!(normalised.matches(ics.as_str()).count(), 2, "{raw}");
    worker.shutdown().await;
}

pub async fn a_refused_connection_is_retried_until_the_server_is_up(backend: Backend) {
    let port = free_port();
    let url = format!("smtp://127.0.0.1:{port}?tls=none");
    let (app, worker) = app_sending_to(&backend, Some(url)).await;
    let w = app.world().await;
    let queued = enqueue(
        &app.clinic,
        &mail_to(w.org_a, "Jan", "jan@example.org", "Hi"),
    )
    .await;
    let first = wait_status(app.clinic.store(), queued.id, "queued", 1).await;
    assert!(first.last_error.is_some(), "{first:?}");
    let sink = SmtpSink::start_on(port);
    // The retry is due 30 s later on the injected clock.
    app.clock.advance(Span::seconds(30));
    app.clinic.wake_jobs();
    wait_status(app.clinic.store(), queued.id, "sent", 2).await;
    let messages = wait_messages(&sink, 1).await;
    assert!(messages[0].contains(&queued.message_id));
    worker.shutdown().await;
}

pub async fn a_4xx_reply_is_retried_then_delivered(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, worker) = app_sending_to(&backend, Some(sink.url())).await;
    let w = app.world().await;
    let queued = enqueue(
        &app.clinic,
        &mail_to(w.org_a, "Jan", "tempfail-jan@example.org", "Hi"),
    )
    .await;
    let first = wait_status(app.clinic.store(), queued.id, "queued", 1).await;
    assert!(
        first.last_error.as_deref().unwrap_or("").contains("451"),
        "{first:?}"
    );
    assert!(sink.messages().is_empty());
    app.clock.advance(Span::seconds(30));
    app.clinic.wake_jobs();
    wait_status(app.clinic.store(), queued.id, "sent", 2).await;
    let messages = wait_messages(&sink, 1).await;
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains(&queued.message_id));
    assert_eq!(
        sink.rcpt_log().lines().collect::<Vec<_>>(),
        [
            "451 tempfail-jan@example.org",
            "250 tempfail-jan@example.org"
        ]
    );
    worker.shutdown().await;
}

pub async fn a_5xx_at_rcpt_fails_is_not_retried_and_is_shown_to_the_admin(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, worker) = app_sending_to(&backend, Some(sink.url())).await;
    let w = app.world().await;
    let mut refused = mail_to(w.org_a, "Jan", "reject-jan@example.org", "Hi");
    refused.related.department_id = Some(w.cardio);
    let queued = enqueue(&app.clinic, &refused).await;
    let row = wait_status(app.clinic.store(), queued.id, "failed", 1).await;
    let reason = row.last_error.clone().unwrap_or_default();
    assert!(reason.contains("550"), "{reason}");
    // Never retried, however long we wait.
    app.clock.advance(Span::days(1));
    app.clinic.wake_jobs();
    let job = app
        .clinic
        .store()
        .claim_job("probe", app.clock_now(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(job.is_none());
    assert_eq!(sink.rcpt_log().trim(), "550 reject-jan@example.org");
    assert!(sink.messages().is_empty());

    // The cardio department admin sees it, with the reason and the badge count; the
    // organisation admin sees it in the list, but it is the department admin's to act on.
    let cardio = app.login(CARDIO_ADMIN).await;
    let (status, body) = get(&cardio, &app.url("/mail?status=failed")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 1);
    assert_eq!(body["failed_mail_count"], 1);
    assert_eq!(body["mails"][0]["status"], "failed");
    assert!(
        body["mails"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("550")
    );
    let admin = app.login(ADMIN_A).await;
    let (_, body) = get(&admin, &app.url("/mail")).await;
    assert_eq!(body["total"], 1);
    assert_eq!(body["failed_mail_count"], 0);
    // A failure of a department without a department admin falls back to the organisation admin.
    let mut derma = mail_to(w.org_a, "Jan", "reject-2@example.org", "Hi");
    derma.related.department_id = Some(w.derma);
    let queued = enqueue(&app.clinic, &derma).await;
    wait_status(app.clinic.store(), queued.id, "failed", 1).await;
    let (_, body) = get(&admin, &app.url("/mail")).await;
    assert_eq!(body["failed_mail_count"], 1);
    worker.shutdown().await;
}

pub async fn do_not_send_emails_holds_the_mail(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, worker) = app_sending_to(&backend, Some(sink.url())).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let res = admin
        .put(app.url("/organisation/settings"))
        .json(&json!({"do_not_send_emails": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let held = enqueue(
        &app.clinic,
        &mail_to(w.org_a, "Jan", "jan@example.org", "Hi"),
    )
    .await;
    // Another organisation still sends.
    let other = enqueue(
        &app.clinic,
        &mail_to(w.org_b, "Piet", "piet@example.org", "Hi"),
    )
    .await;
    wait_status(app.clinic.store(), other.id, "sent", 1).await;
    wait_status(app.clinic.store(), held.id, "held", 0).await;
    let messages = wait_messages(&sink, 1).await;
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains(&other.message_id));
    let (_, body) = get(&admin, &app.url(&format!("/mail/{}", held.id))).await;
    assert_eq!(body["mail"]["status"], "held");
    worker.shutdown().await;
}

pub async fn enqueue_shares_the_callers_transaction(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let store = app.clinic.store();
    let stamp = app.clinic.mail_stamp();
    let mail = mail_to(w.org_a, "Jan", "jan@example.org", "Hi");
    let rolled_back = with_tx!(store, tx => {
        let q = mail::enqueue(&mut *tx, &mail, &stamp).await.unwrap();
        tx.rollback().await.unwrap();
        q
    });
    assert!(store.mail_by_id(rolled_back.id).await.unwrap().is_none());
    assert!(
        store
            .claim_job("probe", app.clock_now(), Duration::from_secs(1))
            .await
            .unwrap()
            .is_none()
    );
    // A refused address writes nothing, and the caller's transaction goes with the error.
    let bad = OutgoingMail {
        to_address: "not an address".into(),
        ..mail.clone()
    };
    let refused = with_tx!(store, tx => {
        mail::enqueue(&mut *tx, &bad, &stamp).await
    });
    assert!(matches!(refused, Err(mail::MailError::InvalidAddress)));
    let committed = with_tx!(store, tx => {
        let q = mail::enqueue(&mut *tx, &mail, &stamp).await.unwrap();
        tx.commit().await.unwrap();
        q
    });
    let row = store.mail_by_id(committed.id).await.unwrap().unwrap();
    assert_eq!(row.status, "queued");
    assert_eq!(row.message_id, committed.message_id);
    let job = store
        .claim_job("probe", app.clock_now(), Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.kind, mail::SEND_JOB);
    assert_eq!(job.payload["mail_id"], json!(committed.id.to_string()));
}

pub async fn the_mail_api_by_role_with_no_server_configured(backend: Backend) {
    let (app, worker) = app_sending_to(&backend, None).await;
    let _w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let send = |http: reqwest::Client, body: Value| {
        let url = app.url("/mail/test");
        async move {
            let res = http.post(url).json(&body).send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Refusals write nothing.
    for bad in [
        json!({"to": "nope"}),
        json!({"to": "a@b.test\r\nBcc: x@y.test"}),
        json!({}),
    ] {
        let (status, body) = send(admin.clone(), bad.clone()).await;
        assert!(status == 422 || status == 400, "{bad}: {status} {body}");
    }
    let (status, body) = send(app.login(DOC_CARDIO).await, json!({"to": "a@b.test"})).await;
    assert_eq!(status, 403, "{body}");
    let (_, list) = get(&admin, &app.url("/mail")).await;
    assert_eq!(list["total"], 0, "{list}");

    let (status, body) = send(
        admin.clone(),
        json!({"to": "me@clinic-a.test", "name": "Me"}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["mail"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["mail"]["kind"], "test");
    let row = wait_status(app.clinic.store(), id.parse().unwrap(), "no_server", 0).await;
    assert_eq!(row.to_address, "me@clinic-a.test");
    let (status, body) = get(&admin, &app.url(&format!("/mail/{id}"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["mail"]["status_text"],
        "not sent: no mail server configured"
    );
    assert!(
        body["mail"]["headers"]
            .as_str()
            .unwrap()
            .contains("Message-ID: <")
    );
    assert!(
        body["mail"]["html_body"]
            .as_str()
            .unwrap()
            .contains("Test message")
    );

    // The HTML alone, for the sandboxed frame: no scripts, no remote loads.
    let res = admin
        .get(app.url(&format!("/mail/{id}/html")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{csp}"
    );
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // Practitioners see none; a department admin only their department's (the organisation
    // admin's test mail has none); another organisation's is a 404.
    let (status, _) = get(&app.login(DOC_CARDIO).await, &app.url("/mail")).await;
    assert_eq!(status, 403);
    let cardio = app.login(CARDIO_ADMIN).await;
    let (_, list) = get(&cardio, &app.url("/mail")).await;
    assert_eq!(list["total"], 0);
    let (status, _) = get(&cardio, &app.url(&format!("/mail/{id}"))).await;
    assert_eq!(status, 404);
    let (status, _) = get(&app.login(ADMIN_B).await, &app.url(&format!("/mail/{id}"))).await;
    assert_eq!(status, 404);
    let (status, _) = get(&admin, &app.url("/mail/not-an-id")).await;
    assert_eq!(status, 404);
    // Filters and paging.
    let (status, list) = get(&admin, &app.url("/mail?status=no_server&kind=test&limit=1")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 1);
    let (_, list) = get(&admin, &app.url("/mail?status=sent")).await;
    assert_eq!(list["total"], 0);
    for bad in [
        "/mail?status=lost",
        "/mail?kind=x",
        "/mail?limit=0",
        "/mail?limit=101",
        "/mail?offset=-1",
    ] {
        let (status, _) = get(&admin, &app.url(bad)).await;
        assert!(status == 422 || status == 400, "{bad}: {status}");
    }
    worker.shutdown().await;
}
