//! Table-style tests of the waiting-room and consultation state machine.

use super::fixtures::{patient, patient_q, sent_to, staff, staff_in, t};
use super::*;

/// Staff member `id` logged in with session `session` (another login than [`staff`]'s).
fn staff_session(id: &str, session: &str) -> Identity {
    let mut identity = staff(id);
    if let Identity::Staff { session: s, .. } = &mut identity {
        *s = session.into();
    }
    identity
}

fn walk_in(visit: &str, practitioner: &str) -> Identity {
    Identity::Patient(PatientIdentity {
        organisation_id: "org".into(),
        display_name: format!("Visitor {visit}"),
        visit: Visit::WalkIn {
            visit_id: visit.into(),
        },
        queue: QueueKey::Practitioner(practitioner.into()),
        permissions: Default::default(),
    })
}

fn completed_ids(fx: &Effects) -> Vec<String> {
    fx.completed
        .iter()
        .map(|v| match v {
            Visit::Appointment { appointment_id, .. } => appointment_id.clone(),
            Visit::WalkIn { visit_id } => visit_id.clone(),
            Visit::Guest { guest_id, .. } => guest_id.clone(),
        })
        .collect()
}

fn status(fx: &Effects, c: ConnId) -> Option<(u32, Option<String>)> {
    sent_to(fx, c).iter().rev().find_map(|m| match m {
        ServerMessage::QueueStatus {
            position,
            estimated_start_at,
        } => Some((*position, estimated_start_at.clone())),
        _ => None,
    })
}

#[test]
fn staff_join_gets_snapshot_of_their_own_and_their_departments_rooms_only() {
    let mut s = HubState::default();
    s.join(
        ConnId(1),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 55, 0),
    );
    s.join(
        ConnId(2),
        patient("a2", "doc2", t(10, 0, 0)),
        "p2".into(),
        t(9, 55, 0),
    );
    let dept = QueueKey::Department("cardio".into());
    s.join(
        ConnId(3),
        patient_q("a3", dept, t(10, 0, 0), 20),
        "p3".into(),
        t(9, 56, 0),
    );
    let fx = s.join(
        ConnId(4),
        staff_in("doc1", &["cardio"]),
        "s1".into(),
        t(9, 57, 0),
    );
    let msgs = sent_to(&fx, ConnId(4));
    assert!(matches!(
        msgs[0],
        ServerMessage::Joined {
            role: Role::Staff,
            ..
        }
    ));
    match msgs[1] {
        ServerMessage::WaitingSnapshot { entries } => {
            let ids: Vec<&str> = entries.iter().map(|e| e.participant_id.as_str()).collect();
            assert_eq!(ids, ["p1", "p3"]);
            assert_eq!(entries[1].queue.kind, QueueKind::Department);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn arrival_is_announced_to_every_tab_of_the_practitioner_with_punctuality() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    s.join(ConnId(2), staff("doc1"), "s1b".into(), t(9, 0, 0));
    s.join(ConnId(3), staff("doc2"), "s2".into(), t(9, 0, 0));
    // Exactly at the start time is on time; one second after is late; walk-ins are yellow.
    let fx = s.join(
        ConnId(4),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(10, 0, 0),
    );
    for tab in [ConnId(1), ConnId(2)] {
        match sent_to(&fx, tab)[..] {
            [ServerMessage::WaitingArrived { entry }] => {
                assert_eq!(entry.punctuality, Punctuality::OnTime)
            }
            ref other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        sent_to(&fx, ConnId(3)).is_empty(),
        "other practitioner sees nothing"
    );
    let fx = s.join(
        ConnId(5),
        patient("a2", "doc1", t(10, 0, 0)),
        "p2".into(),
        t(10, 0, 1),
    );
    assert!(matches!(
        sent_to(&fx, ConnId(5))[1],
        ServerMessage::Waiting {
            punctuality: Punctuality::Late,
            ..
        }
    ));
    let fx = s.join(ConnId(6), walk_in("w1", "doc1"), "p3".into(), t(10, 0, 1));
    assert!(matches!(
        sent_to(&fx, ConnId(1))[0],
        ServerMessage::WaitingArrived { entry } if entry.punctuality == Punctuality::WalkIn
    ));
}

#[test]
fn admit_moves_patient_into_a_consultation_atomically() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    s.join(ConnId(2), staff("doc1"), "s1b".into(), t(9, 0, 0));
    s.join(
        ConnId(3),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 59, 0),
    );
    assert!(!s.in_consultation(ConnId(3)));
    let fx = s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    assert_eq!(fx.sfu_join.len(), 2);
    assert!(s.in_consultation(ConnId(3)));
    assert!(
        sent_to(&fx, ConnId(2))
            .iter()
            .any(|m| matches!(m, ServerMessage::WaitingLeft { .. }))
    );
    for c in [ConnId(1), ConnId(3)] {
        assert!(sent_to(&fx, c).iter().any(|m| matches!(
            m,
            ServerMessage::ConsultationStarted { participants, .. } if participants.len() == 2
        )));
    }
    // The second tab racing for the same patient loses cleanly.
    let err = s.admit(ConnId(2), "p1", t(10, 0, 0)).unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert_eq!(s.waiting_patients(), 0);
}

