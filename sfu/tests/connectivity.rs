//! Interop: ICE over TCP only (a webrtc-rs peer without any UDP socket), and ICE restart on the
//! same session (tracks survive, the other side sees no new tracks).

mod support;

use std::time::Duration;

use consultroom_sfu::{ParticipantId, PublishPolicy, RoomId, Sfu, SfuConfig};
use support::{Kind, SfuClient, TestPeer};

const WAIT: Duration = Duration::from_secs(15);

async fn start_sfu(tcp: bool) -> Sfu {
    let registry = prometheus::Registry::new();
    let config = SfuConfig {
        bind: "127.0.0.1:0".parse().expect("addr"),
        announce: vec!["127.0.0.1".parse().expect("ip")],
        loops: 1,
        tcp_bind: tcp.then(|| "127.0.0.1:0".parse().expect("addr")),
    };
    Sfu::start(config, &registry).await.expect("sfu starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_only_peers_exchange_media() {
    let sfu = start_sfu(true).await;
    assert_eq!(sfu.tcp_addrs().len(), 1);
    let alice = SfuClient::connect_on(
        &sfu,
        RoomId(1),
        ParticipantId(1),
        TestPeer::new_tcp_only().await,
    )
    .await;
    let bob = SfuClient::connect_on(
        &sfu,
        RoomId(1),
        ParticipantId(2),
        TestPeer::new_tcp_only().await,
    )
    .await;
    for (name, c) in [("alice", &alice), ("bob", &bob)] {
        assert!(
            c.peer.wait_connected(WAIT).await,
            "{name} connects over TCP"
        );
        assert!(c.wait_sfu_connected(WAIT).await, "sfu saw {name}");
    }
    assert!(bob.peer.wait_packets(Kind::Video, 20, WAIT).await >= 20);
    assert!(alice.peer.wait_packets(Kind::Audio, 20, WAIT).await >= 20);
    let stats = sfu.stats().await;
    assert_eq!(stats.loops[0].tcp_connections, 2, "{stats:?}");
    alice.close().await;
    bob.close().await;
    sfu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_keeps_tracks_without_new_ones_for_the_other_side() {
    let sfu = start_sfu(false).await;
    let alice = SfuClient::connect(&sfu, RoomId(2), ParticipantId(1)).await;
    let bob = SfuClient::connect(&sfu, RoomId(2), ParticipantId(2)).await;
    assert!(alice.peer.wait_connected(WAIT).await);
    assert!(bob.peer.wait_packets(Kind::Video, 10, WAIT).await >= 10);
    let bob_tracks = bob.peer.received().tracks();
    let bob_offers = bob.status().offers_answered;

    // Alice restarts ICE (new ufrag/pwd) on the same session.
    let old_ufrag = ufrag(&alice.peer.offer_sdp().await);
    let offer = alice.peer.restart_offer().await;
    assert_ne!(ufrag(&offer), old_ufrag, "the offer restarts ICE");
    let answer = sfu
        .offer(alice.id, offer, PublishPolicy::default())
        .await
        .expect("restart accepted");
    alice.peer.accept_answer(answer).await;

    // Media keeps flowing both ways.
    let before = bob.peer.received().packets(Kind::Video);
    assert!(bob.peer.wait_packets(Kind::Video, before + 30, WAIT).await >= before + 30);
    let before = alice.peer.received().packets(Kind::Audio);
    assert!(
        alice
            .peer
            .wait_packets(Kind::Audio, before + 30, WAIT)
            .await
            >= before + 30
    );
    // Nothing new for bob: no new tracks, no renegotiation.
    assert_eq!(bob.peer.received().tracks(), bob_tracks);
    assert_eq!(bob.status().offers_answered, bob_offers);
    assert_eq!(sfu.stats().await.participants(), 2);
    assert!(!alice.status().disconnected);
    alice.close().await;
    bob.close().await;
    sfu.shutdown().await;
}

fn ufrag(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))
        .unwrap_or_default()
        .to_string()
}
