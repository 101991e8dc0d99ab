//! Table-style tests of the waiting-room and consultation state machine.

use super::*;
use chrono::TimeZone;

fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).unwrap()
}

fn staff(id: &str) -> Identity {
    Identity::Staff {
        staff_id: id.into(),
        organisation_id: "org".into(),
        display_name: format!("Dr {id}"),
    }
}

fn patient(appointment: &str, practitioner: &str, starts: DateTime<Utc>) -> Identity {
    Identity::Patient {
        appointment_id: appointment.into(),
        organisation_id: "org".into(),
        practitioner_id: practitioner.into(),
        display_name: format!("Patient {appointment}"),
        appointment_starts_at: starts,
    }
}

fn sent_to(fx: &Effects, c: ConnId) -> Vec<&ServerMessage> {
    fx.sends
        .iter()
        .filter(|(to, _)| *to == c)
        .map(|(_, m)| m)
        .collect()
}

#[test]
fn staff_join_gets_snapshot_of_their_own_waiting_room_only() {
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
    let fx = s.join(ConnId(3), staff("doc1"), "s1".into(), t(9, 56, 0));
    let msgs = sent_to(&fx, ConnId(3));
    assert!(matches!(
        msgs[0],
        ServerMessage::Joined {
            role: Role::Staff,
            ..
        }
    ));
    match msgs[1] {
        ServerMessage::WaitingSnapshot { entries } => {
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].participant_id, "p1");
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
    // Exactly at the start time is on time; one second after is late.
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
    assert!(sent_to(&fx, ConnId(3))
        .iter()
        .any(|m| matches!(m, ServerMessage::ConsultationStarted { participants, .. } if participants.len() == 2)));
    // The second tab racing for the same patient loses cleanly.
    let err = s.admit(ConnId(2), "p1", t(10, 0, 0)).unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert_eq!(s.waiting_patients(), 0);
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
fn rejoin_with_same_appointment_replaces_old_connection() {
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
        "p1b".into(),
        t(9, 59, 30),
    );
    assert_eq!(fx.close, vec![ConnId(2)]);
    assert_eq!(s.waiting_patients(), 1);
    let staff_msgs = sent_to(&fx, ConnId(1));
    assert!(
        matches!(staff_msgs[0], ServerMessage::WaitingLeft { participant_id } if participant_id == "p1")
    );
    assert!(matches!(
        staff_msgs[1],
        ServerMessage::WaitingArrived { .. }
    ));
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
    assert_eq!(s.end(ConnId(2)).unwrap_err().code, ErrorCode::Forbidden);
    let fx = s.end(ConnId(1)).unwrap();
    assert_eq!(fx.sfu_leave.len(), 2);
    assert_eq!(fx.completed_appointments, vec!["a1".to_string()]);
    assert_eq!(s.consultations(), 0);
    assert!(!s.in_consultation(ConnId(2)));
    assert_eq!(s.end(ConnId(1)).unwrap_err().code, ErrorCode::InvalidState);
}

#[test]
fn leaving_waiting_room_or_consultation_tells_the_right_people() {
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
        [ServerMessage::WaitingLeft { .. }]
    ));
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
    assert_eq!(s.connections(), 0);
}
