//! Administration (issue #12): staff and departments by role, the last organisation admin,
//! set-password links (once, before expiry, never used up by opening), the organisation profile
//! and logo, the own profile and password change, and the first-run functions the CLI calls.

use consultroom_clinic::setup;
use serde_json::{Value, json};

use crate::support::*;

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn link_token(url: &str) -> String {
    url.split_once("/set-password#")
        .expect("set-password url shape")
        .1
        .to_owned()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba([10, 120, 200, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

async fn staff_emails(app: &TestApp, http: &reqwest::Client) -> Vec<String> {
    let (status, body) = get(http, &app.url("/staff")).await;
    assert_eq!(status, 200, "{body}");
    let mut emails: Vec<String> = body["staff"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap().to_owned())
        .collect();
    emails.sort();
    emails
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> u16 {
    let res = app
        .http()
        .post(app.url("/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    res.status().as_u16()
}

pub async fn staff_lists_and_invitations_follow_roles(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let cardio_admin = app.login(CARDIO_ADMIN).await;
    let doc = app.login(DOC_CARDIO).await;

    // Practitioners manage no one; department admins see their own department only.
    assert_eq!(get(&doc, &app.url("/staff")).await.0, 403);
    assert_eq!(get(&doc, &app.url("/departments")).await.0, 403);
    assert_eq!(
        staff_emails(&app, &cardio_admin).await,
        vec![CARDIO_ADMIN.to_owned(), DOC_CARDIO.to_owned()]
    );
    assert_eq!(
        staff_emails(&app, &admin).await,
        vec![
            ADMIN_A.to_owned(),
            CARDIO_ADMIN.to_owned(),
            DOC_CARDIO.to_owned(),
            DOC_DERMA.to_owned()
        ]
    );
    let (_, deps) = get(&cardio_admin, &app.url("/departments")).await;
    assert_eq!(deps["departments"].as_array().unwrap().len(), 1, "{deps}");
    assert_eq!(deps["departments"][0]["id"], json!(w.cardio));

    // A department admin invites into their own department only, never an organisation admin.
    let url = app.url("/staff");
    let (status, body) = send(cardio_admin.post(&url).json(&json!({
        "email": "new@a.test", "name": "New Doc", "role": "practitioner", "department_id": w.derma
    })))
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = send(cardio_admin.post(&url).json(&json!({
        "email": "new@a.test", "name": "New Doc", "role": "organisation_admin"
    })))
    .await;
    assert_eq!(status, 403);
    let (status, body) = send(doc.post(&url).json(&json!({
        "email": "new@a.test", "name": "New Doc", "role": "practitioner"
    })))
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = send(cardio_admin.post(&url).json(&json!({
        "email": " New@A.test ", "name": "New Doc", "role": "practitioner"
    })))
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["staff"]["department_id"], json!(w.cardio));
    assert_eq!(body["staff"]["email"], "new@a.test");
    assert_eq!(body["staff"]["invitation_pending"], true);
    assert_eq!(body["purpose"], "invite");
    let link = body["set_password_url"].as_str().unwrap();
    assert!(
        link.starts_with("http://consultroom.test/set-password#"),
        "{link}"
    );
    // The token is in no log.
    assert!(!captured_logs().contains(&link_token(link)));
    // No password yet: login is refused like any wrong password.
    assert_eq!(login_status(&app, "new@a.test", "").await, 401);

    // Bad input is refused and creates nothing.
    let before = staff_emails(&app, &admin).await;
    for (bad, field) in [
        (
            json!({"email": "not-an-address", "name": "X", "role": "practitioner"}),
            "email",
        ),
        (
            json!({"email": "x@a.test", "name": "X\r\nBcc: evil@x.test", "role": "practitioner"}),
            "name",
        ),
        (
            json!({"email": "x@a.test", "name": "", "role": "practitioner"}),
            "name",
        ),
        (
            json!({"email": "x@a.test", "name": "X".repeat(101), "role": "practitioner"}),
            "name",
        ),
        (
            json!({"email": "x@a.test", "name": "X", "role": "department_admin"}),
            "department_id",
        ),
    ] {
        let (status, body) = send(admin.post(&url).json(&bad)).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    let (status, _) = send(
        admin
            .post(&url)
            .json(&json!({"email": "x@a.test", "name": "X", "role": "boss"})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = send(admin.post(&url).json(&json!({
        "email": "x@a.test", "name": "X", "role": "practitioner", "department_id": NO_SUCH_DEPARTMENT
    })))
    .await;
    assert_eq!(status, 404, "no such department");
    let (status, body) = send(admin.post(&url).json(&json!({
        "email": DOC_B, "name": "Dup", "role": "practitioner"
    })))
    .await;
    assert_eq!(status, 409, "{body}");
    let mut after = before.clone();
    after.sort();
    assert_eq!(staff_emails(&app, &admin).await, after);

    // Another organisation's admin sees none of A's staff and reaches none (404).
    let admin_b = app.login(ADMIN_B).await;
    assert_eq!(
        staff_emails(&app, &admin_b).await,
        vec![ADMIN_B.to_owned(), DOC_B.to_owned()]
    );
    for path in ["deactivate", "reactivate", "set-password-link"] {
        let (status, _) = post_empty(
            &admin_b,
            &app.url(&format!("/staff/{}/{path}", w.doc_cardio)),
        )
        .await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = send(
        admin_b
            .put(app.url(&format!("/staff/{}/role", w.doc_cardio)))
            .json(&json!({"role": "department_admin"})),
    )
    .await;
    assert_eq!(status, 404);
}

/// A well-formed department id that no organisation has.
const NO_SUCH_DEPARTMENT: &str = "0190f2a4-0000-7000-8000-000000000000";

pub async fn roles_departments_deactivation_and_the_last_admin(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let cardio_admin = app.login(CARDIO_ADMIN).await;
    let doc = app.login(DOC_CARDIO).await;
    let staff_url =
        |id: &dyn std::fmt::Display, what: &str| app.url(&format!("/staff/{id}/{what}"));

    // A department admin acts on their department only; moving is the organisation admin's.
    let (status, _) = post_empty(&cardio_admin, &staff_url(&w.doc_derma, "deactivate")).await;
    assert_eq!(status, 404);
    let (status, _) = send(
        cardio_admin
            .put(staff_url(&w.doc_cardio, "department"))
            .json(&json!({"department_id": w.derma})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(
        cardio_admin
            .put(staff_url(&w.doc_cardio, "role"))
            .json(&json!({"role": "organisation_admin"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = post_empty(&doc, &staff_url(&w.doc_derma, "deactivate")).await;
    assert_eq!(status, 403);

    // Deactivation ends the sessions and refuses the login; reactivation gives it back.
    let (status, body) = post_empty(&cardio_admin, &staff_url(&w.doc_cardio, "deactivate")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["staff"]["active"], false);
    assert_eq!(get(&doc, &app.url("/me")).await.0, 401);
    assert_eq!(login_status(&app, DOC_CARDIO, PASSWORD).await, 401);
    // Nobody books a deactivated practitioner.
    let starts = (app.clock_now() + chrono::Duration::minutes(30)).to_rfc3339();
    let (status, body) = app
        .book(&admin, json!({ "client_id": w.client_a, "practitioner_id": w.doc_cardio, "starts_at": starts, "duration_minutes": 10 }))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = post_empty(&cardio_admin, &staff_url(&w.doc_cardio, "reactivate")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(login_status(&app, DOC_CARDIO, PASSWORD).await, 200);
    assert_eq!(
        get(&doc, &app.url("/me")).await.0,
        401,
        "ended sessions stay ended"
    );
    let doc = app.login(DOC_CARDIO).await;

    // Nobody deactivates themself; the last organisation admin stays one.
    let (status, body) = post_empty(&admin, &staff_url(&w.admin_a, "deactivate")).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = send(
        admin
            .put(staff_url(&w.admin_a, "role"))
            .json(&json!({"role": "practitioner"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("organisation admin")
    );
    assert_eq!(
        get(&admin, &app.url("/staff")).await.0,
        200,
        "still an admin"
    );

    // With a second admin, the first may step down; the second cannot then be removed.
    let (status, _) = send(
        admin
            .put(staff_url(&w.doc_derma, "role"))
            .json(&json!({"role": "organisation_admin"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = send(
        admin
            .put(staff_url(&w.admin_a, "role"))
            .json(&json!({"role": "practitioner"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        get(&admin, &app.url("/staff")).await.0,
        403,
        "role applies at once"
    );
    let derma_admin = app.login(DOC_DERMA).await;
    let (status, _) = post_empty(&derma_admin, &staff_url(&w.doc_derma, "deactivate")).await;
    assert_eq!(status, 409);
    let (status, _) = send(
        derma_admin
            .put(staff_url(&w.doc_derma, "role"))
            .json(&json!({"role": "practitioner"})),
    )
    .await;
    assert_eq!(status, 409);

    // Moving between departments; a department admin needs one; the field is required.
    for bad in [json!({}), json!({"department_id": 7})] {
        let (status, body) = send(
            derma_admin
                .put(staff_url(&w.doc_cardio, "department"))
                .json(&bad),
        )
        .await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, body) = send(
        derma_admin
            .put(staff_url(&w.doc_cardio, "department"))
            .json(&json!({"department_id": w.derma})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["staff"]["department_id"], json!(w.derma));
    let (status, _) = send(
        derma_admin
            .put(staff_url(&w.cardio_admin, "department"))
            .json(&json!({"department_id": null})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = send(
        derma_admin
            .put(staff_url(&w.doc_cardio, "department"))
            .json(&json!({"department_id": NO_SUCH_DEPARTMENT})),
    )
    .await;
    assert_eq!(status, 404);

    // Departments: create, duplicate, rename, delete only when empty.
    let (status, body) = send(
        doc.post(app.url("/departments"))
            .json(&json!({"name": "X"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = send(
        derma_admin
            .post(app.url("/departments"))
            .json(&json!({"name": " Physio "})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["department"]["name"], "Physio");
    assert_eq!(body["department"]["staff_count"], 0);
    let physio = body["department"]["id"].as_str().unwrap().to_owned();
    let (status, _) = send(
        derma_admin
            .post(app.url("/departments"))
            .json(&json!({"name": "Physio"})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = send(
        derma_admin
            .post(app.url("/departments"))
            .json(&json!({"name": "A\nB"})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = send(
        derma_admin
            .put(app.url(&format!("/departments/{physio}")))
            .json(&json!({"name": "Cardio"})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, body) = send(
        derma_admin
            .put(app.url(&format!("/departments/{physio}")))
            .json(&json!({"name": "Physiotherapy"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let admin_b = app.login(ADMIN_B).await;
    let (status, _) = send(admin_b.delete(app.url(&format!("/departments/{physio}")))).await;
    assert_eq!(status, 404, "another organisation");
    let (status, body) =
        send(derma_admin.delete(app.url(&format!("/departments/{}", w.cardio)))).await;
    assert_eq!(status, 409, "cardio has staff: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("move them")
    );
    let (status, _) = send(derma_admin.delete(app.url(&format!("/departments/{physio}")))).await;
    assert_eq!(status, 204);
    let (status, _) = send(derma_admin.delete(app.url(&format!("/departments/{physio}")))).await;
    assert_eq!(status, 404);
}

pub async fn set_password_links_work_once_before_expiry(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let (status, body) = send(admin.post(app.url("/staff")).json(&json!({
        "email": "invited@a.test", "name": "Invited Doc", "role": "practitioner", "department_id": w.derma
    })))
    .await;
    assert_eq!(status, 201, "{body}");
    let token = link_token(body["set_password_url"].as_str().unwrap());
    let check = app.url("/auth/set-password/check");
    let set = app.url("/auth/set-password");

    // Checking (what the page does when opened, scanners included) uses nothing up.
    for _ in 0..3 {
        let (status, body) = send(app.http().post(&check).json(&json!({"token": token}))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["email"], "invited@a.test");
        assert_eq!(body["purpose"], "invite");
    }
    let (status, _) = send(app.http().post(&check).json(&json!({"token": "nope"}))).await;
    assert_eq!(status, 404);

    // A password breaking the rules is refused and the link still works.
    for bad in ["short", "          ", &"x".repeat(1025)] {
        let (status, body) = send(
            app.http()
                .post(&set)
                .json(&json!({"token": token, "password": bad})),
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["field"], "password");
    }
    let new_password = "a long enough passphrase";
    let http = app.http();
    let (status, body) = send(
        http.post(&set)
            .json(&json!({"token": token, "password": new_password})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["staff"]["email"], "invited@a.test");
    assert_eq!(
        body["staff"]["language"],
        Value::Null,
        "the same staff object as /me"
    );
    let (status, me) = get(&http, &app.url("/me")).await;
    assert_eq!(status, 200, "logged in by the link: {me}");
    assert_eq!(
        login_status(&app, "invited@a.test", new_password).await,
        200
    );
    assert!(!captured_logs().contains(new_password));

    // Used once: refused from then on, also for checking.
    let (status, body) = send(
        app.http()
            .post(&set)
            .json(&json!({"token": token, "password": "another passphrase"})),
    )
    .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "link_expired");
    let (status, _) = send(app.http().post(&check).json(&json!({"token": token}))).await;
    assert_eq!(status, 410);
    assert_eq!(
        login_status(&app, "invited@a.test", "another passphrase").await,
        401
    );

    // A reset link (1 h): ends every session of the staff member when used; expires.
    let doc = app.login(DOC_CARDIO).await;
    let reset = setup::reset_password(
        app.clinic.store(),
        app.clock_now(),
        "http://consultroom.test",
        DOC_CARDIO,
    )
    .await
    .unwrap();
    let reset_token = link_token(&reset.url);
    assert_eq!(
        reset.expires_at,
        app.clock_now() + chrono::Duration::hours(1)
    );
    assert_eq!(
        get(&doc, &app.url("/me")).await.0,
        200,
        "issuing changes nothing"
    );
    // A second reset voids the first.
    let second = setup::reset_password(
        app.clinic.store(),
        app.clock_now(),
        "http://consultroom.test",
        DOC_CARDIO,
    )
    .await
    .unwrap();
    let (status, _) = send(app.http().post(&check).json(&json!({"token": reset_token}))).await;
    assert_eq!(status, 410, "the first reset link is void");
    let second_token = link_token(&second.url);
    let (status, _) = send(
        app.http()
            .post(&set)
            .json(&json!({"token": second_token, "password": "reset passphrase 1"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        get(&doc, &app.url("/me")).await.0,
        401,
        "the old session ended"
    );
    assert_eq!(login_status(&app, DOC_CARDIO, PASSWORD).await, 401);

    // Expiry, on the injected clock.
    let late = setup::reset_password(
        app.clinic.store(),
        app.clock_now(),
        "http://consultroom.test",
        DOC_DERMA,
    )
    .await
    .unwrap();
    app.clock.advance(chrono::Duration::minutes(61));
    let (status, _) = send(
        app.http()
            .post(&set)
            .json(&json!({"token": link_token(&late.url), "password": "too late passphrase"})),
    )
    .await;
    assert_eq!(status, 410);
    assert_eq!(
        login_status(&app, DOC_DERMA, PASSWORD).await,
        200,
        "password unchanged"
    );

    // A deactivated staff member's link is refused.
    let fresh = setup::reset_password(
        app.clinic.store(),
        app.clinic.now(),
        "http://consultroom.test",
        DOC_DERMA,
    )
    .await
    .unwrap();
    let admin = app.login(ADMIN_A).await;
    let (status, _) = post_empty(
        &admin,
        &app.url(&format!("/staff/{}/deactivate", w.doc_derma)),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(
        app.http()
            .post(&set)
            .json(&json!({"token": link_token(&fresh.url), "password": "deactivated passphrase"})),
    )
    .await;
    assert_eq!(status, 410);
    assert!(
        setup::reset_password(app.clinic.store(), app.clinic.now(), "http://x", DOC_DERMA)
            .await
            .is_err()
    );
}

pub async fn organisation_profile_and_logo(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let url = app.url("/organisation/profile");

    let (status, body) = get(&doc, &url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Clinic A");
    assert_eq!(body["has_logo"], false);
    let (status, _) = send(doc.put(&url).json(&json!({"name": "Mine"}))).await;
    assert_eq!(status, 403);

    for (bad, field) in [
        (
            json!({"name": "Clinic A2", "contact": {"email": "nope"}}),
            "contact.email",
        ),
        (
            json!({"name": "Clinic A2", "contact": {"phone": "call me"}}),
            "contact.phone",
        ),
        (
            json!({"name": "Clinic A2", "contact": {"website": "javascript:alert(1)"}}),
            "contact.website",
        ),
        (
            json!({"name": "Clinic A2", "forms_of_address": [{"en": "Doctor", "nl": "", "de": "Doktor"}]}),
            "forms_of_address",
        ),
        (json!({"name": "Clinic\nA2"}), "name"),
    ] {
        let (status, body) = send(admin.put(&url).json(&bad)).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["error"]["field"], field);
    }
    assert_eq!(
        get(&admin, &url).await.1["name"],
        "Clinic A",
        "nothing changed"
    );

    let (status, body) = send(admin.put(&url).json(&json!({
        "name": "Clinic A Renamed",
        "contact": {"email": "desk@a.test", "phone": "+31 20 123 4567", "website": "https://a.test", "text": "Open 8-17\nMon-Fri"},
        "forms_of_address": [{"en": "Doctor", "nl": "Dokter", "de": "Doktor"}]
    })))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["contact"]["phone"], "+31 20 123 4567");
    let (_, body) = send(admin.put(&url).json(&json!({"contact": {"phone": ""}}))).await;
    assert_eq!(body["contact"]["phone"], "");
    assert_eq!(
        body["contact"]["email"], "desk@a.test",
        "fields left out keep their value"
    );
    assert_eq!(body["forms_of_address"][0]["nl"], "Dokter");

    // Another organisation sees its own profile only.
    let admin_b = app.login(ADMIN_B).await;
    assert_eq!(get(&admin_b, &url).await.1["name"], "Clinic B");

    // The logo is scaled down server-side; a fake image is refused.
    let logo_url = app.url("/organisation/logo");
    let (status, _) = send(
        doc.put(&logo_url)
            .header("content-type", "image/png")
            .body(png(10, 10)),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(
        admin
            .put(&logo_url)
            .header("content-type", "image/png")
            .body(b"\x89PNG\r\n\x1a\nnot really".to_vec()),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = send(
        admin
            .put(&logo_url)
            .header("content-type", "image/svg+xml")
            .body("<svg/>"),
    )
    .await;
    assert_eq!(status, 415);
    let (status, body) = send(
        admin
            .put(&logo_url)
            .header("content-type", "image/png")
            .body(png(1800, 500)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["has_logo"], true);
    let res = doc.get(&logo_url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    let logo = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((logo.width(), logo.height()), (360, 100));
    assert_eq!(admin_b.get(&logo_url).send().await.unwrap().status(), 404);

    // Patient pages (F11): a resolved link names the clinic, its contact details and a public
    // logo URL, which anyone may fetch without a session.
    let start = t0() + chrono::Duration::hours(3);
    let (status, booked) = app
        .book(
            &doc,
            json!({ "client_id": w.client_a, "starts_at": start.to_rfc3339(), "duration_minutes": 20 }),
        )
        .await;
    assert_eq!(status, 201, "{booked}");
    let token = token_of(booked["invitation_url"].as_str().unwrap());
    app.clock.set(start - chrono::Duration::minutes(5));
    let (status, resolved) = app.resolve(&token).await;
    assert_eq!(status, 200, "{resolved}");
    let org = &resolved["organisation"];
    assert_eq!(org["name"], "Clinic A Renamed");
    assert_eq!(org["contact"]["email"], "desk@a.test");
    assert_eq!(org["contact"]["phone"], "");
    assert_eq!(org["contact"]["website"], "https://a.test");
    assert_eq!(org["contact"]["text"], "Open 8-17\nMon-Fri");
    let public_logo = org["logo_url"].as_str().expect("a logo URL").to_owned();
    assert!(
        public_logo.starts_with("/api/v1/public/organisations/"),
        "{public_logo}"
    );
    let anonymous = reqwest::Client::new();
    let res = anonymous
        .get(format!("{}{public_logo}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    for unknown in [
        "/api/v1/public/organisations/00000000-0000-7000-8000-000000000000/logo",
        "/api/v1/public/organisations/not-a-uuid/logo",
    ] {
        let res = anonymous
            .get(format!("{}{unknown}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{unknown}");
    }

    // Hours later on the clock: the sessions of the start have expired.
    let admin = app.login(ADMIN_A).await;
    let doc = app.login(DOC_CARDIO).await;
    let (status, _) = send(admin.delete(&logo_url)).await;
    assert_eq!(status, 204);
    assert_eq!(doc.get(&logo_url).send().await.unwrap().status(), 404);
    let (_, resolved) = app.resolve(&token).await;
    assert_eq!(resolved["organisation"]["logo_url"], Value::Null);
    let res = anonymous
        .get(format!("{}{public_logo}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "gone with the logo");
}

/// Issue #14: the staff app's language is the staff member's own choice; `null` (the start) means
/// none chosen (the app follows the browser). Left out of an update it stays; `null` clears it.
pub async fn own_language_is_null_until_chosen(backend: Backend) {
    let app = spawn_app(&backend).await;
    let _world = app.world().await;
    let doc = app.login(DOC_CARDIO).await;
    let colleague = app.login(DOC_DERMA).await;
    let url = app.url("/me/profile");
    let me = app.url("/me");

    let (status, body) = get(&doc, &url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["language"],
        Value::Null,
        "not chosen: follow the browser"
    );
    assert_eq!(get(&doc, &me).await.1["language"], Value::Null);

    for bad in [
        json!({"language": "fr"}),
        json!({"language": "NL"}),
        json!({"language": 1}),
    ] {
        let (status, body) = send(doc.put(&url).json(&bad)).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, body) = send(doc.put(&url).json(&json!({"language": "nl"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["language"], "nl");
    assert_eq!(get(&doc, &me).await.1["language"], "nl");
    let (status, body) = get(&doc, &app.url("/auth/session")).await;
    assert_eq!(status, 200);
    assert_eq!(body["me"]["language"], "nl", "the app learns it at boot");
    let (status, body) = send(
        app.http()
            .post(app.url("/auth/login"))
            .json(&json!({"email": DOC_CARDIO, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["staff"]["language"], "nl", "and at sign-in");
    assert_eq!(
        get(&colleague, &me).await.1["language"],
        Value::Null,
        "one staff member's choice only"
    );

    // Other fields leave it alone; null clears it.
    let (status, body) = send(doc.put(&url).json(&json!({"phone": "+31 6 1234 5678"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["language"], "nl");
    let (status, body) = send(doc.put(&url).json(&json!({"language": "de"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(&doc, &me).await.1["language"], "de");
    let (status, body) = send(doc.put(&url).json(&json!({"language": null}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["language"], Value::Null);
    assert_eq!(get(&doc, &me).await.1["language"], Value::Null);
}

pub async fn own_profile_photo_and_password_change(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let doc = app.login(DOC_CARDIO).await;
    let other_session = app.login(DOC_CARDIO).await;
    let url = app.url("/me/profile");

    let (status, body) = get(&doc, &url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["department_name"], "Cardio");
    assert_eq!(body["role"], "practitioner");
    for (bad, field) in [
        (json!({"phone": "12"}), "phone"),
        (json!({"phone": "+31 6 1234 5678 <script>"}), "phone"),
        (json!({"name": "  "}), "name"),
    ] {
        let (status, body) = send(doc.put(&url).json(&bad)).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["error"]["field"], field);
    }
    let (status, _) = send(doc.put(&url).json(&json!({"role": "organisation_admin"}))).await;
    assert_eq!(status, 422, "role is not the staff member's to change");
    let (status, body) = send(
        doc.put(&url)
            .json(&json!({"name": "Dr. Renamed", "phone": "+31 6 1234 5678"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Dr. Renamed");
    assert_eq!(get(&doc, &app.url("/me")).await.1["name"], "Dr. Renamed");

    // Photo: scaled into 256 × 256; colleagues of the organisation see it, others do not.
    let (status, body) = send(
        doc.put(app.url("/me/photo"))
            .header("content-type", "image/png")
            .body(png(1024, 768)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["has_photo"], true);
    let colleague = app.login(DOC_DERMA).await;
    let res = colleague
        .get(app.url(&format!("/staff/{}/photo", w.doc_cardio)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let photo = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((photo.width(), photo.height()), (256, 192));
    let outsider = app.login(DOC_B).await;
    let (status, _) = get(
        &outsider,
        &app.url(&format!("/staff/{}/photo", w.doc_cardio)),
    )
    .await;
    assert_eq!(status, 404);

    // Password change: the current password is needed; the other sessions end.
    let pw = app.url("/me/password");
    let (status, body) = send(
        doc.post(&pw)
            .json(&json!({"current_password": "wrong", "new_password": "a new passphrase"})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "current_password");
    let (status, body) = send(
        doc.post(&pw)
            .json(&json!({"current_password": PASSWORD, "new_password": "short"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "new_password");
    assert_eq!(
        get(&other_session, &app.url("/me")).await.0,
        200,
        "refusals change nothing"
    );
    let (status, body) = send(
        doc.post(&pw)
            .json(&json!({"current_password": PASSWORD, "new_password": "a new passphrase"})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        get(&doc, &app.url("/me")).await.0,
        200,
        "this session stays"
    );
    assert_eq!(
        get(&other_session, &app.url("/me")).await.0,
        401,
        "the other ended"
    );
    assert_eq!(login_status(&app, DOC_CARDIO, PASSWORD).await, 401);
    assert_eq!(
        login_status(&app, DOC_CARDIO, "a new passphrase").await,
        200
    );
}

pub async fn first_run_creates_an_organisation_or_nothing(backend: Backend) {
    let app = spawn_app(&backend).await;
    let store = app.clinic.store();
    let now = app.clock_now();
    let status_url = app.url("/setup/status");
    let (status, body) = get(&app.http(), &status_url).await;
    assert_eq!(status, 200);
    assert_eq!(body["organisation_exists"], false);

    for (name, email) in [
        ("", "a@b.test"),
        ("Clinic", "not an address"),
        ("Clinic\r\nX", "a@b.test"),
    ] {
        assert!(
            setup::create_organisation(store, now, "http://c.test", name, email, None)
                .await
                .is_err()
        );
    }
    assert_eq!(
        store.organisation_count().await.unwrap(),
        0,
        "nothing half-created"
    );

    let created = setup::create_organisation(
        store,
        now,
        "http://c.test",
        "Clinic C",
        "Boss@C.test",
        Some("The Boss"),
    )
    .await
    .unwrap();
    assert!(created.link.url.starts_with("http://c.test/set-password#"));
    assert_eq!(created.link.expires_at, now + chrono::Duration::hours(72));
    assert_eq!(
        get(&app.http(), &status_url).await.1["organisation_exists"],
        true
    );
    // The same admin e-mail again: refused, and no second organisation appears.
    assert!(
        setup::create_organisation(store, now, "http://c.test", "Clinic D", "boss@c.test", None)
            .await
            .is_err()
    );
    assert_eq!(store.organisation_count().await.unwrap(), 1);

    // The admin sets a password through the link and administers the organisation.
    let http = app.http();
    let (status, body) = send(http.post(app.url("/auth/set-password")).json(&json!({
        "token": link_token(&created.link.url), "password": "first admin passphrase"
    })))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["staff"]["role"], "organisation_admin");
    assert_eq!(body["staff"]["name"], "The Boss");
    let (status, _) = send(
        http.post(app.url("/departments"))
            .json(&json!({"name": "General"})),
    )
    .await;
    assert_eq!(status, 201);

    // invite-staff by organisation name and department name.
    assert!(
        setup::invite_staff(
            store,
            now,
            "http://c.test",
            "No Such Clinic",
            "p@c.test",
            None,
            "practitioner",
            None
        )
        .await
        .is_err()
    );
    assert!(
        setup::invite_staff(
            store,
            now,
            "http://c.test",
            "Clinic C",
            "p@c.test",
            None,
            "wizard",
            None
        )
        .await
        .is_err()
    );
    assert!(
        setup::invite_staff(
            store,
            now,
            "http://c.test",
            "Clinic C",
            "p@c.test",
            None,
            "practitioner",
            Some("Nope")
        )
        .await
        .is_err()
    );
    let link = setup::invite_staff(
        store,
        now,
        "http://c.test",
        "Clinic C",
        "p@c.test",
        Some("Pat"),
        "practitioner",
        Some("General"),
    )
    .await
    .unwrap();
    let (_, staff) = get(&http, &app.url("/staff")).await;
    let pat = staff["staff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == "p@c.test")
        .unwrap()
        .clone();
    assert_eq!(pat["invitation_pending"], true);
    assert_eq!(pat["id"], json!(link.staff_id));
    assert!(pat["department_id"].is_string());
}
