//! Set-password links by e-mail (issue #12): every link is recorded with its mail in one
//! transaction — an invitation (API and CLI) is one `staff_invitation` mail to that address
//! carrying the link; a new link for someone with a password (admin, CLI, "forgot password") a
//! `password_reset` mail; "forgot password" for an unknown address records nothing and answers
//! the same; an address the outbox refuses writes nothing for an invitation, a link without a
//! mail for an admin's new link, and nothing for "forgot password". And end to end through a real
//! SMTP server: the invitation arrives, its link (from the received text part) works once, and
//! the staff member logs in.

use std::time::Duration;

use consultroom_clinic::forgot_password::ANSWER;
use consultroom_clinic::ids::MailId;
use consultroom_clinic::mail::db::MailRow;
use consultroom_clinic::staff::NewStaff;
use consultroom_clinic::{Role, StaffId, Store, setup};
use consultroom_testkit::smtp::SmtpSink;
use consultroom_testkit::wait_until;
use serde_json::{Value, json};

use crate::mail::{app_sending_to, wait_messages, wait_status};
use crate::support::*;

/// An address our own check accepts but lettre (what the outbox sends with) refuses: the local
/// part is not a dot-atom.
const UNMAILABLE: &str = "ina..invited@a.test";

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn post_json(http: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    send(http.post(url).json(&body)).await
}

/// Every mail to `address`, oldest first.
async fn mails_to(store: &Store, address: &str) -> Vec<MailRow> {
    let sql = "select mail_id from mail where to_address = $1 order by created_at, mail_id";
    let ids: Vec<MailId> = match store {
        Store::Sqlite(pool) => sqlx::query_scalar(sql).bind(address).fetch_all(pool).await,
        Store::Postgres(pool) => sqlx::query_scalar(sql).bind(address).fetch_all(pool).await,
    }
    .unwrap();
    let mut out = Vec::new();
    for id in ids {
        out.push(store.mail_by_id(id).await.unwrap().unwrap());
    }
    out
}

/// How many rows `table` has.
async fn count(store: &Store, table: &str) -> i64 {
    let sql = format!("select count(*) from {table}");
    match store {
        Store::Sqlite(pool) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
        }
        Store::Postgres(pool) => {
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
        }
    }
    .unwrap()
}

/// Rows of `mail`, `job`, `staff`, `set_password_link` and `organisation`, to show that a refusal
/// wrote nothing.
async fn row_counts(store: &Store) -> [i64; 5] {
    [
        count(store, "mail").await,
        count(store, "job").await,
        count(store, "staff").await,
        count(store, "set_password_link").await,
        count(store, "organisation").await,
    ]
}

fn link_token(url: &str) -> String {
    url.split_once("/set-password#")
        .expect("set-password url shape")
        .1
        .to_owned()
}

