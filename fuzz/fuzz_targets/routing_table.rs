//! The routing table under arbitrary learn/remove/add-ufrag sequences, with its invariants
//! (bounded learnt addresses per participant, nothing left after removal).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    consultroom_sfu::fuzzing::routing_ops(data);
});
