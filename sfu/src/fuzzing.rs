//! Fuzzing façade: thin `pub` entry points over the crate-private code that handles untrusted
//! bytes and text, for the cargo-fuzz targets in `fuzz/` and the corpus replay in
//! `sfu/tests/fuzz_corpus.rs`. Not part of the SFU's API (hidden from the docs).
//!
//! Every function takes arbitrary input, runs it through the same code the media loop and
//! [`crate::Sfu`] run (the size caps, [`crate::routing`], `media_loop::is_rtp`, the `Rtc` built by
//! `media_loop::build_rtc`), and checks a few invariants with `assert!`: a panic here is a
//! finding, either in our code or in str0m on our path.
//!
//! Where the real code is a method of the media loop (which owns a socket), the façade repeats
//! its few steps over the same parts; those places say which function they mirror, and must be
//! kept in step with it:
//! - [`route_datagram`] mirrors `MediaLoop::handle_recv` + `handle_datagram` + `drive`;
//! - [`apply_offer`] mirrors [`crate::Sfu::offer`] + `MediaLoop::accept_offer`;
//! - [`apply_answer`] mirrors [`crate::Sfu::answer`] + `MediaLoop::negotiate`/`accept_answer`;
//! - [`apply_candidate`] mirrors [`crate::Sfu::candidate`] + `MediaLoop::add_candidate`.
//!
//! [`tcp_framing`] calls the ICE-TCP (RFC 4571) decoder directly.
//!
//! What is not here, because it is not ours: RTP/RTCP parsing, SRTP, DTLS and STUN integrity are
//! str0m's. [`route_datagram`] and [`media_datagram`] still feed every datagram into a real
//! (not yet connected) `Rtc`, which parses RTP headers with the negotiated extension map, STUN
//! and DTLS records exactly as on the server; RTCP and RTP payloads are only parsed by str0m
//! after SRTP, which an unconnected `Rtc` does not have, so they are out of reach here.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::media::{Direction, MediaKind};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, IceCreds, Input, Output, Rtc};

use crate::media_loop::{MAX_DATAGRAM, build_rtc, is_rtp};
use crate::routing::{RoutingTable, stun_local_ufrag};
use crate::tcp::framing::{FrameDecoder, MAX_FRAME, encode};
use crate::{MAX_CANDIDATE_BYTES, ParticipantId, PublishPolicy, TrackSource, checked_sdp};

/// Local ICE ufrag of the fixture participant: seed STUN requests name it in USERNAME.
pub const FUZZ_UFRAG: &str = "fuzzufrag";
/// Local ICE password of the fixture participant: seed STUN requests are signed with it.
pub const FUZZ_PWD: &str = "fuzzpassword0123456789ab";
/// The SFU's address in the fixtures (the host candidate it announces).
pub const SFU_ADDR: &str = "127.0.0.1:40000";
/// The address the fixture participant's datagrams come from.
pub const PEER_ADDR: &str = "127.0.0.1:50000";

/// Most outputs drained from one `Rtc` after one input (the media loop drains until a timeout;
/// a bound keeps a fuzz input from spinning forever if str0m ever would).
const MAX_OUTPUTS: usize = 1000;

/// A realistic client offer (audio + video, Chromium-style extensions), used to put a fixture
/// `Rtc` in the state it has after `Sfu::offer`, so that RTP header extensions are negotiated.
pub const BASE_OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=extmap-allow-mixed\r\n\
a=msid-semantic: WMS s1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:cliU\r\n\
a=ice-pwd:clientpassword0123456789\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=sendrecv\r\n\
a=msid:s1 a1\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=ssrc:1001 cname:fuzz\r\n\
a=ssrc:1001 msid:s1 a1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:cliU\r\n\
a=ice-pwd:clientpassword0123456789\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:13 urn:3gpp:video-orientation\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n\
a=sendrecv\r\n\
a=msid:s1 v1\r\n\
a=rtcp-mux\r\n\
a=rtcp-rsize\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 goog-remb\r\n\
a=rtcp-fb:96 transport-cc\r\n\
a=rtcp-fb:96 ccm fir\r\n\
a=rtcp-fb:96 nack\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=ssrc-group:FID 2002 2003\r\n\
a=ssrc:2002 cname:fuzz\r\n\
a=ssrc:2002 msid:s1 v1\r\n\
a=ssrc:2003 cname:fuzz\r\n\
a=ssrc:2003 msid:s1 v1\r\n";

