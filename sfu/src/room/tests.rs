//! Room bookkeeping as tables of inputs and expected outputs: no sockets, no `Rtc`.

use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Mid};

use super::*;

const ROOM_1: RoomId = RoomId(1);
const ROOM_2: RoomId = RoomId(2);
const A: ParticipantId = ParticipantId(1);
const B: ParticipantId = ParticipantId(2);
const C: ParticipantId = ParticipantId(3);

fn mid(s: &str) -> Mid {
    Mid::from(s)
}

/// Runs a full negotiation for `p`, giving new m-lines the mids `names` in order.
fn negotiate(rooms: &mut Rooms, p: ParticipantId, names: &[&str]) -> NegotiationPlan {
    let plan = rooms.plan_negotiation(p).expect("a plan");
    let opened: Vec<(TrackId, Mid)> = plan
        .open
        .iter()
        .zip(names)
        .map(|((t, _, _), n)| (*t, mid(n)))
        .collect();
    rooms.negotiation_started(p, &opened);
    rooms.negotiation_completed(p);
    plan
}

fn ready_pair() -> Rooms {
    let mut rooms = Rooms::default();
    rooms.join(ROOM_1, A).unwrap();
    rooms.join(ROOM_1, B).unwrap();
    rooms.set_ready(A);
    rooms.set_ready(B);
    rooms
}

#[test]
fn join_twice_is_refused_and_counts_are_kept() {
    let mut rooms = ready_pair();
    assert!(matches!(
        rooms.join(ROOM_2, A),
        Err(SfuError::AlreadyJoined)
    ));
    rooms.join(ROOM_2, C).unwrap();
    assert_eq!(rooms.room_count(), 2);
    assert_eq!(rooms.participant_count(), 3);
    rooms.leave(C);
    assert_eq!(rooms.room_count(), 1);
    assert!(!rooms.contains(C));
}

#[test]
fn published_track_fans_out_to_the_room_only_after_negotiation() {
    let mut rooms = ready_pair();
    rooms.join(ROOM_2, C).unwrap();
    rooms.set_ready(C);

    let affected = rooms.publish(A, mid("a0"), MediaKind::Audio);
    assert_eq!(affected, vec![B]);
    // Publishing the same m-line again changes nothing.
    assert!(rooms.publish(A, mid("a0"), MediaKind::Audio).is_empty());
    // Nothing is forwarded before B's m-line is negotiated.
    assert!(rooms.fanout(A, mid("a0")).is_empty());

    let plan = negotiate(&mut rooms, B, &["b0"]);
    assert_eq!(plan.open.len(), 1);
    assert_eq!(plan.open[0].1, MediaKind::Audio);
    assert_eq!(plan.open[0].2, A);
    assert_eq!(rooms.fanout(A, mid("a0")), &[(B, mid("b0"))]);
    // The participant in another room has nothing to negotiate and receives nothing.
    assert_eq!(rooms.plan_negotiation(C), None);
    assert!(!rooms.fanout(A, mid("a0")).iter().any(|(q, _)| *q == C));
}

#[test]
fn late_joiner_gets_existing_tracks() {
    let mut rooms = ready_pair();
    rooms.publish(A, mid("a0"), MediaKind::Audio);
    rooms.publish(A, mid("a1"), MediaKind::Video);
    rooms.join(ROOM_1, C).unwrap();
    // No server offer before the participant's own first offer was answered.
    assert_eq!(rooms.plan_negotiation(C), None);
    rooms.set_ready(C);
    let plan = negotiate(&mut rooms, C, &["c0", "c1"]);
    let kinds: Vec<MediaKind> = plan.open.iter().map(|o| o.1).collect();
    assert_eq!(kinds, vec![MediaKind::Audio, MediaKind::Video]);
    assert_eq!(rooms.fanout(A, mid("a1")), &[(C, mid("c1"))]);
}

#[test]
fn one_offer_at_a_time_and_changes_queue_until_answer() {
    let mut rooms = ready_pair();
    rooms.publish(A, mid("a0"), MediaKind::Audio);
    let plan = rooms.plan_negotiation(B).unwrap();
    rooms.negotiation_started(B, &[(plan.open[0].0, mid("b0"))]);
    // A second track while B's offer is outstanding waits.
    rooms.publish(A, mid("a1"), MediaKind::Video);
    assert_eq!(rooms.plan_negotiation(B), None);
    // The answer completes the first and reports queued work.
    assert!(rooms.negotiation_completed(B));
    let plan = rooms.plan_negotiation(B).unwrap();
    assert_eq!(plan.open.len(), 1);
    assert_eq!(plan.open[0].1, MediaKind::Video);
}

