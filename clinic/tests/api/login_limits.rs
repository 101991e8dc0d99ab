//! Login hardening (issue #10): the bounded password-check pool, failure cells taken before the
//! Argon2 check, and device cookies that keep a known browser usable while someone else guesses.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use chrono::Duration;
use futures_util::future::join_all;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;

use crate::support::*;

/// One login attempt: status, `Retry-After`, and the device cookie (`name=value`) it set.
struct Outcome {
    status: u16,
    retry_after: Option<u64>,
    device: Option<String>,
}

async fn attempt(
    http: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
    from: Option<&str>,
    device: Option<&str>,
) -> Outcome {
    let mut req = http
        .post(url)
        .json(&json!({ "email": email, "password": password }));
    if let Some(f) = from {
        req = req.header("x-forwarded-for", f);
    }
    if let Some(d) = device {
        req = req.header(COOKIE, d);
    }
    let res = req.send().await.expect("send");
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").parse().expect("seconds"));
    let device = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|v| v.starts_with("cr_device=") || v.starts_with("__Host-cr_device="))
        .map(|v| v.split(';').next().expect("pair").to_owned());
    Outcome {
        status: res.status().as_u16(),
        retry_after,
        device,
    }
}

/// Serves `app`'s router with peer addresses and 127.0.0.1 as a trusted proxy, so each request
/// names its source in `X-Forwarded-For`; returns the login URL.
async fn serve_behind_proxy(app: &TestApp) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app.clinic.router();
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    (format!("http://{addr}/api/v1/auth/login"), server)
}

async fn spawn_behind_proxy(backend: &Backend) -> TestApp {
    spawn_app_configured(backend, Options::default(), |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("net")];
    })
    .await
}

fn tally(outcomes: &[Outcome]) -> BTreeMap<u16, usize> {
    let mut by_status = BTreeMap::new();
    for o in outcomes {
        *by_status.entry(o.status).or_default() += 1;
    }
    by_status
}

/// A flood of concurrent wrong logins (each for its own unknown e-mail, so no throttle bucket
/// stops them) runs at most one Argon2 check per hashing thread at a time; the rest are refused at
/// once with 429 and `Retry-After` instead of each holding 19 MiB on the blocking pool.
pub async fn concurrent_wrong_logins_are_bounded_by_the_password_pool(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let http = reqwest::Client::new();
    let url = app.url("/auth/login");
    let before = app.clinic.password_check_stats();
    let n = 200;
    let outcomes = join_all((0..n).map(|i| {
        let (http, url) = (&http, &url);
        async move {
            let email = format!("flood{i}@a.test");
            attempt(http, url, &email, "wrong", None, None).await
        }
    }))
    .await;
    let after = app.clinic.password_check_stats();
    let by_status = tally(&outcomes);
    let runs = after.runs - before.runs;
    let refused = after.refused_busy - before.refused_busy;
    assert!(after.peak_running <= after.workers, "{after:?}");
    assert_eq!(runs + refused, n as u64, "{after:?} {by_status:?}");
    assert_eq!(by_status.get(&401).copied().unwrap_or(0) as u64, runs);
    assert_eq!(by_status.get(&429).copied().unwrap_or(0) as u64, refused);
    assert!(refused > 0, "nothing refused: {by_status:?} {after:?}");
    for o in outcomes.iter().filter(|o| o.status == 429) {
        assert_eq!(o.retry_after, Some(1));
    }
    // Refusals while busy do not count against anyone: the pool is free again, and a real login
    // goes through.
    let ok = attempt(&http, &url, DOC_CARDIO, PASSWORD, None, None).await;
    assert_eq!(ok.status, 200);
}

/// Concurrent wrong passwords for one account take their failure cells before the check, so only
/// the account's burst (10) is checked at all, however the attempts overlap.
pub async fn concurrent_wrong_logins_for_one_account_stop_at_the_burst(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.world().await;
    let http = reqwest::Client::new();
    let url = app.url("/auth/login");
    // Waves no larger than the pool admits, so no refusal is for being busy.
    let wave = (app.clinic.password_check_stats().capacity as usize).min(5);
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.extend(
            join_all((0..wave).map(|_| attempt(&http, &url, DOC_CARDIO, "wrong", None, None)))
                .await,
        );
    }
    let by_status = tally(&outcomes);
    assert_eq!(by_status.get(&401), Some(&10), "{by_status:?}");
    assert_eq!(by_status.get(&429), Some(&(4 * wave - 10)), "{by_status:?}");
    let ok = attempt(&http, &url, DOC_CARDIO, PASSWORD, None, None).await;
    assert_eq!(ok.status, 429);
}

