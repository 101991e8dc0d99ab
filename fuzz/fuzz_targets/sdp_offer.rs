//! A client's SDP offer: our size cap, str0m's parser, and `accept_offer` into an `Rtc` built
//! by the SFU's own `build_rtc`. SDP reaches us inside a JSON string, so it is always UTF-8;
//! other bytes are the signalling decoder's business (`signalling_frame`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sdp) = std::str::from_utf8(data) {
        consultroom_sfu::fuzzing::apply_offer(sdp);
    }
});
