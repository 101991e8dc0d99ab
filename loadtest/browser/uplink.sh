#!/usr/bin/env bash
# Publisher uplink under CPU load (see uplink-under-load.mjs): Chromium + demo server in a lo-only
# network namespace, with one busy loop per core running beside them. Must run as root. Builds
# nothing:   cargo build -p consultroom && loadtest/browser/uplink.sh
# Environment: EXP_RUNS (default 3), EXP_SECONDS (default 20), CONSULTROOM_BIN.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../../tests/e2e/lib/server.sh
source tests/e2e/lib/server.sh

cr_npm_ci tests/e2e
cr_start_server "$ROOT"
busy=()
for _ in $(seq "$(nproc)"); do
  timeout 600 sh -c 'while :; do :; done' &
  busy+=("$!")
done
trap 'kill "${busy[@]}" 2>/dev/null || true; cr_cleanup' EXIT
timeout --kill-after=10 600 ip netns exec "$NETNS" node loadtest/browser/uplink-under-load.mjs