/// OWASP's device cookies: an attacker guessing from two addresses locks the account for new
/// devices, but the user's browser that logged in before keeps getting in, every time. One
/// address alone cannot even lock new devices out. A device cookie's own failures are limited.
pub async fn a_known_device_gets_in_while_the_account_is_attacked(backend: Backend) {
    let app = spawn_behind_proxy(&backend).await;
    app.world().await;
    let (url, server) = serve_behind_proxy(&app).await;
    let http = reqwest::Client::new();
    let (user, attacker_1, attacker_2, new_device) =
        ("203.0.113.20", "198.51.100.1", "198.51.100.2", "192.0.2.30");

    // The user logged in from this browser yesterday: it has a device cookie.
    let first = attempt(&http, &url, DOC_CARDIO, PASSWORD, Some(user), None).await;
    assert_eq!(first.status, 200);
    let mut device = first.device.expect("device cookie set");
    app.clock.advance(Duration::hours(20));

    // One address: 12 wrong, then 2 every 4 s. A new device elsewhere is not locked out.
    for _ in 0..12 {
        let _ = attempt(&http, &url, DOC_CARDIO, "guess", Some(attacker_1), None).await;
    }
    let fresh = attempt(&http, &url, DOC_CARDIO, PASSWORD, Some(new_device), None).await;
    assert_eq!(fresh.status, 200, "one source locked the account");

    // A second address joins in: now the account is locked for untrusted clients…
    for _ in 0..12 {
        let _ = attempt(&http, &url, DOC_CARDIO, "guess", Some(attacker_2), None).await;
    }
    let fresh = attempt(&http, &url, DOC_CARDIO, PASSWORD, Some(new_device), None).await;
    assert_eq!(fresh.status, 429, "new devices wait (the trade-off)");
    assert!(fresh.retry_after.is_some());

    // …while the known browser gets in every time the attacker keeps going.
    let mut refused_attacks = 0;
    for round in 0..10 {
        app.clock.advance(Duration::seconds(4));
        for from in [attacker_1, attacker_2] {
            let a = attempt(&http, &url, DOC_CARDIO, "guess", Some(from), None).await;
            assert_ne!(a.status, 200);
            refused_attacks += usize::from(a.status == 429);
        }
        let me = attempt(&http, &url, DOC_CARDIO, PASSWORD, Some(user), Some(&device)).await;
        assert_eq!(me.status, 200, "round {round}");
        device = me.device.expect("device cookie renewed");
    }
    assert_eq!(refused_attacks, 20, "the attacker got password checks");

    // The cookie counts only for its account: for another (locked) account it is no help.
    for from in [attacker_1, attacker_2] {
        for _ in 0..5 {
            let _ = attempt(&http, &url, DOC_DERMA, "guess", Some(from), None).await;
        }
    }
    let other = attempt(&http, &url, DOC_DERMA, PASSWORD, Some(user), Some(&device)).await;
    assert_eq!(other.status, 429);

    // A device cookie's own failures lock that cookie out, right password or not.
    for _ in 0..5 {
        let wrong = attempt(&http, &url, DOC_CARDIO, "typo", Some(user), Some(&device)).await;
        assert_eq!(wrong.status, 401);
    }
    let locked = attempt(&http, &url, DOC_CARDIO, PASSWORD, Some(user), Some(&device)).await;
    assert_eq!(locked.status, 429);

    // A forged cookie is an untrusted client.
    let forged = attempt(
        &http,
        &url,
        DOC_CARDIO,
        PASSWORD,
        Some(user),
        Some("cr_device=v1,forged"),
    )
    .await;
    assert_eq!(forged.status, 429);
    server.abort();
}

/// An IPv6 client rotating its address inside one /64 is one source.
pub async fn ipv6_addresses_in_one_prefix_are_one_source(backend: Backend) {
    let app = spawn_behind_proxy(&backend).await;
    app.world().await;
    let (url, server) = serve_behind_proxy(&app).await;
    let http = reqwest::Client::new();
    for i in 1..=5 {
        let from = format!("2001:db8:7:1::{i:x}");
        let a = attempt(&http, &url, DOC_CARDIO, "guess", Some(&from), None).await;
        assert_eq!(a.status, 401, "attempt {i}");
    }
    let same = "2001:db8:7:1:ffff:ffff:ffff:fffe";
    let a = attempt(&http, &url, DOC_CARDIO, PASSWORD, Some(same), None).await;
    assert_eq!(a.status, 429);
    let next = "2001:db8:7:2::1";
    let a = attempt(&http, &url, DOC_CARDIO, PASSWORD, Some(next), None).await;
    assert_eq!(a.status, 200);
    server.abort();
}

/// The device cookie: encrypted, `HttpOnly`, `SameSite=Strict`, long-lived; `__Host-` and
/// `Secure` on https.
pub async fn device_cookie_flags(backend: Backend) {
    for (public_url, name, secure) in [
        ("http://consultroom.test", "cr_device=", false),
        ("https://video.example.test", "__Host-cr_device=", true),
    ] {
        let app = spawn_app_with(&backend, Options { public_url }).await;
        app.world().await;
        let res = reqwest::Client::new()
            .post(app.url("/auth/login"))
            .json(&json!({ "email": DOC_CARDIO, "password": PASSWORD }))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 200);
        let cookie = res
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .find(|v| v.starts_with(name))
            .expect("device cookie");
        let lower = cookie.to_ascii_lowercase();
        assert!(lower.contains("; httponly"), "{cookie}");
        assert!(lower.contains("; samesite=strict"), "{cookie}");
        assert!(lower.contains("; path=/"), "{cookie}");
        assert!(lower.contains("; max-age=15552000"), "{cookie}");
        assert!(!lower.contains("; domain"), "{cookie}");
        assert_eq!(lower.contains("; secure"), secure, "{cookie}");
        // Encrypted: neither the staff id nor the format is readable.
        assert!(!cookie.contains("v1,"), "{cookie}");
    }
}