/// The process-wide crypto provider and DTLS certificate, as `Sfu::start` makes them once.
fn crypto_and_cert() -> &'static (Arc<CryptoProvider>, DtlsCert) {
    static CRYPTO: OnceLock<(Arc<CryptoProvider>, DtlsCert)> = OnceLock::new();
    CRYPTO.get_or_init(|| {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .expect("the crypto provider generates a DTLS certificate");
        (crypto, cert)
    })
}

fn sfu_addr() -> SocketAddr {
    SFU_ADDR.parse().expect("constant address")
}

fn peer_addr() -> SocketAddr {
    PEER_ADDR.parse().expect("constant address")
}

/// A fresh `Rtc` built by the SFU's own `build_rtc`, with the given local credentials.
fn fixture_rtc(creds: IceCreds) -> Rtc {
    let (crypto, cert) = crypto_and_cert();
    build_rtc(
        crypto.clone(),
        cert.clone(),
        creds,
        &[sfu_addr()],
        Instant::now(),
    )
}

fn fuzz_creds() -> IceCreds {
    IceCreds {
        ufrag: FUZZ_UFRAG.to_owned(),
        pass: FUZZ_PWD.to_owned(),
    }
}

/// Polls `rtc` like `MediaLoop::drive`: until it asks for a timeout (bounded), then feeds one
/// timeout so timer-driven paths see the state the input left.
fn drain(rtc: &mut Rtc) {
    let mut timeout_fed = false;
    for _ in 0..MAX_OUTPUTS {
        if !rtc.is_alive() {
            return;
        }
        match rtc.poll_output() {
            Ok(Output::Transmit(_)) | Ok(Output::Event(_)) => {}
            Ok(Output::Timeout(at)) => {
                if timeout_fed {
                    return;
                }
                timeout_fed = true;
                let now = at.max(Instant::now()) + Duration::from_millis(1);
                if rtc.handle_input(Input::Timeout(now)).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// What the SFU's demultiplexing made of one datagram (see [`classify_datagram`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatagramClass {
    /// Over the 1500-byte cap: dropped before any parsing.
    pub oversize: bool,
    /// str0m's RFC 7983 demultiplexer (and STUN parser) accepted it.
    pub demuxed: bool,
    /// The local ufrag our own STUN USERNAME parser found (`routing::stun_local_ufrag`).
    pub local_ufrag: Option<String>,
    /// Our outgoing-traffic classifier calls it RTP media (`media_loop::is_rtp`).
    pub is_rtp: bool,
}

/// The pure classification steps of the media loop on one datagram, with their invariants.
pub fn classify_datagram(data: &[u8]) -> DatagramClass {
    let oversize = data.len() > MAX_DATAGRAM;
    let demuxed = !oversize && DatagramRecv::try_from(data).is_ok();
    let local_ufrag = stun_local_ufrag(data).map(|ufrag| {
        assert!(!ufrag.is_empty(), "empty ufrag returned");
        assert!(!ufrag.contains(':'), "ufrag must stop at the first colon");
        assert!(
            data.len() > 20 + 4 + ufrag.len(),
            "ufrag longer than the message"
        );
        ufrag.to_owned()
    });
    let rtp = is_rtp(data);
    if rtp {
        // RTP version 2 and not an RTCP packet type (RFC 5761 §4).
        assert!(data.len() >= 2 && data[0] >> 6 == 2);
        assert!(!(64..96).contains(&(data[1] & 0x7F)));
    }
    DatagramClass {
        oversize,
        demuxed,
        local_ufrag,
        is_rtp: rtp,
    }
}

/// Where [`route_datagram`] delivered a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// Dropped before routing (over the size cap, or not STUN/DTLS/RTP/RTCP).
    Dropped,
    /// Unknown source, and no STUN USERNAME naming a participant whose `Rtc` verifies it.
    Unroutable,
    /// Delivered to this participant's `Rtc`.
    To(ParticipantId),
}

/// Two fixture participants as the media loop holds them: a routing table with their ufrags
/// and one `Rtc` each (participant 1 has [`FUZZ_UFRAG`]/[`FUZZ_PWD`]; participant 2 random
/// credentials, has accepted [`BASE_OFFER`] and has [`PEER_ADDR`] learnt). An `Rtc` is built
/// only when a datagram reaches it, so inputs that routing drops cost no `Rtc`.
pub struct RoutingFixture {
    routing: RoutingTable,
    peers: Vec<Slot>,
}

struct Slot {
    id: ParticipantId,
    creds: IceCreds,
    negotiated: bool,
    rtc: Option<Rtc>,
}

impl Default for RoutingFixture {
    fn default() -> Self {
        Self::new()
    }
}

impl RoutingFixture {
    /// Builds the fixture (no `Rtc` yet).
    pub fn new() -> RoutingFixture {
        let mut routing = RoutingTable::default();
        let one = ParticipantId(1);
        let two = ParticipantId(2);
        let creds_two = IceCreds::new();
        routing.add_ufrag(FUZZ_UFRAG.to_owned(), one);
        routing.add_ufrag(creds_two.ufrag.clone(), two);
        routing.learn(peer_addr(), two);
        RoutingFixture {
            routing,
            peers: vec![
                Slot {
                    id: one,
                    creds: fuzz_creds(),
                    negotiated: false,
                    rtc: None,
                },
                Slot {
                    id: two,
                    creds: creds_two,
                    negotiated: true,
                    rtc: None,
                },
            ],
        }
    }

    fn rtc(&mut self, p: ParticipantId) -> Option<&mut Rtc> {
        let slot = self.peers.iter_mut().find(|slot| slot.id == p)?;
        if slot.rtc.is_none() {
            let mut rtc = fixture_rtc(slot.creds.clone());
            if slot.negotiated {
                let offer = SdpOffer::from_sdp_string(BASE_OFFER).expect("BASE_OFFER parses");
                rtc.sdp_api()
                    .accept_offer(offer)
                    .expect("BASE_OFFER is accepted");
            }
            slot.rtc = Some(rtc);
        }
        slot.rtc.as_mut()
    }

    /// Routes one datagram from `source` like `MediaLoop::handle_recv`/`handle_datagram`, feeds
    /// it to the chosen `Rtc` and drains that `Rtc` like `MediaLoop::drive`.
    pub fn route(&mut self, source: SocketAddr, data: &[u8]) -> Routed {
        if data.len() > MAX_DATAGRAM {
            return Routed::Dropped;
        }
        let Ok(contents) = DatagramRecv::try_from(data) else {
            return Routed::Dropped;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: sfu_addr(),
                contents,
            },
        );
        let participant = match self.routing.by_addr(&source) {
            Some(p) => p,
            None => {
                let claimed = stun_local_ufrag(data)
                    .and_then(|ufrag| self.routing.by_ufrag(ufrag))
                    .filter(|p| self.rtc(*p).is_some_and(|rtc| rtc.accepts(&input)));
                let Some(p) = claimed else {
                    return Routed::Unroutable;
                };
                self.routing.learn(source, p);
                p
            }
        };
        let Some(rtc) = self.rtc(participant) else {
            return Routed::Unroutable;
        };
        // Errors are logged and ignored by the media loop; the `Rtc` must stay usable.
        let _ = rtc.handle_input(input);
        drain(rtc);
        Routed::To(participant)
    }
}

/// The datagram-routing fuzz entry point: classification, then routing from an unknown source
/// (only a STUN request signed for participant 1 may claim it; it then goes into that `Rtc`).
/// The learnt-address path is [`media_datagram`]'s.
pub fn route_datagram(data: &[u8]) -> Routed {
    let class = classify_datagram(data);
    let mut fixture = RoutingFixture::new();
    let unknown: SocketAddr = "127.0.0.1:60000".parse().expect("constant address");
    let routed = fixture.route(unknown, data);
    match routed {
        Routed::To(p) => {
            // Only a STUN message naming participant 1's ufrag can claim an unknown 4-tuple.
            assert_eq!(p, ParticipantId(1));
            assert_eq!(class.local_ufrag.as_deref(), Some(FUZZ_UFRAG));
            assert_eq!(fixture.routing.by_addr(&unknown), Some(p));
        }
        Routed::Unroutable => assert_eq!(fixture.routing.by_addr(&unknown), None),
        Routed::Dropped => assert!(class.oversize || !class.demuxed),
    }
    routed
}

/// Drives the routing table with operations decoded from `data` (3 bytes each: operation,
/// address, participant) and checks its invariants after each: at most 8 learnt addresses per
/// participant, nothing left of a removed participant, ufrags map to their owner.
pub fn routing_ops(data: &[u8]) {
    const ADDRS: u16 = 32;
    const PARTICIPANTS: u64 = 4;
    let addr = |i: u8| SocketAddr::from(([127, 0, 0, 1], 1000 + u16::from(i) % ADDRS));
    let mut table = RoutingTable::default();
    for chunk in data.chunks_exact(3).take(512) {
        let p = ParticipantId(u64::from(chunk[2]) % PARTICIPANTS);
        match chunk[0] % 3 {
            0 => table.learn(addr(chunk[1]), p),
            1 => {
                table.remove(p);
                for i in 0..ADDRS as u8 {
                    assert_ne!(
                        table.by_addr(&addr(i)),
                        Some(p),
                        "removed peer still routed"
                    );
                }
                assert_eq!(table.by_ufrag(&format!("u{}", p.0)), None);
            }
            _ => table.add_ufrag(format!("u{}", p.0), p),
        }
        // Only `p` changed: its learnt addresses stay bounded, its ufrag maps to it.
        let count = (0..ADDRS as u8)
            .filter(|i| table.by_addr(&addr(*i)) == Some(p))
            .count();
        assert!(count <= 8, "participant {p:?} has {count} learnt addresses");
        if let Some(owner) = table.by_ufrag(&format!("u{}", p.0)) {
            assert_eq!(owner, p);
        }
    }
}

/// What [`apply_offer`] did with an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferOutcome {
    /// Refused before parsing (over [`crate::MAX_SDP_BYTES`]).
    TooLarge,
    /// Refused by the publish policy before parsing (it sends on the screen m-line "2").
    Forbidden(String),
    /// str0m could not parse it (its error).
    Unparsable(String),
    /// Parsed but the `Rtc` refused it (its error).
    Refused(String),
    /// Accepted; the SDP answer.
    Answer(String),
}

