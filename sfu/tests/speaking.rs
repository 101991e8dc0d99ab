//! Active speaker from real RFC 6464 audio levels (issue #11): two str0m talkers on 127.0.0.1
//! send Opus with the `ssrc-audio-level` header extension, one loud and one silent, then the
//! other way round; the SFU must name the loud one each time. (The bug this guards: str0m
//! reports levels as negative dBov and the detector took them as 0..127, so every packet,
//! silence included, counted as loudest and the lowest id always won.)

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use consultroom_sfu::{ParticipantId, PublishPolicy, RoomId, Sfu, SfuConfig, SfuEvent};
use str0m::change::SdpAnswer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Audio level of a talker (dBov: 0 is full scale, −127 silence).
const LOUD: i8 = -12;
const SILENT: i8 = -127;

/// A send-only Opus client that tags every packet with an audio level.
struct Talker {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    seq: u64,
    next_frame: Instant,
}

impl Talker {
    /// Joins `room` as `id` and offers one send-only audio m-line; `events` gets the SFU's.
    async fn join(
        sfu: &Sfu,
        room: RoomId,
        id: ParticipantId,
    ) -> (Talker, mpsc::Receiver<SfuEvent>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let local = socket.local_addr().expect("local addr");
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_opus(true, false)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").expect("host candidate"));
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().expect("an offer");
        let (tx, events) = mpsc::channel(64);
        sfu.join(room, id, tx).await.expect("join");
        let answer = sfu
            .offer(id, offer.to_sdp_string(), PublishPolicy::default())
            .await
            .expect("sfu answers");
        rtc.sdp_api()
            .accept_answer(
                pending,
                SdpAnswer::from_sdp_string(&answer).expect("answer"),
            )
            .expect("answer applies");
        let talker = Talker {
            rtc,
            socket,
            local,
            mid,
            seq: 0,
            next_frame: Instant::now(),
        };
        (talker, events)
    }

    /// Runs the session for `period`: network in and out, and a 20 ms Opus frame at `level`.
    async fn talk(&mut self, level: i8, period: Duration) {
        let end = Instant::now() + period;
        let mut buf = vec![0u8; 2000];
        while Instant::now() < end {
            let now = Instant::now();
            if now >= self.next_frame {
                self.send_frame(level, now);
                self.next_frame += Duration::from_millis(20);
            }
            let wake = self.drain().min(self.next_frame).min(end);
            let wait = wake.saturating_duration_since(Instant::now());
            if let Ok(Ok((n, source))) =
                tokio::time::timeout(wait, self.socket.recv_from(&mut buf)).await
                && let Ok(contents) = DatagramRecv::try_from(&buf[..n])
            {
                let input = Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: self.local,
                        contents,
                    },
                );
                if self.rtc.accepts(&input) {
                    self.rtc.handle_input(input).expect("input");
                }
            }
            self.rtc
                .handle_input(Input::Timeout(Instant::now()))
                .expect("timeout");
        }
    }

    fn send_frame(&mut self, level: i8, now: Instant) {
        let Some(writer) = self.rtc.writer(self.mid) else {
            return;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Opus)
            .map(|p| p.pt())
        else {
            return;
        };
        // An Opus-sized payload (its content does not matter to the SFU).
        let frame = vec![0xfc; 80];
        let rtp = MediaTime::from_millis(self.seq * 20);
        self.seq += 1;
        // Not connected yet: the write fails, which is fine (the next frame retries).
        let _ = writer
            .audio_level(level, level > SILENT)
            .write(pt, now, rtp, frame);
    }

    /// Sends what the session has queued; returns when it next wants a timeout.
    fn drain(&mut self) -> Instant {
        // Bounded: an `Rtc` yields a timeout after its queued output.
        for _ in 0..10_000 {
            match self.rtc.poll_output().expect("poll") {
                Output::Timeout(t) => return t,
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::IceConnectionStateChange(_)) | Output::Event(_) => {}
            }
        }
        Instant::now() + Duration::from_millis(1)
    }
}

/// The speakers named in `events` so far.
fn speakers(events: &mut mpsc::Receiver<SfuEvent>) -> Vec<ParticipantId> {
    let mut named = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let SfuEvent::Speaking { participant } = e {
            named.push(participant);
        }
    }
    named
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loud_talker_is_named_speaker_not_the_lowest_id() {
    let registry = prometheus::Registry::new();
    let config = SfuConfig {
        bind: "127.0.0.1:0".parse().expect("addr"),
        announce: vec!["127.0.0.1".parse().expect("ip")],
        loops: 1,
        tcp_bind: None,
    };
    let sfu = Sfu::start(config, &registry).await.expect("sfu starts");
    let room = RoomId(1);
    // The quiet one has the lower id: the old bug named it whatever the levels said.
    let (quiet_id, loud_id) = (ParticipantId(1), ParticipantId(2));
    let (mut a, mut a_events) = Talker::join(&sfu, room, quiet_id).await;
    let (mut b, mut b_events) = Talker::join(&sfu, room, loud_id).await;

    // Phase 1: b talks, a is silent. Both run at once (each drives its own session).
    let period = Duration::from_secs(3);
    tokio::join!(a.talk(SILENT, period), b.talk(LOUD, period));
    let named = speakers(&mut a_events);
    assert_eq!(
        named.last(),
        Some(&loud_id),
        "b is loud and a silent: b is the speaker (events to a: {named:?})"
    );
    assert!(
        !named.contains(&quiet_id),
        "the silent talker is never named: {named:?}"
    );
    assert_eq!(speakers(&mut b_events).last(), Some(&loud_id));

    // Phase 2: the other way round; a becomes the speaker.
    tokio::join!(a.talk(LOUD, period), b.talk(SILENT, period));
    let named = speakers(&mut b_events);
    assert_eq!(
        named.last(),
        Some(&quiet_id),
        "a talks now, b is silent: a is the speaker (events to b: {named:?})"
    );
    sfu.shutdown().await;
}
