//! `kill -9` between "recorded" and "sent" (issue #12): the real binary sends mail through the
//! SMTP test server (aiosmtpd, `consultroom_testkit::smtp`) with a short job lease
//! (`--job-lease-secs`), is killed with SIGKILL while
//!
//! - two mails are sent and recorded `sent`,
//! - two are in an SMTP session whose RCPT the server does not answer yet (`stall…@`: nothing
//!   stored by the server),
//! - two have been stored by the server, which withholds its 250 (`hold…@`: the server has the
//!   message, the sender does not know),
//! - three are recorded with their jobs but not claimed (the four worker slots,
//!   `--job-concurrency 4`, are busy),
//!
//! and restarted on the same database. Then every mail arrives, each Message-ID once, except the
//! `hold…@` mails, which arrive exactly twice with the same Message-ID: the one crash window
//! that duplicates (ARCHITECTURE.md, "Crash windows"). On SQLite and PostgreSQL.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use consultroom_testkit::smtp::SmtpSink;
use consultroom_testkit::{Backend, TestDatabase, wait_until};
use serde_json::{Value, json};

const PASSWORD: &str = "kill nine mail";
/// Short, so the restarted server takes over the killed one's claims within seconds.
const LEASE_SECS: &str = "3";

consultroom_testkit::backend_tests!(
    mail_crash::every_mail_arrives_after_sigkill_duplicates_only_from_the_window
);

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, database_url: &str, smtp_url: &str, demo: bool) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_consultroom"));
    if demo {
        cmd.arg("demo").args(["--demo-password", PASSWORD]);
    } else {
        cmd.arg("serve");
    }
    cmd.args(["--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args([
            "--media-bind",
            "127.0.0.1:0",
            "--media-announce",
            "127.0.0.1",
        ])
        .args(["--media-loops", "1"])
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-url", database_url])
        .args(["--job-lease-secs", LEASE_SECS])
        // Four worker slots, so three mails stay recorded and unclaimed behind the slow four.
        .args(["--job-concurrency", "4"])
        .env("CONSULTROOM_SMTP_URL", smtp_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("the consultroom binary starts");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = out.next() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("consultroom ready http=") {
            let base = rest.split_whitespace().next().unwrap().to_owned();
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || out.for_each(drop));
            return Server { child, base };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server exited before it was ready");
}

async fn admin_client(base: &str) -> reqwest::Client {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = c
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": consultroom_clinic::demo::ADMIN_EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c
}

