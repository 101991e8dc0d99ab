//! Login, logout, cookies and session timeouts.

use chrono::Duration;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;

use crate::support::*;

pub async fn login_sets_session_and_me_returns_profile(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let http = app.http();
    let res = http
        .post(app.url("/auth/login"))
        .json(&json!({ "email": "Doc-Cardio@A.test", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["staff"]["id"], w.doc_cardio.to_string());
    assert_eq!(body["staff"]["role"], "practitioner");
    assert!(body["staff"].get("password_hash").is_none());

    let (status, me) = get(&http, &app.url("/me")).await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], w.doc_cardio.to_string());
    assert_eq!(me["name"], DOC_CARDIO_NAME);
    assert_eq!(me["email"], DOC_CARDIO);
    assert_eq!(me["organisation_id"], w.org_a.to_string());
    assert_eq!(me["department_id"], w.cardio.to_string());
}

pub async fn wrong_password_and_unknown_email_get_identical_401(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let attempt = |email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            let res = reqwest::Client::new()
                .post(app.url("/auth/login"))
                .json(&json!({ "email": email, "password": password }))
                .send()
                .await
                .unwrap();
            assert!(res.headers().get(SET_COOKIE).is_none());
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let wrong_password = attempt(DOC_CARDIO, "not the password").await;
    let unknown_email = attempt("nobody@a.test", PASSWORD).await;
    assert_eq!(wrong_password.0, 401);
    assert_eq!(wrong_password, unknown_email);
    let body: serde_json::Value = serde_json::from_str(&wrong_password.1).unwrap();
    assert_eq!(body["error"]["code"], "invalid_credentials");
}

fn session_set_cookie(res: &reqwest::Response) -> String {
    set_cookie_named(res, "cr_session")
}

fn set_cookie_named(res: &reqwest::Response, name: &str) -> String {
    let prefix = format!("{name}=");
    let all: Vec<String> = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    all.iter()
        .find(|v| v.starts_with(&prefix))
        .cloned()
        .unwrap_or_else(|| panic!("{name} cookie set: {all:?}"))
}

/// `GET /me` with exactly this `Cookie` header.
async fn me_with(app: &TestApp, cookie: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/me"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn login_raw(app: &TestApp, email: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
}

pub async fn session_cookie_flags_on_http(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let res = login_raw(&app, DOC_CARDIO).await;
    let cookie = session_set_cookie(&res);
    let lower = cookie.to_ascii_lowercase();
    assert!(lower.contains("; httponly"), "{cookie}");
    assert!(lower.contains("; samesite=strict"), "{cookie}");
    assert!(lower.contains("; path=/"), "{cookie}");
    assert!(!lower.contains("; secure"), "{cookie}");
    // The cookie is encrypted: it does not hold the bare 43-character session id.
    let value = cookie["cr_session=".len()..].split(';').next().unwrap();
    assert!(value.len() > 43, "{value}");
    // On plain http it is read under that name only.
    assert_eq!(me_with(&app, &format!("cr_session={value}")).await, 200);
    assert_eq!(
        me_with(&app, &format!("__Host-cr_session={value}")).await,
        401
    );
}

pub async fn session_cookie_is_secure_on_https(backend: Backend) {
    let app = spawn_app_with(
        &backend,
        Options {
            public_url: "https://video.example.test",
        },
    )
    .await;
    app.world().await;
    let res = login_raw(&app, DOC_CARDIO).await;
    // Under https the cookie has the `__Host-` prefix (Secure, Path=/, no Domain), and no
    // unprefixed one is set.
    assert!(
        !res.headers()
            .get_all(SET_COOKIE)
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("cr_session=")),
    );
    let cookie = set_cookie_named(&res, "__Host-cr_session");
    let lower = cookie.to_ascii_lowercase();
    assert!(lower.contains("; secure"), "{cookie}");
    assert!(lower.contains("; httponly"), "{cookie}");
    assert!(lower.contains("; samesite=strict"), "{cookie}");
    assert!(lower.contains("; path=/"), "{cookie}");
    assert!(!lower.contains("; domain"), "{cookie}");
    // It is read under that name only.
    let pair = cookie.split(';').next().unwrap().to_owned();
    let value = &pair["__Host-cr_session=".len()..];
    assert_eq!(me_with(&app, &pair).await, 200);
    assert_eq!(me_with(&app, &format!("cr_session={value}")).await, 401);
    // Logout clears it under the same name, with the attributes the prefix requires.
    let res = reqwest::Client::new()
        .post(app.url("/auth/logout"))
        .header(COOKIE, pair.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let cleared = set_cookie_named(&res, "__Host-cr_session").to_ascii_lowercase();
    assert!(cleared.contains("; secure"), "{cleared}");
    assert!(cleared.contains("; path=/"), "{cleared}");
    assert!(cleared.contains("max-age=0"), "{cleared}");
    assert_eq!(me_with(&app, &pair).await, 401);
}

