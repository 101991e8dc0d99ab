#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and fails on any crash, leak,
# timeout or out-of-memory.
#
#   scripts/fuzz.sh [seconds-per-target]      (default 30; FUZZ_TARGETS="a b" to pick targets)
#
# Needs a nightly toolchain (libFuzzer's sanitizer flags). Without one it says so and exits 1,
# or 0 when FUZZ_OPTIONAL=1 (for CI where fuzzing is optional). Installs cargo-fuzz if missing.
# Each target starts from its committed seeds (fuzz/corpus/<target>/, replayed on stable by
# sfu/tests/fuzz_corpus.rs and signalling/tests/fuzz_corpus.rs) and writes what it learns to a
# scratch copy, so runs never dirty the work tree. A crash leaves its input in
# fuzz/artifacts/<target>/: add it to fuzz/corpus/<target>/ with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: $0 [seconds-per-target]" >&2
    exit 2
fi

skip() {
    echo "fuzz: $1" >&2
    if [ "${FUZZ_OPTIONAL:-0}" = 1 ]; then
        echo "fuzz: skipped (FUZZ_OPTIONAL=1)" >&2
        exit 0
    fi
    exit 1
}

command -v rustup >/dev/null || skip "rustup not found; fuzzing needs a nightly toolchain"
rustup run nightly rustc --version >/dev/null 2>&1 ||
    skip "no nightly toolchain (install: rustup toolchain install nightly)"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || skip "cargo install cargo-fuzz failed"
fi

all_targets="stun_demux routing_table rtp_rtcp tcp_framing sdp_offer sdp_answer ice_candidate signalling_frame"
targets="${FUZZ_TARGETS:-$all_targets}"

# Largest input per target: datagrams just over the 1500-byte cap, text just over the 64 KiB
# caps (bigger seeds are truncated by libFuzzer, which still exercises the refusal).
max_len() {
    case "$1" in
        stun_demux | rtp_rtcp) echo 1600 ;;
        tcp_framing) echo 8192 ;;
        routing_table) echo 1536 ;;
        ice_candidate) echo 2048 ;;
        *) echo 70000 ;;
    esac
}

cd fuzz
echo "fuzz: building targets (nightly, release + debug assertions, ASan)" >&2
cargo +nightly fuzz build >&2

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in $targets; do
    seeds="corpus/$t"
    [ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; failed+=("$t"); continue; }
    work="$scratch/$t"
    mkdir -p "$work" "artifacts/$t"
    log="$scratch/$t.log"
    echo "fuzz: $t for ${seconds}s" >&2
    # -timeout: one input over 10 s is a hang; -rss_limit_mb: memory blow-ups are findings.
    if cargo +nightly fuzz run "$t" "$work" "$seeds" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -max_len="$(max_len "$t")" -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
        execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
        rate=$(grep -o 'exec/s: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
        cov=$(grep -o 'cov: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
        echo "fuzz: $t ok: ${execs:-?} runs, ${rate:-?} exec/s, coverage ${cov:-?}" >&2
    else
        echo "fuzz: $t FAILED; last lines of its log:" >&2
        tail -n 40 "$log" >&2
        ls -1 "artifacts/$t" >&2 || true
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes or errors in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: all targets ran ${seconds}s without a crash" >&2