#[test]
fn aborted_negotiation_requeues_its_changes() {
    let mut rooms = ready_pair();
    rooms.publish(A, mid("a0"), MediaKind::Audio);
    let plan = rooms.plan_negotiation(B).unwrap();
    rooms.negotiation_started(B, &[(plan.open[0].0, mid("b0"))]);
    rooms.negotiation_aborted(B);
    assert!(rooms.fanout(A, mid("a0")).is_empty());
    assert_eq!(rooms.plan_negotiation(B).unwrap().open.len(), 1);
}

#[test]
fn leaving_publisher_stops_down_tracks_with_renegotiation() {
    let mut rooms = ready_pair();
    rooms.publish(A, mid("a0"), MediaKind::Audio);
    negotiate(&mut rooms, B, &["b0"]);
    let affected = rooms.leave(A);
    assert_eq!(affected, vec![B]);
    let plan = rooms.plan_negotiation(B).unwrap();
    assert_eq!(plan.stop, vec![mid("b0")]);
    assert!(plan.open.is_empty());
    rooms.negotiation_started(B, &[]);
    assert!(!rooms.negotiation_completed(B));
    assert_eq!(rooms.plan_negotiation(B), None);
    // Keyframe requests for the gone track lead nowhere.
    assert_eq!(rooms.keyframe_upstream(B, mid("b0"), Instant::now()), None);
}

#[test]
fn track_ending_mid_negotiation_is_stopped_after_the_answer() {
    let mut rooms = ready_pair();
    rooms.publish(A, mid("a0"), MediaKind::Audio);
    let plan = rooms.plan_negotiation(B).unwrap();
    rooms.negotiation_started(B, &[(plan.open[0].0, mid("b0"))]);
    // Nothing to do right now: B's offer is outstanding.
    assert!(rooms.leave(A).is_empty());
    assert!(rooms.negotiation_completed(B));
    assert_eq!(rooms.plan_negotiation(B).unwrap().stop, vec![mid("b0")]);
}

#[test]
fn never_offered_track_is_forgotten_on_leave() {
    let mut rooms = ready_pair();
    rooms.publish(A, mid("a0"), MediaKind::Audio);
    assert!(rooms.leave(A).is_empty());
    assert_eq!(rooms.plan_negotiation(B), None);
}

#[test]
fn leaving_subscriber_leaves_fanout() {
    let mut rooms = ready_pair();
    rooms.join(ROOM_1, C).unwrap();
    rooms.set_ready(C);
    rooms.publish(A, mid("a0"), MediaKind::Video);
    negotiate(&mut rooms, B, &["b0"]);
    negotiate(&mut rooms, C, &["c0"]);
    assert_eq!(rooms.fanout(A, mid("a0")).len(), 2);
    assert!(rooms.leave(B).is_empty());
    assert_eq!(rooms.fanout(A, mid("a0")), &[(C, mid("c0"))]);
}

#[test]
fn keyframe_requests_are_throttled_per_track() {
    let mut rooms = ready_pair();
    rooms.join(ROOM_1, C).unwrap();
    rooms.set_ready(C);
    rooms.publish(A, mid("a1"), MediaKind::Video);
    negotiate(&mut rooms, B, &["b0"]);
    negotiate(&mut rooms, C, &["c0"]);
    let t0 = Instant::now();
    assert_eq!(
        rooms.keyframe_upstream(B, mid("b0"), t0),
        Some((A, mid("a1")))
    );
    // Another subscriber of the same track within 500 ms: suppressed.
    let t1 = t0 + Duration::from_millis(100);
    assert_eq!(rooms.keyframe_upstream(C, mid("c0"), t1), None);
    // Loss on the incoming stream shares the throttle.
    assert!(!rooms.keyframe_on_loss(A, mid("a1"), t1));
    let t2 = t0 + Duration::from_millis(600);
    assert!(rooms.keyframe_on_loss(A, mid("a1"), t2));
    assert_eq!(rooms.keyframe_upstream(C, mid("c0"), t2), None);
    // Unknown m-lines never match.
    assert_eq!(rooms.keyframe_upstream(B, mid("zz"), t2), None);
    assert!(!rooms.keyframe_on_loss(B, mid("zz"), t2));
}
