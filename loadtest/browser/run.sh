#!/usr/bin/env bash
# Join benchmark (admit click → first decoded remote frame), Chromium + demo server in a lo-only
# network namespace. Must run as root. Builds nothing:
#   cargo build -p consultroom && loadtest/browser/run.sh             # debug build
#   cargo build --release -p consultroom && CONSULTROOM_BIN=target/release/consultroom loadtest/browser/run.sh
# Environment: BENCH_RUNS (default 20), BENCH_NO_WRITE=1 (don't touch docs/benchmarks.md),
# BENCH_TIMEOUT (seconds, default 600), CONSULTROOM_BIN, E2E_DATABASE_URL (see tests/e2e/run.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../../tests/e2e/lib/server.sh
source tests/e2e/lib/server.sh

cr_npm_ci tests/e2e   # the benchmark imports playwright-core through tests/e2e/lib/harness.mjs
cr_start_server "$ROOT"

timeout --kill-after=10 "${BENCH_TIMEOUT:-600}" \
  ip netns exec "$NETNS" node loadtest/browser/join-bench.mjs
