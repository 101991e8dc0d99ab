//! Hostile SDP: every prefix and byte-mangled copy of a real offer must produce an error or an
//! answer, never a panic, both when parsed and when applied to an `Rtc`.

use std::sync::Arc;
use std::time::Instant;

use str0m::RtcConfig;
use str0m::change::SdpOffer;

const OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=sendrecv\r\n\
a=msid:- a1\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=ssrc:1001 cname:x\r\n\
a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\n\
c=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtcp-fb:96 nack pli\r\n\
a=ssrc:1002 cname:x\r\n";

fn try_offer(sdp: &str, crypto: &Arc<str0m::config::CryptoProvider>) {
    let Ok(offer) = SdpOffer::from_sdp_string(sdp) else {
        return;
    };
    let mut rtc = RtcConfig::new()
        .set_ice_lite(true)
        .set_crypto_provider(crypto.clone())
        .build(Instant::now());
    let _ = rtc.sdp_api().accept_offer(offer);
}

#[test]
fn the_sample_offer_is_accepted() {
    let crypto = Arc::new(str0m::crypto::from_feature_flags());
    let offer = SdpOffer::from_sdp_string(OFFER).expect("parses");
    let mut rtc = RtcConfig::new()
        .set_ice_lite(true)
        .set_crypto_provider(crypto)
        .build(Instant::now());
    let answer = rtc.sdp_api().accept_offer(offer).expect("accepted");
    assert!(answer.to_sdp_string().contains("a=ice-lite"));
}

#[test]
fn prefixes_and_mangled_offers_never_panic() {
    let crypto = Arc::new(str0m::crypto::from_feature_flags());
    // Every line-boundary prefix, and every 7th byte prefix.
    for (i, _) in OFFER.char_indices().filter(|(i, _)| i % 7 == 0) {
        try_offer(&OFFER[..i], &crypto);
    }
    for (i, _) in OFFER.match_indices("\r\n") {
        try_offer(&OFFER[..i], &crypto);
    }
    // Lines dropped one at a time.
    let lines: Vec<&str> = OFFER.split("\r\n").collect();
    for skip in 0..lines.len() {
        let sdp: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        try_offer(&sdp.join("\r\n"), &crypto);
    }
    // Numbers replaced by extremes, tokens by junk.
    for (from, to) in [
        ("111", "99999999999"),
        ("96", "-1"),
        ("9 UDP", "0 UDP"),
        ("48000/2", "0/0"),
        ("a=mid:1", "a=mid:0"),
        ("BUNDLE 0 1", "BUNDLE 0 1 2 3"),
        ("sha-256", "md5"),
        ("actpass", "bogus"),
        ("127.0.0.1", "999.1.1.1"),
        ("m=video", "m=bogus"),
        ("\r\n", "\n"),
    ] {
        try_offer(&OFFER.replace(from, to), &crypto);
    }
}

#[test]
fn offers_with_too_many_lines_or_m_lines_are_refused_before_parsing() {
    let many_ssrc = format!(
        "v=0\r\n{}",
        "a=ssrc:1 cname:x\r\n".repeat(crate::MAX_SDP_LINES)
    );
    assert!(many_ssrc.len() < crate::MAX_SDP_BYTES);
    assert!(crate::checked_sdp(&many_ssrc).is_err());
    let many_m = format!(
        "v=0\r\n{}",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n".repeat(crate::MAX_SDP_MEDIA + 1)
    );
    assert!(crate::checked_sdp(&many_m).is_err());
    // Repeated attributes in one section are capped well below the total.
    let one_section = format!(
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n{}",
        "a=ssrc:1 cname:x\r\n".repeat(crate::MAX_SDP_SECTION_LINES)
    );
    assert!(crate::checked_sdp(&one_section).is_err());
    let fine = format!("v=0\r\n{}", "a=x\r\n".repeat(100));
    assert!(crate::checked_sdp(&fine).is_ok());
    // A realistic Chromium re-offer (7 m-lines of 30–170 lines, ~680 lines) passes.
    let mut chromium_like = String::from("v=0\r\n");
    for lines in [31usize, 124, 28, 168, 28, 168, 126] {
        chromium_like.push_str("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n");
        chromium_like.push_str(&"a=rtcp-fb:96 nack\r\n".repeat(lines - 1));
    }
    assert!(crate::checked_sdp(&chromium_like).is_ok());
}