pub async fn logout_revokes_the_session_server_side(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let cookie = session_set_cookie(&login_raw(&app, DOC_CARDIO).await);
    let pair = cookie.split(';').next().unwrap().to_owned();
    let plain = reqwest::Client::new();
    let me = |pair: String| {
        let plain = plain.clone();
        let url = app.url("/me");
        async move {
            plain
                .get(url)
                .header(COOKIE, pair)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(pair.clone()).await, 200);
    let res = plain
        .post(app.url("/auth/logout"))
        .header(COOKIE, pair.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // The old cookie, replayed, no longer works.
    assert_eq!(me(pair.clone()).await, 401);
    // Logging out again is harmless.
    let res = plain
        .post(app.url("/auth/logout"))
        .header(COOKIE, pair)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}

pub async fn idle_timeout_slides_and_expires(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let http = app.login(DOC_CARDIO).await;
    // Activity every 20 minutes keeps the session alive past 30 minutes in total.
    app.clock.advance(Duration::minutes(20));
    assert_eq!(get(&http, &app.url("/me")).await.0, 200);
    app.clock.advance(Duration::minutes(20));
    assert_eq!(get(&http, &app.url("/me")).await.0, 200);
    // 31 idle minutes end it.
    app.clock.advance(Duration::minutes(31));
    let (status, body) = get(&http, &app.url("/me")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthenticated");
}

pub async fn unauthenticated_requests_get_401_json(backend: Backend) {
    let app = spawn_app(&backend).await;
    let http = app.http();
    for path in ["/me", "/clients", "/appointments"] {
        let (status, body) = get(&http, &app.url(path)).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(body["error"]["code"], "unauthenticated");
    }
    let (status, _) = post_empty(&http, &app.url("/signalling/token")).await;
    assert_eq!(status, 401);
    // A forged cookie value is just unauthenticated.
    let res = reqwest::Client::new()
        .get(app.url("/me"))
        .header(COOKIE, "cr_session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

pub async fn absolute_timeout_ends_an_active_session(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let http = app.login(DOC_CARDIO).await;
    // Active every 25 minutes: the idle timeout never fires, the 12 h limit does.
    for _ in 0..28 {
        app.clock.advance(Duration::minutes(25));
        assert_eq!(get(&http, &app.url("/me")).await.0, 200);
    }
    // 28 × 25 min = 11 h 40 min; the next step crosses 12 h.
    app.clock.advance(Duration::minutes(25));
    assert_eq!(get(&http, &app.url("/me")).await.0, 401);
}

async fn login_status(
    http: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
    forwarded: Option<&str>,
) -> (u16, Option<String>) {
    let mut req = http
        .post(url)
        .json(&json!({ "email": email, "password": password }));
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    let res = req.send().await.unwrap();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), retry)
}

/// Failed logins are throttled per account (whatever the address) and, with peer addresses,
/// per source; `X-Forwarded-For` counts only from a configured trusted proxy.
pub async fn login_is_throttled_per_account_and_source(backend: Backend) {
    let app = spawn_app_configured(&backend, Options::default(), |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.world().await;
    let http = reqwest::Client::new();
    let url = app.url("/auth/login");
    // Per account: the burst of failures passes (401); then even the right password gets 429
    // with Retry-After, without a session.
    for i in 0..10 {
        assert_eq!(
            login_status(&http, &url, DOC_CARDIO, "wrong", None).await.0,
            401,
            "attempt {i}"
        );
    }
    let (status, retry) = login_status(&http, &url, DOC_CARDIO, PASSWORD, None).await;
    assert_eq!(status, 429);
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The e-mail's case does not give a fresh bucket; other accounts are not affected.
    assert_eq!(
        login_status(&http, &url, "DOC-CARDIO@a.test", PASSWORD, None)
            .await
            .0,
        429
    );
    assert_eq!(
        login_status(&http, &url, ADMIN_A, PASSWORD, None).await.0,
        200
    );

    // Per source, behind the trusted proxy (127.0.0.1): the forwarded client is the key.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.clinic.router();
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    let url = format!("http://{addr}/api/v1/auth/login");
    for i in 0..20 {
        let email = format!("guess{i}@a.test");
        assert_eq!(
            login_status(&http, &url, &email, "wrong", Some("203.0.113.7"))
                .await
                .0,
            401,
            "attempt {i}"
        );
    }
    assert_eq!(
        login_status(&http, &url, ADMIN_A, PASSWORD, Some("203.0.113.7"))
            .await
            .0,
        429
    );
    // A spoofed entry in front does not change the key (the proxy appends the real client).
    assert_eq!(
        login_status(
            &http,
            &url,
            ADMIN_A,
            PASSWORD,
            Some("198.51.100.1, 203.0.113.7")
        )
        .await
        .0,
        429
    );
    // Another client behind the same proxy logs in.
    assert_eq!(
        login_status(&http, &url, ADMIN_A, PASSWORD, Some("203.0.113.8"))
            .await
            .0,
        200
    );
    server.abort();
}

/// Logout ends only its own session; ending every session of a staff member (the mechanism for
/// deactivation and password change) revokes them all, refuses the join tokens minted with them,
/// and tells the listeners (the signalling hub) each session once.
pub async fn ending_sessions_revokes_them_refuses_their_tokens_and_tells_the_listeners(
    backend: Backend,
) {
    use consultroom_clinic::JoinTokenError;
    use consultroom_clinic::auth::SessionEndReason;
    use consultroom_clinic::ids::SessionId;
    use std::sync::{Arc, Mutex};

    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let ended: Arc<Mutex<Vec<SessionId>>> = Arc::default();
    let seen = ended.clone();
    app.clinic.subscribe(Arc::new(move |event| {
        if let consultroom_clinic::ClinicEvent::StaffSessionEnded { session_id } = event {
            seen.lock().unwrap().push(session_id);
        }
    }));
    let token = |http: reqwest::Client| {
        let url = app.url("/signalling/token");
        async move {
            let (status, body) = post_empty(&http, &url).await;
            assert_eq!(status, 200, "{body}");
            body["token"].as_str().unwrap().to_owned()
        }
    };
    let sid = |token: &str| match app.clinic.verify_join_token(token) {
        Ok(consultroom_clinic::JoinClaims::Staff(s)) => s.session_id,
        other => panic!("{other:?}"),
    };
    // Three logins of the practitioner, one of a colleague.
    let (s1, s2, s3) = (
        app.login(DOC_CARDIO).await,
        app.login(DOC_CARDIO).await,
        app.login(DOC_CARDIO).await,
    );
    let other = app.login(DOC_DERMA).await;
    let (t1, t2, t3, t_other) = (
        token(s1.clone()).await,
        token(s2.clone()).await,
        token(s3.clone()).await,
        token(other.clone()).await,
    );
    for t in [&t1, &t2, &t3, &t_other] {
        assert!(app.clinic.verify_join_token_live(t).await.is_ok());
    }
    // The claim is the session's row id, different per login.
    assert_ne!(sid(&t1), sid(&t2));

    // Logout: that session only.
    let (status, _) = post_empty(&s1, &app.url("/auth/logout")).await;
    assert_eq!(status, 204);
    assert_eq!(*ended.lock().unwrap(), vec![sid(&t1)]);
    assert_eq!(
        app.clinic.verify_join_token_live(&t1).await,
        Err(JoinTokenError::Invalid)
    );
    assert!(app.clinic.verify_join_token_live(&t2).await.is_ok());
    assert_eq!(get(&s2, &app.url("/me")).await.0, 200);

    // Every session of the practitioner (deactivation, password change): s2 and s3.
    let n = app
        .clinic
        .end_staff_sessions(w.doc_cardio, SessionEndReason::PasswordChanged)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let mut got = ended.lock().unwrap().clone();
    got.sort();
    let mut want = vec![sid(&t1), sid(&t2), sid(&t3)];
    want.sort();
    assert_eq!(got, want, "each ended session told once");
    for (http, t) in [(&s2, &t2), (&s3, &t3)] {
        assert_eq!(get(http, &app.url("/me")).await.0, 401);
        assert_eq!(
            app.clinic.verify_join_token_live(t).await,
            Err(JoinTokenError::Invalid)
        );
    }
    // The colleague is untouched; ending again finds nothing.
    assert_eq!(get(&other, &app.url("/me")).await.0, 200);
    assert!(app.clinic.verify_join_token_live(&t_other).await.is_ok());
    let n = app
        .clinic
        .end_staff_sessions(w.doc_cardio, SessionEndReason::Deactivated)
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(ended.lock().unwrap().len(), 3);
}

pub async fn session_state_is_always_200(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let (status, body) = get(&app.http(), &app.url("/auth/session")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::json!({ "signed_in": false }));
    let doc = app.login(DOC_CARDIO).await;
    let (status, body) = get(&doc, &app.url("/auth/session")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["signed_in"], true);
    assert_eq!(body["me"]["email"], DOC_CARDIO);
    // Logged out: signed out again.
    let (status, _) = post_empty(&doc, &app.url("/auth/logout")).await;
    assert!(status == 200 || status == 204, "{status}");
    let (_, body) = get(&doc, &app.url("/auth/session")).await;
    assert_eq!(body["signed_in"], false);
}
