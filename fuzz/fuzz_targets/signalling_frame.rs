//! A WebSocket text frame from a client: `decode_client_frame` on any text (WebSocket text is
//! UTF-8; other bytes are decoded lossily so they still reach the parser), and every decoded
//! message survives a `serde_json` round trip unchanged. Kept in step with
//! `signalling/tests/fuzz_corpus.rs`, which replays this target's corpus.
#![no_main]

use consultroom_signalling::protocol::{ClientFrame, MAX_REQUEST_ID, decode_client_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match decode_client_frame(&text) {
        Ok((id, msg)) => {
            assert!(id.as_ref().is_none_or(|id| id.len() <= MAX_REQUEST_ID));
            let frame = ClientFrame {
                id: id.clone(),
                msg,
            };
            let encoded = serde_json::to_string(&frame).expect("a decoded frame serializes");
            let (id2, msg2) = decode_client_frame(&encoded).expect("a re-encoded frame decodes");
            assert_eq!(id2, id);
            assert_eq!(msg2, frame.msg);
        }
        Err(e) => {
            assert!(e.id.as_ref().is_none_or(|id| id.len() <= MAX_REQUEST_ID));
        }
    }
});
