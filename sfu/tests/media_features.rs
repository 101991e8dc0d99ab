//! Interop (webrtc-rs against the SFU on 127.0.0.1): simulcast layer switching driven by
//! `set_view`, and screen share refused or forwarded under the publish policy.

mod support;

use std::time::Duration;

use consultroom_sfu::{OfferError, ParticipantId, RoomId, Sfu, SfuConfig, View};
use support::{Kind, Publish, SfuClient, m_lines};

const WAIT: Duration = Duration::from_secs(15);

async fn start_sfu() -> (Sfu, prometheus::Registry) {
    let registry = prometheus::Registry::new();
    let config = SfuConfig {
        bind: "127.0.0.1:0".parse().expect("addr"),
        announce: vec!["127.0.0.1".parse().expect("ip")],
        loops: 1,
        tcp_bind: None,
    };
    let sfu = Sfu::start(config, &registry).await.expect("sfu starts");
    (sfu, registry)
}

fn counter(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter().map(|m| m.get_counter().get_value()))
        .sum()
}

/// How many observations histogram `name` has.
fn histogram_count(registry: &prometheus::Registry, name: &str) -> u64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| {
            f.get_metric()
                .iter()
                .map(|m| m.get_histogram().get_sample_count())
        })
        .sum()
}

/// Waits until `pred` holds (bounded); returns whether it did.
async fn eventually(timeout: Duration, pred: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if pred() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pred()
}

/// The subscriber's own m-line carrying `publisher`'s video, once an answered server offer has
/// it (the first offer may carry only the audio: the publisher's video is published when its
/// media arrives, and a later offer adds it).
async fn video_mid(client: &SfuClient, stream: &str) -> String {
    let find = |offer: &str| {
        m_lines(offer)
            .into_iter()
            .find(|m| m.kind == "video" && m.msid.as_ref().is_some_and(|(s, _)| s == stream))
            .map(|m| m.mid)
    };
    let status = client
        .wait_status(WAIT, |s| {
            s.offers_answered >= 1 && find(&s.last_offer).is_some()
        })
        .await;
    find(&status.last_offer).expect("a video down track")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulcast_subscriber_follows_its_view_from_720p_to_180p() {
    let (sfu, registry) = start_sfu().await;
    let publisher = SfuClient::connect_with(
        &sfu,
        RoomId(1),
        ParticipantId(1),
        Publish::Simulcast(vec!["q", "h", "f"]),
        None,
    )
    .await
    .expect("publisher offer accepted");
    if std::env::var("DEBUG_SDP").is_ok() {
        eprintln!("OFFER:\n{}", publisher.peer.offer_sdp().await);
    }
    let viewer = SfuClient::connect(&sfu, RoomId(1), ParticipantId(2)).await;
    assert!(viewer.peer.wait_connected(WAIT).await, "viewer connects");
    assert!(
        viewer
            .wait_status(WAIT, |s| s.offers_answered >= 1)
            .await
            .offers_answered
            >= 1
    );
    let mid = video_mid(&viewer, "participant-1").await;
    let got = viewer.peer.received();

    let large = View {
        visible: true,
        width: 1280,
        height: 720,
    };
    sfu.set_view(ParticipantId(2), mid.clone(), large)
        .await
        .expect("set_view");
    assert!(
        eventually(WAIT, || got.marker_count(b'f') >= 20).await,
        "1280x720 gets the f layer: f={} h={} q={}",
        got.marker_count(b'f'),
        got.marker_count(b'h'),
        got.marker_count(b'q')
    );
    assert_eq!(got.marker_count(b'q'), 0, "never q while large");
    // Every forwarded packet is measured from its frame's arrival to the socket.
    let on_wire = histogram_count(&registry, "consultroom_sfu_wire_latency_seconds");
    assert!(
        on_wire >= got.packets(Kind::Video),
        "wire latency observed {on_wire} times for {} video packets received",
        got.packets(Kind::Video)
    );

    let small = View {
        visible: true,
        width: 320,
        height: 180,
    };
    sfu.set_view(ParticipantId(2), mid.clone(), small)
        .await
        .expect("set_view");
    let q_before = got.marker_count(b'q');
    assert!(
        eventually(WAIT, || got.marker_count(b'q') >= q_before + 20
            && got.last_marker() == b'q')
        .await,
        "320x180 switches to the q layer: q={}",
        got.marker_count(b'q')
    );
    // After the switch only q arrives.
    let f_after = got.marker_count(b'f');
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(got.marker_count(b'f'), f_after, "no f after the switch");
    assert!(counter(&registry, "consultroom_sfu_layer_switches_total") >= 2.0);

    // Hidden: the video stops, audio goes on.
    let hidden = View {
        visible: false,
        ..small
    };
    sfu.set_view(ParticipantId(2), mid, hidden)
        .await
        .expect("set_view");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let video = got.packets(Kind::Video);
    let audio = got.packets(Kind::Audio);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(got.packets(Kind::Video), video, "hidden tile gets no video");
    assert!(got.packets(Kind::Audio) > audio + 10, "audio keeps flowing");

    publisher.close().await;
    viewer.close().await;
    sfu.shutdown().await;
}

/// The other way round: a viewer that starts on "q" (a small tile) and is then shown large gets
/// "f" and only "f" (in the browser test, a patient whose down track started on "q" and switched
/// straight to "f" was seen decoding 320x180 frames for a minute; issue #13).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulcast_subscriber_climbs_from_180p_straight_to_720p() {
    let (sfu, _registry) = start_sfu().await;
    let publisher = SfuClient::connect_with(
        &sfu,
        RoomId(1),
        ParticipantId(1),
        Publish::Simulcast(vec!["q", "h", "f"]),
        None,
    )
    .await
    .expect("publisher offer accepted");
    let viewer = SfuClient::connect(&sfu, RoomId(1), ParticipantId(2)).await;
    assert!(viewer.peer.wait_connected(WAIT).await, "viewer connects");
    let mid = video_mid(&viewer, "participant-1").await;
    let got = viewer.peer.received();
    let small = View {
        visible: true,
        width: 320,
        height: 180,
    };
    sfu.set_view(ParticipantId(2), mid.clone(), small)
        .await
        .expect("set_view");
    assert!(
        eventually(WAIT, || got.marker_count(b'q') >= 20).await,
        "320x180 gets q: q={}",
        got.marker_count(b'q')
    );
    let large = View {
        visible: true,
        width: 1280,
        height: 720,
    };
    sfu.set_view(ParticipantId(2), mid, large)
        .await
        .expect("set_view");
    let f_before = got.marker_count(b'f');
    assert!(
        eventually(WAIT, || got.marker_count(b'f') >= f_before + 20
            && got.last_marker() == b'f')
        .await,
        "1280x720 switches from q to f: f={} h={} q={}",
        got.marker_count(b'f'),
        got.marker_count(b'h'),
        got.marker_count(b'q')
    );
    let q_after = got.marker_count(b'q');
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(got.marker_count(b'q'), q_after, "no q after the switch");

    publisher.close().await;
    viewer.close().await;
    sfu.shutdown().await;
}

