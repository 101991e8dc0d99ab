//! Interop: one media loop per core. Rooms are placed whole on the least-loaded loop, each loop
//! has its own UDP port, and media flows in rooms on every loop.

mod support;

use std::time::Duration;

use consultroom_sfu::{ParticipantId, RoomId, Sfu, SfuConfig};
use support::{Kind, SfuClient};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rooms_on_two_loops_both_forward_media() {
    let registry = prometheus::Registry::new();
    let config = SfuConfig {
        bind: "127.0.0.1:0".parse().expect("addr"),
        announce: vec!["127.0.0.1".parse().expect("ip")],
        loops: 2,
        tcp_bind: None,
    };
    let sfu = Sfu::start(config, &registry).await.expect("sfu starts");
    let addrs = sfu.local_addrs();
    assert_eq!(addrs.len(), 2);
    assert_ne!(
        addrs[0].port(),
        addrs[1].port(),
        "each loop has its own port"
    );
    assert_eq!(sfu.local_addr(), addrs[0]);

    let a1 = SfuClient::connect(&sfu, RoomId(1), ParticipantId(1)).await;
    let b1 = SfuClient::connect(&sfu, RoomId(2), ParticipantId(2)).await;
    let a2 = SfuClient::connect(&sfu, RoomId(1), ParticipantId(3)).await;
    let b2 = SfuClient::connect(&sfu, RoomId(2), ParticipantId(4)).await;

    let stats = sfu.stats().await;
    assert_eq!(stats.loops.len(), 2);
    for (i, l) in stats.loops.iter().enumerate() {
        assert_eq!(l.rooms, 1, "loop {i} holds one room: {stats:?}");
        assert_eq!(
            l.participants, 2,
            "loop {i} holds one room's two: {stats:?}"
        );
        assert_eq!(l.udp_addr, Some(addrs[i]));
    }

    for (name, c) in [("a1", &a1), ("a2", &a2), ("b1", &b1), ("b2", &b2)] {
        assert!(c.peer.wait_connected(WAIT).await, "{name} connects");
        let video = c.peer.wait_packets(Kind::Video, 10, WAIT).await;
        let audio = c.peer.wait_packets(Kind::Audio, 10, WAIT).await;
        assert!(
            video >= 10 && audio >= 10,
            "{name}: {audio} audio, {video} video"
        );
    }
    // Peers only ever hear their own room.
    assert_eq!(a1.peer.received().stream_ids(), vec!["participant-3"; 2]);
    assert_eq!(b1.peer.received().stream_ids(), vec!["participant-4"; 2]);

    let text = {
        use prometheus::Encoder;
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut buf)
            .expect("encode");
        String::from_utf8(buf).expect("utf8")
    };
    assert!(
        text.contains(r#"consultroom_sfu_loop_objects{kind="participants",loop="1"} 2"#),
        "per-loop gauges: {text}"
    );
    assert!(text.contains("consultroom_sfu_participants 4"));

    sfu.leave(ParticipantId(1)).await;
    sfu.leave(ParticipantId(3)).await;
    // Room 1 is gone from loop 0: a new room goes there.
    let c = SfuClient::connect(&sfu, RoomId(3), ParticipantId(5)).await;
    let stats = sfu.stats().await;
    assert_eq!(stats.loops[0].participants, 1, "{stats:?}");
    assert_eq!(stats.participants(), 3);
    for client in [a1, a2, b1, b2, c] {
        client.close().await;
    }
    sfu.shutdown().await;
}