#[test]
fn department_queue_any_member_may_admit_but_only_one_wins() {
    let mut s = HubState::default();
    s.join(
        ConnId(1),
        staff_in("doc1", &["cardio"]),
        "s1".into(),
        t(9, 0, 0),
    );
    s.join(
        ConnId(2),
        staff_in("doc2", &["cardio"]),
        "s2".into(),
        t(9, 0, 0),
    );
    s.join(
        ConnId(3),
        staff_in("doc3", &["derma"]),
        "s3".into(),
        t(9, 0, 0),
    );
    let dept = QueueKey::Department("cardio".into());
    let fx = s.join(
        ConnId(4),
        patient_q("a1", dept, t(10, 0, 0), 20),
        "p1".into(),
        t(9, 58, 0),
    );
    assert!(!sent_to(&fx, ConnId(1)).is_empty());
    assert!(!sent_to(&fx, ConnId(2)).is_empty());
    assert!(
        sent_to(&fx, ConnId(3)).is_empty(),
        "other department sees nothing"
    );
    assert_eq!(
        s.admit(ConnId(3), "p1", t(10, 0, 0)).unwrap_err().code,
        ErrorCode::NotFound
    );
    s.admit(ConnId(2), "p1", t(10, 0, 0)).unwrap();
    assert_eq!(
        s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap_err().code,
        ErrorCode::NotFound
    );
}

#[test]
fn patients_cannot_admit_and_staff_cannot_admit_other_practitioners_patients() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc2"), "s2".into(), t(9, 0, 0));
    s.join(
        ConnId(2),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 59, 0),
    );
    s.join(
        ConnId(3),
        patient("a2", "doc1", t(10, 0, 0)),
        "p2".into(),
        t(9, 59, 0),
    );
    assert_eq!(
        s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(
        s.admit(ConnId(3), "p1", t(10, 0, 0)).unwrap_err().code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        s.admit(ConnId(9), "p1", t(10, 0, 0)).unwrap_err().code,
        ErrorCode::NotJoined
    );
}

#[test]
fn another_organisations_staff_with_the_same_ids_sees_nothing() {
    let mut s = HubState::default();
    s.join(
        ConnId(1),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 59, 0),
    );
    let intruder = Identity::Staff {
        staff_id: "doc1".into(),
        organisation_id: "other-org".into(),
        display_name: "X".into(),
        department_ids: vec![],
        permissions: Default::default(),
        session: "session-x".into(),
    };
    s.join(ConnId(2), intruder, "x".into(), t(9, 59, 0));
    assert_eq!(
        s.admit(ConnId(2), "p1", t(10, 0, 0)).unwrap_err().code,
        ErrorCode::NotFound
    );
}

#[test]
fn second_tab_of_the_same_patient_replaces_the_first_and_keeps_the_place() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    s.join(
        ConnId(2),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 59, 0),
    );
    let fx = s.join(
        ConnId(3),
        patient("a1", "doc1", t(10, 0, 0)),
        "new".into(),
        t(9, 59, 30),
    );
    assert_eq!(fx.close, vec![ConnId(2)]);
    assert_eq!(s.waiting_patients(), 1);
    match sent_to(&fx, ConnId(1))[..] {
        [ServerMessage::WaitingUpdated { entry }] => {
            assert_eq!(entry.participant_id, "p1", "same id, no duplicate");
            assert_eq!(entry.arrived_at, "2026-11-23T09:59:00Z", "same place");
        }
        ref other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        sent_to(&fx, ConnId(3))[0],
        ServerMessage::Joined { participant_id, .. } if participant_id == "p1"
    ));
}

#[test]
fn dropped_waiting_patient_is_reconnecting_then_removed_after_the_grace_period() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    s.join(
        ConnId(2),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 59, 0),
    );
    let fx = s.leave(ConnId(2), t(10, 0, 0));
    assert!(matches!(
        sent_to(&fx, ConnId(1))[..],
        [ServerMessage::WaitingUpdated { entry }] if entry.reconnecting
    ));
    assert_eq!(
        s.admit(ConnId(1), "p1", t(10, 0, 1)).unwrap_err().code,
        ErrorCode::InvalidState
    );
    // Still there just before the grace period ends.
    assert!(s.tick(t(10, 0, 29)).sends.is_empty());
    // Back within the grace period: same entry, not reconnecting.
    let fx = s.join(
        ConnId(3),
        patient("a1", "doc1", t(10, 0, 0)),
        "x".into(),
        t(10, 0, 20),
    );
    assert!(matches!(
        sent_to(&fx, ConnId(1))[..],
        [ServerMessage::WaitingUpdated { entry }] if !entry.reconnecting && entry.participant_id == "p1"
    ));
    // Gone for good after the grace period.
    s.leave(ConnId(3), t(10, 1, 0));
    let fx = s.tick(t(10, 1, 0) + GRACE);
    assert!(matches!(
        sent_to(&fx, ConnId(1))[..],
        [ServerMessage::WaitingLeft { .. }]
    ));
    assert_eq!(s.waiting_patients(), 0);
}

