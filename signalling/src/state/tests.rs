//! Table-style tests of the waiting-room and consultation state machine.

use super::*;
use chrono::TimeZone;

fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).unwrap()
}

fn staff(id: &str) -> Identity {
    staff_in(id, &[])
}

fn staff_in(id: &str, departments: &[&str]) -> Identity {
    Identity::Staff {
        staff_id: id.into(),
        organisation_id: "org".into(),
        display_name: format!("Dr {id}"),
        department_ids: departments.iter().map(|d| d.to_string()).collect(),
    }
}

fn patient(appointment: &str, practitioner: &str, starts: DateTime<Utc>) -> Identity {
    patient_q(
        appointment,
        QueueKey::Practitioner(practitioner.into()),
        starts,
        20,
    )
}

fn patient_q(appointment: &str, queue: QueueKey, starts: DateTime<Utc>, minutes: u32) -> Identity {
    Identity::Patient(PatientIdentity {
        organisation_id: "org".into(),
        display_name: format!("Patient {appointment}"),
        visit: Visit::Appointment {
            appointment_id: appointment.into(),
            starts_at: starts,
            duration_minutes: minutes,
        },
        queue,
    })
}

fn walk_in(visit: &str, practitioner: &str) -> Identity {
    Identity::Patient(PatientIdentity {
        organisation_id: "org".into(),
        display_name: format!("Visitor {visit}"),
        visit: Visit::WalkIn {
            visit_id: visit.into(),
        },
        queue: QueueKey::Practitioner(practitioner.into()),
    })
}

fn sent_to(fx: &Effects, c: ConnId) -> Vec<&ServerMessage> {
    fx.sends
        .iter()
        .filter(|(to, _)| *to == c)
        .map(|(_, m)| m)
        .collect()
}

fn completed_ids(fx: &Effects) -> Vec<String> {
    fx.completed
        .iter()
        .map(|v| match v {
            Visit::Appointment { appointment_id, .. } => appointment_id.clone(),
            Visit::WalkIn { visit_id } => visit_id.clone(),
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
        vec![ConnId(3), ConnId(2)],
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
    let fx = s.leave(ConnId(3), t(10, 1, 0));
    assert_eq!(fx.sfu_leave, vec![ConnId(3)]);
    assert!(matches!(
        sent_to(&fx, ConnId(1))[..],
        [ServerMessage::ParticipantLeft { .. }]
    ));
    let fx = s.leave(ConnId(1), t(10, 1, 0));
    assert_eq!(fx.sfu_leave, vec![ConnId(1)]);
    assert_eq!(s.consultations(), 0);
}
