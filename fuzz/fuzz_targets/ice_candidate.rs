//! A trickled ICE candidate line: our trimming and size cap, str0m's candidate parser, and
//! `add_remote_candidate` on a negotiated `Rtc`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        consultroom_sfu::fuzzing::apply_candidate(line);
    }
});
