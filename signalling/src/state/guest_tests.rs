//! Table-style tests of guests (issue #4, F74/F116): a guest enters the consultation of their
//! appointment only while its client is in it, waits for the client otherwise, never appears in
//! a waiting list, and leaves with the consultation.

use super::fixtures::{doc1_patient as patient, sent_to, staff, t};
use super::*;

fn guest_in(org: &str, appointment: &str, guest: &str) -> Identity {
    Identity::Patient(PatientIdentity {
        organisation_id: org.into(),
        display_name: format!("Guest {guest}"),
        visit: Visit::Guest {
            appointment_id: appointment.into(),
            guest_id: guest.into(),
        },
        queue: QueueKey::Practitioner("doc1".into()),
        permissions: Default::default(),
    })
}

fn guest(appointment: &str, guest: &str) -> Identity {
    guest_in("org", appointment, guest)
}

fn waits_for_client(fx: &Effects, c: ConnId) -> bool {
    sent_to(fx, c).iter().any(|m| {
        matches!(
            m,
            ServerMessage::Waiting {
                reason: Some(WaitingReason::WaitingForClient),
                appointment_starts_at: None,
                ..
            }
        )
    })
}

/// The participants (id, guest flag) of the `consultation_started` sent to `c`.
fn started(fx: &Effects, c: ConnId) -> Option<Vec<(String, bool)>> {
    sent_to(fx, c).iter().find_map(|m| match m {
        ServerMessage::ConsultationStarted { participants, .. } => Some(
            participants
                .iter()
                .map(|p| (p.participant_id.clone(), p.guest))
                .collect(),
        ),
        _ => None,
    })
}

fn joined_guest(fx: &Effects, c: ConnId) -> Option<String> {
    sent_to(fx, c).iter().find_map(|m| match m {
        ServerMessage::ParticipantJoined { participant } if participant.guest => {
            Some(participant.participant_id.clone())
        }
        _ => None,
    })
}

fn ended(fx: &Effects, c: ConnId) -> Option<EndReason> {
    sent_to(fx, c).iter().find_map(|m| match m {
        ServerMessage::ConsultationEnded { reason, .. } => Some(*reason),
        _ => None,
    })
}

/// doc1 (conn 1) online, patient a1 (conn 2, `p1`) waiting.
fn waiting_client() -> HubState {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    s.join(ConnId(2), patient("a1"), "p1".into(), t(9, 59, 0));
    s
}

#[test]
fn a_guest_waits_for_the_client_outside_every_waiting_list_then_enters_with_them() {
    let mut s = waiting_client();
    let fx = s.join(ConnId(3), guest("a1", "g1"), "q1".into(), t(9, 59, 30));
    assert!(matches!(
        sent_to(&fx, ConnId(3))[0],
        ServerMessage::Joined {
            role: Role::Patient,
            ..
        }
    ));
    assert!(waits_for_client(&fx, ConnId(3)));
    assert!(!s.in_consultation(ConnId(3)));
    assert!(
        fx.sfu_join.is_empty(),
        "a waiting guest never reaches the SFU"
    );
    // Nobody else hears of them; they get no queue status or announcements.
    assert!(fx.sends.iter().all(|(to, _)| *to == ConnId(3)));
    assert_eq!(sent_to(&fx, ConnId(3)).len(), 2);
    assert_eq!(s.waiting_patients(), 1);
    // A practitioner coming online does not see them in the snapshot.
    let fx = s.join(ConnId(9), staff("doc1"), "s9".into(), t(9, 59, 40));
    assert!(sent_to(&fx, ConnId(9)).iter().any(|m| matches!(
        m,
        ServerMessage::WaitingSnapshot { entries } if entries.len() == 1 && entries[0].participant_id == "p1"
    )));
    // Another patient arriving is not their business.
    let fx = s.join(ConnId(4), patient("a2"), "p2".into(), t(9, 59, 50));
    assert!(sent_to(&fx, ConnId(3)).is_empty());

    // The client is admitted: the guest follows in the same step.
    let fx = s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    assert!(s.in_consultation(ConnId(3)));
    assert_eq!(
        fx.sfu_join,
        vec![
            (RoomId(1), ConnId(1)),
            (RoomId(1), ConnId(2)),
            (RoomId(1), ConnId(3))
        ]
    );
    assert_eq!(
        started(&fx, ConnId(3)).unwrap(),
        [
            ("s1".to_owned(), false),
            ("p1".to_owned(), false),
            ("q1".to_owned(), true)
        ]
    );
    for c in [ConnId(1), ConnId(2)] {
        assert_eq!(joined_guest(&fx, c).as_deref(), Some("q1"), "{c:?}");
    }
    // Only the client left the waiting list.
    assert_eq!(s.waiting_patients(), 1);
}

