//! E-mail template sets (F169–F172) over HTTP, on both backends: roles (organisation admin
//! changes, department admin reads and previews, practitioner 403), another organisation's set
//! or department is a 404 / refused, an unknown placeholder is refused with its name and
//! changes nothing, the preview, the department → default set → built-in fallback; and a
//! composed appointment invitation through the outbox and the real SMTP server with its inline
//! `text/calendar; method=REQUEST` part intact.

use chrono::{TimeZone, Utc};
use consultroom_clinic::ids::AppointmentId;
use consultroom_clinic::mail::MailKind;
use consultroom_clinic::templates::{
    self, AppointmentMail, AppointmentMailKind, Language, TemplateKind,
};
use consultroom_testkit::smtp::SmtpSink;
use serde_json::{Value, json};

use crate::mail::{app_sending_to, enqueue, header_lines, wait_messages, wait_status};
use crate::support::*;

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn template(subject: &str, html: &str, text: &str) -> Value {
    json!({ "subject": subject, "html_body": html, "text_body": text })
}

pub async fn template_sets_by_role_and_organisation(backend: Backend) {
    use reqwest::Method as M;
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let cardio_admin = app.login(CARDIO_ADMIN).await;
    let doc = app.login(DOC_CARDIO).await;
    let admin_b = app.login(ADMIN_B).await;

    // Practitioners see nothing; department admins cannot create.
    let (status, _) = get(&doc, &app.url("/mail-template-sets")).await;
    assert_eq!(status, 403);
    let (status, _) = send(
        &cardio_admin,
        M::POST,
        app.url("/mail-template-sets"),
        Some(json!({"name": "Cardio"})),
    )
    .await;
    assert_eq!(status, 403);

    let (status, body) = send(
        &admin,
        M::POST,
        app.url("/mail-template-sets"),
        Some(json!({"name": "Cardio mails"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let set = body["set"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["set"]["templates"].as_array().unwrap().len(), 18);
    assert_eq!(body["set"]["customised"], json!([]));
    // The same name again: a conflict; a blank or multi-line name: refused.
    for (name, want) in [("Cardio mails", 409), ("  ", 422), ("a\nb", 422)] {
        let (status, body) = send(
            &admin,
            M::POST,
            app.url("/mail-template-sets"),
            Some(json!({ "name": name })),
        )
        .await;
        assert_eq!(status, want, "{name:?}: {body}");
    }

    let path = |rest: &str| app.url(&format!("/mail-template-sets/{set}{rest}"));
    let invitation_en = "/templates/appointment_invitation/en";

    // An unknown placeholder is refused with its name, and nothing is stored.
    let (status, body) = send(
        &admin,
        M::PUT,
        path(invitation_en),
        Some(template(
            "Hello *|CLIENT_NAME|*",
            "<p>*|LINK|*</p><p>*|CLIENT_NMAE|*</p>",
            "*|LINK|*",
        )),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "html_body", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("*|CLIENT_NMAE|*"),
        "{body}"
    );
    // A staff placeholder in an appointment mail is unknown too; a CR/LF subject is refused.
    for bad in [
        template("Hi *|EXPIRES|*", "<p>x</p>", "x"),
        template("Hi\r\nBcc: spy@evil.test", "<p>x</p>", "x"),
    ] {
        let (status, body) = send(&admin, M::PUT, path(invitation_en), Some(bad)).await;
        assert_eq!(status, 422, "{body}");
    }
    let (_, body) = get(&admin, &path("")).await;
    assert_eq!(body["set"]["customised"], json!([]), "{body}");

    // Saved; a department admin reads it; another organisation gets 404 everywhere.
    let good = template(
        "Cardio: *|DATE|* *|TIME|*",
        "<p>Dear *|CLIENT_NAME|*, <a href=\"*|LINK|*\">join</a> from *|OPENS_AT|*.</p>",
        "Dear *|CLIENT_NAME|*, join from *|OPENS_AT|*: *|LINK|*",
    );
    let (status, body) = send(&admin, M::PUT, path(invitation_en), Some(good.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["set"]["customised"],
        json!([{"kind": "appointment_invitation", "language": "en"}])
    );
    let (status, body) = get(&cardio_admin, &path("")).await;
    assert_eq!(status, 200, "{body}");
    let saved = body["set"]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "appointment_invitation" && t["language"] == "en")
        .unwrap()
        .clone();
    assert_eq!(saved["subject"], "Cardio: *|DATE|* *|TIME|*");
    assert_eq!(saved["customised"], true);
    let (status, _) = send(
        &cardio_admin,
        M::PUT,
        path(invitation_en),
        Some(good.clone()),
    )
    .await;
    assert_eq!(status, 403);
    for (method, rest, body) in [
        (M::GET, "", None),
        (M::PUT, "", Some(json!({"name": "Mine now"}))),
        (M::PUT, invitation_en, Some(good.clone())),
        (M::DELETE, invitation_en, None),
        (M::PUT, "/departments", Some(json!({"department_ids": []}))),
        (M::DELETE, "", None),
    ] {
        let (status, body) = send(&admin_b, method.clone(), path(rest), body).await;
        assert_eq!(status, 404, "{method} {rest}: {body}");
    }
    let (_, list) = get(&admin_b, &app.url("/mail-template-sets")).await;
    assert_eq!(list["sets"], json!([]), "{list}");

    // Assign to cardiology; another organisation's department is refused and changes nothing.
    let (status, body) = send(
        &admin,
        M::PUT,
        path("/departments"),
        Some(json!({"department_ids": [w.cardio.to_string()]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["set"]["department_ids"], json!([w.cardio.to_string()]));
    let other_department = app
        .clinic
        .store()
        .insert_department(w.org_b, "Elsewhere", app.clock_now())
        .await
        .unwrap();
    let (status, body) = send(
        &admin,
        M::PUT,
        path("/departments"),
        Some(json!({"department_ids": [w.derma.to_string(), other_department.to_string()]})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (_, body) = get(&admin, &path("")).await;
    assert_eq!(body["set"]["department_ids"], json!([w.cardio.to_string()]));

    // Which template a mail gets: the department's set, else the default set, else built-in.
    let store = app.clinic.store();
    let kind = TemplateKind::AppointmentInvitation;
    let cardio = store
        .effective_template(w.org_a, Some(w.cardio), kind, Language::En)
        .await
        .unwrap();
    assert_eq!(cardio.subject, "Cardio: *|DATE|* *|TIME|*");
    let derma = store
        .effective_template(w.org_a, Some(w.derma), kind, Language::En)
        .await
        .unwrap();
    assert_eq!(derma, templates::defaults::builtin(kind, Language::En));
    // Dutch is not in the set: the built-in Dutch text.
    let dutch = store
        .effective_template(w.org_a, Some(w.cardio), kind, Language::Nl)
        .await
        .unwrap();
    assert_eq!(dutch, templates::defaults::builtin(kind, Language::Nl));
    let (status, body) = send(
        &admin,
        M::POST,
        app.url("/mail-template-sets"),
        Some(json!({"name": "House style", "is_default": true})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let default_set = body["set"]["id"].as_str().unwrap().to_owned();
    let (status, body) = send(
        &admin,
        M::PUT,
        app.url(&format!("/mail-template-sets/{default_set}{invitation_en}")),
        Some(template("House: *|DATE|*", "<p>*|LINK|*</p>", "*|LINK|*")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let derma = store
        .effective_template(w.org_a, Some(w.derma), kind, Language::En)
        .await
        .unwrap();
    assert_eq!(derma.subject, "House: *|DATE|*");
    let cardio = store
        .effective_template(w.org_a, Some(w.cardio), kind, Language::En)
        .await
        .unwrap();
    assert_eq!(cardio.subject, "Cardio: *|DATE|* *|TIME|*");
    // Another organisation never sees them.
    let b = store
        .effective_template(w.org_b, None, kind, Language::En)
        .await
        .unwrap();
    assert_eq!(b, templates::defaults::builtin(kind, Language::En));

    // Reset to the fallback, list, delete.
    let (status, body) = send(&admin, M::DELETE, path(invitation_en), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["set"]["customised"], json!([]));
    let (status, list) = get(&cardio_admin, &app.url("/mail-template-sets")).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Cardio mails", "House style"]);
    assert!(
        list["placeholders"]["appointment"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["code"] == "OPENS_AT")
    );
    let (status, _) = send(&cardio_admin, M::DELETE, path(""), None).await;
    assert_eq!(status, 403);
    let (status, _) = send(&admin, M::DELETE, path(""), None).await;
    assert_eq!(status, 204);
    let (status, _) = get(&admin, &path("")).await;
    assert_eq!(status, 404);
    // Its department falls back to the default set.
    let cardio = store
        .effective_template(w.org_a, Some(w.cardio), kind, Language::En)
        .await
        .unwrap();
    assert_eq!(cardio.subject, "House: *|DATE|*");
}

pub async fn the_preview_fills_in_sample_data_escaped(backend: Backend) {
    let app = spawn_app(&backend).await;
    let _w = app.world().await;
    let url = app.url("/mail-templates/preview");
    let body = json!({
        "kind": "appointment_reminder",
        "language": "de",
        "subject": "Termin *|DATE|* *|TIME|*",
        "html_body": "<p>*|CLIENT_NAME|* ab *|OPENS_AT|*: *|MESSAGE|*</p>",
        "text_body": "*|ORGANISATION|* *|LINK|*",
    });
    let (status, _) = send(
        &app.login(DOC_CARDIO).await,
        reqwest::Method::POST,
        url.clone(),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 403);
    for who in [ADMIN_A, CARDIO_ADMIN] {
        let (status, out) = send(
            &app.login(who).await,
            reqwest::Method::POST,
            url.clone(),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 200, "{out}");
        // 09:00 Amsterdam on Monday 30 March 2026 (the day after the spring-forward).
        assert_eq!(out["subject"], "Termin Montag, 30. März 2026 09:00");
        assert_eq!(
            out["html_body"],
            "<p>Jan de Vries ab 08:00: Please have your medication list at hand.</p>"
        );
        assert_eq!(
            out["text_body"],
            "Clinic A https://video.example.org/join#sample"
        );
    }
    let (status, out) = send(
        &app.login(ADMIN_A).await,
        reqwest::Method::POST,
        url.clone(),
        Some(json!({
            "kind": "staff_invitation",
            "language": "nl",
            "subject": "Welkom *|NAME|*",
            "html_body": "<p>Tot *|EXPIRES|*: *|LINK|*</p>",
            "text_body": "*|ORGANISATION|*",
        })),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["subject"], "Welkom Dr. Anna Jansen");
    assert_eq!(
        out["html_body"],
        "<p>Tot dinsdag 31 maart 2026, 09:00: https://video.example.org/set-password#sample</p>"
    );
    let (status, out) = send(
        &app.login(ADMIN_A).await,
        reqwest::Method::POST,
        url,
        Some(json!({
            "kind": "password_reset",
            "language": "en",
            "subject": "Reset",
            "html_body": "<p>*|CLIENT_NAME|*</p>",
            "text_body": "x",
        })),
    )
    .await;
    assert_eq!(status, 422, "{out}");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("*|CLIENT_NAME|*"),
        "{out}"
    );
}

pub async fn a_composed_invitation_arrives_with_its_calendar(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, worker) = app_sending_to(&backend, Some(sink.url())).await;
    let w = app.world().await;
    let tz: chrono_tz::Tz = "Europe/Amsterdam".parse().unwrap();
    // 09:00 local on the Monday after the fall-back Sunday (25 October 2026): 08:00Z.
    let starts_at = tz
        .with_ymd_and_hms(2026, 10, 26, 9, 0, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc);
    // A real appointment (the mail row refers to it).
    let doc = app.login(DOC_CARDIO).await;
    let (status, booked) = app
        .book(
            &doc,
            json!({ "client_id": w.client_a, "starts_at": app.clock_now() + chrono::Duration::days(1),
                    "duration_minutes": 20 }),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    let appointment_id: AppointmentId = booked["appointment"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let input = AppointmentMail {
        kind: AppointmentMailKind::Invitation,
        organisation_id: w.org_a,
        organisation_name: "Clinic A".into(),
        organisation_contact: "020 123 4567".into(),
        organiser_email: Some("info@clinic-a.test".into()),
        department_id: Some(w.cardio),
        department_name: "Cardiology".into(),
        practitioner_name: DOC_CARDIO_NAME.into(),
        client_id: Some(w.client_a),
        recipient_name: "Jan <script>alert(1)</script>".into(),
        recipient_email: "jan@example.org".into(),
        language: Language::Nl,
        starts_at,
        time_zone: "Europe/Amsterdam".into(),
        duration_minutes: 20,
        personal_message: "Neem uw medicijnlijst mee.".into(),
        link: "https://consultroom.test/join#tok-jan".into(),
        appointment_id,
        sequence: 0,
        created_by: Some(w.doc_cardio),
    };
    let mail = templates::appointment_mail(&app.clinic, &input)
        .await
        .unwrap();
    assert_eq!(mail.kind, MailKind::AppointmentInvitation);
    let queued = enqueue(&app.clinic, &mail).await;
    wait_status(app.clinic.store(), queued.id, "sent", 1).await;
    // The booking's own invitation to the client arrives too: find ours by its Message-ID.
    let messages = wait_messages(&sink, 2).await;
    let raw = messages
        .iter()
        .find(|m| m.contains(&queued.message_id))
        .expect("the composed invitation arrived");
    let headers = header_lines(raw);
    assert!(
        headers
            .iter()
            .any(|h| h.starts_with("Subject:") && h.contains("09:00")),
        "{headers:?}"
    );
    assert!(
        raw.contains("Content-Type: text/calendar; charset=utf-8; method=REQUEST"),
        "{raw}"
    );
    // The calendar part as received, parsed back by an independent parser.
    let ics = inline_calendar(raw);
    assert_eq!(ics, mail.calendar.as_ref().unwrap().ics);
    let calendar: icalendar::Calendar = ics.parse().expect("the received calendar parses");
    use icalendar::Component as _;
    assert_eq!(calendar.property_value("METHOD"), Some("REQUEST"));
    let event = calendar.events().next().unwrap();
    assert_eq!(event.property_value("DTSTART"), Some("20261026T080000Z"));
    assert_eq!(event.property_value("DTEND"), Some("20261026T082000Z"));
    assert_eq!(
        event.get_uid().unwrap(),
        format!(
            "appointment-{}@consultroom.test",
            input.appointment_id.0.simple()
        )
    );
    // And by a second, independent parser (Python's `icalendar`, in the SMTP server's venv).
    let parsed = python_parse_ics(&ics);
    assert_eq!(parsed["method"], "REQUEST", "{parsed}");
    let ev = parsed["events"][0].clone();
    assert_eq!(ev["dtstart"], "2026-10-26T08:00:00+00:00", "{parsed}");
    assert_eq!(ev["dtend"], "2026-10-26T08:20:00+00:00", "{parsed}");
    assert_eq!(ev["dtstart_tzinfo"], true);
    assert_eq!(ev["uid"], event.get_uid().unwrap());
    assert_eq!(ev["sequence"], 0);
    assert_eq!(ev["status"], "CONFIRMED");
    assert_eq!(ev["url"], "https://consultroom.test/join#tok-jan");
    assert_eq!(ev["organizer"], "mailto:info@clinic-a.test");
    assert_eq!(ev["attendees"], json!(["mailto:jan@example.org"]));
    // The texts show the local time, the client's language, the escaped name.
    assert!(mail.text_body.contains("maandag 26 oktober 2026 om 09:00"));
    assert!(mail.html_body.contains("Jan &lt;script&gt;"));
    assert!(!mail.html_body.contains("<script>"));
    assert!(
        mail.text_body
            .contains("https://consultroom.test/join#tok-jan")
    );

    // The cancellation: the same UID, a higher SEQUENCE, METHOD:CANCEL inline.
    let cancel = AppointmentMail {
        kind: AppointmentMailKind::Cancellation,
        sequence: 1,
        ..input.clone()
    };
    let mail = templates::appointment_mail(&app.clinic, &cancel)
        .await
        .unwrap();
    assert_eq!(mail.kind, MailKind::AppointmentCancellation);
    let queued = enqueue(&app.clinic, &mail).await;
    wait_status(app.clinic.store(), queued.id, "sent", 1).await;
    let messages = wait_messages(&sink, 3).await;
    let raw = messages
        .iter()
        .find(|m| m.contains(&queued.message_id))
        .expect("the cancellation arrived");
    let ics = part_body(
        raw,
        "Content-Type: text/calendar; charset=utf-8; method=CANCEL",
    );
    let parsed = python_parse_ics(&ics);
    assert_eq!(parsed["method"], "CANCEL", "{parsed}");
    assert_eq!(parsed["events"][0]["uid"], ev["uid"]);
    assert_eq!(parsed["events"][0]["sequence"], 1);
    assert_eq!(parsed["events"][0]["status"], "CANCELLED");
    assert_eq!(parsed["events"][0]["dtstart"], "2026-10-26T08:00:00+00:00");
    worker.shutdown().await;
}

/// The body of the inline `text/calendar; method=REQUEST` part of a raw message, decoded
/// (lettre sends it quoted-printable when it holds non-ASCII text, else 7bit).
fn inline_calendar(raw: &str) -> String {
    part_body(
        raw,
        "Content-Type: text/calendar; charset=utf-8; method=REQUEST",
    )
}

/// The decoded body of the first part whose headers start with `content_type`.
pub fn part_body(raw: &str, content_type: &str) -> String {
    // The test server's Maildir may store LF line ends: work on LF, give back CRLF.
    let raw = raw.replace("\r\n", "\n");
    let start = raw.find(content_type).expect("the part");
    let (head, rest) = raw[start..].split_once("\n\n").expect("part headers");
    let body = &rest[..rest.find("\n--").expect("the part's end")];
    let text = if head.contains("Content-Transfer-Encoding: quoted-printable") {
        let bytes = body.replace("=\n", "").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).expect("a QP escape"));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    } else {
        assert!(!head.contains("base64"), "{head}");
        body.to_owned()
    };
    text.trim_end().replace('\n', "\r\n") + "\r\n"
}

/// `tests/smtp/parse_ics.py` (Python's `icalendar` package) on `ics`.
pub fn python_parse_ics(ics: &str) -> Value {
    use std::io::Write as _;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/smtp/parse_ics.py");
    let mut child = std::process::Command::new(consultroom_testkit::smtp::python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "parse_ics.py failed");
    serde_json::from_slice(&out.stdout).expect("parse_ics.py prints JSON")
}
