//! Table-style tests of connectivity probes (issue #4, F33/F37): who may probe, one at a
//! time, limited in number and time, cleaned up on stop, expiry, leave and admission, and
//! never seen by anyone but the prober.

use super::fixtures::{doc1_patient as patient, staff, t};
use super::*;

const DOC: ConnId = ConnId(1);
const PAT: ConnId = ConnId(2);
const CHECK: ConnId = ConnId(3);

/// A practitioner online and a patient waiting in their room.
fn waiting() -> HubState {
    let mut s = HubState::default();
    s.join(DOC, staff("doc1"), "s1".into(), t(9, 50, 0));
    s.join(PAT, patient("a1"), "p1".into(), t(9, 55, 0));
    s
}

/// Every frame of `fx` goes to `only`.
fn frames_only_to(fx: &Effects, only: ConnId) -> bool {
    fx.sends.iter().all(|(to, _)| *to == only)
}

fn ended(fx: &Effects, c: ConnId) -> Option<ProbeEndReason> {
    fx.sends.iter().find_map(|(to, m)| match m {
        ServerMessage::ProbeEnded { reason } if *to == c => Some(*reason),
        _ => None,
    })
}

#[test]
fn a_probe_is_refused_to_unknown_and_chat_only_connections() {
    let mut s = waiting();
    // ConnId(9) never joined the hub (a chat-only connection is in no waiting room either).
    let err = s.probe_start(ConnId(9), t(9, 56, 0)).unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert_eq!(s.probes_running(), 0);
    assert_eq!(s.probe_media(ConnId(9)), None);
}

#[test]
fn a_waiting_patient_probes_in_its_own_id_space_and_nobody_is_told() {
    let mut s = waiting();
    let (fx, media) = s.probe_start(PAT, t(9, 56, 0)).unwrap();
    assert!(
        fx.sends.is_empty(),
        "starting a probe sends nothing to anyone"
    );
    assert!(fx.sfu_join.is_empty(), "a probe is not a consultation join");
    assert_eq!(fx.probe_join.len(), 1);
    let (room, participant, conn) = fx.probe_join[0];
    assert_eq!((participant, conn), (media, PAT));
    assert!(room.0 >= PROBE_ID_BASE && media.0 >= PROBE_ID_BASE);
    assert_ne!(
        Some(media),
        s.media(PAT),
        "not the connection's consultation participant"
    );
    assert_eq!(s.probe_media(PAT), Some(media));
    assert_eq!(s.probes_running(), 1);
    // The patient is still simply waiting; staff see the same single entry.
    assert_eq!(s.waiting_patients(), 1);
    assert_eq!(s.consultations(), 0);
    assert!(!s.in_consultation(PAT));
}

#[test]
fn one_probe_at_a_time_and_a_limited_number_per_connection() {
    let mut s = waiting();
    let (_, first) = s.probe_start(PAT, t(9, 56, 0)).unwrap();
    let err = s.probe_start(PAT, t(9, 56, 1)).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidState);
    let fx = s.probe_stop(PAT).unwrap();
    assert_eq!(fx.sfu_leave, vec![first]);
    assert!(fx.sends.is_empty(), "probe_stop is answered with ok only");
    assert_eq!(s.probe_stop(PAT).unwrap_err().code, ErrorCode::InvalidState);
    let mut seen = vec![first];
    for _ in 1..MAX_PROBES_PER_CONNECTION {
        let (_, media) = s.probe_start(PAT, t(9, 57, 0)).unwrap();
        assert!(!seen.contains(&media), "probe ids are never reused");
        seen.push(media);
        s.probe_stop(PAT).unwrap();
    }
    let err = s.probe_start(PAT, t(9, 58, 0)).unwrap_err();
    assert_eq!(err.code, ErrorCode::RateLimited);
    // Another connection has its own allowance.
    s.join(ConnId(7), staff("doc2"), "s2".into(), t(9, 58, 0));
    assert!(s.probe_start(ConnId(7), t(9, 58, 0)).is_ok());
}

#[test]
fn a_probe_expires_after_its_duration() {
    let mut s = waiting();
    let start = t(9, 56, 0);
    let (_, media) = s.probe_start(PAT, start).unwrap();
    let fx = s.tick(start + PROBE_DURATION - Duration::seconds(1));
    assert!(fx.sfu_leave.is_empty());
    assert_eq!(s.probes_running(), 1);
    let fx = s.tick(start + PROBE_DURATION);
    assert_eq!(fx.sfu_leave, vec![media]);
    assert_eq!(ended(&fx, PAT), Some(ProbeEndReason::Expired));
    assert!(frames_only_to(&fx, PAT));
    assert_eq!(s.probes_running(), 0);
    assert_eq!(s.probe_media(PAT), None);
}

