//! Datagrams from a learnt address: our classification (`is_rtp`, the demultiplexer) and the
//! datagram fed into an `Rtc` that negotiated the SFU's codecs and extensions, as the media
//! loop's hot path does (str0m parses RTP headers and extensions before it looks for SRTP
//! keys, and handles STUN and DTLS records). RTCP bodies and RTP payloads are parsed only after
//! SRTP, inside str0m, and are not reached here.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    consultroom_sfu::fuzzing::media_datagram(data);
});
