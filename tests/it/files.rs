//! File sharing in a consultation (issue #5): offers over the WebSocket, streaming uploads,
//! sniffing, sanitised names, downloads for participants only, and deletion when the
//! consultation ends — against the real server, with the files checked on disk.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestApp, WsClient, spawn_app};

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

/// Staff and patient in a consultation; returns (staff, patient, patient participant id).
async fn consultation(app: &TestApp) -> (WsClient, WsClient, String) {
    let (mut staff, _) = WsClient::join(app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    let (mut patient, joined) = WsClient::join(app, &app.patient_token().await).await;
    let pid = joined["participant_id"].as_str().unwrap().to_owned();
    staff.recv_type("waiting_arrived").await;
    let r = staff
        .request(json!({"type":"admit","participant_id":pid}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
    staff.recv_type("consultation_started").await;
    patient.recv_type("consultation_started").await;
    (staff, patient, pid)
}

async fn offer(ws: &mut WsClient, name: &str, size: usize) -> Value {
    ws.request(json!({"type":"file_offer","name":name,"size":size,"content_type":"application/octet-stream"}))
        .await
}

async fn put(app: &TestApp, url: &str, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .put(format!("{}{url}", app.base))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Offer and upload `body` as `name`; returns the upload's HTTP status and JSON.
async fn share(app: &TestApp, ws: &mut WsClient, name: &str, body: &[u8]) -> (u16, Value) {
    let ready = offer(ws, name, body.len()).await;
    assert_eq!(ready["type"], "file_upload_ready", "{ready}");
    put(app, ready["url"].as_str().unwrap(), body.to_vec()).await
}

fn files_dir(app: &TestApp) -> PathBuf {
    app.data_dir.join("consultation-files")
}

/// Every regular file under `dir`, recursively.
fn stored_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(stored_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Send request headers only (never a body) and return the status line of the answer.
async fn headers_only(app: &TestApp, path: &str, headers: &str) -> String {
    let addr = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("PUT {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            let n = s.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the server answers without the body");
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn download_url(ws: &mut WsClient, file_id: &str) -> Value {
    ws.request(json!({"type":"file_download","file_id":file_id}))
        .await
}

#[tokio::test]
async fn a_file_is_shared_downloaded_by_the_other_side_and_the_download_recorded() {
    let app = spawn_app().await;
    let (mut staff, mut patient, pid) = consultation(&app).await;

    let (status, body) = share(&app, &mut patient, "lab-results.pdf", PDF).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["content_type"], "application/pdf");
    for ws in [&mut staff, &mut patient] {
        let shared = ws.recv_type("file_shared").await;
        assert_eq!(shared["name"], "lab-results.pdf");
        assert_eq!(shared["size"], PDF.len());
        assert_eq!(shared["content_type"], "application/pdf");
        assert_eq!(shared["from"], pid.as_str());
        assert_eq!(shared["file_id"], body["file_id"]);
    }
    // Stored under a random name, nowhere else.
    let stored = stored_files(&files_dir(&app));
    assert_eq!(stored.len(), 1);
    let name = stored[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.len() == 32 && name.chars().all(|c| c.is_ascii_hexdigit()),
        "{name}"
    );

    let file_id = body["file_id"].as_str().unwrap();
    let ready = download_url(&mut staff, file_id).await;
    assert_eq!(ready["type"], "file_download_ready", "{ready}");
    let url = format!("{}{}", app.base, ready["url"].as_str().unwrap());
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"lab-results.pdf\"; filename*=UTF-8''lab-results.pdf"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "sandbox; default-src 'none'");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PDF);
    // Single use.
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);

    // The sender can fetch it too (the reverse direction works the same way).
    let ready = download_url(&mut patient, file_id).await;
    let r = reqwest::get(format!("{}{}", app.base, ready["url"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Both downloads are recorded durably, with ids only.
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        app.data_dir.join("consultroom.db").display()
    ))
    .await
    .unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "select participant_id, role, subject_id from consultation_file_download \
         where file_id = $1 order by downloaded_at, role desc",
    )
    .bind(file_id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().any(|r| r.1 == "staff"));
    assert!(rows.iter().any(|r| r.1 == "patient" && r.0 == pid));
    db.close().await;
}

#[tokio::test]
async fn oversize_is_refused_before_the_body_is_read() {
    let app = spawn_app().await;
    let (_staff, mut patient, _) = consultation(&app).await;

    // Declared too large: refused on the WebSocket, nothing to upload.
    let r = offer(&mut patient, "scan.pdf", 75 * 1024 * 1024 + 1).await;
    assert_eq!(r["code"], "too_large", "{r}");

    // A body announced larger than the offer: 413 on the headers alone, no `100 Continue`.
    let ready = offer(&mut patient, "scan.pdf", PDF.len()).await;
    let path = ready["url"].as_str().unwrap();
    let status = headers_only(
        &app,
        path,
        "Content-Length: 50000000\r\nExpect: 100-continue\r\n",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    // The ticket is spent.
    let (status, _) = put(&app, path, PDF.to_vec()).await;
    assert_eq!(status, 404);

    // No Content-Length (a chunked body of unknown size): 411 before reading.
    let ready = offer(&mut patient, "scan.pdf", PDF.len()).await;
    let status = headers_only(
        &app,
        ready["url"].as_str().unwrap(),
        "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 411"), "{status}");

    // The consultation's total: 256 MiB by default; reservations count.
    let big = 75 * 1024 * 1024;
    for _ in 0..3 {
        let r = offer(&mut patient, "big.pdf", big).await;
        assert_eq!(r["type"], "file_upload_ready", "{r}");
    }
    let r = offer(&mut patient, "big.pdf", big).await;
    assert_eq!(r["code"], "too_large", "{r}");
    assert!(stored_files(&files_dir(&app)).is_empty());
}

#[tokio::test]
async fn disguised_types_are_refused_by_content() {
    let app = spawn_app().await;
    let (mut staff, mut patient, _) = consultation(&app).await;

    let html = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>";
    let (status, body) = share(&app, &mut patient, "scan.png", html).await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(body["error"]["code"], "unsupported_type");
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>"#;
    let (status, _) = share(&app, &mut patient, "x-ray.png", svg).await;
    assert_eq!(status, 415);
    // An allowed type under another type's name is a disguise too.
    let (status, _) = share(&app, &mut patient, "photo.png", PDF).await;
    assert_eq!(status, 415);
    // Refused by name before anything is sent.
    let r = offer(&mut patient, "page.html", 10).await;
    assert_eq!(r["code"], "unsupported_type");

    assert!(stored_files(&files_dir(&app)).is_empty());
    assert!(staff.try_recv(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn path_like_and_hostile_names_are_sanitised() {
    let app = spawn_app().await;
    let (mut staff, mut patient, _) = consultation(&app).await;

    for (raw, shown) in [
        ("../../etc/passwd", "passwd.txt"),
        ("..\\..\\boot.ini.txt", "boot.ini.txt"),
        ("a\r\nb.txt", "ab.txt"),
        ("/", "file.txt"),
    ] {
        let (status, body) = share(&app, &mut patient, raw, b"hello\n").await;
        assert_eq!(status, 201, "{raw}: {body}");
        assert_eq!(body["name"], shown, "{raw}");
        let shared = staff.recv_type("file_shared").await;
        assert_eq!(shared["name"], shown);
        let ready = download_url(&mut staff, shared["file_id"].as_str().unwrap()).await;
        let r = reqwest::get(format!("{}{}", app.base, ready["url"].as_str().unwrap()))
            .await
            .unwrap();
        let cd = r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(cd.starts_with("attachment; "), "{cd}");
        assert!(
            !cd.contains('/') && !cd.contains('\\') && !cd.contains('\r'),
            "{cd}"
        );
        assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    }
    // Nothing was written outside the consultation's directory.
    assert!(!app.data_dir.join("etc").exists());
    for f in stored_files(&app.data_dir) {
        let rel = f.strip_prefix(&app.data_dir).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        assert!(
            top == "consultation-files" || top.starts_with("consultroom.db") || top == "secret.key",
            "unexpected file {rel:?}"
        );
    }
}

#[tokio::test]
async fn only_participants_of_the_consultation_can_download() {
    let app = spawn_app().await;
    let (mut staff, mut patient, _) = consultation(&app).await;
    let (status, body) = share(&app, &mut staff, "plan.pdf", PDF).await;
    assert_eq!(status, 201);
    let file_id = body["file_id"].as_str().unwrap().to_owned();
    patient.recv_type("file_shared").await;

    // Another connection of the same organisation that is not in this consultation.
    let (mut outsider, _) = WsClient::join(&app, &app.staff_token().await).await;
    let r = download_url(&mut outsider, &file_id).await;
    assert_eq!(r["code"], "not_found", "{r}");
    let r = offer(&mut outsider, "x.pdf", 10).await;
    assert_eq!(r["code"], "invalid_state", "{r}");

    // Guessed or foreign tickets: 404, whatever the path.
    for ticket in ["0".repeat(64), file_id.clone(), "../../secret.key".into()] {
        let r = reqwest::get(format!(
            "{}/api/v1/consultation-files/downloads/{ticket}",
            app.base
        ))
        .await
        .unwrap();
        assert_eq!(r.status(), 404, "{ticket}");
    }
    // An upload ticket is not a download ticket, and vice versa.
    let ready = download_url(&mut patient, &file_id).await;
    let dl = ready["url"]
        .as_str()
        .unwrap()
        .replace("/downloads/", "/uploads/");
    assert_eq!(put(&app, &dl, PDF.to_vec()).await.0, 404);
}

#[tokio::test]
async fn an_interrupted_upload_leaves_nothing_behind() {
    let app = spawn_app().await;
    let (_staff, mut patient, _) = consultation(&app).await;
    let size = 4 * 1024 * 1024;
    let ready = offer(&mut patient, "long.txt", size).await;
    let path = ready["url"].as_str().unwrap();
    let addr = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("PUT {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {size}\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![b'a'; 1024 * 1024]).await.unwrap();
    // Wait until the partial file exists, then cancel.
    let dir = files_dir(&app);
    for _ in 0..100 {
        if !stored_files(&dir).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored_files(&dir).len(), 1, "the upload streams to disk");
    drop(s);
    for _ in 0..100 {
        if stored_files(&dir).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stored_files(&dir).is_empty(), "the partial file is deleted");
    // Its reservation is given back: the whole quota is available again.
    for _ in 0..3 {
        let r = offer(&mut patient, "big.pdf", 75 * 1024 * 1024).await;
        assert_eq!(r["type"], "file_upload_ready", "{r}");
    }
}

#[tokio::test]
async fn files_are_deleted_from_disk_when_the_consultation_ends() {
    let app = spawn_app().await;
    let (mut staff, mut patient, _) = consultation(&app).await;
    let (status, body) = share(&app, &mut patient, "photo.pdf", PDF).await;
    assert_eq!(status, 201);
    let file_id = body["file_id"].as_str().unwrap().to_owned();
    let stored = stored_files(&files_dir(&app));
    assert_eq!(stored.len(), 1);
    let consultation_dir = stored[0].parent().unwrap().to_path_buf();
    let ready = download_url(&mut staff, &file_id).await;
    let url = format!("{}{}", app.base, ready["url"].as_str().unwrap());

    let r = staff.request(json!({"type":"end_consultation"})).await;
    assert_eq!(r["type"], "ok");
    patient.recv_type("consultation_ended").await;
    for _ in 0..100 {
        if !consultation_dir.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Verified on disk: the bytes are gone, not just forgotten.
    assert!(!stored[0].exists());
    assert!(!consultation_dir.exists());
    assert_eq!(std::fs::read_dir(files_dir(&app)).unwrap().count(), 0);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);
    let r = download_url(&mut staff, &file_id).await;
    assert_eq!(r["code"], "not_found");

    let metrics = reqwest::get(format!("{}/metrics", app.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("consultroom_signalling_file_dirs_deleted_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("consultroom_signalling_file_deletion_failures_total 0"));
}

#[tokio::test]
async fn the_organisation_can_switch_file_sharing_off() {
    let app = spawn_app().await;
    // The demo practitioner is no organisation admin: write the setting as the admin API would
    // (the demo seed already stored its settings: its time zone).
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        app.data_dir.join("consultroom.db").display()
    ))
    .await
    .unwrap();
    sqlx::query(
        "insert into organisation_settings (organisation_id, settings, updated_at) \
         select organisation_id, '{\"file_sharing\":false}', '2026-01-01T00:00:00Z' from organisation \
         where true on conflict (organisation_id) do update set settings = excluded.settings",
    )
    .execute(&db)
    .await
    .unwrap();
    db.close().await;
    let (mut staff, mut patient, _) = consultation(&app).await;
    for ws in [&mut staff, &mut patient] {
        let r = offer(ws, "a.pdf", 10).await;
        assert_eq!(r["code"], "forbidden", "{r}");
    }
}

#[tokio::test]
async fn file_routes_are_documented_and_served() {
    let app = spawn_app().await;
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let routes = consultroom_signalling::files::routes();
    assert_eq!(routes.len(), 2);
    let http = reqwest::Client::new();
    for (method, path) in routes {
        let op = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
        assert!(
            op["responses"].is_object(),
            "{method} {path} missing from openapi.json"
        );
        let concrete = path.replace("{ticket}", &"ab".repeat(32));
        let r = http
            .request(method.clone(), format!("{}{concrete}", app.base))
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "not_found",
            "served by the file routes"
        );
    }
}