/// `POST /mail/test` to `to`; the mail's id.
async fn send_test(base: &str, http: &reqwest::Client, to: &str) -> String {
    let r = http
        .post(format!("{base}/api/v1/mail/test"))
        .json(&json!({ "to": to }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "test mail to {to}");
    let v: Value = r.json().await.unwrap();
    v["mail"]["id"].as_str().unwrap().to_owned()
}

/// Every mail of the organisation: id → (address, status, message_id).
/// The test mails (the demo's own invitations are left out).
async fn mails(base: &str, http: &reqwest::Client) -> HashMap<String, (String, String)> {
    mails_of(base, http, "&kind=test").await
}

async fn mails_of(
    base: &str,
    http: &reqwest::Client,
    filter: &str,
) -> HashMap<String, (String, String)> {
    let v: Value = http
        .get(format!("{base}/api/v1/mail?limit=100{filter}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["mails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                (
                    m["to_address"].as_str().unwrap().to_owned(),
                    m["status"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

async fn message_id(base: &str, http: &reqwest::Client, id: &str) -> String {
    let v: Value = http
        .get(format!("{base}/api/v1/mail/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["mail"]["message_id"].as_str().unwrap().to_owned()
}

/// Deliveries per Message-ID in what the SMTP server stored (the demo's invitations, to its
/// `.test` patients, left out).
fn deliveries(sink: &SmtpSink) -> HashMap<String, usize> {
    let mut count = HashMap::new();
    for raw in sink.messages() {
        if raw.contains("@patients.consultroom.test") {
            continue;
        }
        let id = raw
            .lines()
            .find_map(|l| {
                l.strip_prefix("Message-ID:")
                    .or_else(|| l.strip_prefix("Message-Id:"))
            })
            .unwrap_or_else(|| panic!("a Message-ID in every message:\n{raw}"))
            .trim()
            .to_owned();
        *count.entry(id).or_insert(0) += 1;
    }
    count
}

fn log_has(sink: &SmtpSink, what: &str, address: &str) -> bool {
    sink.rcpt_log()
        .lines()
        .any(|l| l == format!("{what} {address}"))
}

pub async fn every_mail_arrives_after_sigkill_duplicates_only_from_the_window(backend: Backend) {
    let sink = SmtpSink::start();
    let db = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), db.url(), &sink.url(), true);
    let base = server.base.clone();
    let http = admin_client(&base).await;
    // The demo records an invitation per demo appointment: let them go out first, so the four
    // worker slots below are the test mails'.
    wait_until(
        Duration::from_secs(30),
        "the demo's invitations sent",
        || {
            let (base, http) = (base.clone(), http.clone());
            async move {
                let all = mails_of(&base, &http, "").await;
                (all.len() == 2 && all.values().all(|(_, s)| s == "sent")).then_some(())
            }
        },
    )
    .await;

    // Sent and recorded before the kill.
    let mut ids = Vec::new();
    for to in ["sent1@example.org", "sent2@example.org"] {
        ids.push(send_test(&base, &http, to).await);
    }
    wait_until(Duration::from_secs(30), "the first two mails sent", || {
        let (base, http) = (base.clone(), http.clone());
        async move {
            let all = mails(&base, &http).await;
            all.values().filter(|(_, s)| s == "sent").nth(1).map(|_| ())
        }
    })
    .await;
    let sent_before: Vec<String> = ids.clone();

    // The four worker slots: two stalled at RCPT, two stored and held before the 250.
    let slow = [
        ("stall", "stall1@example.org"),
        ("stall", "stall2@example.org"),
        ("held", "hold1@example.org"),
        ("held", "hold2@example.org"),
    ];
    for (_, to) in slow {
        ids.push(send_test(&base, &http, to).await);
    }
    wait_until(
        Duration::from_secs(30),
        "the SMTP server holding four sessions",
        || {
            let ok = slow.iter().all(|(what, to)| log_has(&sink, what, to));
            async move { ok.then_some(()) }
        },
    )
    .await;
    // Recorded, not claimed: no slot is free.
    for to in [
        "queued1@example.org",
        "queued2@example.org",
        "queued3@example.org",
    ] {
        ids.push(send_test(&base, &http, to).await);
    }
    let before = mails(&base, &http).await;
    assert_eq!(before.len(), ids.len());
    for id in &sent_before {
        assert_eq!(before[id].1, "sent");
    }
    for (id, (to, status)) in &before {
        if !sent_before.contains(id) {
            assert_eq!(status, "queued", "{to} not yet sent at the kill");
        }
    }
    assert_eq!(
        deliveries(&sink).len(),
        4,
        "two sent and two held mails stored before the kill"
    );

    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    drop(server);

    // Restart on the same database: the expired leases and the unclaimed jobs are taken up.
    let server = start(dir.path(), db.url(), &sink.url(), false);
    let base = server.base.clone();
    let http = admin_client(&base).await;
    let after = wait_until(Duration::from_secs(60), "every mail sent", || {
        let (base, http) = (base.clone(), http.clone());
        async move {
            let all = mails(&base, &http).await;
            all.values().all(|(_, s)| s == "sent").then_some(all)
        }
    })
    .await;
    assert_eq!(after.len(), ids.len());

    let mut message_ids = HashMap::new();
    for id in &ids {
        message_ids.insert(id.clone(), message_id(&base, &http, id).await);
    }
    let expected_total = ids.len() + 2;
    let delivered = wait_until(Duration::from_secs(10), "every delivery stored", || {
        let d = deliveries(&sink);
        let total: usize = d.values().sum();
        async move { (total >= expected_total).then_some(d) }
    })
    .await;
    let mut report = Vec::new();
    for id in &ids {
        let (to, _) = &after[id];
        let mid = &message_ids[id];
        let n = delivered.get(mid).copied().unwrap_or(0);
        report.push(format!("{to}: {n}"));
        let expected = if to.starts_with("hold") { 2 } else { 1 };
        assert_eq!(
            n, expected,
            "{to} delivered {n} times (Message-ID {mid}); all: {report:?}"
        );
    }
    assert_eq!(
        delivered.len(),
        ids.len(),
        "no message with a Message-ID of its own besides the mails: {delivered:?}"
    );
    eprintln!("deliveries after kill -9 and restart: {report:?}");
    drop(server);
    db.remove().await;
}
