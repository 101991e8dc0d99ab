//! Cross-origin request protection on the composed server (`src/csrf.rs`): a state-changing
//! request that a browser marks as coming from another origin is refused with 403
//! `cross_origin_request` and changes nothing, even with the staff session cookie.

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use crate::support::{TestApp, spawn_app};

/// The status of the first appointment of today's list, and its id.
async fn first_appointment(app: &TestApp, c: &reqwest::Client) -> (String, String) {
    let v: Value = c
        .get(format!("{}/api/v1/appointments", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a = &v["appointments"][0];
    (
        a["id"].as_str().expect("an appointment").to_owned(),
        a["status"].as_str().expect("a status").to_owned(),
    )
}

async fn status_of(app: &TestApp, c: &reqwest::Client, id: &str) -> String {
    let v: Value = c
        .get(format!("{}/api/v1/appointments/{id}", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["appointment"]["status"].as_str().unwrap().to_owned()
}

fn browser_headers(site: Option<&str>, origin: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(site) = site {
        h.insert("sec-fetch-site", HeaderValue::from_str(site).unwrap());
    }
    h.insert("origin", HeaderValue::from_str(origin).unwrap());
    h
}

async fn assert_refused(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 403, "{what}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "cross_origin_request", "{what}: {v}");
}

#[tokio::test]
async fn cross_origin_posts_with_the_session_cookie_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let staff = app.staff_client().await;
    let (id, status) = first_appointment(&app, &staff).await;
    assert_eq!(status, "scheduled");
    let cancel = format!("{}/api/v1/appointments/{id}/cancel", app.base);
    let logout = format!("{}/api/v1/auth/logout", app.base);
    // A sibling port on the same host is the same site (the SameSite=Strict cookie is sent).
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let sibling = format!("http://127.0.0.1:{}", port.wrapping_add(1));

    for (site, origin) in [
        (None, "http://evil.test"),
        (None, "null"),
        (Some("cross-site"), "http://evil.test"),
        (Some("same-site"), sibling.as_str()),
    ] {
        let what = format!("site={site:?} origin={origin}");
        let r = staff
            .post(&cancel)
            .headers(browser_headers(site, origin))
            .send()
            .await
            .unwrap();
        assert_refused(r, &format!("cancel {what}")).await;
        let r = staff
            .post(&logout)
            .headers(browser_headers(site, origin))
            .send()
            .await
            .unwrap();
        assert_refused(r, &format!("logout {what}")).await;
    }
    // Nothing changed: still scheduled, and the session still works.
    assert_eq!(status_of(&app, &staff, &id).await, "scheduled");
    let me = staff
        .get(format!("{}/api/v1/me", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the session survived the refused logouts");

    // The same requests from our own origin (or from no browser) go through.
    let own = app.base.clone();
    let r = staff
        .post(&cancel)
        .headers(browser_headers(Some("same-origin"), &own))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(status_of(&app, &staff, &id).await, "cancelled");
    let r = staff
        .post(&logout)
        .headers(browser_headers(None, &own))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    app.stop().await;
}

#[tokio::test]
async fn the_hubs_file_upload_is_covered_too() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    // The consultation-file upload is a PUT on the hub's router: refused before its ticket is
    // even looked up (an unknown ticket would be a 404).
    let r = c
        .put(format!(
            "{}/api/v1/consultation-files/uploads/unknown",
            app.base
        ))
        .headers(browser_headers(Some("cross-site"), "http://evil.test"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_refused(r, "upload").await;
    // Without browser headers the same request reaches the handler.
    let r = c
        .put(format!(
            "{}/api/v1/consultation-files/uploads/unknown",
            app.base
        ))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn a_cross_origin_websocket_upgrade_is_refused() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = spawn_app().await;
    let upgrade = |origin: Option<&str>| {
        let mut req = app.ws_url.as_str().into_client_request().unwrap();
        if let Some(o) = origin {
            req.headers_mut()
                .insert("origin", HeaderValue::from_str(o).unwrap());
        }
        tokio_tungstenite::connect_async(req)
    };
    match upgrade(Some("http://evil.test")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403)
        }
        other => panic!(
            "expected a 403 refusal, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
    // Our own origin, and clients that send none, still upgrade.
    let (ws, _) = upgrade(Some(&app.base))
        .await
        .expect("same origin upgrades");
    drop(ws);
    let (ws, _) = upgrade(None).await.expect("no Origin upgrades");
    drop(ws);
    app.stop().await;
}
