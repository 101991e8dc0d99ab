//! External participants and their groups (issue #4; F16, F17, F74): who may manage them,
//! validation that changes nothing, organisation scoping, and inviting a record or a whole group
//! to an appointment as guests.

use chrono::Duration;
use serde_json::{Value, json};

use crate::support::*;

/// A record name that must never reach the logs.
const CANARY: &str = "Canary Externalname";

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
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

async fn post(http: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    send(http, reqwest::Method::POST, url, Some(body)).await
}

async fn count(app: &TestApp, http: &reqwest::Client) -> usize {
    let (status, body) = get(http, &app.url("/external-participants")).await;
    assert_eq!(status, 200, "{body}");
    body["external_participants"].as_array().unwrap().len()
}

pub async fn external_participants_groups_and_invites(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let admin = app.login(ADMIN_A).await;
    let cardio_admin = app.login(CARDIO_ADMIN).await;
    let doc = app.login(DOC_CARDIO).await;
    let admin_b = app.login(ADMIN_B).await;

    // Groups: admins create them; practitioners only read; one name per organisation, any case.
    let (status, body) = post(
        &doc,
        &app.url("/participant-groups"),
        json!({"name": "Family"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = post(
        &admin,
        &app.url("/participant-groups"),
        json!({"name": " Family "}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let family = body["group"]["id"].as_str().unwrap().to_owned();
    let (status, body) = post(
        &cardio_admin,
        &app.url("/participant-groups"),
        json!({"name": "Home care"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let home_care = body["group"]["id"].as_str().unwrap().to_owned();
    let (status, body) = post(
        &admin,
        &app.url("/participant-groups"),
        json!({"name": "FAMILY"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(61)}),
        json!({"name": "a\nb"}),
        json!({}),
    ] {
        let (status, body) = post(&admin, &app.url("/participant-groups"), bad.clone()).await;
        assert!(status == 422 || status == 400, "{bad}: {status} {body}");
    }
    // Another organisation has its own namespace and sees none of ours.
    assert_eq!(
        post(
            &admin_b,
            &app.url("/participant-groups"),
            json!({"name": "Family"})
        )
        .await
        .0,
        201
    );
    let (_, body) = get(&doc, &app.url("/participant-groups")).await;
    let names: Vec<&str> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Family", "Home care"]);
    let (_, body_b) = get(&admin_b, &app.url("/participant-groups")).await;
    let other_family = body_b["groups"][0]["id"].as_str().unwrap().to_owned();
    assert_ne!(other_family, family);

    // Records: any staff member creates them, with the fields of a client, in groups.
    let url = app.url("/external-participants");
    let (status, body) = post(
        &doc,
        &url,
        json!({
            "name": CANARY, "email": "canary@example.nl", "phone": "+31 6 1234 5678",
            "date_of_birth": "1950-02-03", "group_ids": [family, home_care],
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let canary = body["external_participant"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        body["external_participant"]["group_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, body) = post(
        &doc,
        &url,
        json!({"name": "Zus Jansen", "group_ids": [family]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let sister = body["external_participant"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Bad input is refused and creates nothing.
    for bad in [
        json!({"name": ""}),
        json!({"name": "A", "email": "not-an-email"}),
        json!({"name": "A", "date_of_birth": "2999-01-01"}),
        json!({"name": "A", "group_ids": ["not-a-uuid"]}),
        json!({"name": "A", "group_ids": [other_family]}),
        json!({"name": "x".repeat(10_000)}),
    ] {
        let (status, body) = post(&doc, &url, bad.clone()).await;
        assert!(status == 422 || status == 400, "{status} {body}");
    }
    assert_eq!(count(&app, &doc).await, 2);
    // Filtered by group; one record; other organisations get 404 and see nothing.
    let (_, body) = get(
        &doc,
        &app.url(&format!("/external-participants?group_id={home_care}")),
    )
    .await;
    let list = body["external_participants"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], canary.as_str());
    let (status, body) = get(&doc, &app.url(&format!("/external-participants/{canary}"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["external_participant"]["email"], "canary@example.nl");
    assert_eq!(
        get(
            &admin_b,
            &app.url(&format!("/external-participants/{canary}"))
        )
        .await
        .0,
        404
    );
    assert_eq!(count(&app, &admin_b).await, 0);
    let (status, _) = send(
        &admin_b,
        reqwest::Method::PUT,
        &app.url(&format!("/external-participants/{canary}")),
        Some(json!({"name": "Hijack"})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        send(
            &admin_b,
            reqwest::Method::DELETE,
            &app.url(&format!("/participant-groups/{family}")),
            None
        )
        .await
        .0,
        404
    );
    // Update replaces fields and groups.
    let (status, body) = send(
        &doc,
        reqwest::Method::PUT,
        &app.url(&format!("/external-participants/{sister}")),
        Some(json!({"name": "Zus Jansen-de Vries", "group_ids": [home_care]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["external_participant"]["name"], "Zus Jansen-de Vries");
    assert_eq!(
        body["external_participant"]["group_ids"],
        json!([home_care])
    );
    let (status, _) = send(
        &doc,
        reqwest::Method::PUT,
        &app.url(&format!("/external-participants/{sister}")),
        Some(json!({"name": "", "group_ids": []})),
    )
    .await;
    assert_eq!(status, 422);
    let (_, body) = get(&doc, &app.url(&format!("/external-participants/{sister}"))).await;
    assert_eq!(
        body["external_participant"]["name"], "Zus Jansen-de Vries",
        "a refused update changes nothing"
    );

    // Inviting to an appointment: a record, then a whole group (the already invited are skipped).
    let start = app.clock_now() + Duration::minutes(10);
    let (status, body) = app
        .book(&doc, json!({ "client_id": w.client_a, "starts_at": start.to_rfc3339(), "duration_minutes": 20 }))
        .await;
    assert_eq!(status, 201, "{body}");
    let appointment = body["appointment"]["id"].as_str().unwrap().to_owned();
    let guests = app.url(&format!("/appointments/{appointment}/guests"));
    let (status, body) = post(&doc, &guests, json!({"external_participant_id": canary})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["guest"]["name"], CANARY);
    assert_eq!(body["guest"]["external_participant_id"], canary.as_str());
    let token = token_of(body["invitation_url"].as_str().unwrap());
    let (status, resolved) = app.resolve(&token).await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["patient_display_name"], CANARY);
    assert_eq!(
        post(&doc, &guests, json!({"external_participant_id": canary}))
            .await
            .0,
        409
    );
    let (status, body) = post(&doc, &guests, json!({"group_id": home_care})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["invitations"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(
        body["invitations"][0]["guest"]["name"],
        "Zus Jansen-de Vries"
    );
    assert_eq!(body["skipped_already_invited"], 1);
    assert_eq!(
        post(&doc, &guests, json!({"group_id": home_care})).await.0,
        409
    );
    for bad in [
        json!({"name": "A", "group_id": family}),
        json!({"external_participant_id": canary, "group_id": family}),
        json!({}),
    ] {
        assert_eq!(post(&doc, &guests, bad.clone()).await.0, 422, "{bad}");
    }
    assert_eq!(
        post(&doc, &guests, json!({"group_id": other_family}))
            .await
            .0,
        404
    );
    assert_eq!(
        post(&doc, &guests, json!({"external_participant_id": "nope"}))
            .await
            .0,
        404
    );
    let (_, body) = post(
        &admin,
        &app.url("/participant-groups"),
        json!({"name": "Empty"}),
    )
    .await;
    let empty = body["group"]["id"].as_str().unwrap().to_owned();
    assert_eq!(post(&doc, &guests, json!({"group_id": empty})).await.0, 422);
    let (_, body) = get(&doc, &guests).await;
    let listed: Vec<&str> = body["guests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["external_participant_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [canary.as_str(), sister.as_str()]);

    // Deleting: admins only; a deleted record's guest link stays (it no longer names the record).
    let rec = app.url(&format!("/external-participants/{canary}"));
    assert_eq!(send(&doc, reqwest::Method::DELETE, &rec, None).await.0, 403);
    assert_eq!(
        send(&admin, reqwest::Method::DELETE, &rec, None).await.0,
        204
    );
    assert_eq!(
        send(&admin, reqwest::Method::DELETE, &rec, None).await.0,
        404
    );
    let (_, body) = get(&doc, &guests).await;
    assert_eq!(body["guests"][0]["name"], CANARY);
    assert!(
        body["guests"][0]["external_participant_id"].is_null(),
        "{body}"
    );
    assert_eq!(app.resolve(&token).await.0, 200);
    // A deleted group leaves its members.
    let grp = app.url(&format!("/participant-groups/{home_care}"));
    assert_eq!(send(&doc, reqwest::Method::DELETE, &grp, None).await.0, 403);
    assert_eq!(
        send(&cardio_admin, reqwest::Method::DELETE, &grp, None)
            .await
            .0,
        204
    );
    let (_, body) = get(&doc, &app.url(&format!("/external-participants/{sister}"))).await;
    assert_eq!(body["external_participant"]["group_ids"], json!([]));
    // Renaming: admins; collisions are 409.
    let fam = app.url(&format!("/participant-groups/{family}"));
    assert_eq!(
        send(
            &doc,
            reqwest::Method::PUT,
            &fam,
            Some(json!({"name": "Familie"}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        send(
            &admin,
            reqwest::Method::PUT,
            &fam,
            Some(json!({"name": "empty"}))
        )
        .await
        .0,
        409
    );
    assert_eq!(
        send(
            &admin,
            reqwest::Method::PUT,
            &fam,
            Some(json!({"name": "Familie"}))
        )
        .await
        .0,
        204
    );

    assert!(
        !captured_logs().contains(CANARY),
        "record names never reach the logs"
    );
    assert!(!captured_logs().contains("canary@example.nl"));
}