#[test]
fn queue_position_and_estimate_follow_the_practitioner_and_the_queue() {
    let mut s = HubState::default();
    // No practitioner online: a position but no estimate.
    let fx = s.join(
        ConnId(2),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 50, 0),
    );
    assert_eq!(status(&fx, ConnId(2)), Some((1, None)));
    // The practitioner comes online: the patient will be seen at their appointment time.
    let fx = s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 51, 0));
    assert_eq!(
        status(&fx, ConnId(2)),
        Some((1, Some("2026-11-23T10:00:00Z".into())))
    );
    // A second tab of the same practitioner changes nothing, so nothing is sent.
    let fx = s.join(ConnId(9), staff("doc1"), "s1b".into(), t(9, 51, 30));
    assert!(status(&fx, ConnId(2)).is_none());
    let fx = s.join(
        ConnId(3),
        patient("a2", "doc1", t(10, 10, 0)),
        "p2".into(),
        t(9, 52, 0),
    );
    assert_eq!(
        status(&fx, ConnId(3)),
        Some((2, Some("2026-11-23T10:20:00Z".into())))
    );
    // Admit the first at 10:05 (20 min appointment): the second is expected at 10:25.
    let fx = s.admit(ConnId(1), "p1", t(10, 5, 0)).unwrap();
    assert_eq!(
        status(&fx, ConnId(3)),
        Some((1, Some("2026-11-23T10:25:00Z".into())))
    );
    // The consultation ends early at 10:12: the second can be seen at their own time, 10:10.
    let fx = s.end(ConnId(1), t(10, 12, 0)).unwrap();
    assert_eq!(
        status(&fx, ConnId(3)),
        Some((1, Some("2026-11-23T10:12:00Z".into())))
    );
}

#[test]
fn force_start_lets_the_patient_straight_in_on_arrival() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    let fx = s.force_start(ConnId(1), "a1", t(9, 58, 0)).unwrap();
    assert!(matches!(
        sent_to(&fx, ConnId(1))[..],
        [ServerMessage::ConsultationStarted { participants, .. }] if participants.len() == 1
    ));
    assert_eq!(fx.sfu_join.len(), 1);
    // Another patient of the same practitioner still waits.
    s.join(
        ConnId(3),
        patient("a9", "doc1", t(10, 0, 0)),
        "p9".into(),
        t(9, 59, 0),
    );
    assert!(!s.in_consultation(ConnId(3)));
    let fx = s.join(
        ConnId(2),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 59, 0),
    );
    assert!(s.in_consultation(ConnId(2)));
    assert!(matches!(
        sent_to(&fx, ConnId(1))[..],
        [ServerMessage::ParticipantJoined { .. }]
    ));
    assert!(sent_to(&fx, ConnId(2))
        .iter()
        .any(|m| matches!(m, ServerMessage::ConsultationStarted { participants, .. } if participants.len() == 2)));
    assert_eq!(fx.sfu_join, vec![(RoomId(1), ConnId(2))]);
    // Ending completes the appointment.
    let fx = s.end(ConnId(1), t(10, 10, 0)).unwrap();
    assert_eq!(completed_ids(&fx), ["a1"]);
}

#[test]
fn force_start_for_another_practitioners_appointment_does_not_capture_their_patient() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc2"), "s2".into(), t(9, 0, 0));
    s.force_start(ConnId(1), "a1", t(9, 58, 0)).unwrap();
    s.join(
        ConnId(2),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 59, 0),
    );
    assert!(
        !s.in_consultation(ConnId(2)),
        "the patient waits for their own practitioner"
    );
}

#[test]
fn transfer_moves_waiting_and_in_consultation_patients_within_the_organisation() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    s.join(ConnId(2), staff("doc2"), "s2".into(), t(9, 0, 0));
    s.join(
        ConnId(3),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 59, 0),
    );
    let to_doc2 = QueueRef {
        kind: QueueKind::Practitioner,
        id: "doc2".into(),
    };
    let fx = s.transfer(ConnId(1), "p1", &to_doc2, t(10, 0, 0)).unwrap();
    assert!(matches!(
        sent_to(&fx, ConnId(1))[..],
        [ServerMessage::WaitingLeft { .. }]
    ));
    assert!(matches!(
        sent_to(&fx, ConnId(2))[..],
        [ServerMessage::WaitingArrived { entry }] if entry.queue == to_doc2
    ));
    // doc2 admits, then sends the patient back to doc1's waiting room.
    s.admit(ConnId(2), "p1", t(10, 1, 0)).unwrap();
    let to_doc1 = QueueRef {
        kind: QueueKind::Practitioner,
        id: "doc1".into(),
    };
    let fx = s.transfer(ConnId(2), "p1", &to_doc1, t(10, 5, 0)).unwrap();
    assert!(!s.in_consultation(ConnId(3)));
    assert_eq!(
        fx.sfu_leave,
        vec![ConnId(3).participant(), ConnId(2).participant()],
        "both leave the media room"
    );
    assert!(
        sent_to(&fx, ConnId(3))
            .iter()
            .any(|m| matches!(m, ServerMessage::Waiting { .. }))
    );
    assert!(
        sent_to(&fx, ConnId(2))
            .iter()
            .any(|m| matches!(m, ServerMessage::ParticipantLeft { .. }))
    );
    assert!(
        sent_to(&fx, ConnId(1))
            .iter()
            .any(|m| matches!(m, ServerMessage::WaitingArrived { .. }))
    );
    // doc2 is alone now: the consultation ends for them, and the appointment is not completed.
    assert!(sent_to(&fx, ConnId(2)).iter().any(|m| matches!(
        m,
        ServerMessage::ConsultationEnded {
            reason: EndReason::Transferred,
            ..
        }
    )));
    assert!(fx.completed.is_empty());
    assert_eq!(s.consultations(), 0);
    // doc1 can admit the patient again, and transfer them once more.
    s.admit(ConnId(1), "p1", t(10, 6, 0)).unwrap();
    assert!(s.in_consultation(ConnId(3)));
    s.transfer(ConnId(1), "p1", &to_doc2, t(10, 7, 0)).unwrap();
    assert!(!s.in_consultation(ConnId(3)));
    // Nobody online for the target: refused, nothing changes.
    let nowhere = QueueRef {
        kind: QueueKind::Department,
        id: "nobody".into(),
    };
    assert_eq!(
        s.transfer(ConnId(1), "p1", &nowhere, t(10, 6, 0))
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    assert_eq!(s.waiting_patients(), 1);
}