/// A Firefox-style publisher (RFC 8843 `max-bundle`: its camera m-line has port 0 and
/// `a=bundle-only` in the offer, its answers give bundled m-lines port 0): the camera is
/// published once, with its simulcast layers, and no m-line of it ever "changes" (str0m used to
/// report such a line as changed from inactive once the session connected, and the SFU then
/// published it again without layers; `bundle.rs`). Its answers to server offers, with port 0
/// on the viewer's tracks, are not taken as changes either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_bundle_only_simulcast_is_published_once_with_its_layers() {
    let (sfu, registry) = start_sfu().await;
    let publisher = SfuClient::connect_with(
        &sfu,
        RoomId(1),
        ParticipantId(1),
        Publish::SimulcastBundleOnly(vec!["q", "h", "f"]),
        None,
    )
    .await
    .expect("publisher offer accepted");
    let viewer = SfuClient::connect(&sfu, RoomId(1), ParticipantId(2)).await;
    assert!(
        publisher.wait_sfu_connected(WAIT).await,
        "publisher connects"
    );
    assert!(viewer.peer.wait_connected(WAIT).await, "viewer connects");
    // The publisher answered the server offer with the viewer's tracks (port 0 there).
    assert!(
        publisher
            .wait_status(WAIT, |s| s.offers_answered >= 1)
            .await
            .offers_answered
            >= 1,
        "{:?}",
        publisher.status().answer_error
    );
    let mid = video_mid(&viewer, "participant-1").await;
    let got = viewer.peer.received();
    // The layers are there: a large view gets "f", a small one "q".
    let large = View {
        visible: true,
        width: 1280,
        height: 720,
    };
    sfu.set_view(ParticipantId(2), mid.clone(), large)
        .await
        .expect("set_view");
    assert!(
        eventually(WAIT, || got.marker_count(b'f') >= 20).await,
        "1280x720 gets the f layer: f={} h={} q={}",
        got.marker_count(b'f'),
        got.marker_count(b'h'),
        got.marker_count(b'q')
    );
    let small = View {
        visible: true,
        width: 320,
        height: 180,
    };
    sfu.set_view(ParticipantId(2), mid, small)
        .await
        .expect("set_view");
    assert!(
        eventually(WAIT, || got.last_marker() == b'q').await,
        "320x180 switches to the q layer: q={}",
        got.marker_count(b'q')
    );
    assert_eq!(
        counter(&registry, "consultroom_sfu_publisher_mline_changes_total"),
        0.0,
        "no publisher m-line changed"
    );
    let stats = sfu.stats().await;
    assert_eq!(
        stats
            .loops
            .iter()
            .map(|l| l.published_tracks)
            .sum::<usize>(),
        4,
        "{stats:?}"
    );

    publisher.close().await;
    viewer.close().await;
    sfu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_share_is_refused_without_permission_and_forwarded_with_its_msid() {
    let (sfu, _registry) = start_sfu().await;
    let viewer = SfuClient::connect(&sfu, RoomId(3), ParticipantId(2)).await;

    // Not allowed: refused, nothing applied, the participant is not in the room.
    let refused = SfuClient::connect_with(
        &sfu,
        RoomId(3),
        ParticipantId(1),
        Publish::WithScreen,
        Some(false),
    )
    .await;
    assert!(matches!(refused, Err(OfferError::Forbidden(_))));
    assert_eq!(sfu.stats().await.participants(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(viewer.peer.received().tracks(), 0);

    // Allowed: three down tracks, the screen in its own stream.
    let sharer = SfuClient::connect_with(
        &sfu,
        RoomId(3),
        ParticipantId(1),
        Publish::WithScreen,
        Some(true),
    )
    .await
    .expect("allowed");
    let from_sharer = |sdp: &str| {
        m_lines(sdp)
            .iter()
            .filter(|m| {
                m.msid
                    .as_ref()
                    .is_some_and(|(s, _)| s.starts_with("participant-1"))
            })
            .count()
    };
    let status = viewer
        .wait_status(WAIT, |s| from_sharer(&s.last_offer) == 3)
        .await;
    assert!(viewer.peer.wait_connected(WAIT).await);
    let lines = m_lines(&status.last_offer);
    let msids: Vec<(String, String)> = lines
        .iter()
        .filter_map(|m| m.msid.clone())
        .filter(|(stream, _)| stream.starts_with("participant-"))
        .collect();
    let sharer_mids: Vec<String> = m_lines(&sharer.peer.offer_sdp().await)
        .into_iter()
        .map(|m| m.mid)
        .collect();
    assert_eq!(msids.len(), 3, "{msids:?}");
    // Track ids are `<source>-<publisher mid>-t<track number>`: unique per published track.
    let expected = [
        ("participant-1", format!("microphone-{}-t", sharer_mids[0])),
        ("participant-1", format!("camera-{}-t", sharer_mids[1])),
        (
            "participant-1-screen",
            format!("screen-{}-t", sharer_mids[2]),
        ),
    ];
    for ((stream, track), (want_stream, want_prefix)) in msids.iter().zip(&expected) {
        assert_eq!(stream, want_stream, "{msids:?}");
        assert!(track.starts_with(want_prefix.as_str()), "{msids:?}");
    }
    let tracks: std::collections::HashSet<_> = msids.iter().map(|(_, t)| t).collect();
    assert_eq!(tracks.len(), 3, "track ids are unique: {msids:?}");
    let got = viewer.peer.received();
    assert!(
        eventually(WAIT, || got.marker_count(b'S') >= 10).await,
        "screen frames arrive"
    );
    assert!(
        got.stream_ids()
            .contains(&"participant-1-screen".to_string())
    );
    sharer.close().await;
    viewer.close().await;
    sfu.shutdown().await;
}

/// The value of counter `name` with label `direction="<direction>"`.
fn counter_with(registry: &prometheus::Registry, name: &str, direction: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "direction" && l.value() == direction)
        })
        .map(|m| m.get_counter().get_value())
        .sum()
}

