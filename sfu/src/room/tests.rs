//! Room bookkeeping as tables of inputs and expected outputs: no sockets, no `Rtc`.

use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Mid, Rid};

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
        .map(|(o, n)| (o.track, mid(n)))
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

    let affected = rooms.publish(
        A,
        mid("a0"),
        MediaKind::Audio,
        TrackSource::Microphone,
        vec![],
    );
    assert_eq!(affected, vec![B]);
    // Publishing the same m-line again changes nothing.
    assert!(
        rooms
            .publish(
                A,
                mid("a0"),
                MediaKind::Audio,
                TrackSource::Microphone,
                vec![]
            )
            .is_empty()
    );
    // Nothing is forwarded before B's m-line is negotiated.
    assert!(rooms.fanout_pairs(A, mid("a0")).is_empty());

    let plan = negotiate(&mut rooms, B, &["b0"]);
    assert_eq!(plan.open.len(), 1);
    assert_eq!(plan.open[0].kind, MediaKind::Audio);
    assert_eq!(plan.open[0].publisher, A);
    assert_eq!(rooms.fanout_pairs(A, mid("a0")), vec![(B, mid("b0"))]);
    // The participant in another room has nothing to negotiate and receives nothing.
    assert_eq!(rooms.plan_negotiation(C), None);
    assert!(
        !rooms
            .fanout_pairs(A, mid("a0"))
            .iter()
            .any(|(q, _)| *q == C)
    );
}

#[test]
fn late_joiner_gets_existing_tracks() {
    let mut rooms = ready_pair();
    rooms.publish(
        A,
        mid("a0"),
        MediaKind::Audio,
        TrackSource::Microphone,
        vec![],
    );
    rooms.publish(A, mid("a1"), MediaKind::Video, TrackSource::Camera, vec![]);
    rooms.join(ROOM_1, C).unwrap();
    // No server offer before the participant's own first offer was answered.
    assert_eq!(rooms.plan_negotiation(C), None);
    rooms.set_ready(C);
    let plan = negotiate(&mut rooms, C, &["c0", "c1"]);
    let kinds: Vec<MediaKind> = plan.open.iter().map(|o| o.kind).collect();
    assert_eq!(kinds, vec![MediaKind::Audio, MediaKind::Video]);
    assert_eq!(rooms.fanout_pairs(A, mid("a1")), vec![(C, mid("c1"))]);
}

#[test]
fn one_offer_at_a_time_and_changes_queue_until_answer() {
    let mut rooms = ready_pair();
    rooms.publish(
        A,
        mid("a0"),
        MediaKind::Audio,
        TrackSource::Microphone,
        vec![],
    );
    let plan = rooms.plan_negotiation(B).unwrap();
    rooms.negotiation_started(B, &[(plan.open[0].track, mid("b0"))]);
    // A second track while B's offer is outstanding waits.
    rooms.publish(A, mid("a1"), MediaKind::Video, TrackSource::Camera, vec![]);
    assert_eq!(rooms.plan_negotiation(B), None);
    // The answer completes the first and reports queued work.
    assert!(rooms.negotiation_completed(B));
    let plan = rooms.plan_negotiation(B).unwrap();
    assert_eq!(plan.open.len(), 1);
    assert_eq!(plan.open[0].kind, MediaKind::Video);
}

#[test]
fn aborted_negotiation_requeues_its_changes() {
    let mut rooms = ready_pair();
    rooms.publish(
        A,
        mid("a0"),
        MediaKind::Audio,
        TrackSource::Microphone,
        vec![],
    );
    let plan = rooms.plan_negotiation(B).unwrap();
    rooms.negotiation_started(B, &[(plan.open[0].track, mid("b0"))]);
    rooms.negotiation_aborted(B);
    assert!(rooms.fanout_pairs(A, mid("a0")).is_empty());
    assert_eq!(rooms.plan_negotiation(B).unwrap().open.len(), 1);
}