#[test]
fn announcements_reach_only_their_waiting_room_and_disappear_at_expiry() {
    let mut s = HubState::default();
    s.join(
        ConnId(1),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 50, 0),
    );
    s.join(
        ConnId(2),
        patient("a2", "doc2", t(10, 0, 0)),
        "p2".into(),
        t(9, 50, 0),
    );
    let fx = s.set_announcements(
        vec![Announcement {
            id: "n1".into(),
            organisation_id: "org".into(),
            scope: QueueKey::Practitioner("doc1".into()),
            text: "10 minutes delay".into(),
            expires_at: Some(t(10, 30, 0)),
        }],
        t(9, 55, 0),
    );
    let items = |fx: &Effects, c| {
        sent_to(fx, c).iter().find_map(|m| match m {
            ServerMessage::Announcements { items } => Some(items.len()),
            _ => None,
        })
    };
    assert_eq!(items(&fx, ConnId(1)), Some(1));
    assert_eq!(items(&fx, ConnId(2)), Some(0));
    // A patient arriving later gets it on arrival.
    let fx = s.join(
        ConnId(3),
        patient("a3", "doc1", t(10, 0, 0)),
        "p3".into(),
        t(9, 56, 0),
    );
    assert_eq!(items(&fx, ConnId(3)), Some(1));
    assert!(s.tick(t(10, 0, 0)).sends.is_empty());
    let fx = s.tick(t(10, 30, 0));
    assert_eq!(items(&fx, ConnId(1)), Some(0), "hidden after expiry");
}

#[test]
fn ending_a_walk_in_consultation_completes_the_visit() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    s.join(ConnId(2), walk_in("w1", "doc1"), "p1".into(), t(9, 59, 0));
    s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    let fx = s.end(ConnId(1), t(10, 10, 0)).unwrap();
    assert_eq!(
        fx.completed,
        vec![Visit::WalkIn {
            visit_id: "w1".into()
        }]
    );
}

#[test]
fn mute_goes_to_the_others_and_end_closes_for_everyone() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    s.join(
        ConnId(2),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 59, 0),
    );
    s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    let fx = s.mute(ConnId(2), false, true).unwrap();
    assert_eq!(fx.sends.len(), 1);
    assert_eq!(fx.sends[0].0, ConnId(1));
    assert_eq!(
        s.end(ConnId(2), t(10, 5, 0)).unwrap_err().code,
        ErrorCode::Forbidden
    );
    let fx = s.end(ConnId(1), t(10, 5, 0)).unwrap();
    assert_eq!(fx.sfu_leave.len(), 2);
    assert_eq!(completed_ids(&fx), ["a1"]);
    assert_eq!(s.consultations(), 0);
    assert!(!s.in_consultation(ConnId(2)));
    assert_eq!(
        s.end(ConnId(1), t(10, 5, 0)).unwrap_err().code,
        ErrorCode::InvalidState
    );
}

#[test]
fn a_failed_media_connection_is_told_to_the_others_and_a_check_verdict_to_staff() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    s.join(
        ConnId(2),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 59, 0),
    );
    // The waiting patient's check verdict lands on their entry, for the staff who watch.
    let fx = s
        .connection_check(ConnId(2), CheckLevel::Unreachable)
        .unwrap();
    let updated: Vec<_> = sent_to(&fx, ConnId(1))
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::WaitingUpdated { entry } => Some(entry.connection_check),
            _ => None,
        })
        .collect();
    assert_eq!(updated, [Some(CheckLevel::Unreachable)]);
    assert!(sent_to(&fx, ConnId(2)).is_empty());
    // The same verdict again tells nobody; staff cannot report one.
    assert!(
        s.connection_check(ConnId(2), CheckLevel::Unreachable)
            .unwrap()
            .sends
            .is_empty()
    );
    assert_eq!(
        s.connection_check(ConnId(1), CheckLevel::Good)
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
    // Before the consultation, a media report changes nothing.
    assert!(
        s.media_state(ConnId(2), MediaHealth::Failed)
            .unwrap()
            .sends
            .is_empty()
    );
    s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    // Admitted: the verdict no longer applies to any entry; nothing is sent.
    assert!(
        s.connection_check(ConnId(2), CheckLevel::Poor)
            .unwrap()
            .sends
            .is_empty()
    );
    let fx = s.media_state(ConnId(2), MediaHealth::Failed).unwrap();
    assert_eq!(
        fx.sends,
        [(
            ConnId(1),
            ServerMessage::ParticipantMedia {
                participant_id: "p1".into(),
                state: MediaHealth::Failed,
            }
        )]
    );
    assert!(
        s.media_state(ConnId(2), MediaHealth::Failed)
            .unwrap()
            .sends
            .is_empty()
    );
    let fx = s.media_state(ConnId(2), MediaHealth::Connected).unwrap();
    assert_eq!(sent_to(&fx, ConnId(1)).len(), 1);
    // Someone who joins later reads it from `participants[].media`.
    let p1 = s.conns.get(&ConnId(2)).unwrap().info();
    assert_eq!(p1.media, Some(MediaHealth::Connected));
    assert_eq!(
        s.media_state(ConnId(9), MediaHealth::Failed)
            .unwrap_err()
            .code,
        ErrorCode::NotJoined
    );
}