/// The SDP offer path: `Sfu::offer`'s size check, publish-policy check and parse, then `accept_offer` into a fresh
/// `Rtc` built like the SFU's. A refused first offer that killed the `Rtc` is retried on a fresh
/// one (as `accept_offer` does) with [`BASE_OFFER`], which must then succeed; an accepted one
/// is offered a second time (renegotiation), and its answer must parse again.
pub fn apply_offer(sdp: &str) -> OfferOutcome {
    let Ok(checked) = checked_sdp(sdp) else {
        assert!(
            over_caps(sdp),
            "checked_sdp refused an SDP within every cap"
        );
        return OfferOutcome::TooLarge;
    };
    // `Sfu::offer` reads the text before str0m does: a patient whose organisation
    // forbids screen share, declaring mid "2" a screen (the seeds' camera is mid "1").
    let policy = PublishPolicy {
        sources: vec![
            ("2".to_owned(), TrackSource::Screen),
            ("0".to_owned(), TrackSource::Microphone),
        ],
        allow_screen: false,
    };
    if let Err(e) = crate::policy::check(checked, &policy) {
        return OfferOutcome::Forbidden(e.to_string());
    }
    let bundled = crate::bundle::bundled_ports(checked);
    let checked: &str = &bundled;
    let offer = match SdpOffer::from_sdp_string(checked) {
        Ok(offer) => offer,
        Err(e) => return OfferOutcome::Unparsable(e.to_string()),
    };
    let mut rtc = fixture_rtc(IceCreds::new());
    match rtc.sdp_api().accept_offer(offer) {
        Ok(answer) => {
            let answer = answer.to_sdp_string();
            drain(&mut rtc);
            // The client re-offers the same thing (e.g. after a glare): must not panic.
            if let Ok(again) = SdpOffer::from_sdp_string(checked) {
                let _ = rtc.sdp_api().accept_offer(again);
                drain(&mut rtc);
            }
            OfferOutcome::Answer(answer)
        }
        Err(e) => {
            if !rtc.is_alive() {
                rtc = fixture_rtc(IceCreds::new());
            }
            drain(&mut rtc);
            OfferOutcome::Refused(e.to_string())
        }
    }
}

