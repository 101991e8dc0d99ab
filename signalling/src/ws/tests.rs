//! The hub's file frames go through the outbox: a member whose queue is full when a file is
//! shared (upload completed, or files shared before they entered) is dropped as too slow, never
//! left without the frame on an open connection.

use std::sync::Arc;

use chrono::Utc;
use consultroom_sfu::{RoomId, Sfu, SfuConfig};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, mpsc};

use super::Hub;
use super::hub::HubConfig;
use crate::files::http::FilesHttp;
use crate::files::{FilesConfig, StoredFile};
use crate::outbox::{ConnQueue, Outgoing};
use crate::protocol::{ServerFrame, ServerMessage};
use crate::state::ConnId;
use crate::{
    Identity, PatientIdentity, Permissions, QueueKey, TokenError, TokenVerifier, Verified, Visit,
};

struct NoTokens;

impl TokenVerifier for NoTokens {
    fn verify<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Verified, TokenError>> {
        Box::pin(async { Err(TokenError::Invalid) })
    }
}

/// A queue of `capacity` frames, and its receiving end.
fn queue(capacity: usize) -> (ConnQueue, mpsc::Receiver<Outgoing>) {
    let (out, rx) = mpsc::channel(capacity);
    let q = ConnQueue {
        out,
        overflow: Arc::new(Notify::new()),
    };
    (q, rx)
}

/// A queue that is already full.
fn full_queue() -> (ConnQueue, mpsc::Receiver<Outgoing>) {
    let (q, rx) = queue(1);
    assert!(q.send(ServerFrame {
        reply_to: None,
        msg: ServerMessage::Pong {},
    }));
    (q, rx)
}

fn overflowed(q: &ConnQueue) -> bool {
    q.overflow.notified().now_or_never().is_some()
}

fn drain_file_shared(rx: &mut mpsc::Receiver<Outgoing>) -> usize {
    let mut n = 0;
    while let Ok(o) = rx.try_recv() {
        if let Outgoing::Frame(ServerFrame {
            msg: ServerMessage::FileShared { .. },
            ..
        }) = o
        {
            n += 1;
        }
    }
    n
}

#[tokio::test]
async fn file_frames_to_a_full_queue_drop_the_connection() {
    let dir = std::env::temp_dir().join(format!("cr-ws-files-{}", uuid::Uuid::new_v4()));
    let registry = prometheus::Registry::new();
    let sfu = Sfu::start(
        SfuConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            announce: vec![],
            loops: 1,
            tcp_bind: None,
        },
        &registry,
    )
    .await
    .unwrap();
    let config = HubConfig {
        files: FilesConfig {
            dir: Some(dir.clone()),
            ..FilesConfig::default()
        },
        ..HubConfig::default()
    };
    let hub = Hub::new(Arc::new(NoTokens), sfu, config, &registry);
    let (staff, patient) = (ConnId(1), ConnId(2));
    let (staff_q, mut staff_rx) = queue(64);
    hub.inner.outbox.insert(staff, staff_q.clone());

    // A staff member admits their patient: a consultation with both.
    let now = Utc::now();
    let joins: Vec<(RoomId, ConnId)> = {
        let mut state = hub.inner.state.lock().await;
        let _ = state.join(
            staff,
            Identity::Staff {
                staff_id: "s1".into(),
                organisation_id: "o1".into(),
                display_name: "Dr S".into(),
                department_ids: vec![],
                permissions: Permissions::default(),
                session: "sess".into(),
            },
            "p-staff".into(),
            now,
        );
        let _ = state.join(
            patient,
            Identity::Patient(PatientIdentity {
                organisation_id: "o1".into(),
                display_name: "P".into(),
                visit: Visit::Appointment {
                    appointment_id: "a1".into(),
                    starts_at: now,
                    duration_minutes: 30,
                },
                queue: QueueKey::Practitioner("s1".into()),
                permissions: Permissions::default(),
            }),
            "p-patient".into(),
            now,
        );
        let fx = state.admit(staff, "p-patient", now).unwrap();
        fx.sfu_join.clone()
    };
    assert!(joins.iter().any(|(_, c)| *c == patient), "{joins:?}");

    // The patient uploads a file while its queue is full.
    let (patient_q, _patient_rx) = full_queue();
    hub.inner.outbox.insert(patient, patient_q.clone());
    let ticket = {
        let state = hub.inner.state.lock().await;
        let member = state.consultation_member(patient).unwrap();
        let (_, ticket, _) = hub.inner.files.offer(&member, "a.pdf", 4, now).unwrap();
        hub.inner.files.redeem_upload(&ticket, now).unwrap()
    };
    let path = hub.inner.files.storage_path(&ticket).unwrap().unwrap();
    std::fs::write(&path, b"%PDF").unwrap();
    let files_http = FilesHttp {
        files: hub.inner.files.clone(),
        outbox: hub.inner.outbox.clone(),
        state: hub.inner.state.clone(),
        now: hub.inner.config.now.clone(),
    };
    let stored = StoredFile {
        file_id: ticket.file_id.clone(),
        name: "a.pdf".into(),
        size: 4,
        content_type: "application/pdf",
        from: ticket.participant_id.clone(),
        shared_at: now,
        path,
    };
    assert!(files_http.share_file(&ticket, stored).await.is_some());
    assert_eq!(drain_file_shared(&mut staff_rx), 1, "staff told");
    assert!(overflowed(&patient_q), "full queue at share: dropped");
    assert!(!overflowed(&staff_q));

    // Entering the consultation with a full queue: the files shared before do not fit.
    let (patient_q, _patient_rx) = full_queue();
    hub.inner.outbox.insert(patient, patient_q.clone());
    {
        let state = hub.inner.state.lock().await;
        hub.send_files_shared_before(&state, &joins);
    }
    assert!(overflowed(&patient_q), "full queue on entering: dropped");
    // …and with room, every file shared before arrives.
    let (patient_q, mut patient_rx) = queue(64);
    hub.inner.outbox.insert(patient, patient_q.clone());
    {
        let state = hub.inner.state.lock().await;
        hub.send_files_shared_before(&state, &joins);
    }
    assert_eq!(drain_file_shared(&mut patient_rx), 1);
    assert!(!overflowed(&patient_q));
    let _ = std::fs::remove_dir_all(&dir);
}