#[test]
fn leaving_a_consultation_tells_the_others() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    s.join(
        ConnId(3),
        patient("a2", "doc1", t(10, 0, 0)),
        "p2".into(),
        t(9, 59, 0),
    );
    s.admit(ConnId(1), "p2", t(10, 0, 0)).unwrap();
    // On purpose (`leave_consultation`): at once, no grace period.
    let fx = s.leave_consultation_now(ConnId(3)).unwrap();
    assert_eq!(fx.sfu_leave, vec![ConnId(3).participant()]);
    assert!(matches!(
        sent_to(&fx, ConnId(1))[..],
        [ServerMessage::ParticipantLeft { .. }]
    ));
    assert!(matches!(
        sent_to(&fx, ConnId(3))[..],
        [ServerMessage::ConsultationEnded {
            reason: EndReason::Left,
            ..
        }]
    ));
    assert!(!s.in_consultation(ConnId(3)));
    assert_eq!(
        s.leave_consultation_now(ConnId(3)).unwrap_err().code,
        ErrorCode::InvalidState
    );
    let fx = s.leave_consultation_now(ConnId(1)).unwrap();
    assert_eq!(fx.sfu_leave, vec![ConnId(1).participant()]);
    assert_eq!(fx.ended.len(), 1);
    assert_eq!(s.consultations(), 0);
    assert_eq!(s.connections(), 2, "both stay connected");
}

// --- Reconnection (issue #3): a dropped connection keeps its consultation seat for GRACE ----

/// Staff conn 1 ("s1") and patient conn 2 ("p1", appointment a1) in a consultation; its id.
fn in_consultation() -> (HubState, String) {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    s.join(
        ConnId(2),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 59, 0),
    );
    let fx = s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    let id = sent_to(&fx, ConnId(2))
        .iter()
        .find_map(|m| match m {
            ServerMessage::ConsultationStarted {
                consultation_id, ..
            } => Some(consultation_id.clone()),
            _ => None,
        })
        .unwrap();
    (s, id)
}

fn resumed(fx: &Effects, c: ConnId) -> Option<Vec<(String, bool)>> {
    sent_to(fx, c).iter().find_map(|m| match m {
        ServerMessage::ConsultationStarted {
            participants,
            resumed: true,
            ..
        } => Some(
            participants
                .iter()
                .map(|p| (p.participant_id.clone(), p.reconnecting))
                .collect(),
        ),
        _ => None,
    })
}

fn ended_reason(fx: &Effects, c: ConnId) -> Option<EndReason> {
    sent_to(fx, c).iter().find_map(|m| match m {
        ServerMessage::ConsultationEnded { reason, .. } => Some(*reason),
        _ => None,
    })
}

#[test]
fn a_dropped_patient_keeps_the_seat_and_resumes_it_with_the_same_ids() {
    let (mut s, id) = in_consultation();
    let fx = s.leave(ConnId(2), t(10, 1, 0));
    assert!(fx.sfu_leave.is_empty(), "media is not torn down");
    assert!(matches!(
        sent_to(&fx, ConnId(1))[..],
        [ServerMessage::ParticipantReconnecting { participant_id }] if participant_id == "p1"
    ));
    assert_eq!(s.consultations(), 1);
    assert_eq!(s.connections(), 1);
    assert_eq!(s.reconnecting_participants(), 1);
    // Still reconnecting just before the grace period is over.
    assert!(s.tick(t(10, 1, 29)).sends.is_empty());
    // A new connection of the same visit, with a new token, asks to resume.
    let fx = s.join_resuming(
        ConnId(5),
        patient("a1", "doc1", t(10, 0, 0)),
        "fresh".into(),
        Some(&id),
        t(10, 1, 29),
    );
    assert!(matches!(
        sent_to(&fx, ConnId(5))[0],
        ServerMessage::Joined { participant_id, .. } if participant_id == "p1"
    ));
    assert_eq!(
        resumed(&fx, ConnId(5)),
        Some(vec![("s1".into(), false), ("p1".into(), false)])
    );
    assert!(matches!(
        sent_to(&fx, ConnId(1))[..],
        [ServerMessage::ParticipantResumed { participant_id }] if participant_id == "p1"
    ));
    assert!(fx.sfu_join.is_empty() && fx.sfu_leave.is_empty());
    assert_eq!(fx.sfu_rebind, vec![(ConnId(2).participant(), ConnId(5))]);
    assert_eq!(s.media(ConnId(5)), Some(ConnId(2).participant()));
    assert!(s.in_consultation(ConnId(5)));
    assert_eq!(s.reconnecting_participants(), 0);
    // The old seat's grace period no longer matters.
    assert!(s.tick(t(10, 5, 0)).sends.is_empty());
    // Speaking events name the seat's public id.
    assert_eq!(
        s.public_id_of_media(ConnId(2).participant()).as_deref(),
        Some("p1")
    );
    // Ending now completes the appointment and releases the resumed media participant.
    let fx = s.end(ConnId(1), t(10, 10, 0)).unwrap();
    assert_eq!(
        fx.sfu_leave,
        vec![ConnId(1).participant(), ConnId(2).participant()]
    );
    assert_eq!(completed_ids(&fx), ["a1"]);
}