#[test]
fn leaving_removes_the_probe_from_the_sfu() {
    let mut s = waiting();
    let (_, media) = s.probe_start(PAT, t(9, 56, 0)).unwrap();
    let fx = s.leave(PAT, t(9, 56, 5));
    assert_eq!(fx.sfu_leave, vec![media]);
    assert!(ended(&fx, PAT).is_none(), "nobody to tell");
    assert_eq!(s.probes_running(), 0);
    // Nothing about the probe reached the practitioner: only the waiting entry's update.
    assert!(fx.sends.iter().all(|(_, m)| !matches!(
        m,
        ServerMessage::ProbeEnded { .. } | ServerMessage::ProbeOffer { .. }
    )));
}

#[test]
fn a_lost_probe_session_is_reported_to_its_connection_only() {
    let mut s = waiting();
    let (_, media) = s.probe_start(PAT, t(9, 56, 0)).unwrap();
    assert!(s.probe_connected(PAT));
    assert!(!s.probe_connected(PAT), "counted once");
    let fx = s.probe_lost(PAT);
    assert_eq!(fx.sfu_leave, vec![media]);
    assert_eq!(ended(&fx, PAT), Some(ProbeEndReason::ConnectionLost));
    assert!(frames_only_to(&fx, PAT));
}

#[test]
fn admission_ends_both_sides_probes_and_no_probe_runs_in_a_consultation() {
    let mut s = waiting();
    let (_, doc_probe) = s.probe_start(DOC, t(9, 56, 0)).unwrap();
    let (_, pat_probe) = s.probe_start(PAT, t(9, 56, 0)).unwrap();
    let fx = s.admit(DOC, "p1", t(10, 0, 0)).unwrap();
    assert!(fx.sfu_leave.contains(&doc_probe) && fx.sfu_leave.contains(&pat_probe));
    assert_eq!(ended(&fx, DOC), Some(ProbeEndReason::ConsultationStarted));
    assert_eq!(ended(&fx, PAT), Some(ProbeEndReason::ConsultationStarted));
    // The consultation's SFU room and participants are the ordinary ones.
    assert!(
        fx.sfu_join
            .iter()
            .all(|(room, c)| room.0 < PROBE_ID_BASE && c.participant().0 < PROBE_ID_BASE)
    );
    assert_eq!(s.probes_running(), 0);
    let err = s.probe_start(PAT, t(10, 0, 1)).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidState);
}

#[test]
fn a_check_only_connection_probes_without_being_in_any_waiting_room() {
    let mut s = HubState::default();
    s.join(DOC, staff("doc1"), "s1".into(), t(9, 50, 0));
    s.join_check(CHECK);
    assert_eq!(s.waiting_patients(), 0);
    assert_eq!(
        s.connections(),
        1,
        "a check-only connection is nobody's participant"
    );
    let (fx, media) = s.probe_start(CHECK, t(9, 51, 0)).unwrap();
    assert!(fx.sends.is_empty());
    // Its expiry goes to it alone; the practitioner hears nothing at any step.
    let fx = s.tick(t(9, 51, 0) + PROBE_DURATION);
    assert_eq!(fx.sfu_leave, vec![media]);
    assert!(frames_only_to(&fx, CHECK));
    let fx = s.leave(CHECK, t(9, 52, 0));
    assert!(fx.sends.is_empty() && fx.sfu_leave.is_empty());
    // Once gone it cannot probe.
    assert_eq!(
        s.probe_start(CHECK, t(9, 52, 1)).unwrap_err().code,
        ErrorCode::Forbidden
    );
}

#[test]
fn the_node_runs_a_bounded_number_of_probes() {
    let mut s = HubState::default();
    for n in 0..MAX_PROBES_RUNNING as u64 {
        s.join_check(ConnId(100 + n));
        s.probe_start(ConnId(100 + n), t(9, 0, 0)).unwrap();
    }
    s.join_check(ConnId(1));
    let err = s.probe_start(ConnId(1), t(9, 0, 0)).unwrap_err();
    assert_eq!(err.code, ErrorCode::RateLimited);
    s.leave(ConnId(100), t(9, 0, 1));
    assert!(s.probe_start(ConnId(1), t(9, 0, 1)).is_ok());
}