/// RELIABILITY A.10: one subscriber asks for keyframes 1,000 times a second; the publisher is
/// asked at most once per 500 ms, and the subscriber keeps receiving video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframe_request_storm_reaches_the_publisher_throttled() {
    let (sfu, registry) = start_sfu().await;
    let publisher = SfuClient::connect(&sfu, RoomId(11), ParticipantId(1)).await;
    let viewer = SfuClient::connect(&sfu, RoomId(11), ParticipantId(2)).await;
    assert!(viewer.peer.wait_connected(WAIT).await);
    assert!(viewer.peer.wait_packets(Kind::Video, 20, WAIT).await >= 20);
    let name = "consultroom_sfu_keyframe_requests_total";
    let up_before = counter_with(&registry, name, "in");
    let down_before = counter_with(&registry, name, "out");

    let started = tokio::time::Instant::now();
    let sent = viewer.peer.send_plis(2_000, Duration::from_millis(1)).await;
    let storm = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sent >= 1_000, "the storm was sent ({sent})");
    let received = counter_with(&registry, name, "out") - down_before;
    let forwarded = counter_with(&registry, name, "in") - up_before;
    println!("storm: {sent} PLIs in {storm:?}; counted {received}; upstream {forwarded}");
    // The SFU saw the storm (str0m may merge PLIs of one compound packet; most arrive)...
    assert!(
        received >= 500.0,
        "subscriber PLIs counted: {received} of {sent}"
    );
    // ...and passed on at most one per 500 ms (plus one at each edge).
    let allowed = (storm.as_secs_f64() / 0.5).ceil() + 2.0;
    assert!(
        forwarded <= allowed,
        "upstream keyframe requests {forwarded} in {storm:?} (allowed {allowed})"
    );
    // The viewer still gets video.
    let before = viewer.peer.received().packets(Kind::Video);
    assert!(
        viewer
            .peer
            .wait_packets(Kind::Video, before + 20, WAIT)
            .await
            >= before + 20
    );
    publisher.close().await;
    viewer.close().await;
    sfu.shutdown().await;
}

