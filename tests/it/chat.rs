//! Chat channels over the WebSocket (issue #5): ordering, acknowledgement after commit,
//! idempotent retries, exactly-once catch-up after a dropped socket, waiting-room chat on/off,
//! deleted history, and the chat-only invitation link — against the real server, on every
//! backend.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp, WsClient, backends, spawn_app, spawn_app_on};

const ADMIN_EMAIL: &str = "admin@consultroom.test";

/// A cookie client logged in as the demo organisation admin.
async fn admin_client(app: &TestApp) -> reqwest::Client {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = c
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"email": ADMIN_EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c
}

async fn set_settings(app: &TestApp, body: Value) {
    let r = admin_client(app)
        .await
        .put(format!("{}/api/v1/organisation/settings", app.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// `POST /invitations/chat` with the demo appointment's invitation token.
async fn invitation_chat(app: &TestApp) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1/invitations/chat", app.base))
        .json(&json!({ "token": app.invitation_token() }))
        .send()
        .await
        .unwrap()
}

/// The channel `ws` finds in its list for the demo appointment's client.
async fn staff_channel(ws: &mut WsClient, channel: &str) -> Value {
    let r = ws.request(json!({"type":"chat_channels"})).await;
    assert_eq!(r["type"], "chat_channel_list", "{r}");
    r["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel_id"] == channel)
        .cloned()
        .unwrap_or_else(|| panic!("{channel} not listed: {r}"))
}

/// The channel of the demo appointment, as the patient's connection lists it.
async fn channel_of(ws: &mut WsClient) -> String {
    let r = ws.request(json!({"type":"chat_channels"})).await;
    assert_eq!(r["type"], "chat_channel_list", "{r}");
    let channels = r["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 1, "{r}");
    channels[0]["channel_id"].as_str().unwrap().to_owned()
}

async fn sync(ws: &mut WsClient, channel: &str, after: i64) -> Value {
    let r = ws
        .request(json!({"type":"chat_sync","channel_id":channel,"after_seq":after}))
        .await;
    assert_eq!(r["type"], "chat_history", "{r}");
    r
}

async fn send(ws: &mut WsClient, channel: &str, cid: &str, text: &str) -> Value {
    ws.request(json!({"type":"chat_send","channel_id":channel,"client_msg_id":cid,"text":text}))
        .await
}

/// The next `chat_message` (skipping other frames).
async fn next_message(ws: &mut WsClient) -> Value {
    ws.recv_type("chat_message").await["message"].clone()
}

/// No chat frame arrives within a short while.
async fn no_chat_frame(ws: &mut WsClient) {
    while let Some(v) = ws.try_recv(Duration::from_millis(300)).await {
        let t = v["type"].as_str().unwrap_or_default();
        assert!(!t.starts_with("chat_"), "unexpected {v}");
    }
}

#[tokio::test]
async fn messages_are_acked_after_commit_and_delivered_in_order_to_every_device() {
    for backend in backends() {
        let app = spawn_app_on(backend).await;
        let (mut patient, _) = WsClient::join(&app, &app.patient_token().await).await;
        patient.recv_type("waiting").await;
        let channel = channel_of(&mut patient).await;
        let staff_token = app.staff_token().await;
        let (mut staff, _) = WsClient::join(&app, &staff_token).await;
        staff_channel(&mut staff, &channel).await;
        let h = sync(&mut staff, &channel, 0).await;
        assert_eq!(h["messages"], json!([]));
        // A second device of the practitioner that has not opened the channel.
        let (mut other_tab, _) = WsClient::join(&app, &staff_token).await;
        other_tab.recv_type("waiting_snapshot").await;

        // 20 messages pipelined without waiting for acks.
        for i in 0..20 {
            patient
                .send_raw(
                    json!({"id":format!("s{i}"),"type":"chat_send","channel_id":channel,
                           "client_msg_id":format!("m{i}"),"text":format!("message {i}")})
                    .to_string(),
                )
                .await;
        }
        for i in 0..20 {
            let ack = patient.recv_type("chat_ack").await;
            assert_eq!(ack["reply_to"], format!("s{i}"));
            assert_eq!(ack["client_msg_id"], format!("m{i}"));
            assert_eq!(ack["seq"], i + 1, "gap-free seqs in send order");
        }
        for i in 0..20 {
            let m = next_message(&mut staff).await;
            assert_eq!(m["seq"], i + 1);
            assert_eq!(m["text"], format!("message {i}"));
            assert_eq!(m["sender"], "patient");
            assert_eq!(m["channel_id"], channel.as_str());
        }
        for i in 0..20 {
            let a = other_tab.recv_type("chat_activity").await;
            assert_eq!(a["seq"], i + 1);
        }

        // Staff answers; the patient (who opened the channel by sending) gets it.
        let ack = send(&mut staff, &channel, "a1", "Answer <b>not bold</b>").await;
        assert_eq!(ack["seq"], 21);
        let m = next_message(&mut patient).await;
        assert_eq!(m["sender"], "staff");
        assert_eq!(
            m["text"], "Answer <b>not bold</b>",
            "stored and sent as text"
        );
        no_chat_frame(&mut staff).await;

        // Unread counts: the staff list shows 20 until read.
        assert_eq!(staff_channel(&mut staff, &channel).await["unread"], 20);
        let r = staff
            .request(json!({"type":"chat_read","channel_id":channel,"seq":21}))
            .await;
        assert_eq!(r["type"], "ok");
        assert_eq!(staff_channel(&mut staff, &channel).await["unread"], 0);

        // Pagination backwards.
        let page = staff
            .request(json!({"type":"chat_sync","channel_id":channel,"before_seq":21,"limit":5}))
            .await;
        let seqs: Vec<i64> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, vec![16, 17, 18, 19, 20]);
        assert_eq!(page["has_more"], true);
        app.stop().await;
    }
}

#[tokio::test]
async fn a_retried_send_is_stored_once_and_fanned_out_once() {
    for backend in backends() {
        let app = spawn_app_on(backend).await;
        let (mut patient, _) = WsClient::join(&app, &app.patient_token().await).await;
        let channel = channel_of(&mut patient).await;
        let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
        sync(&mut staff, &channel, 0).await;

        let first = send(&mut patient, &channel, "same-id", "hello").await;
        // The ack was "lost": the client sends again with the same id, also on a new socket.
        let again = send(&mut patient, &channel, "same-id", "hello").await;
        assert_eq!(first["seq"], again["seq"]);
        let (mut patient2, _) = WsClient::join(&app, &app.patient_token().await).await;
        let third = send(&mut patient2, &channel, "same-id", "hello").await;
        assert_eq!(third["seq"], first["seq"]);

        let m = next_message(&mut staff).await;
        assert_eq!(m["client_msg_id"], "same-id");
        no_chat_frame(&mut staff).await;
        let h = sync(&mut staff, &channel, 0).await;
        assert_eq!(h["messages"].as_array().unwrap().len(), 1);
        assert_eq!(h["last_seq"], 1);

        // Bounds: empty, too long, control characters, over-long client id.
        for (cid, text) in [
            ("x1", String::new()),
            ("x2", "a".repeat(4001)),
            ("x3", "bell\u{7}".to_owned()),
            (&"c".repeat(65) as &str, "ok".to_owned()),
        ] {
            let r = send(&mut patient2, &channel, cid, &text).await;
            assert_eq!(r["code"], "invalid_message", "{r}");
        }
        let r = send(&mut patient2, &channel, "x4", &"é".repeat(4000)).await;
        assert_eq!(r["type"], "chat_ack", "4000 characters are fine");
        app.stop().await;
    }
}

#[tokio::test]
async fn after_a_dropped_socket_exactly_the_missed_messages_are_replayed_once_in_order() {
    for backend in backends() {
        let app = spawn_app_on(backend).await;
        let (mut patient, _) = WsClient::join(&app, &app.patient_token().await).await;
        let channel = channel_of(&mut patient).await;
        let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
        sync(&mut staff, &channel, 0).await;
        for i in 0..3 {
            send(&mut patient, &channel, &format!("before{i}"), "before").await;
        }
        let mut last_seen = 0;
        for _ in 0..3 {
            last_seen = next_message(&mut staff).await["seq"].as_i64().unwrap();
        }
        assert_eq!(last_seen, 3);
        // The staff socket dies (no close handshake).
        drop(staff);
        for i in 0..20 {
            let ack = send(
                &mut patient,
                &channel,
                &format!("missed{i}"),
                &format!("m{i}"),
            )
            .await;
            assert_eq!(ack["type"], "chat_ack");
        }
        let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
        let h = sync(&mut staff, &channel, last_seen).await;
        let got: Vec<(i64, String)> = h["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["seq"].as_i64().unwrap(),
                    m["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: Vec<(i64, String)> = (0..20).map(|i| (4 + i, format!("m{i}"))).collect();
        assert_eq!(got, want);
        assert_eq!(h["has_more"], false);
        // Live messages continue after the replay, with nothing repeated.
        send(&mut patient, &channel, "after", "after").await;
        let m = next_message(&mut staff).await;
        assert_eq!(m["seq"], 24);
        no_chat_frame(&mut staff).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn waiting_room_chat_follows_the_organisation_setting() {
    let app = spawn_app().await;
    set_settings(&app, json!({"chat_in_waiting_room": false})).await;
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    staff.recv_type("waiting_snapshot").await;
    let (mut patient, joined) = WsClient::join(&app, &app.patient_token().await).await;
    patient.recv_type("waiting").await;
    let r = patient.request(json!({"type":"chat_channels"})).await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let list = staff.request(json!({"type":"chat_channels"})).await;
    let channel = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_name"] == joined["display_name"])
        .unwrap()["channel_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = send(&mut patient, &channel, "w1", "may I ask?").await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let r = patient
        .request(json!({"type":"chat_sync","channel_id":channel}))
        .await;
    assert_eq!(r["code"], "forbidden");

    // In the consultation the patient may chat.
    let pid = joined["participant_id"].as_str().unwrap();
    let r = staff
        .request(json!({"type":"admit","participant_id":pid}))
        .await;
    assert_eq!(r["type"], "ok");
    patient.recv_type("consultation_started").await;
    let r = send(&mut patient, &channel, "c1", "now I can").await;
    assert_eq!(r["type"], "chat_ack", "{r}");

    // And with the setting on, a waiting patient may chat.
    set_settings(&app, json!({"chat_in_waiting_room": true})).await;
    let (mut p2, _) = WsClient::join(&app, &app.patient_token().await).await;
    let r = send(&mut p2, &channel, "w2", "from a new tab").await;
    assert_eq!(r["type"], "chat_ack", "{r}");
    app.stop().await;
}

#[tokio::test]
async fn deleted_history_is_gone_everywhere_and_after_a_consultation_when_configured() {
    for backend in backends() {
        let app = spawn_app_on(backend).await;
        let (mut patient, joined) = WsClient::join(&app, &app.patient_token().await).await;
        let channel = channel_of(&mut patient).await;
        sync(&mut patient, &channel, 0).await;
        send(&mut patient, &channel, "d1", "secret one").await;
        send(&mut patient, &channel, "d2", "secret two").await;

        // F143: the practitioner deletes the history through the API.
        let http = app.staff_client().await;
        let r = http
            .delete(format!(
                "{}/api/v1/chat/channels/{channel}/messages",
                app.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cleared = patient.recv_type("chat_cleared").await;
        assert_eq!(cleared["through_seq"], 2);
        let h = sync(&mut patient, &channel, 0).await;
        assert_eq!(h["messages"], json!([]));
        assert_eq!(h["cleared_through_seq"], 2);
        // A late retry of a deleted message is not stored again.
        let r = send(&mut patient, &channel, "d1", "secret one").await;
        assert_eq!(r["seq"], 1);
        let h = sync(&mut patient, &channel, 0).await;
        assert_eq!(h["messages"], json!([]));

        // F133: delete right after the consultation.
        set_settings(
            &app,
            json!({"chat_after_consultation": "delete", "continuous_chat": false}),
        )
        .await;
        let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
        staff.recv_type("waiting_snapshot").await;
        let pid = joined["participant_id"].as_str().unwrap();
        let r = staff
            .request(json!({"type":"admit","participant_id":pid}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
        patient.recv_type("consultation_started").await;
        let r = send(&mut staff, &channel, "in1", "during the consultation").await;
        assert_eq!(r["type"], "chat_ack", "{r}");
        let m = next_message(&mut patient).await;
        assert_eq!(m["text"], "during the consultation");
        let r = staff.request(json!({"type":"end_consultation"})).await;
        assert_eq!(r["type"], "ok");
        let cleared = patient.recv_type("chat_cleared").await;
        assert_eq!(cleared["through_seq"], 3);
        let h = sync(&mut staff, &channel, 0).await;
        assert_eq!(h["messages"], json!([]), "{h}");
        app.stop().await;
    }
}

#[tokio::test]
async fn the_invitation_link_opens_the_chat_outside_the_window_and_nothing_else() {
    let app = spawn_app().await;
    // Three hours after the appointment: the waiting room is closed.
    app.clock.advance(chrono::Duration::hours(3));
    let r = app.resolve(&app.invitation_token()).await;
    assert_eq!(r.status(), 410);
    let chat = invitation_chat;
    let r = chat(&app).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v.as_object().unwrap().len(), 2, "no names: {v}");
    let token = v["chat_token"].as_str().unwrap().to_owned();

    let (mut patient, joined) = WsClient::join(&app, &token).await;
    assert_eq!(joined["role"], "patient");
    let channel = channel_of(&mut patient).await;
    let r = send(
        &mut patient,
        &channel,
        "late1",
        "a question after the visit",
    )
    .await;
    assert_eq!(r["type"], "chat_ack", "{r}");
    // It never entered a waiting room, and may do nothing else.
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    let snap = staff.recv_type("waiting_snapshot").await;
    assert_eq!(snap["entries"], json!([]));
    let r = patient
        .request(json!({"type":"media_offer","sdp":"v=0"}))
        .await;
    assert_eq!(r["type"], "error");
    let r = patient
        .request(json!({"type":"file_offer","name":"a.pdf","size":3}))
        .await;
    assert_eq!(r["type"], "error");
    // A chat token is no join token: the TURN endpoint refuses it.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/ice-servers", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The organisation switches to granting chat between visits one by one: this channel is
    // at the default, so its chat-only connection ends at once and the link gives no chat.
    set_settings(&app, json!({"continuous_chat_by_grant": true})).await;
    assert_eq!(
        patient.closed().await,
        Some(1008),
        "the setting applies at once"
    );
    assert_eq!(chat(&app).await.status(), 403);
    // Without continuous chat the link gives no chat either.
    set_settings(
        &app,
        json!({"continuous_chat_by_grant": false, "continuous_chat": false,
               "chat_after_consultation": "delete"}),
    )
    .await;
    assert_eq!(chat(&app).await.status(), 403);
    // Long after the appointment the link is closed.
    set_settings(
        &app,
        json!({"continuous_chat": true, "chat_after_consultation": "keep"}),
    )
    .await;
    app.clock.advance(chrono::Duration::days(31));
    assert_eq!(chat(&app).await.status(), 410);
    app.stop().await;
}

#[tokio::test]
async fn an_admin_stopping_chat_between_visits_ends_the_chat_only_connection() {
    let app = spawn_app().await;
    app.clock.advance(chrono::Duration::hours(3));
    let chat = invitation_chat;
    let r = chat(&app).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let (mut patient, _) = WsClient::join(&app, v["chat_token"].as_str().unwrap()).await;
    let channel = channel_of(&mut patient).await;
    let r = send(&mut patient, &channel, "q1", "a question after the visit").await;
    assert_eq!(r["type"], "chat_ack", "{r}");
    // The practitioner is connected too, and keeps the channel.
    let (mut staff, _) = WsClient::join(&app, &app.staff_token().await).await;
    let h = sync(&mut staff, &channel, 0).await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 1, "{h}");

    // F142: the organisation admin stops chat between visits for this channel.
    let admin = admin_client(&app).await;
    let set_access = |value: &'static str| {
        admin
            .put(format!(
                "{}/api/v1/chat/channels/{channel}/patient-access",
                app.base
            ))
            .json(&json!({ "patient_access": value }))
            .send()
    };
    let r = set_access("stopped").await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(patient.closed().await, Some(1008), "closed at once");
    assert_eq!(
        chat(&app).await.status(),
        403,
        "the link no longer opens it"
    );
    let r = send(&mut staff, &channel, "s1", "we will call you").await;
    assert_eq!(r["type"], "chat_ack", "staff still write: {r}");

    // Granted again: the link works again and the patient sees the staff's answer.
    let r = set_access("granted").await.unwrap();
    assert_eq!(r.status(), 200);
    let r = chat(&app).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let (mut patient, _) = WsClient::join(&app, v["chat_token"].as_str().unwrap()).await;
    assert_eq!(channel_of(&mut patient).await, channel);
    let h = sync(&mut patient, &channel, 0).await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 2, "{h}");

    // Organisation-wide changes: "by grant" keeps a granted channel open...
    set_settings(&app, json!({"continuous_chat_by_grant": true})).await;
    let r = send(&mut patient, &channel, "q2", "still open?").await;
    assert_eq!(r["type"], "chat_ack", "a granted channel stays open: {r}");
    // ...and switching continuous chat off ends the chat-only connection at once.
    set_settings(
        &app,
        json!({"continuous_chat": false, "chat_after_consultation": "delete"}),
    )
    .await;
    assert_eq!(patient.closed().await, Some(1008), "closed at once");
    app.stop().await;
}