/// The first set-password link in `text`.
fn link_in(text: &str) -> String {
    let start = text
        .find("http://consultroom.test/set-password#")
        .unwrap_or_else(|| panic!("no set-password link in {text:?}"));
    text[start..]
        .split(|c: char| c.is_whitespace() || c == '<' || c == '"')
        .next()
        .unwrap()
        .to_owned()
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> u16 {
    let (status, _) = post_json(
        &app.http(),
        &app.url("/auth/login"),
        json!({"email": email, "password": password}),
    )
    .await;
    status
}

pub async fn inviting_staff_records_one_invitation_mail_with_the_link(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let store = app.clinic.store();
    let admin = app.login(ADMIN_A).await;
    let (status, body) = post_json(
        &admin,
        &app.url("/staff"),
        json!({"email": " Ina.Canary@A.test ", "name": "Ina Invited", "role": "practitioner",
               "department_id": w.derma}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let link = body["set_password_url"].as_str().unwrap();
    let mails = mails_to(store, "ina.canary@a.test").await;
    assert_eq!(mails.len(), 1, "exactly one mail");
    let mail = &mails[0];
    assert_eq!(body["mail_id"], json!(mail.mail_id));
    assert_eq!(mail.kind, "staff_invitation");
    assert_eq!(mail.to_name, "Ina Invited");
    assert_eq!(mail.organisation_id, w.org_a);
    assert_eq!(mail.department_id, Some(w.derma));
    assert_eq!(
        mail.staff_id.map(|s| json!(s)),
        Some(body["staff"]["id"].clone())
    );
    // No worker and no mail server in this app: it waits in the outbox.
    assert_eq!(mail.status, "queued");
    // The built-in English invitation, naming the organisation, carrying the link.
    assert!(mail.subject.contains("Clinic A"), "{}", mail.subject);
    assert!(
        mail.text_body.contains("Dear Ina Invited,"),
        "{}",
        mail.text_body
    );
    assert_eq!(link_in(&mail.text_body), link);
    assert!(mail.html_body.contains(link), "{}", mail.html_body);
    assert_eq!(mail.calendar_method, None);
    // Who caused it is recorded; the organisation admin and the mail's department see it.
    let (status, listed) = get(&admin, &app.url("/mail")).await;
    assert_eq!(status, 200, "{listed}");
    assert!(
        listed["mails"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == json!(mail.mail_id) && m["kind"] == "staff_invitation"),
        "{listed}"
    );
    // Neither the token nor the address reaches the logs (an address used by no other test: the
    // SMTP tests' lettre logs its commands at debug level, and the logs are process-wide).
    let logs = captured_logs();
    assert!(!logs.contains(&link_token(link)));
    assert!(!logs.contains("ina.canary@a.test"));

    // A department admin's invitation is in their department and theirs to see.
    let cardio_admin = app.login(CARDIO_ADMIN).await;
    let (status, body) = post_json(
        &cardio_admin,
        &app.url("/staff"),
        json!({"email": "carl@a.test", "name": "Carl", "role": "practitioner"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mails = mails_to(store, "carl@a.test").await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].department_id, Some(w.cardio));
    let (status, detail) = get(
        &cardio_admin,
        &app.url(&format!("/mail/{}", mails[0].mail_id)),
    )
    .await;
    assert_eq!(status, 200, "{detail}");

    // The CLI's create-organisation and invite-staff record their invitations too.
    let now = app.clock_now();
    let created = setup::create_organisation(
        store,
        now,
        "http://consultroom.test",
        "Clinic C",
        "Boss@C.test",
        Some("The Boss"),
    )
    .await
    .unwrap();
    let mails = mails_to(store, "boss@c.test").await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].kind, "staff_invitation");
    assert_eq!(mails[0].organisation_id, created.organisation_id);
    assert_eq!(link_in(&mails[0].text_body), created.link.url);
    assert!(
        mails[0].subject.contains("Clinic C"),
        "{}",
        mails[0].subject
    );
    assert_eq!(
        created.link.mail.as_ref().map(|m| (m.id, m.to.as_str())),
        Some((mails[0].mail_id, "boss@c.test"))
    );
    let invited = setup::invite_staff(
        store,
        now,
        "http://consultroom.test",
        "Clinic C",
        "pat@c.test",
        Some("Pat"),
        "practitioner",
        None,
    )
    .await
    .unwrap();
    let mails = mails_to(store, "pat@c.test").await;
    assert_eq!(mails.len(), 1);
    assert_eq!(link_in(&mails[0].text_body), invited.url);
    assert_eq!(invited.mail.as_ref().map(|m| m.id), Some(mails[0].mail_id));
}

pub async fn a_new_link_records_a_password_reset_mail(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let store = app.clinic.store();
    let admin = app.login(ADMIN_A).await;
    // Someone with a password: a reset, in the password_reset mail.
    let (status, body) = post_empty(
        &admin,
        &app.url(&format!("/staff/{}/set-password-link", w.doc_cardio)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["purpose"], "reset");
    let mails = mails_to(store, DOC_CARDIO).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].kind, "password_reset");
    assert_eq!(body["mail_id"], json!(mails[0].mail_id));
    assert_eq!(
        link_in(&mails[0].text_body),
        body["set_password_url"].as_str().unwrap()
    );
    assert_eq!(mails[0].department_id, Some(w.cardio));
    // The CLI's reset-password: another reset mail, and the earlier link is void.
    let first = link_token(body["set_password_url"].as_str().unwrap());
    let reset = setup::reset_password(
        store,
        app.clock_now(),
        "http://consultroom.test",
        DOC_CARDIO,
    )
    .await
    .unwrap();
    let mails = mails_to(store, DOC_CARDIO).await;
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1].kind, "password_reset");
    assert_eq!(link_in(&mails[1].text_body), reset.url);
    assert_eq!(reset.mail.as_ref().map(|m| m.id), Some(mails[1].mail_id));
    let (status, _) = post_json(
        &app.http(),
        &app.url("/auth/set-password/check"),
        json!({"token": first}),
    )
    .await;
    assert_eq!(status, 410, "the first link is void");

    // Someone invited who never set a password: a new invitation mail.
    let (status, body) = post_json(
        &admin,
        &app.url("/staff"),
        json!({"email": "new@a.test", "name": "New", "role": "practitioner"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["staff"]["id"].as_str().unwrap().to_owned();
    let (status, body) =
        post_empty(&admin, &app.url(&format!("/staff/{id}/set-password-link"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["purpose"], "invite");
    let kinds: Vec<String> = mails_to(store, "new@a.test")
        .await
        .into_iter()
        .map(|m| m.kind)
        .collect();
    assert_eq!(kinds, ["staff_invitation", "staff_invitation"]);

    // "Forgot password" of an active staff member: a reset mail whose link works.
    let (status, body) = post_json(
        &reqwest::Client::new(),
        &app.url("/auth/forgot-password"),
        json!({"email": DOC_DERMA}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    wait_until(
        Duration::from_secs(10),
        "forgot-password handled",
        || async { (app.clinic.forgot_password_handled() >= 1).then_some(()) },
    )
    .await;
    let mails = mails_to(store, DOC_DERMA).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].kind, "password_reset");
    assert_eq!(mails[0].department_id, Some(w.derma));
    let http = app.http();
    let (status, body) = post_json(
        &http,
        &app.url("/auth/set-password"),
        json!({"token": link_token(&link_in(&mails[0].text_body)),
               "password": "a reset by mail passphrase"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        login_status(&app, DOC_DERMA, "a reset by mail passphrase").await,
        200
    );
}

pub async fn forgot_password_for_an_unknown_address_records_nothing(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let store = app.clinic.store();
    let admin = app.login(ADMIN_A).await;
    let (status, _) = post_empty(
        &admin,
        &app.url(&format!("/staff/{}/deactivate", w.doc_derma)),
    )
    .await;
    assert_eq!(status, 200);
    let before = row_counts(store).await;
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for email in ["nobody@a.test", DOC_DERMA] {
        let res = http
            .post(app.url("/auth/forgot-password"))
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap();
        answers.push((res.status().as_u16(), res.text().await.unwrap()));
    }
    assert_eq!(
        answers[0], answers[1],
        "unknown and deactivated: the same answer"
    );
    assert_eq!(answers[0].0, 202);
    assert_eq!(
        serde_json::from_str::<Value>(&answers[0].1).unwrap(),
        json!({ "message": ANSWER })
    );
    wait_until(
        Duration::from_secs(10),
        "forgot-password handled",
        || async { (app.clinic.forgot_password_handled() >= 2).then_some(()) },
    )
    .await;
    assert_eq!(row_counts(store).await, before, "nothing recorded");
    assert!(mails_to(store, "nobody@a.test").await.is_empty());
    assert!(mails_to(store, DOC_DERMA).await.is_empty());
    // A known active address answers the same, and its mail is recorded.
    let res = http
        .post(app.url("/auth/forgot-password"))
        .json(&json!({ "email": DOC_CARDIO }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (res.status().as_u16(), res.text().await.unwrap()),
        answers[0].clone()
    );
    wait_until(
        Duration::from_secs(10),
        "forgot-password handled",
        || async { (app.clinic.forgot_password_handled() >= 3).then_some(()) },
    )
    .await;
    assert_eq!(mails_to(store, DOC_CARDIO).await.len(), 1);
}

pub async fn an_address_the_outbox_refuses_leaves_no_half_change(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let store = app.clinic.store();
    let admin = app.login(ADMIN_A).await;
    // An invitation: 422 on "email" before anything is written.
    let before = row_counts(store).await;
    let (status, body) = post_json(
        &admin,
        &app.url("/staff"),
        json!({"email": UNMAILABLE, "name": "Ina", "role": "practitioner"}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "email", "{body}");
    assert_eq!(
        row_counts(store).await,
        before,
        "no staff row, link or mail"
    );
    let (_, staff) = get(&admin, &app.url("/staff")).await;
    assert!(!staff.to_string().contains(UNMAILABLE));
    // The CLI refuses it the same way.
    let now = app.clock_now();
    let err = setup::invite_staff(
        store,
        now,
        "http://consultroom.test",
        "Clinic A",
        UNMAILABLE,
        None,
        "practitioner",
        None,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no e-mail can be sent"), "{err}");
    assert!(
        setup::create_organisation(store, now, "http://c.test", "Clinic C", UNMAILABLE, None)
            .await
            .is_err()
    );
    assert_eq!(
        row_counts(store).await,
        before,
        "nothing from the CLI either"
    );

    // A staff member stored with such an address (before this check existed): an admin's new
    // link is issued without a mail, to hand over; "forgot password" issues nothing.
    let new = NewStaff {
        organisation_id: w.org_a,
        department_id: None,
        name: "Old Record",
        email: UNMAILABLE,
        role: Role::Practitioner,
        password_hash: password_hash(),
    };
    let old: StaffId = store.insert_staff(&new, now).await.unwrap();
    let before = row_counts(store).await;
    let res = reqwest::Client::new()
        .post(app.url("/auth/forgot-password"))
        .json(&json!({ "email": UNMAILABLE }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    wait_until(
        Duration::from_secs(10),
        "forgot-password handled",
        || async { (app.clinic.forgot_password_handled() >= 1).then_some(()) },
    )
    .await;
    assert_eq!(row_counts(store).await, before, "no link, no mail");
    let (status, body) =
        post_empty(&admin, &app.url(&format!("/staff/{old}/set-password-link"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mail_id"], Value::Null);
    assert!(body["set_password_url"].is_string());
    let after = row_counts(store).await;
    assert_eq!(after[0], before[0], "no mail");
    assert_eq!(after[3], before[3] + 1, "one link");
    let cli = setup::reset_password(store, now, "http://consultroom.test", UNMAILABLE)
        .await
        .unwrap();
    assert!(cli.mail.is_none());
    assert!(mails_to(store, UNMAILABLE).await.is_empty());
}

/// The text part, HTML part, recipients and subject of a raw message, decoded by Python's
/// `email` package (from the SMTP test server's venv: an independent MIME parser).
fn python_parse_message(raw: &str) -> Value {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    const SCRIPT: &str = "import sys, json, email, email.policy\n\
        m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)\n\
        print(json.dumps({'to': [a.addr_spec for a in m['to'].addresses], \
        'subject': str(m['subject']), \
        'text': m.get_body(preferencelist=('plain',)).get_content(), \
        'html': m.get_body(preferencelist=('html',)).get_content()}))\n";
    let mut child = Command::new(consultroom_testkit::smtp::python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(raw.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python could not parse the message");
    serde_json::from_slice(&out.stdout).unwrap()
}

pub async fn an_emailed_invitation_link_works_once_and_the_staff_member_logs_in(backend: Backend) {
    let sink = SmtpSink::start();
    let (app, worker) = app_sending_to(&backend, Some(sink.url())).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let (status, body) = post_json(
        &admin,
        &app.url("/staff"),
        json!({"email": "ina@a.test", "name": "Ina Invited", "role": "practitioner",
               "department_id": w.derma}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let shown = body["set_password_url"].as_str().unwrap().to_owned();
    let mail_id: MailId = serde_json::from_value(body["mail_id"].clone()).unwrap();
    // The handler woke the worker (its poll is an hour here): sent at once.
    let row = wait_status(app.clinic.store(), mail_id, "sent", 1).await;
    let messages = wait_messages(&sink, 1).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(sink.rcpt_log().trim(), "250 ina@a.test");
    assert!(
        messages[0].contains(&format!("Message-ID: {}", row.message_id)),
        "{}",
        messages[0]
    );
    let received = python_parse_message(&messages[0]);
    assert_eq!(received["to"], json!(["ina@a.test"]));
    assert_eq!(
        received["subject"],
        "You are invited to Consultroom for Clinic A"
    );
    let text = received["text"].as_str().unwrap();
    let link = link_in(text);
    assert_eq!(link, shown, "the mail carries the link the admin was shown");
    assert!(received["html"].as_str().unwrap().contains(&link));

    // The link from the received mail: sets the password (and logs in) once.
    let token = link_token(&link);
    let http = app.http();
    let (status, body) = post_json(
        &http,
        &app.url("/auth/set-password"),
        json!({"token": token, "password": "ina's own passphrase"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["staff"]["email"], "ina@a.test");
    assert_eq!(get(&http, &app.url("/me")).await.0, 200);
    let (status, body) = post_json(
        &app.http(),
        &app.url("/auth/set-password"),
        json!({"token": token, "password": "someone else's passphrase"}),
    )
    .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(
        login_status(&app, "ina@a.test", "ina's own passphrase").await,
        200
    );
    assert_eq!(
        login_status(&app, "ina@a.test", "someone else's passphrase").await,
        401
    );
    worker.shutdown().await;
}

/// Issue #14: a set-password mail comes in the recipient's own language (`staff.language`), a
/// new invitation in the inviting admin's language, and English when nobody chose one.
pub async fn set_password_mails_follow_the_staff_language(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let store = app.clinic.store();
    // The cardiologist chose German: an admin's new link for them is the German reset mail.
    let doc = app.login(DOC_CARDIO).await;
    let (status, body) = send(
        doc.put(app.url("/me/profile"))
            .json(&json!({"language": "de"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let admin = app.login(ADMIN_A).await;
    let (status, body) = post_empty(
        &admin,
        &app.url(&format!("/staff/{}/set-password-link", w.doc_cardio)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mails = mails_to(store, DOC_CARDIO).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "Ihr Consultroom-Passwort zurücksetzen");
    assert!(
        mails[0].text_body.contains("Guten Tag"),
        "{}",
        mails[0].text_body
    );

    // The admin chose none: someone new they invite gets English.
    let (status, body) = post_json(
        &admin,
        &app.url("/staff"),
        json!({"email": "en@a.test", "name": "Nell English", "role": "practitioner"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let english = &mails_to(store, "en@a.test").await[0];
    assert!(
        english.text_body.contains("Nell English"),
        "{}",
        english.text_body
    );

    // The admin chooses Dutch: the next new colleague's invitation is Dutch, and it differs from
    // the English one (the built-in sets).
    let (status, body) = send(
        admin
            .put(app.url("/me/profile"))
            .json(&json!({"language": "nl"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_json(
        &admin,
        &app.url("/staff"),
        json!({"email": "nl@a.test", "name": "Noor Nieuw", "role": "practitioner"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let dutch = &mails_to(store, "nl@a.test").await[0];
    assert!(
        english
            .subject
            .starts_with("You are invited to Consultroom"),
        "{}",
        english.subject
    );
    assert!(
        dutch.subject.starts_with("Uitnodiging voor Consultroom"),
        "{}",
        dutch.subject
    );
    assert!(
        dutch.text_body.contains("Beste Noor Nieuw"),
        "{}",
        dutch.text_body
    );
}