/// RELIABILITY A.9, the NACK part: a subscriber's NACKs naming the publisher's own SSRC never
/// reach the publisher (str0m answers NACKs per leg, from that leg's send buffer), while its
/// NACKs for its own down track are read and counted; another subscriber is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_nacks_naming_the_publishers_ssrc_never_reach_it() {
    let (sfu, registry) = start_sfu().await;
    let publisher = SfuClient::connect(&sfu, RoomId(12), ParticipantId(1)).await;
    let attacker = SfuClient::connect(&sfu, RoomId(12), ParticipantId(2)).await;
    let other = SfuClient::connect(&sfu, RoomId(12), ParticipantId(3)).await;
    for c in [&attacker, &other] {
        assert!(c.peer.wait_connected(WAIT).await);
        assert!(c.peer.wait_packets(Kind::Video, 20, WAIT).await >= 20);
    }
    let target = publisher.video_ssrc.expect("the publisher's camera SSRC");
    let name = "consultroom_sfu_nacks_total";
    // Let a stats round (every 2 s) settle what the joins did.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let up_before = counter_with(&registry, name, "in");
    let down_before = counter_with(&registry, name, "out");
    let other_before = other.peer.received().packets(Kind::Video);

    let spoofed = attacker
        .peer
        .send_nacks(500, Duration::from_millis(2), Some(target))
        .await;
    let own = attacker
        .peer
        .send_nacks(20, Duration::from_millis(10), None)
        .await;
    assert!(spoofed >= 500 && own >= 20, "sent {spoofed} + {own}");
    // Stats (and so the NACK counters) come every 2 s.
    let counted = eventually(Duration::from_secs(6), || {
        counter_with(&registry, name, "out") - down_before >= 1.0
    })
    .await;
    let up = counter_with(&registry, name, "in") - up_before;
    let down = counter_with(&registry, name, "out") - down_before;
    println!(
        "{spoofed} spoofed + {own} own NACKs: counted from subscribers {down}, sent upstream {up}"
    );
    assert!(
        counted,
        "the attacker's NACKs for its own down track are read and counted ({down})"
    );
    assert!(
        down <= own as f64,
        "the spoofed NACKs were not taken for the attacker's own streams ({down} > {own})"
    );
    assert_eq!(up, 0.0, "no NACK went to a publisher ({up})");
    // The other subscriber keeps receiving the publisher's video.
    assert!(
        other
            .peer
            .wait_packets(Kind::Video, other_before + 20, WAIT)
            .await
            >= other_before + 20
    );
    publisher.close().await;
    attacker.close().await;
    other.close().await;
    sfu.shutdown().await;
}