#[test]
fn leaving_publisher_stops_down_tracks_with_renegotiation() {
    let mut rooms = ready_pair();
    rooms.publish(
        A,
        mid("a0"),
        MediaKind::Audio,
        TrackSource::Microphone,
        vec![],
    );
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
fn unpublished_screen_stops_only_that_track_and_can_be_published_again() {
    let mut rooms = ready_pair();
    rooms.publish(A, mid("a0"), MediaKind::Video, TrackSource::Camera, vec![]);
    rooms.publish(A, mid("a1"), MediaKind::Video, TrackSource::Screen, vec![]);
    negotiate(&mut rooms, B, &["b0", "b1"]);
    assert_eq!(rooms.unpublish(A, mid("a1")), vec![B]);
    let plan = rooms.plan_negotiation(B).unwrap();
    assert_eq!(plan.stop, vec![mid("b1")]);
    rooms.negotiation_started(B, &[]);
    rooms.negotiation_completed(B);
    // The camera still fans out; the screen does not.
    assert_eq!(rooms.fanout_pairs(A, mid("a0")), vec![(B, mid("b0"))]);
    assert!(rooms.fanout_pairs(A, mid("a1")).is_empty());
    // Unknown or already ended: nothing to do.
    assert!(rooms.unpublish(A, mid("a1")).is_empty());
    assert!(rooms.unpublish(A, mid("zz")).is_empty());
    // Sharing again is a new track with a new down m-line.
    assert_eq!(
        rooms.publish(A, mid("a1"), MediaKind::Video, TrackSource::Screen, vec![]),
        vec![B]
    );
    assert_eq!(rooms.plan_negotiation(B).unwrap().open.len(), 1);
}

#[test]
fn track_ending_mid_negotiation_is_stopped_after_the_answer() {
    let mut rooms = ready_pair();
    rooms.publish(
        A,
        mid("a0"),
        MediaKind::Audio,
        TrackSource::Microphone,
        vec![],
    );
    let plan = rooms.plan_negotiation(B).unwrap();
    rooms.negotiation_started(B, &[(plan.open[0].track, mid("b0"))]);
    // Nothing to do right now: B's offer is outstanding.
    assert!(rooms.leave(A).is_empty());
    assert!(rooms.negotiation_completed(B));
    assert_eq!(rooms.plan_negotiation(B).unwrap().stop, vec![mid("b0")]);
}

#[test]
fn never_offered_track_is_forgotten_on_leave() {
    let mut rooms = ready_pair();
    rooms.publish(
        A,
        mid("a0"),
        MediaKind::Audio,
        TrackSource::Microphone,
        vec![],
    );
    assert!(rooms.leave(A).is_empty());
    assert_eq!(rooms.plan_negotiation(B), None);
}

#[test]
fn leaving_subscriber_leaves_fanout() {
    let mut rooms = ready_pair();
    rooms.join(ROOM_1, C).unwrap();
    rooms.set_ready(C);
    rooms.publish(A, mid("a0"), MediaKind::Video, TrackSource::Camera, vec![]);
    negotiate(&mut rooms, B, &["b0"]);
    negotiate(&mut rooms, C, &["c0"]);
    assert_eq!(rooms.fanout_pairs(A, mid("a0")).len(), 2);
    assert!(rooms.leave(B).is_empty());
    assert_eq!(rooms.fanout_pairs(A, mid("a0")), vec![(C, mid("c0"))]);
}

fn frame(
    publisher: ParticipantId,
    m: &str,
    rid: Option<&str>,
    keyframe: bool,
    at: Instant,
) -> Frame {
    Frame {
        publisher,
        mid: mid(m),
        rid: rid.map(Rid::from),
        keyframe,
        dimensions: None,
        bytes: 1000,
        contiguous: true,
        rtp_time: 90_000,
        hz: 90_000,
        at,
    }
}

/// Whether a loss on `publisher`'s `m` leads to a keyframe request now.
fn loss_asks(rooms: &mut Rooms, publisher: ParticipantId, m: &str, now: Instant) -> bool {
    let mut f = frame(publisher, m, None, false, now);
    f.contiguous = false;
    rooms.route_frame(&f, now, &mut Vec::new()).is_some()
}

fn ask(publisher: ParticipantId, m: &str, rid: Option<&str>) -> KeyframeAsk {
    KeyframeAsk {
        publisher,
        mid: mid(m),
        rid: rid.map(Rid::from),
    }
}

#[test]
fn keyframe_requests_are_throttled_per_track() {
    let mut rooms = ready_pair();
    rooms.join(ROOM_1, C).unwrap();
    rooms.set_ready(C);
    rooms.publish(A, mid("a1"), MediaKind::Video, TrackSource::Camera, vec![]);
    negotiate(&mut rooms, B, &["b0"]);
    negotiate(&mut rooms, C, &["c0"]);
    let t0 = Instant::now();
    assert_eq!(
        rooms.keyframe_upstream(B, mid("b0"), t0),
        Some(ask(A, "a1", None))
    );
    // Another subscriber of the same track within 500 ms: suppressed.
    let t1 = t0 + Duration::from_millis(100);
    assert_eq!(rooms.keyframe_upstream(C, mid("c0"), t1), None);
    // Loss on the incoming stream shares the throttle.
    assert!(!loss_asks(&mut rooms, A, "a1", t1));
    let t2 = t0 + Duration::from_millis(600);
    assert!(loss_asks(&mut rooms, A, "a1", t2));
    assert_eq!(rooms.keyframe_upstream(C, mid("c0"), t2), None);
    // Unknown m-lines never match.
    assert_eq!(rooms.keyframe_upstream(B, mid("zz"), t2), None);
    assert!(!loss_asks(&mut rooms, B, "zz", t2));
}

/// A publishes simulcast video "v" with q/h/f, B subscribes on "b0"; every layer has flowed
/// for two seconds at 100/400/1600 bytes per 50 ms (16/64/256 kbit/s).
fn simulcast_room() -> (Rooms, Instant) {
    let mut rooms = ready_pair();
    let rids = vec![Rid::from("q"), Rid::from("h"), Rid::from("f")];
    rooms.publish(A, mid("v"), MediaKind::Video, TrackSource::Camera, rids);
    negotiate(&mut rooms, B, &["b0"]);
    let t0 = Instant::now();
    for step in 0..=40u64 {
        let at = t0 + Duration::from_millis(step * 50);
        for (rid, bytes) in [("q", 100), ("h", 400), ("f", 1600)] {
            let mut f = frame(A, "v", Some(rid), false, at);
            f.bytes = bytes;
            rooms.route_frame(&f, at, &mut Vec::new());
        }
    }
    (rooms, t0 + Duration::from_secs(2))
}

/// Keeps A's q/h/f layers flowing from `from` to `to` as in `simulcast_room`.
fn feed(rooms: &mut Rooms, from: Instant, to: Instant) {
    let mut at = from;
    while at <= to {
        for (rid, bytes) in [("q", 100), ("h", 400), ("f", 1600)] {
            let mut f = frame(A, "v", Some(rid), false, at);
            f.bytes = bytes;
            rooms.route_frame(&f, at, &mut Vec::new());
        }
        at += Duration::from_millis(50);
    }
}

fn delivered(rooms: &mut Rooms, rid: &str, keyframe: bool, at: Instant) -> Vec<Delivery> {
    let mut out = Vec::new();
    rooms.route_frame(&frame(A, "v", Some(rid), keyframe, at), at, &mut out);
    out
}

#[test]
fn simulcast_down_track_gets_one_layer_chosen_by_view_and_estimate() {
    let (mut rooms, now) = simulcast_room();
    // No view and no estimate yet: the top layer, once its keyframe is asked for and arrives.
    let asks = rooms.reselect_all(now);
    assert_eq!(asks, vec![ask(A, "v", Some("f"))]);
    assert!(delivered(&mut rooms, "f", false, now).is_empty());
    let out = delivered(&mut rooms, "f", true, now);
    assert_eq!(out.len(), 1);
    assert!(out[0].switched);
    assert_eq!(out[0].subscriber, B);
    assert!(delivered(&mut rooms, "q", true, now).is_empty());

    // A thumbnail: switch down to "q" after its keyframe; "f" flows until then.
    let small = View {
        visible: true,
        width: 320,
        height: 180,
    };
    let asks = rooms.set_view(B, mid("b0"), small, now).unwrap();
    assert_eq!(asks, vec![ask(A, "v", Some("q"))]);
    assert_eq!(delivered(&mut rooms, "f", false, now).len(), 1);
    assert!(delivered(&mut rooms, "q", false, now).is_empty());
    assert!(delivered(&mut rooms, "q", true, now)[0].switched);
    assert!(delivered(&mut rooms, "f", false, now).is_empty());

    // Large again, but the estimate only affords "h" (90 % of 150k - nothing for audio).
    let large = View {
        visible: true,
        width: 1280,
        height: 720,
    };
    rooms.set_estimate(B, 150_000);
    let asks = rooms.set_view(B, mid("b0"), large, now).unwrap();
    assert_eq!(asks, vec![ask(A, "v", Some("h"))]);

    // Hidden: nothing at all, and no keyframe requests.
    let hidden = View {
        visible: false,
        ..large
    };
    assert!(
        rooms
            .set_view(B, mid("b0"), hidden, now)
            .unwrap()
            .is_empty()
    );
    for rid in ["q", "h", "f"] {
        assert!(delivered(&mut rooms, rid, true, now).is_empty(), "{rid}");
    }
    // A loss on a layer nobody receives asks for nothing.
    let mut f = frame(A, "v", Some("h"), false, now + Duration::from_secs(1));
    f.contiguous = false;
    assert_eq!(rooms.route_frame(&f, f.at, &mut Vec::new()), None);
    // Unknown subscriber; unknown mid is ignored.
    assert!(matches!(
        rooms.set_view(C, mid("b0"), large, now),
        Err(SfuError::UnknownParticipant)
    ));
    assert!(rooms.set_view(B, mid("zz"), large, now).unwrap().is_empty());
}

/// A Firefox-like start: no keyframe height known yet and the layers' first measured bitrates
/// upside down ("q" ramps up first). A large tile gets "f" from the first choice on, and
/// nothing of "q" or "h" is forwarded meanwhile (the SFU used to order by bitrate here and
/// forwarded "q" for 250-500 ms first).
#[test]
fn before_heights_are_known_layers_are_ordered_by_rid_not_by_first_bitrates() {
    let mut rooms = ready_pair();
    let rids = vec![Rid::from("f"), Rid::from("h"), Rid::from("q")];
    rooms.publish(A, mid("v"), MediaKind::Video, TrackSource::Camera, rids);
    negotiate(&mut rooms, B, &["b0"]);
    let large = View {
        visible: true,
        width: 1280,
        height: 720,
    };
    let t0 = Instant::now();
    rooms.set_view(B, mid("b0"), large, t0).unwrap();
    let mut forwarded: Vec<&str> = Vec::new();
    let mut asked: Vec<KeyframeAsk> = Vec::new();
    for step in 0..=30u64 {
        let at = t0 + Duration::from_millis(step * 50);
        asked.extend(rooms.reselect_all(at));
        for (rid, bytes) in [("q", 1600), ("h", 400), ("f", 100)] {
            let mut f = frame(A, "v", Some(rid), step % 10 == 0, at);
            f.bytes = bytes;
            let mut out = Vec::new();
            rooms.route_frame(&f, at, &mut out);
            if !out.is_empty() {
                forwarded.push(rid);
            }
        }
    }
    assert!(!forwarded.is_empty(), "something is forwarded");
    assert!(forwarded.iter().all(|r| *r == "f"), "{forwarded:?}");
    assert!(
        asked.iter().all(|a| a.rid == Some(Rid::from("f"))),
        "{asked:?}"
    );
}

/// Up one layer at a time: a viewer on "q" shown large with plenty of bandwidth is moved to "h"
/// first, and to "f" only once "h" is forwarded (issue #13: browsers switched straight from
/// "q" to "f" were seen decoding "q" for a minute).
#[test]
fn a_climb_goes_one_layer_at_a_time() {
    let (mut rooms, now) = simulcast_room();
    let small = View {
        visible: true,
        width: 320,
        height: 180,
    };
    assert_eq!(
        rooms.set_view(B, mid("b0"), small, now).unwrap(),
        vec![ask(A, "v", Some("q"))]
    );
    assert!(delivered(&mut rooms, "q", true, now)[0].switched);
    let large = View {
        visible: true,
        width: 1280,
        height: 720,
    };
    rooms.set_estimate(B, 50_000_000);
    assert_eq!(
        rooms.set_view(B, mid("b0"), large, now).unwrap(),
        vec![ask(A, "v", Some("h"))]
    );
    // While "h" is pending, nothing higher is asked for.
    let later = now + Duration::from_millis(600);
    feed(&mut rooms, now, later);
    assert_eq!(rooms.reselect_all(later), vec![ask(A, "v", Some("h"))]);
    assert!(delivered(&mut rooms, "h", true, later)[0].switched);
    // On "h": "f" after the up-hold.
    let held = later + crate::simulcast::select::UP_HOLD;
    feed(&mut rooms, later, held);
    assert_eq!(rooms.reselect_all(held), vec![ask(A, "v", Some("f"))]);
}

#[test]
fn a_hidden_plain_video_tile_gets_nothing_but_audio_flows() {
    let mut rooms = ready_pair();
    rooms.publish(
        A,
        mid("a0"),
        MediaKind::Audio,
        TrackSource::Microphone,
        vec![],
    );
    rooms.publish(A, mid("a1"), MediaKind::Video, TrackSource::Screen, vec![]);
    negotiate(&mut rooms, B, &["b0", "b1"]);
    let now = Instant::now();
    let hidden = View {
        visible: false,
        width: 0,
        height: 0,
    };
    assert!(
        rooms
            .set_view(B, mid("b1"), hidden, now)
            .unwrap()
            .is_empty()
    );
    // set_view on an audio m-line cannot silence it.
    rooms.set_view(B, mid("b0"), hidden, now).unwrap();
    let mut out = Vec::new();
    rooms.route_frame(&frame(A, "a1", None, true, now), now, &mut out);
    assert!(out.is_empty());
    rooms.route_frame(&frame(A, "a0", None, false, now), now, &mut out);
    assert_eq!(out.len(), 1);
    // Shown again: a keyframe is asked for at once.
    let asks = rooms.set_view(B, mid("b1"), View::default(), now).unwrap();
    assert_eq!(asks, vec![ask(A, "a1", None)]);
}

#[test]
fn the_estimator_is_asked_to_grow_towards_the_layer_the_view_wants() {
    let (mut rooms, now) = simulcast_room();
    let large = View {
        visible: true,
        width: 1280,
        height: 720,
    };
    let target = |rooms: &mut Rooms, at: Instant| {
        rooms.reselect_all(at);
        rooms
            .take_bwe_targets(at)
            .into_iter()
            .find(|(p, _)| *p == B)
            .map(|(_, t)| t)
    };
    rooms.set_view(B, mid("b0"), large, now).unwrap();
    // An estimate that affords only "q" (16 kbit/s): sustain "h" (64 kbit/s, the next layer
    // up, plus 10 % headroom) and probe for "f" (256 kbit/s), which the view wants; the
    // desired rate is never below the estimator's starting rate (its probes are capped at
    // twice the desired rate, and a probe's result becomes the estimate).
    rooms.set_estimate(B, 30_000);
    let t = target(&mut rooms, now).expect("a target");
    assert!((60_000..=80_000).contains(&t.minimum), "{t:?}");
    assert_eq!(t.desired, super::DESIRED_FLOOR_BPS);
    // Unchanged: nothing new to hand over.
    assert_eq!(target(&mut rooms, now), None);
    // The estimate stays below the desired rate: a re-probe (the desired rate raised by 5 %)
    // every REPROBE_INTERVAL, and the plain target again on the next call.
    let later = now + super::forward::REPROBE_INTERVAL;
    feed(&mut rooms, now, later);
    let raised = target(&mut rooms, later).expect("a re-probe");
    assert_eq!(raised.desired, t.desired + t.desired / 20);
    assert_eq!(target(&mut rooms, later), Some(t));
    assert_eq!(target(&mut rooms, later), None);
    // The estimate grew into "h" (after the up-hold): now sustain "f".
    rooms.set_estimate(B, 100_000);
    target(&mut rooms, later);
    let held = later + crate::simulcast::select::UP_HOLD;
    feed(&mut rooms, later, held);
    let t = target(&mut rooms, held).expect("a new target");
    assert!((250_000..=310_000).contains(&t.minimum), "{t:?}");
    assert_eq!(t.desired, super::DESIRED_FLOOR_BPS);
    // On the layer the view wants (once the estimate affords "f" and the up-hold passed): no
    // re-probes, although the estimate is below the desired rate.
    rooms.set_estimate(B, 400_000);
    target(&mut rooms, held);
    let on_top = held + crate::simulcast::select::UP_HOLD;
    feed(&mut rooms, held, on_top);
    target(&mut rooms, on_top);
    for n in 1..4u32 {
        let at = on_top + super::forward::REPROBE_INTERVAL * n;
        feed(&mut rooms, at - super::forward::REPROBE_INTERVAL, at);
        assert_eq!(target(&mut rooms, at), None, "{n}");
    }
    let held = on_top;
    // Hidden: nothing to sustain or probe for.
    let hidden = View {
        visible: false,
        ..large
    };
    let at = held + super::forward::REPROBE_INTERVAL * 3;
    rooms.set_view(B, mid("b0"), hidden, at).unwrap();
    let t = target(&mut rooms, at).expect("cleared");
    assert_eq!((t.minimum, t.desired), (0, 0));
}

/// A model of the subscriber's send-side estimator as str0m 0.25 runs it
/// (`bwe/probe/control.rs`): it probes only when the desired rate handed to it rises above
/// both the previous desired rate and the estimate (an allocation probe at 1× and 2× the
/// desired rate, capped at twice the estimate), and a probe's result becomes the estimate;
/// the link never carries more than its capacity. Media alone never raises it (the worst case
/// for a subscriber moved down to a low layer: it sends too little to grow by AIMD).
struct ModelBwe {
    estimate: u64,
    prev_desired: Option<u64>,
    capacity: u64,
}

impl ModelBwe {
    fn hand(&mut self, t: BweTarget) {
        if self
            .prev_desired
            .is_some_and(|prev| t.desired > prev && t.desired > self.estimate)
        {
            let probe = (t.desired * 2).min(self.estimate * 2);
            self.estimate = probe.min(self.capacity);
        }
        self.prev_desired = Some(t.desired);
    }
}

/// The climb back after a throttle, deterministically (issue #11): a subscriber of a q/h/f
/// publisher (150/500/1500 kbit/s) shows it large on a 5 Mbit/s link; the link is throttled
/// to 250 kbit/s for 10 s, then freed. It must move down to "q" within a second, and be back
/// on "f" within 12 s of the throttle's end. This fails without the re-probes of
/// `take_bwe_targets` (the desired rate is the same before and after the throttle, so the
/// estimator never probes again: it stays on "q").
#[test]
fn a_throttled_subscriber_climbs_back_to_the_top_layer_once_the_link_recovers() {
    let mut rooms = ready_pair();
    let rids = vec![Rid::from("q"), Rid::from("h"), Rid::from("f")];
    rooms.publish(A, mid("v"), MediaKind::Video, TrackSource::Camera, rids);
    negotiate(&mut rooms, B, &["b0"]);
    let large = View {
        visible: true,
        width: 1280,
        height: 720,
    };
    let t0 = Instant::now();
    rooms.set_view(B, mid("b0"), large, t0).unwrap();
    // Starts at the media loop's initial estimate, 2.5 Mbit/s.
    let mut bwe = ModelBwe {
        estimate: 2_500_000,
        prev_desired: None,
        capacity: 5_000_000,
    };
    let throttled = t0 + Duration::from_secs(5);
    let freed = t0 + Duration::from_secs(15);
    // Per 50 ms at 150/500/1500 kbit/s.
    let layers = [("q", 937), ("h", 3125), ("f", 9375)];
    let mut keyframes_due: Vec<Rid> = Vec::new();
    let mut receiving: Option<Rid> = None;
    let (mut down_at, mut up_at) = (None, None);
    for step in 0..(40 * 20u64) {
        let now = t0 + Duration::from_millis(step * 50);
        bwe.capacity = if now >= throttled && now < freed {
            250_000
        } else {
            5_000_000
        };
        // Delay and loss bring the estimate down to what the link carries.
        bwe.estimate = bwe.estimate.min(bwe.capacity);
        for (rid, bytes) in layers {
            let rid = Rid::from(rid);
            let keyframe = keyframes_due.contains(&rid);
            keyframes_due.retain(|r| *r != rid);
            let mut f = frame(A, "v", Some(&rid), keyframe, now);
            f.bytes = bytes;
            let mut out = Vec::new();
            rooms.route_frame(&f, now, &mut out);
            if out.iter().any(|d| d.subscriber == B) {
                receiving = Some(rid);
            }
        }
        if step % 5 == 0 {
            // The media loop's tick (every 250 ms): estimate in, layers chosen, targets out.
            rooms.set_estimate(B, bwe.estimate);
            for ask in rooms.reselect_all(now) {
                keyframes_due.extend(ask.rid);
            }
            for (p, target) in rooms.take_bwe_targets(now) {
                if p == B {
                    bwe.hand(target);
                }
            }
        }
        if now >= throttled && down_at.is_none() && receiving == Some(Rid::from("q")) {
            down_at = Some(now - throttled);
        }
        if now >= freed && up_at.is_none() && receiving == Some(Rid::from("f")) {
            up_at = Some(now - freed);
        }
        if now == throttled {
            assert_eq!(receiving, Some(Rid::from("f")), "on the top layer before");
        }
    }
    let down_at = down_at.expect("moved down to q under the throttle");
    assert!(down_at <= Duration::from_secs(1), "down after {down_at:?}");
    let up_at = up_at.expect("climbed back to f once the throttle was gone");
    assert!(up_at <= Duration::from_secs(12), "back up after {up_at:?}");
    eprintln!("moved down {down_at:?} after the throttle, back on f {up_at:?} after its end");
}
