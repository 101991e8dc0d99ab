//! ICE over TCP: the RFC 4571 stream decoder on any byte stream, whole and chunked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    consultroom_sfu::fuzzing::tcp_framing(data);
});
