//! Datagram demultiplexing and routing on arbitrary bytes: the 1500-byte cap, str0m's RFC 7983
//! demultiplexer, our STUN USERNAME parser, the routing-table lookups, and the chosen `Rtc`
//! (integrity check for unknown sources, then `handle_input` and a drain).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    consultroom_sfu::fuzzing::route_datagram(data);
});
