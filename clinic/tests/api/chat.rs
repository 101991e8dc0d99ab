//! Chat channels (issue #5): automatic creation with the first appointment (F135), creating and
//! joining (F136, F137), department access by setting (F141), organisation isolation, unread
//! counts (F139, F140), paginated history and deleting it (F143).

use consultroom_clinic::chat::{ChatError, ChatPresence, ChatPrincipal};
use consultroom_clinic::ids::ChatChannelId;
use serde_json::{Value, json};

use crate::support::*;

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn channel_ids(body: &Value) -> Vec<String> {
    body["channels"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|c| c["channel_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The patient (client `w.client_a`, as through the portal) sends a message on `channel` from
/// `presence`.
async fn client_send(
    app: &TestApp,
    w: &World,
    channel: ChatChannelId,
    presence: ChatPresence,
) -> Result<consultroom_clinic::chat::ChatSent, ChatError> {
    app.clinic
        .chat_send(
            ChatPrincipal::Client(w.client_a),
            w.org_a,
            presence,
            channel,
            &uuid::Uuid::new_v4().to_string(),
            "a question",
        )
        .await
}

pub async fn chat_channel_rules(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let doc = app.login(DOC_CARDIO).await;
    let derma = app.login(DOC_DERMA).await;
    let cardio_admin = app.login(CARDIO_ADMIN).await;
    let admin_a = app.login(ADMIN_A).await;
    let doc_b = app.login(DOC_B).await;

    let (status, _) = send(app.http().get(app.url("/chat/channels"))).await;
    assert_eq!(status, 401);

    // F135: booking creates the pair's channel; a second booking reuses it.
    for hours in [1, 30] {
        let (status, body) = app
            .book(
                &doc,
                json!({"client_id": w.client_a, "duration_minutes": 15,
                       "starts_at": app.clock_now() + chrono::Duration::hours(hours)}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = send(doc.get(app.url("/chat/channels"))).await;
    assert_eq!(status, 200, "{body}");
    let ids = channel_ids(&body);
    assert_eq!(ids.len(), 1, "{body}");
    let channel = ids[0].clone();
    let channel_id: ChatChannelId = channel.parse().unwrap();
    assert_eq!(body["channels"][0]["client_name"], CLIENT_A_NAME);
    assert_eq!(body["channels"][0]["joined"], false);
    let messages = app.url(&format!("/chat/channels/{channel}/messages"));

    // The patient writes (as a client, e.g. from the portal).
    for i in 0..7 {
        app.clinic
            .chat_send(
                ChatPrincipal::Client(w.client_a),
                w.org_a,
                ChatPresence::Away,
                channel_id,
                &format!("p{i}"),
                &format!("question {i}"),
            )
            .await
            .unwrap();
    }
    let (_, unread) = send(doc.get(app.url("/chat/unread"))).await;
    assert_eq!(unread["total_unread"], 7, "{unread}");
    assert_eq!(unread["by_client"][w.client_a.to_string()], 7);

    // Paginated history.
    let (status, page) = send(doc.get(format!("{messages}?limit=3"))).await;
    assert_eq!(status, 200, "{page}");
    let seqs = |p: &Value| -> Vec<i64> {
        p["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&page), vec![5, 6, 7]);
    assert_eq!(page["has_more"], true);
    assert_eq!(page["messages"][0]["sender_kind"], "patient");
    let (_, page) = send(doc.get(format!("{messages}?before_seq=5&limit=3"))).await;
    assert_eq!(seqs(&page), vec![2, 3, 4]);
    let (_, page) = send(doc.get(format!("{messages}?after_seq=5"))).await;
    assert_eq!(seqs(&page), vec![6, 7]);
    assert_eq!(page["has_more"], false);
    for bad in ["?after_seq=1&before_seq=3", "?limit=0", "?limit=201"] {
        let (status, _) = send(doc.get(format!("{messages}{bad}"))).await;
        assert_eq!(status, 422, "{bad}");
    }

    // Mark read.
    let (status, _) = send(
        doc.post(app.url(&format!("/chat/channels/{channel}/read")))
            .json(&json!({"seq": 7})),
    )
    .await;
    assert_eq!(status, 204);
    let (_, unread) = send(doc.get(app.url("/chat/unread"))).await;
    assert_eq!(unread["total_unread"], 0);

    // Another department, the same department's admin without the setting, another
    // organisation: nothing listed, 404 everywhere.
    for (who, http) in [
        ("derma", &derma),
        ("cardio admin", &cardio_admin),
        ("org admin", &admin_a),
        ("org b", &doc_b),
    ] {
        let (_, body) = send(http.get(app.url("/chat/channels"))).await;
        assert_eq!(channel_ids(&body), Vec::<String>::new(), "{who}");
        let (status, _) = send(http.get(&messages)).await;
        assert_eq!(status, 404, "{who}");
        let (status, _) = send(http.delete(&messages)).await;
        assert_eq!(status, 404, "{who}");
    }
    let (status, _) = send(derma.post(app.url(&format!("/chat/channels/{channel}/join")))).await;
    assert_eq!(
        status, 404,
        "no own channel with the client, no department access"
    );
    let (status, _) = send(doc_b.post(app.url(&format!("/chat/channels/{channel}/join")))).await;
    assert_eq!(status, 404);
    let (status, _) = send(
        doc_b
            .post(app.url("/chat/channels"))
            .json(&json!({"client_id": w.client_a})),
    )
    .await;
    assert_eq!(status, 404, "another organisation's client");
    // Through the hub: another organisation's client or staff is refused the same way.
    let refused = app
        .clinic
        .chat_send(
            ChatPrincipal::Client(w.client_b),
            w.org_b,
            ChatPresence::Away,
            channel_id,
            "x",
            "hello",
        )
        .await;
    assert!(matches!(refused, Err(ChatError::NotFound)), "{refused:?}");
    let refused = app
        .clinic
        .chat_send(
            ChatPrincipal::Staff(w.doc_b),
            w.org_a,
            ChatPresence::Staff,
            channel_id,
            "x",
            "hello",
        )
        .await;
    assert!(matches!(refused, Err(ChatError::NotFound)), "{refused:?}");

    // F141: with department access, the cardio admin reads and answers; derma still not.
    let (status, _) = send(
        admin_a
            .put(app.url("/organisation/settings"))
            .json(&json!({"department_chat_access": true})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = send(cardio_admin.get(app.url("/chat/channels"))).await;
    assert_eq!(channel_ids(&body), vec![channel.clone()]);
    assert_eq!(body["total_unread"], 7);
    let sent = app
        .clinic
        .chat_send(
            ChatPrincipal::Staff(w.cardio_admin),
            w.org_a,
            ChatPresence::Staff,
            channel_id,
            "a1",
            "answer from the department",
        )
        .await
        .unwrap();
    assert_eq!(sent.message.seq, 8);
    assert_eq!(sent.audience.department_id, Some(w.cardio));
    let (status, _) = send(derma.get(&messages)).await;
    assert_eq!(status, 404);
    let (status, _) = send(admin_a.get(&messages)).await;
    assert_eq!(status, 404, "an organisation admin outside the department");

    // F136/F137: derma opens their own channel with Jan (once), and may then join Dr. Cardio's.
    let (status, body) = send(
        derma
            .post(app.url("/chat/channels"))
            .json(&json!({"client_id": w.client_a})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let own = body["channel"]["channel_id"].as_str().unwrap().to_owned();
    let (status, again) = send(
        derma
            .post(app.url("/chat/channels"))
            .json(&json!({"client_id": w.client_a})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again["channel"]["channel_id"], own.as_str());
    let (status, body) = send(derma.post(app.url(&format!("/chat/channels/{channel}/join")))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channel"]["joined"], true);
    let (_, body) = send(derma.get(format!(
        "{}?client_id={}",
        app.url("/chat/channels"),
        w.client_a
    )))
    .await;
    let mut listed = channel_ids(&body);
    listed.sort();
    let mut want = vec![channel.clone(), own.clone()];
    want.sort();
    assert_eq!(
        listed, want,
        "F138: several channels per client, kept apart"
    );
    let sent = app
        .clinic
        .chat_send(
            ChatPrincipal::Staff(w.doc_derma),
            w.org_a,
            ChatPresence::Staff,
            channel_id,
            "d1",
            "joined and answering",
        )
        .await
        .unwrap();
    assert!(sent.audience.staff_ids.contains(&w.doc_derma));

    // F143: a member deletes the history; it is gone for everyone, and seqs go on.
    let (status, body) = send(derma.delete(&messages)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cleared_through_seq"], 9);
    let (_, page) = send(doc.get(&messages)).await;
    assert_eq!(page["messages"], json!([]));
    assert_eq!(page["cleared_through_seq"], 9);
    let (_, unread) = send(doc.get(app.url("/chat/unread"))).await;
    assert_eq!(unread["total_unread"], 0);
    let sent = app
        .clinic
        .chat_send(
            ChatPrincipal::Client(w.client_a),
            w.org_a,
            ChatPresence::Away,
            channel_id,
            "p-after",
            "new question",
        )
        .await
        .unwrap();
    assert_eq!(sent.message.seq, 10);
}

pub async fn chat_settings_close_the_patient_side(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let doc = app.login(DOC_CARDIO).await;
    let admin_a = app.login(ADMIN_A).await;
    let (status, body) = app
        .book(
            &doc,
            json!({"client_id": w.client_a, "duration_minutes": 15,
                   "starts_at": app.clock_now() + chrono::Duration::hours(1)}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, body) = send(doc.get(app.url("/chat/channels"))).await;
    let channel: ChatChannelId = channel_ids(&body)[0].parse().unwrap();
    let try_send = |presence| client_send(&app, &w, channel, presence);
    assert!(try_send(ChatPresence::Waiting).await.is_ok());
    assert!(try_send(ChatPresence::Away).await.is_ok());
    let (status, _) = send(admin_a.put(app.url("/organisation/settings")).json(&json!({
        "chat_in_waiting_room": false,
        "continuous_chat": false,
        "chat_after_consultation": "delete",
    })))
    .await;
    assert_eq!(status, 200);
    assert!(matches!(
        try_send(ChatPresence::Waiting).await,
        Err(ChatError::Forbidden(_))
    ));
    assert!(matches!(
        try_send(ChatPresence::Away).await,
        Err(ChatError::Forbidden(_))
    ));
    assert!(try_send(ChatPresence::InConsultation).await.is_ok());
}

/// F142: department admins (of the practitioner's department) and organisation admins grant a
/// patient chat between visits or stop it; practitioners, other departments and other
/// organisations cannot; the organisation may open channels only by grant. Waiting-room and
/// consultation chat are not affected.
pub async fn continuous_chat_is_granted_and_stopped_by_admins(backend: Backend) {
    let app = spawn_app(&backend).await;
    let w = app.world().await;
    let doc = app.login(DOC_CARDIO).await;
    let derma = app.login(DOC_DERMA).await;
    let cardio_admin = app.login(CARDIO_ADMIN).await;
    let admin_a = app.login(ADMIN_A).await;
    let admin_b = app.login(ADMIN_B).await;
    let (status, body) = app
        .book(
            &doc,
            json!({"client_id": w.client_a, "duration_minutes": 15,
                   "starts_at": app.clock_now() + chrono::Duration::hours(1)}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let invitation = token_of(body["invitation_url"].as_str().unwrap());
    let (status, body) = app
        .book(
            &derma,
            json!({"client_id": w.client_a, "duration_minutes": 15,
                   "starts_at": app.clock_now() + chrono::Duration::hours(2)}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, body) = send(doc.get(app.url("/chat/channels"))).await;
    let channel = channel_ids(&body)[0].clone();
    let channel_id: ChatChannelId = channel.parse().unwrap();
    assert_eq!(body["channels"][0]["patient_access"], "default");
    assert_eq!(body["channels"][0]["open_between_visits"], true);
    let (_, body) = send(derma.get(app.url("/chat/channels"))).await;
    let derma_channel = channel_ids(&body)[0].clone();

    let access = |c: &str| app.url(&format!("/chat/channels/{c}/patient-access"));
    let put = |http: &reqwest::Client, c: &str, v: Value| http.put(access(c)).json(&v);
    let try_send = |presence| client_send(&app, &w, channel_id, presence);
    let invitation_chat = || {
        send(
            app.http()
                .post(app.url("/invitations/chat"))
                .json(&json!({ "token": invitation })),
        )
    };
    assert!(try_send(ChatPresence::Away).await.is_ok());
    let (status, body) = invitation_chat().await;
    assert_eq!(status, 200, "{body}");

    // Who may change it.
    let stop = json!({"patient_access": "stopped"});
    let (status, body) = send(put(&doc, &channel, stop.clone())).await;
    assert_eq!(status, 403, "a practitioner: {body}");
    let (status, body) = send(put(&cardio_admin, &derma_channel, stop.clone())).await;
    assert_eq!(status, 403, "another department's channel: {body}");
    let (status, body) = send(put(&admin_b, &channel, stop.clone())).await;
    assert_eq!(status, 404, "another organisation: {body}");
    let (status, body) = send(put(
        &cardio_admin,
        &channel,
        json!({"patient_access": "open"}),
    ))
    .await;
    assert!(
        status == 400 || status == 422,
        "unknown value: {status} {body}"
    );
    let (status, body) = send(put(&cardio_admin, "not-a-channel", stop.clone())).await;
    assert_eq!(status, 404, "{body}");
    let (_, body) = send(doc.get(app.url("/chat/channels"))).await;
    assert_eq!(
        body["channels"][0]["patient_access"], "default",
        "refusals change nothing"
    );

    // Stopped: the patient is refused between visits (send and link), not while waiting or in
    // a consultation; staff still see and write.
    let (status, body) = send(put(&cardio_admin, &channel, stop.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channel"]["patient_access"], "stopped");
    assert_eq!(body["channel"]["open_between_visits"], false);
    assert!(matches!(
        try_send(ChatPresence::Away).await,
        Err(ChatError::Forbidden(_))
    ));
    assert!(try_send(ChatPresence::Waiting).await.is_ok());
    assert!(try_send(ChatPresence::InConsultation).await.is_ok());
    let (status, body) = invitation_chat().await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.to_string().contains(CLIENT_A_NAME), "{body}");
    let (_, body) = send(doc.get(app.url("/chat/channels"))).await;
    assert_eq!(body["channels"][0]["open_between_visits"], false);

    // The client list's view of a client's channels: listed only to who may use, join or
    // manage them.
    let list = |http: &reqwest::Client, client: String| {
        send(http.get(app.url(&format!("/chat/access?client_id={client}"))))
    };
    let by_channel = |body: &Value, id: &str| {
        body["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["channel_id"] == id)
            .cloned()
    };
    let (status, body) = list(&cardio_admin, w.client_a.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["channels"].as_array().unwrap().len(),
        1,
        "not derma's: {body}"
    );
    let e = by_channel(&body, &channel).unwrap();
    assert_eq!(e["can_manage"], true, "{e}");
    assert_eq!(e["patient_access"], "stopped");
    assert!(
        e.get("unread").is_none() && e.get("last_seq").is_none(),
        "{e}"
    );
    // F137: the cardiologist treats the client too, so derma's channel is listed to join.
    let (status, body) = list(&doc, w.client_a.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let own = by_channel(&body, &channel).unwrap();
    assert_eq!(
        (
            own["own"].clone(),
            own["can_open"].clone(),
            own["can_manage"].clone()
        ),
        (json!(true), json!(true), json!(false)),
        "{own}"
    );
    let other = by_channel(&body, &derma_channel).unwrap();
    assert_eq!(
        (other["can_open"].clone(), other["can_join"].clone()),
        (json!(false), json!(true)),
        "{other}"
    );
    let (status, body) =
        send(doc.post(app.url(&format!("/chat/channels/{derma_channel}/join")))).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = list(&doc, w.client_a.to_string()).await;
    let other = by_channel(&body, &derma_channel).unwrap();
    assert_eq!(
        (
            other["joined"].clone(),
            other["can_open"].clone(),
            other["can_join"].clone()
        ),
        (json!(true), json!(true), json!(false)),
        "{other}"
    );
    let (status, _) = list(&admin_b, w.client_a.to_string()).await;
    assert_eq!(status, 404);
    let (status, _) = list(&admin_a, "nope".to_owned()).await;
    assert!(status == 400 || status == 422);
    let (status, body) = list(&admin_a, w.client_a.to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(body["channels"].as_array().unwrap().len(), 2, "{body}");
    assert!(
        body["channels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["can_manage"] == true),
        "{body}"
    );

    // By grant: the organisation closes channels until an admin opens them.
    let (status, _) = send(admin_a.put(app.url("/organisation/settings")).json(&json!({
        "continuous_chat_by_grant": true,
    })))
    .await;
    assert_eq!(status, 200);
    let (status, _) = send(put(
        &cardio_admin,
        &channel,
        json!({"patient_access": "default"}),
    ))
    .await;
    assert_eq!(status, 200);
    assert!(matches!(
        try_send(ChatPresence::Away).await,
        Err(ChatError::Forbidden(_))
    ));
    let (status, _) = invitation_chat().await;
    assert_eq!(status, 403);
    let (status, body) = send(put(
        &admin_a,
        &channel,
        json!({"patient_access": "granted"}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channel"]["open_between_visits"], true);
    assert!(try_send(ChatPresence::Away).await.is_ok());
    let (status, body) = invitation_chat().await;
    assert_eq!(status, 200, "{body}");

    // Without continuous chat there is nothing to grant.
    let (status, _) = send(admin_a.put(app.url("/organisation/settings")).json(&json!({
        "continuous_chat": false, "chat_after_consultation": "delete",
    })))
    .await;
    assert_eq!(status, 200);
    assert!(matches!(
        try_send(ChatPresence::Away).await,
        Err(ChatError::Forbidden(_))
    ));
    let (status, body) = send(put(
        &admin_a,
        &channel,
        json!({"patient_access": "granted"}),
    ))
    .await;
    assert!(status == 400 || status == 422, "{status} {body}");
}
