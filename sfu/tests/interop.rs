//! Interop: the str0m-based SFU against webrtc-rs peers on 127.0.0.1.
//!
//! Two peers in one room must receive each other's audio and video; a peer in another room must
//! receive nothing; garbage datagrams and bad SDP must not hurt the SFU.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use consultroom_sfu::{OfferError, ParticipantId, PublishPolicy, RoomId, Sfu, SfuConfig, SfuError};
use support::{Kind, SfuClient};

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

fn metric(registry: &prometheus::Registry, name: &str) -> f64 {
    use prometheus::proto::MetricType;
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .map(|f| {
            f.get_metric()
                .iter()
                .map(|m| match f.get_field_type() {
                    MetricType::COUNTER => m.get_counter().get_value(),
                    MetricType::GAUGE => m.get_gauge().get_value(),
                    MetricType::HISTOGRAM => m.get_histogram().get_sample_count() as f64,
                    _ => 0.0,
                })
                .sum::<f64>()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_exchange_audio_and_video_and_other_rooms_get_nothing() {
    let (sfu, registry) = start_sfu().await;
    let alice = SfuClient::connect(&sfu, RoomId(1), ParticipantId(1)).await;
    let bob = SfuClient::connect(&sfu, RoomId(1), ParticipantId(2)).await;
    let carol = SfuClient::connect(&sfu, RoomId(2), ParticipantId(3)).await;

    for (name, client) in [("alice", &alice), ("bob", &bob), ("carol", &carol)] {
        assert!(client.peer.wait_connected(WAIT).await, "{name} connects");
        assert!(
            client.wait_sfu_connected(WAIT).await,
            "sfu reports {name} connected"
        );
    }

    for (name, client, from) in [("alice", &alice, 2), ("bob", &bob, 1)] {
        let audio = client.peer.wait_packets(Kind::Audio, 20, WAIT).await;
        let video = client.peer.wait_packets(Kind::Video, 20, WAIT).await;
        assert!(audio >= 20, "{name} got {audio} audio packets");
        assert!(video >= 20, "{name} got {video} video packets");
        let streams = client.peer.received().stream_ids();
        assert!(
            streams.iter().all(|s| *s == format!("participant-{from}")),
            "{name} only receives participant {from}: {streams:?}"
        );
    }

    // Carol, alone in room 2, has been connected and publishing all along: nothing may reach her.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = carol.peer.received();
    assert_eq!(got.tracks(), 0, "carol got tracks from another room");
    assert_eq!(got.packets(Kind::Audio) + got.packets(Kind::Video), 0);

    assert_eq!(metric(&registry, "consultroom_sfu_rooms"), 2.0);
    assert_eq!(metric(&registry, "consultroom_sfu_participants"), 3.0);
    assert!(metric(&registry, "consultroom_sfu_packets_forwarded_total") > 0.0);
    assert!(metric(&registry, "consultroom_sfu_bytes_forwarded_total") > 0.0);
    assert_eq!(metric(&registry, "consultroom_sfu_connect_seconds"), 3.0);

    // Leaving ends the room membership; bob is renegotiated without failing, and alice (who
    // asked to leave) is not reported as disconnected.
    let offers_before = bob.status().offers_answered;
    sfu.leave(alice.id).await;
    assert_eq!(metric(&registry, "consultroom_sfu_participants"), 2.0);
    let status = bob
        .wait_status(WAIT, |s| s.offers_answered > offers_before)
        .await;
    assert!(status.answer_error.is_none(), "{:?}", status.answer_error);
    assert!(status.last_offer.contains("a=inactive"));
    assert!(!alice.status().disconnected);
    alice.close().await;
    bob.close().await;
    carol.close().await;
    sfu.shutdown().await;
    assert!(matches!(
        sfu.join(RoomId(9), ParticipantId(9), tokio::sync::mpsc::channel(1).0)
            .await,
        Err(SfuError::Stopped)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_bad_sdp_do_not_break_the_sfu() {
    let (sfu, registry) = start_sfu().await;
    let sfu_addr: SocketAddr = sfu.local_addr();

    // Garbage datagrams: random-ish bytes, STUN-looking junk, an RTP header alone, oversize.
    let junk = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut stun_like = vec![0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42];
    stun_like.extend_from_slice(&[0u8; 12]);
    stun_like.extend_from_slice(&[0x00, 0x06, 0x00, 0xFF, b'x', b':', b'y', 0]);
    let datagrams: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xFF; 40],
        b"hello sfu".to_vec(),
        stun_like,
        vec![0x80, 96, 0, 1],
        vec![22, 0xFE, 0xFD, 0, 0],
        vec![0x80; 1600],
        (0..=255u8).collect(),
    ];
    for d in &datagrams {
        for _ in 0..5 {
            let _ = junk.send_to(d, sfu_addr).await;
        }
    }

    // Bad SDP, bad candidates, unknown participants.
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    sfu.join(RoomId(1), ParticipantId(10), tx)
        .await
        .expect("join");
    for bad in [
        String::new(),
        "v=0\r\nthis is not sdp".to_string(),
        "x".repeat(70 * 1024),
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n".to_string(),
    ] {
        assert!(matches!(
            sfu.offer(ParticipantId(10), bad, PublishPolicy::default())
                .await,
            Err(OfferError::Sfu(SfuError::InvalidSdp(_)))
        ));
    }
    assert!(matches!(
        sfu.answer(ParticipantId(10), "garbage".into()).await,
        Err(SfuError::InvalidSdp(_))
    ));
    assert!(matches!(
        sfu.candidate(ParticipantId(10), "candidate:garbage".into())
            .await,
        Err(SfuError::InvalidCandidate)
    ));
    sfu.candidate(
        ParticipantId(10),
        "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host".into(),
    )
    .await
    .expect("valid candidate");
    assert!(matches!(
        sfu.offer(ParticipantId(99), "v=0".into(), PublishPolicy::default())
            .await,
        Err(OfferError::Sfu(
            SfuError::InvalidSdp(_) | SfuError::UnknownParticipant
        ))
    ));
    let (tx, _rx2) = tokio::sync::mpsc::channel(8);
    assert!(matches!(
        sfu.join(RoomId(1), ParticipantId(10), tx).await,
        Err(SfuError::AlreadyJoined)
    ));
    sfu.leave(ParticipantId(10)).await;

    // Every garbage datagram is dropped and counted (datagrams and commands are processed in
    // no fixed order, so wait a little), and none stopped the loop.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut dropped = 0.0;
    while tokio::time::Instant::now() < deadline {
        dropped = metric(&registry, "consultroom_sfu_datagrams_dropped_total");
        if dropped >= 35.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dropped >= 35.0, "dropped {dropped}");

    // A valid session afterwards still works end to end.
    let alice = SfuClient::connect(&sfu, RoomId(5), ParticipantId(1)).await;
    let bob = SfuClient::connect(&sfu, RoomId(5), ParticipantId(2)).await;
    assert!(alice.peer.wait_connected(WAIT).await, "alice connects");
    assert!(bob.peer.wait_connected(WAIT).await, "bob connects");
    assert!(bob.peer.wait_packets(Kind::Video, 10, WAIT).await >= 10);
    assert!(alice.peer.wait_packets(Kind::Audio, 10, WAIT).await >= 10);
    alice.close().await;
    bob.close().await;
    sfu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_peer_is_reported_and_its_tracks_go_inactive() {
    let (sfu, registry) = start_sfu().await;
    let alice = SfuClient::connect(&sfu, RoomId(7), ParticipantId(1)).await;
    let bob = SfuClient::connect(&sfu, RoomId(7), ParticipantId(2)).await;
    assert!(alice.wait_sfu_connected(WAIT).await, "alice connected");
    assert!(bob.wait_sfu_connected(WAIT).await, "bob connected");
    assert!(bob.peer.wait_packets(Kind::Video, 5, WAIT).await >= 5);
    let offers_before = bob.status().offers_answered;
    assert!(offers_before >= 1, "bob was offered alice's tracks");

    // Alice goes away without `leave`: closing her peer connection (DTLS close), or at worst
    // ICE consent expiry (15 s), must end her session on the SFU.
    alice.peer.close().await;
    let status = alice
        .wait_status(Duration::from_secs(25), |s| s.disconnected)
        .await;
    assert!(status.disconnected, "sfu reports alice disconnected");

    // Bob is renegotiated: alice's m-lines become inactive, and his answer is accepted.
    let status = bob
        .wait_status(WAIT, |s| s.offers_answered > offers_before)
        .await;
    assert!(status.answer_error.is_none(), "{:?}", status.answer_error);
    assert!(
        status.offers_answered > offers_before,
        "bob got no new offer"
    );
    assert!(
        status.last_offer.contains("a=inactive"),
        "alice's m-lines are inactive: {}",
        status.last_offer
    );
    assert_eq!(metric(&registry, "consultroom_sfu_participants"), 1.0);
    bob.close().await;
    sfu.shutdown().await;
}