/// Placeholder for the server-chosen mid of the new m-line in [`apply_answer`] inputs.
pub const NEW_MID: &str = "@MID@";

/// What [`apply_answer`] did with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerOutcome {
    /// Refused before parsing (over [`crate::MAX_SDP_BYTES`]).
    TooLarge,
    /// str0m could not parse it (its error).
    Unparsable(String),
    /// Parsed but not accepted for the server's pending offer (its error).
    Refused(String),
    /// Accepted.
    Accepted,
}

/// The SDP answer path: a fixture participant that has offered [`BASE_OFFER`] gets a server
/// offer adding a send-only video m-line (as `MediaLoop::negotiate` does for a new track), and
/// `sdp` is applied as the client's answer (`Sfu::answer`'s size check and parse, then
/// `accept_answer`). str0m picks the new m-line's mid at random, so every [`NEW_MID`] in `sdp`
/// is replaced by it first (the size check sees the text as given).
pub fn apply_answer(sdp: &str) -> AnswerOutcome {
    let Ok(checked) = checked_sdp(sdp) else {
        return AnswerOutcome::TooLarge;
    };
    let mut rtc = fixture_rtc(IceCreds::new());
    let offer = SdpOffer::from_sdp_string(BASE_OFFER).expect("BASE_OFFER parses");
    rtc.sdp_api()
        .accept_offer(offer)
        .expect("BASE_OFFER is accepted");
    let mut api = rtc.sdp_api();
    let mid = api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        Some("participant-9".to_owned()),
        None,
        None,
    );
    let (_offer, pending) = api.apply().expect("adding a track needs an offer");
    let text = checked.replace(NEW_MID, &mid.to_string());
    let answer = match SdpAnswer::from_sdp_string(&crate::bundle::bundled_ports(&text)) {
        Ok(answer) => answer,
        Err(e) => return AnswerOutcome::Unparsable(e.to_string()),
    };
    let outcome = match rtc.sdp_api().accept_answer(pending, answer) {
        Ok(()) => AnswerOutcome::Accepted,
        Err(e) => AnswerOutcome::Refused(e.to_string()),
    };
    drain(&mut rtc);
    outcome
}