#[test]
fn after_the_grace_period_the_seat_is_released_like_a_leave() {
    let (mut s, id) = in_consultation();
    s.leave(ConnId(2), t(10, 1, 0));
    let fx = s.tick(t(10, 1, 30));
    assert!(matches!(
        sent_to(&fx, ConnId(1))[..],
        [ServerMessage::ParticipantLeft { participant_id }] if participant_id == "p1"
    ));
    assert_eq!(fx.sfu_leave, vec![ConnId(2).participant()]);
    assert_eq!(s.reconnecting_participants(), 0);
    assert_eq!(s.consultations(), 1, "the practitioner is still in it");
    // Too late to resume: told so, then waits as a fresh arrival.
    let fx = s.join_resuming(
        ConnId(5),
        patient("a1", "doc1", t(10, 0, 0)),
        "fresh".into(),
        Some(&id),
        t(10, 2, 0),
    );
    let to_patient = sent_to(&fx, ConnId(5));
    assert!(matches!(to_patient[0], ServerMessage::Joined { .. }));
    assert!(matches!(
        to_patient[1],
        ServerMessage::ConsultationEnded {
            reason: EndReason::ConnectionLost,
            ..
        }
    ));
    assert!(
        to_patient
            .iter()
            .any(|m| matches!(m, ServerMessage::Waiting { .. }))
    );
    assert!(resumed(&fx, ConnId(5)).is_none());
}

#[test]
fn when_everyone_dropped_and_nobody_came_back_the_consultation_ends() {
    let (mut s, _) = in_consultation();
    let fx = s.leave(ConnId(1), t(10, 1, 0));
    assert!(matches!(
        sent_to(&fx, ConnId(2))[..],
        [ServerMessage::ParticipantReconnecting { participant_id }] if participant_id == "s1"
    ));
    let fx = s.leave(ConnId(2), t(10, 1, 10));
    assert!(fx.sends.is_empty(), "nobody left to tell");
    let fx = s.tick(t(10, 1, 30));
    assert_eq!(fx.sfu_leave, vec![ConnId(1).participant()]);
    assert_eq!(s.consultations(), 1);
    let fx = s.tick(t(10, 1, 40));
    assert_eq!(fx.sfu_leave, vec![ConnId(2).participant()]);
    assert_eq!(fx.ended.len(), 1);
    assert!(fx.completed.is_empty(), "not ended by staff: not completed");
    assert_eq!(s.consultations(), 0);
    assert_eq!(s.connections(), 0);
    assert_eq!(s.reconnecting_participants(), 0);
}

#[test]
fn only_the_practitioners_tab_that_was_in_the_consultation_resumes_it() {
    let (mut s, id) = in_consultation();
    // A second tab of the same practitioner, idle.
    s.join(ConnId(4), staff("doc1"), "s-tab2".into(), t(10, 0, 30));
    s.leave(ConnId(1), t(10, 1, 0));
    // The idle tab does not get the consultation's events, and is not touched by a resume.
    assert!(!s.in_consultation(ConnId(4)));
    // Another practitioner cannot take the seat.
    let fx = s.join_resuming(ConnId(6), staff("doc2"), "x".into(), Some(&id), t(10, 1, 5));
    assert_eq!(
        ended_reason(&fx, ConnId(6)),
        Some(EndReason::ConnectionLost)
    );
    assert!(!s.in_consultation(ConnId(6)));
    // A new connection of the same practitioner without `resume` is just another tab.
    let fx = s.join(ConnId(7), staff("doc1"), "y".into(), t(10, 1, 6));
    assert!(resumed(&fx, ConnId(7)).is_none());
    assert!(!s.in_consultation(ConnId(7)));
    // The dropped tab comes back and asks to resume.
    let fx = s.join_resuming(
        ConnId(8),
        staff("doc1"),
        "z".into(),
        Some(&id),
        t(10, 1, 10),
    );
    assert!(matches!(
        sent_to(&fx, ConnId(8))[..2],
        [
            ServerMessage::Joined { participant_id, .. },
            ServerMessage::WaitingSnapshot { .. }
        ] if participant_id == "s1"
    ));
    assert!(resumed(&fx, ConnId(8)).is_some());
    assert!(matches!(
        sent_to(&fx, ConnId(2))[..],
        [ServerMessage::ParticipantResumed { participant_id }] if participant_id == "s1"
    ));
    assert!(sent_to(&fx, ConnId(4)).is_empty() && sent_to(&fx, ConnId(7)).is_empty());
    assert_eq!(s.media(ConnId(8)), Some(ConnId(1).participant()));
    // It can end the consultation as before.
    let fx = s.end(ConnId(8), t(10, 5, 0)).unwrap();
    assert_eq!(completed_ids(&fx), ["a1"]);
}

