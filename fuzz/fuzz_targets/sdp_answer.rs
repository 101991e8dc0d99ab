//! A client's SDP answer to a server renegotiation offer: our size cap, str0m's parser, and
//! `accept_answer` on the pending offer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sdp) = std::str::from_utf8(data) {
        consultroom_sfu::fuzzing::apply_answer(sdp);
    }
});