#[test]
fn a_guest_goes_straight_in_while_the_client_is_in_the_consultation() {
    let mut s = waiting_client();
    s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    let fx = s.join(ConnId(3), guest("a1", "g1"), "q1".into(), t(10, 1, 0));
    assert!(s.in_consultation(ConnId(3)));
    assert!(!waits_for_client(&fx, ConnId(3)));
    assert_eq!(fx.sfu_join, vec![(RoomId(1), ConnId(3))]);
    assert_eq!(started(&fx, ConnId(3)).unwrap().len(), 3);
    for c in [ConnId(1), ConnId(2)] {
        assert_eq!(joined_guest(&fx, c).as_deref(), Some("q1"));
    }
    // The guest is a patient-side participant tagged `guest`, with their own subject id.
    let m = s.consultation_member(ConnId(3)).unwrap();
    assert_eq!((m.role, m.subject_id.as_str()), (Role::Patient, "g1"));
}

#[test]
fn only_the_client_of_that_appointment_in_that_organisation_lets_a_guest_in() {
    let mut s = waiting_client();
    s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    // A guest of another appointment, and a guest of another organisation with the same ids.
    let fx = s.join(ConnId(3), guest("a2", "g2"), "q2".into(), t(10, 1, 0));
    assert!(waits_for_client(&fx, ConnId(3)));
    let fx = s.join(
        ConnId(4),
        guest_in("other", "a1", "g3"),
        "q3".into(),
        t(10, 1, 0),
    );
    assert!(waits_for_client(&fx, ConnId(4)));
    assert!(!s.in_consultation(ConnId(3)) && !s.in_consultation(ConnId(4)));
    assert!(sent_to(&fx, ConnId(1)).is_empty());
}

#[test]
fn a_force_started_consultation_takes_guests_only_after_the_client() {
    let mut s = HubState::default();
    s.join(ConnId(1), staff("doc1"), "s1".into(), t(9, 0, 0));
    s.force_start(ConnId(1), "a1", t(9, 58, 0)).unwrap();
    let fx = s.join(ConnId(3), guest("a1", "g1"), "q1".into(), t(9, 58, 30));
    assert!(waits_for_client(&fx, ConnId(3)));
    assert!(sent_to(&fx, ConnId(1)).is_empty());
    // The client arrives: straight in (force start), and the guest with them.
    let fx = s.join(ConnId(2), patient("a1"), "p1".into(), t(9, 59, 0));
    assert!(s.in_consultation(ConnId(2)) && s.in_consultation(ConnId(3)));
    assert_eq!(started(&fx, ConnId(3)).unwrap().len(), 3);
    let fx = s.end(ConnId(1), t(10, 10, 0)).unwrap();
    assert_eq!(fx.completed.len(), 1, "only the client's visit completes");
    assert!(
        matches!(&fx.completed[0], Visit::Appointment { appointment_id, .. } if appointment_id == "a1")
    );
}

#[test]
fn ending_the_consultation_ends_it_for_guests_in_it_and_waiting_for_it() {
    let mut s = waiting_client();
    s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    s.join(ConnId(3), guest("a1", "g1"), "q1".into(), t(10, 1, 0));
    // A second guest whose connection the client's drop leaves waiting.
    s.leave(ConnId(2), t(10, 2, 0));
    let fx = s.join(ConnId(4), guest("a1", "g2"), "q2".into(), t(10, 2, 10));
    assert!(
        waits_for_client(&fx, ConnId(4)),
        "a reconnecting client is not present"
    );
    let fx = s.end(ConnId(1), t(10, 5, 0)).unwrap();
    assert_eq!(ended(&fx, ConnId(3)), Some(EndReason::Ended));
    assert_eq!(ended(&fx, ConnId(4)), Some(EndReason::Ended));
    assert!(fx.sfu_leave.contains(&ParticipantId(3)));
    assert!(!fx.sfu_leave.contains(&ParticipantId(4)), "never joined");
    assert_eq!(s.consultations(), 0);
}

#[test]
fn a_client_resuming_a_dropped_connection_brings_in_the_guests_who_came_meanwhile() {
    let mut s = waiting_client();
    let fx = s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    let id = started(&fx, ConnId(2)).map(|_| ()).and_then(|_| {
        sent_to(&fx, ConnId(2)).iter().find_map(|m| match m {
            ServerMessage::ConsultationStarted {
                consultation_id, ..
            } => Some(consultation_id.clone()),
            _ => None,
        })
    });
    s.leave(ConnId(2), t(10, 1, 0));
    let fx = s.join(ConnId(3), guest("a1", "g1"), "q1".into(), t(10, 1, 10));
    assert!(waits_for_client(&fx, ConnId(3)));
    let fx = s.join_resuming(
        ConnId(5),
        patient("a1"),
        "p1-new".into(),
        id.as_deref(),
        t(10, 1, 20),
    );
    assert!(s.in_consultation(ConnId(5)) && s.in_consultation(ConnId(3)));
    assert_eq!(joined_guest(&fx, ConnId(5)).as_deref(), Some("q1"));
    assert_eq!(joined_guest(&fx, ConnId(1)).as_deref(), Some("q1"));
}