#[test]
fn resuming_over_a_connection_the_server_still_thinks_alive_replaces_it() {
    let (mut s, id) = in_consultation();
    // The network went away; the server has not noticed the old socket's loss yet.
    let fx = s.join_resuming(
        ConnId(5),
        patient("a1", "doc1", t(10, 0, 0)),
        "fresh".into(),
        Some(&id),
        t(10, 1, 0),
    );
    assert_eq!(fx.close, vec![ConnId(2)]);
    assert!(resumed(&fx, ConnId(5)).is_some());
    assert!(!sent_to(&fx, ConnId(1)).iter().any(|m| matches!(
        m,
        ServerMessage::ParticipantJoined { .. } | ServerMessage::ParticipantLeft { .. }
    )));
    // The old socket's task ends later: nothing happens then.
    let fx = s.leave(ConnId(2), t(10, 1, 5));
    assert_eq!(fx, Effects::default());
    assert!(s.in_consultation(ConnId(5)));
}

#[test]
fn a_patient_coming_back_without_resume_leaves_the_seat_and_waits_again() {
    let (mut s, _) = in_consultation();
    s.leave(ConnId(2), t(10, 1, 0));
    let fx = s.join(
        ConnId(5),
        patient("a1", "doc1", t(10, 0, 0)),
        "fresh".into(),
        t(10, 1, 5),
    );
    assert!(fx.close.is_empty(), "the held seat has no socket to close");
    assert_eq!(fx.sfu_leave, vec![ConnId(2).participant()]);
    assert!(
        sent_to(&fx, ConnId(1))
            .iter()
            .any(|m| matches!(m, ServerMessage::ParticipantLeft { .. }))
    );
    assert!(
        sent_to(&fx, ConnId(5))
            .iter()
            .any(|m| matches!(m, ServerMessage::Waiting { .. }))
    );
    assert_eq!(s.reconnecting_participants(), 0);
}

#[test]
fn ending_or_transferring_while_the_patient_is_away() {
    // Ended: the held seat goes with the consultation; a later resume is told.
    let (mut s, id) = in_consultation();
    s.leave(ConnId(2), t(10, 1, 0));
    let fx = s.end(ConnId(1), t(10, 1, 10)).unwrap();
    assert_eq!(
        fx.sfu_leave,
        vec![ConnId(1).participant(), ConnId(2).participant()]
    );
    assert_eq!(s.reconnecting_participants(), 0);
    assert_eq!(s.connections(), 1);
    let fx = s.join_resuming(
        ConnId(5),
        patient("a1", "doc1", t(10, 0, 0)),
        "fresh".into(),
        Some(&id),
        t(10, 1, 20),
    );
    assert_eq!(
        ended_reason(&fx, ConnId(5)),
        Some(EndReason::ConnectionLost)
    );

    // Transferred: the patient waits in the new room as `reconnecting` for the rest of the
    // grace period, and gets that place back with the same participant id.
    let (mut s, _) = in_consultation();
    s.join(ConnId(3), staff("doc2"), "s2".into(), t(9, 0, 0));
    s.leave(ConnId(2), t(10, 1, 0));
    let to_doc2 = QueueRef {
        kind: QueueKind::Practitioner,
        id: "doc2".into(),
    };
    let fx = s.transfer(ConnId(1), "p1", &to_doc2, t(10, 1, 10)).unwrap();
    assert!(sent_to(&fx, ConnId(3)).iter().any(|m| matches!(
        m,
        ServerMessage::WaitingArrived { entry } if entry.reconnecting
    )));
    assert_eq!(s.waiting_patients(), 1);
    assert_eq!(s.reconnecting_participants(), 0);
    let fx = s.join(
        ConnId(5),
        patient("a1", "doc1", t(10, 0, 0)),
        "fresh".into(),
        t(10, 1, 20),
    );
    assert!(matches!(
        sent_to(&fx, ConnId(5))[0],
        ServerMessage::Joined { participant_id, .. } if participant_id == "p1"
    ));
    assert!(sent_to(&fx, ConnId(3)).iter().any(|m| matches!(
        m,
        ServerMessage::WaitingUpdated { entry } if !entry.reconnecting
    )));
}

#[test]
fn media_lost_on_a_live_connection_takes_it_out_of_the_consultation() {
    let (mut s, _) = in_consultation();
    let fx = s.media_lost(ConnId(2).participant());
    assert_eq!(
        ended_reason(&fx, ConnId(2)),
        Some(EndReason::ConnectionLost)
    );
    assert!(matches!(
        sent_to(&fx, ConnId(1))[..],
        [ServerMessage::ParticipantLeft { participant_id }] if participant_id == "p1"
    ));
    assert!(!s.in_consultation(ConnId(2)));
    assert_eq!(s.connections(), 2);
    assert_eq!(s.media_lost(ConnId(2).participant()), Effects::default());
}

