#!/usr/bin/env bash
# Browser end-to-end tests: the demo server and Chromium in a lo-only network namespace, so all
# WebRTC media stays on 127.0.0.1 (STACK.md §4.3–4.4). Must run as root. Builds nothing:
#   cargo build -p consultroom && tests/e2e/run.sh [test files...]
# Environment: CONSULTROOM_BIN (default target/debug/consultroom), E2E_DATABASE_URL (optional,
# e.g. postgres://postgres@localhost/e2e_x?host=/var/run/postgresql — the namespace cannot reach TCP
# 127.0.0.1:5432 of the host, the unix socket works), E2E_TIMEOUT (seconds, default 1500),
# E2E_ARTIFACTS (screenshots on failure), KEEP_E2E_TMP=1 (keep server data and logs).
# Every test runs with coturn in the namespace (the server hands out TURN credentials) and ICE-TCP
# on; connectivity.test.mjs forces relay-only and TCP-only (needs `turnserver` and `nft`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=lib/server.sh
source tests/e2e/lib/server.sh

cr_npm_ci tests/e2e
CR_WITH_TURN=1 CR_WITH_MEDIA_TCP=1 cr_start_server "$ROOT"

# Every test file, or only those named on the command line (run.sh tests/e2e/csrf.test.mjs).
if [ $# -gt 0 ]; then files=("$@"); else files=(tests/e2e/*.test.mjs); fi
# `timeout` kills the whole test run (browsers included) if anything hangs.
timeout --kill-after=10 "${E2E_TIMEOUT:-1500}" \
  ip netns exec "$NETNS" node --test --test-concurrency=1 "${files[@]}"