/// The trickled-candidate path: `Sfu::candidate`'s trimming, size cap and parse, then
/// `add_remote_candidate` on a fixture participant that has offered [`BASE_OFFER`].
/// Returns whether the candidate was accepted.
pub fn apply_candidate(candidate: &str) -> bool {
    let line = candidate.trim();
    let line = line.strip_prefix("a=").unwrap_or(line);
    if line.len() > MAX_CANDIDATE_BYTES {
        return false;
    }
    if line.is_empty() {
        return true;
    }
    let Ok(parsed) = Candidate::from_sdp_string(line) else {
        return false;
    };
    let mut rtc = fixture_rtc(IceCreds::new());
    let offer = SdpOffer::from_sdp_string(BASE_OFFER).expect("BASE_OFFER parses");
    rtc.sdp_api()
        .accept_offer(offer)
        .expect("BASE_OFFER is accepted");
    rtc.add_remote_candidate(parsed);
    drain(&mut rtc);
    true
}

/// The RTP/RTCP (and learnt-address) fuzz entry point. Our own RTP handling is only
/// classification ([`classify_datagram`]); the datagram then goes, as from a learnt address,
/// into an `Rtc` that has accepted [`BASE_OFFER`]: str0m parses RTP headers with the
/// negotiated extension map before it looks for SRTP keys, and STUN and DTLS records as on the
/// server. Returns whether str0m's demultiplexer took it.
pub fn media_datagram(data: &[u8]) -> bool {
    let class = classify_datagram(data);
    if class.oversize || !class.demuxed {
        return false;
    }
    let mut fixture = RoutingFixture::new();
    let routed = fixture.route(peer_addr(), data);
    assert_eq!(routed, Routed::To(ParticipantId(2)));
    true
}

/// The ICE-TCP (RFC 4571) stream decoder on an arbitrary byte stream, fed whole and in chunks
/// whose sizes (1 to 64 bytes) come from the data: both must give the same frames and the same
/// error; every frame is 1 to 1500 bytes and survives `encode` + decode. Returns the frame count.
pub fn tcp_framing(data: &[u8]) -> usize {
    let mut whole = FrameDecoder::default();
    let mut frames = Vec::new();
    let whole_result = whole.push(data, &mut frames);

    let mut chunked = FrameDecoder::default();
    let mut chunked_frames = Vec::new();
    let mut chunked_result = Ok(());
    let mut rest = data;
    while !rest.is_empty() && chunked_result.is_ok() {
        let n = (usize::from(rest[0] % 64) + 1).min(rest.len());
        chunked_result = chunked.push(&rest[..n], &mut chunked_frames);
        rest = &rest[n..];
    }
    assert_eq!(whole_result, chunked_result);
    assert_eq!(frames, chunked_frames);

    for frame in &frames {
        assert!(!frame.is_empty() && frame.len() <= MAX_FRAME);
        let framed = encode(frame).expect("a decoded frame can be framed again");
        let mut decoder = FrameDecoder::default();
        let mut again = Vec::new();
        decoder
            .push(&framed, &mut again)
            .expect("a re-framed frame decodes");
        assert_eq!(again.as_slice(), std::slice::from_ref(frame));
    }
    frames.len()
}

/// Whether `sdp` is over one of the caps `checked_sdp` enforces (size, lines, m-lines).
fn over_caps(sdp: &str) -> bool {
    sdp.len() > crate::MAX_SDP_BYTES || crate::over_line_caps(sdp)
}