#[test]
fn queue_status_is_sent_only_when_it_changes_and_to_each_new_connection() {
    // docs/protocol.md: `queue_status` "whenever it changes". Before, every join re-sent the
    // unchanged status to everybody already waiting in that room (found by an aiortc client).
    let mut s = HubState::default();
    let fx = s.join(
        ConnId(1),
        patient("a1", "doc1", t(10, 0, 0)),
        "p1".into(),
        t(9, 55, 0),
    );
    assert_eq!(status(&fx, ConnId(1)).map(|s| s.0), Some(1));
    // A second patient behind: they get their first status, the first hears nothing.
    let fx = s.join(
        ConnId(2),
        patient("a2", "doc1", t(10, 30, 0)),
        "p2".into(),
        t(9, 55, 10),
    );
    assert_eq!(status(&fx, ConnId(2)).map(|s| s.0), Some(2));
    assert_eq!(status(&fx, ConnId(1)), None, "unchanged status re-sent");
    // The first patient reconnects on a new connection: that connection gets the status.
    let fx = s.leave(ConnId(1), t(9, 56, 0));
    assert_eq!(status(&fx, ConnId(2)), None);
    let fx = s.join(
        ConnId(3),
        patient("a1", "doc1", t(10, 0, 0)),
        "p3".into(),
        t(9, 56, 5),
    );
    assert_eq!(status(&fx, ConnId(3)).map(|s| s.0), Some(1));
    assert_eq!(status(&fx, ConnId(2)), None);
}

// --- Staff sessions (issue #10): an ended login session takes its connections out at once ----

#[test]
fn an_ended_staff_session_takes_its_connections_out_at_once_and_no_other() {
    let (mut s, id) = in_consultation();
    // Another tab of the same login (same session), idle; a second login of the same
    // practitioner; another practitioner.
    s.join(ConnId(3), staff("doc1"), "s-tab2".into(), t(10, 0, 30));
    s.join(
        ConnId(4),
        staff_session("doc1", "second-login"),
        "s-other".into(),
        t(10, 0, 30),
    );
    s.join(ConnId(5), staff("doc2"), "s-doc2".into(), t(10, 0, 30));
    let fx = s.end_staff_session("session-doc1");
    assert_eq!(fx.session_ended, vec![ConnId(1), ConnId(3)]);
    assert_eq!(fx.sfu_leave, vec![ConnId(1).participant()]);
    // The patient sees the practitioner leave (no `reconnecting`, no held seat) and stays, as
    // after `leave_consultation`; nobody else hears anything.
    assert!(matches!(
        sent_to(&fx, ConnId(2))[..],
        [ServerMessage::ParticipantLeft { participant_id }] if participant_id == "s1"
    ));
    for c in [1, 3, 4, 5] {
        assert!(sent_to(&fx, ConnId(c)).is_empty(), "conn {c}");
    }
    assert!(s.in_consultation(ConnId(2)));
    assert_eq!(s.connections(), 3);
    assert_eq!(s.reconnecting_participants(), 0);
    // The seat is gone: another login of the same practitioner cannot resume it.
    let fx = s.join_resuming(
        ConnId(6),
        staff_session("doc1", "third-login"),
        "s-again".into(),
        Some(&id),
        t(10, 2, 0),
    );
    assert!(resumed(&fx, ConnId(6)).is_none());
    // Ending it again does nothing; nor do the closed sockets' own leaves later.
    assert_eq!(s.end_staff_session("session-doc1"), Effects::default());
    assert_eq!(s.leave(ConnId(1), t(10, 2, 0)), Effects::default());
    assert_eq!(s.leave(ConnId(3), t(10, 2, 0)), Effects::default());
    // The second login still watches its waiting room.
    let fx = s.join(
        ConnId(7),
        patient("a2", "doc1", t(10, 30, 0)),
        "p2".into(),
        t(10, 3, 0),
    );
    assert!(
        sent_to(&fx, ConnId(4))
            .iter()
            .any(|m| matches!(m, ServerMessage::WaitingArrived { .. }))
    );
    assert!(sent_to(&fx, ConnId(1)).is_empty() && sent_to(&fx, ConnId(3)).is_empty());
}

#[test]
fn an_ended_staff_session_releases_a_held_seat_and_ends_a_consultation_left_empty() {
    let (mut s, id) = in_consultation();
    s.leave_consultation_now(ConnId(2)).unwrap();
    // The practitioner's connection drops: the seat is held for the grace period.
    s.leave(ConnId(1), t(10, 1, 0));
    assert_eq!(s.consultations(), 1);
    let fx = s.end_staff_session("session-doc1");
    assert!(fx.session_ended.is_empty(), "no live connection to close");
    assert_eq!(fx.sfu_leave, vec![ConnId(1).participant()]);
    assert_eq!(fx.ended, vec![id]);
    assert!(fx.completed.is_empty(), "not a completed visit");
    assert_eq!(s.consultations(), 0);
    assert_eq!(s.reconnecting_participants(), 0);
}
