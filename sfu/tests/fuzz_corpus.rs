//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the same
//! `consultroom_sfu::fuzzing` entry points the cargo-fuzz targets call, on stable and in the
//! ordinary test run: every seed, hostile case (RELIABILITY.md A.1-A.3) and past crash input must
//! be handled without a panic and within a time bound.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use consultroom_sfu::fuzzing;

/// Per-input wall-clock bound. Unoptimised str0m needs tens of milliseconds to build an `Rtc`
/// and negotiate, and the test machine is shared, so the debug bound only catches runaway
/// (superlinear) inputs; release builds (and the fuzzers, `scripts/fuzz.sh`) hold 100 ms.
const PER_INPUT: Duration = if cfg!(debug_assertions) {
    Duration::from_millis(3000)
} else {
    Duration::from_millis(100)
};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
        .map(|entry| entry.expect("readable corpus entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let data = std::fs::read(&path).expect("readable corpus file");
            (path, data)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "corpus {} has only {} files",
        dir.display(),
        files.len()
    );
    files
}

/// Runs `f` on every file of `target`'s corpus; fails naming the file on a panic or overrun.
fn replay(target: &str, f: impl Fn(&[u8])) {
    // Warm-up: the first call generates the process-wide DTLS certificate.
    f(b"");
    let mut slow = Vec::new();
    for (path, data) in corpus(target) {
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&data)));
        let took = started.elapsed();
        assert!(result.is_ok(), "{} panicked", path.display());
        if took > PER_INPUT {
            slow.push(format!("{} took {took:?}", path.display()));
        }
    }
    assert!(slow.is_empty(), "inputs over {PER_INPUT:?}: {slow:#?}");
}

fn as_text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

#[test]
fn stun_demux_corpus() {
    replay("stun_demux", |data| {
        fuzzing::route_datagram(data);
    });
}

#[test]
fn rtp_rtcp_corpus() {
    replay("rtp_rtcp", |data| {
        fuzzing::media_datagram(data);
    });
}

#[test]
fn routing_table_corpus() {
    replay("routing_table", fuzzing::routing_ops);
}

#[test]
fn sdp_offer_corpus() {
    replay("sdp_offer", |data| {
        if let Some(sdp) = as_text(data) {
            fuzzing::apply_offer(sdp);
        }
    });
}

#[test]
fn sdp_answer_corpus() {
    replay("sdp_answer", |data| {
        if let Some(sdp) = as_text(data) {
            fuzzing::apply_answer(sdp);
        }
    });
}

#[test]
fn tcp_framing_corpus() {
    replay("tcp_framing", |data| {
        fuzzing::tcp_framing(data);
    });
}

#[test]
fn ice_candidate_corpus() {
    replay("ice_candidate", |data| {
        if let Some(line) = as_text(data) {
            fuzzing::apply_candidate(line);
        }
    });
}

/// The seeds mean what their names say: a correctly signed binding request reaches the
/// participant it names from an unknown address, a badly signed one does not, and the
/// hostile SDP cases are refused.
#[test]
fn seeds_are_what_they_claim() {
    let read = |target: &str, name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target)
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let routed = |name: &str| fuzzing::route_datagram(&read("stun_demux", name));
    let p1 = fuzzing::Routed::To(consultroom_sfu::ParticipantId(1));
    assert_eq!(routed("binding-request-chromium-valid"), p1);
    for name in [
        "binding-request-bad-integrity",
        "binding-request-unknown-ufrag",
        "binding-request-no-integrity",
        "attr-length-past-end",
        "header-length-past-end",
        "username-twice",
    ] {
        assert_ne!(routed(name), p1, "{name} was routed");
    }
    assert_eq!(routed("oversize-1501"), fuzzing::Routed::Dropped);
    assert_eq!(
        fuzzing::classify_datagram(&read("stun_demux", "binding-request-chromium-valid"))
            .local_ufrag
            .as_deref(),
        Some(fuzzing::FUZZ_UFRAG)
    );

    let offer = |name: &str| {
        let data = read("sdp_offer", name);
        fuzzing::apply_offer(std::str::from_utf8(&data).expect("utf-8 seed"))
    };
    for name in ["base-offer", "chromium-offer-simulcast", "webrtc-rs-offer"] {
        assert!(
            matches!(offer(name), fuzzing::OfferOutcome::Answer(_)),
            "{name} was not accepted"
        );
    }
    for name in [
        "hostile-1mib",
        "hostile-5000-mlines",
        "hostile-100kb-attribute",
    ] {
        assert_eq!(offer(name), fuzzing::OfferOutcome::TooLarge, "{name}");
    }
    for name in [
        "missing-fingerprint",
        "sdes-crypto-only",
        "missing-ice-ufrag",
    ] {
        assert!(
            !matches!(offer(name), fuzzing::OfferOutcome::Answer(_)),
            "{name} was accepted"
        );
    }
    assert!(matches!(
        offer("policy-screen-sendonly-forbidden"),
        fuzzing::OfferOutcome::Forbidden(_)
    ));
    assert!(matches!(
        offer("policy-screen-recvonly-allowed"),
        fuzzing::OfferOutcome::Answer(_)
    ));
    let answer = read("sdp_answer", "answer-three-mlines");
    let outcome = fuzzing::apply_answer(std::str::from_utf8(&answer).expect("utf-8 seed"));
    assert_eq!(outcome, fuzzing::AnswerOutcome::Accepted);
}