#[test]
fn guests_cannot_be_transferred_and_leave_when_the_client_is_transferred() {
    let mut s = waiting_client();
    s.join(ConnId(8), staff("doc2"), "s2".into(), t(9, 0, 0));
    s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    s.join(ConnId(3), guest("a1", "g1"), "q1".into(), t(10, 1, 0));
    let to = QueueRef {
        kind: QueueKind::Practitioner,
        id: "doc2".into(),
    };
    let err = s.transfer(ConnId(1), "q1", &to, t(10, 2, 0)).unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    let fx = s.transfer(ConnId(1), "p1", &to, t(10, 2, 0)).unwrap();
    assert_eq!(ended(&fx, ConnId(3)), Some(EndReason::Transferred));
    assert!(!s.in_consultation(ConnId(3)));
    // The guest is in no waiting list either.
    assert_eq!(s.waiting_patients(), 1);
    assert!(fx.completed.is_empty());
}

#[test]
fn a_second_tab_of_a_guest_replaces_the_first() {
    let mut s = waiting_client();
    s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    s.join(ConnId(3), guest("a1", "g1"), "q1".into(), t(10, 1, 0));
    let fx = s.join(ConnId(4), guest("a1", "g1"), "q1b".into(), t(10, 1, 5));
    assert_eq!(fx.close, vec![ConnId(3)]);
    assert!(fx.sfu_leave.contains(&ParticipantId(3)));
    assert!(s.in_consultation(ConnId(4)));
    assert!(sent_to(&fx, ConnId(1)).iter().any(
        |m| matches!(m, ServerMessage::ParticipantLeft { participant_id } if participant_id == "q1")
    ));
    assert_eq!(joined_guest(&fx, ConnId(1)).as_deref(), Some("q1b"));
    // A waiting guest who closes their tab simply goes.
    let mut s = waiting_client();
    s.join(ConnId(3), guest("a1", "g1"), "q1".into(), t(9, 59, 30));
    let fx = s.leave(ConnId(3), t(9, 59, 40));
    assert!(fx.sends.is_empty());
    assert_eq!(s.connections(), 2);
}

#[test]
fn a_revoked_guest_leaves_at_once_from_the_consultation_and_from_the_lobby() {
    let mut s = waiting_client();
    s.admit(ConnId(1), "p1", t(10, 0, 0)).unwrap();
    s.join(ConnId(3), guest("a1", "g1"), "q1".into(), t(10, 1, 0));
    s.join(ConnId(4), guest("a1", "g2"), "q2".into(), t(10, 1, 5));
    assert!(s.in_consultation(ConnId(3)) && s.in_consultation(ConnId(4)));

    // Another organisation's guest id of the same value is not touched.
    let fx = s.revoke_guest("other-org", "g1");
    assert_eq!(fx, Effects::default());

    let fx = s.revoke_guest("org", "g1");
    assert_eq!(fx.revoked, vec![ConnId(3)]);
    assert_eq!(fx.sfu_leave, vec![ParticipantId(3)]);
    assert!(!s.in_consultation(ConnId(3)));
    for c in [ConnId(1), ConnId(2), ConnId(4)] {
        assert!(
            sent_to(&fx, c).iter().any(|m| matches!(
                m,
                ServerMessage::ParticipantLeft { participant_id } if participant_id == "q1"
            )),
            "{c:?} hears that the guest left"
        );
    }
    // The other guest and the consultation stay.
    assert!(s.in_consultation(ConnId(4)) && s.in_consultation(ConnId(2)));
    assert!(fx.ended.is_empty());

    // A guest still waiting for the client is closed too, and nobody else hears of it.
    let mut s = waiting_client();
    s.join(ConnId(3), guest("a1", "g1"), "q1".into(), t(9, 59, 30));
    let fx = s.revoke_guest("org", "g1");
    assert_eq!(fx.revoked, vec![ConnId(3)]);
    assert!(fx.sends.is_empty() && fx.sfu_leave.is_empty());
    assert_eq!(s.connections(), 2);
    // Revoking twice is harmless.
    assert_eq!(s.revoke_guest("org", "g1"), Effects::default());
}
