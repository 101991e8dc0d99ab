//! Replays the committed `signalling_frame` fuzz corpus (`fuzz/corpus/signalling_frame/`: the
//! examples of `docs/protocol.md` and hostile frames) through `decode_client_frame` with the
//! same checks as the cargo-fuzz target (`fuzz/fuzz_targets/signalling_frame.rs`): no panic,
//! a time bound per input, request ids capped, and every decoded message survives a
//! `serde_json` round trip.

use std::path::Path;
use std::time::{Duration, Instant};

use consultroom_signalling::protocol::{ClientFrame, MAX_REQUEST_ID, decode_client_frame};

/// Per-input bound (unoptimised build, shared machine).
const PER_INPUT: Duration = Duration::from_millis(100);

/// The fuzz target's body; keep in step with `fuzz/fuzz_targets/signalling_frame.rs`.
fn check(data: &[u8]) {
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
}

#[test]
fn signalling_frame_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/signalling_frame");
    let mut count = 0;
    let mut decoded = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("readable corpus entry").path();
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path).expect("readable corpus file");
        let started = Instant::now();
        let result = std::panic::catch_unwind(|| check(&data));
        let took = started.elapsed();
        assert!(result.is_ok(), "{} panicked", path.display());
        assert!(took < PER_INPUT, "{} took {took:?}", path.display());
        count += 1;
        if decode_client_frame(&String::from_utf8_lossy(&data)).is_ok() {
            decoded += 1;
        }
    }
    assert!(
        count >= 20,
        "only {count} corpus files in {}",
        dir.display()
    );
    // Every client example of docs/protocol.md is in the corpus and decodes.
    assert!(decoded >= 8, "only {decoded} corpus frames decode");
}
