#!/usr/bin/env bash
# Browser end-to-end tests: the demo server and Chromium in a lo-only network namespace, so all
# WebRTC media stays on 127.0.0.1 (STACK.md §4.3–4.4). Must run as root. Builds nothing:
#   cargo build -p consultroom && tests/e2e/run.sh [file.test.mjs ...]
# With file names (relative to tests/e2e/) only those files run; without, every *.test.mjs.
# Environment: CONSULTROOM_BIN (default target/debug/consultroom), E2E_DATABASE_URL (optional,
# e.g. postgres://postgres@localhost/e2e_x?host=/var/run/postgresql — the namespace cannot reach TCP
# 127.0.0.1:5432 of the host, the unix socket works), E2E_TIMEOUT (seconds, default 1500),
# E2E_ARTIFACTS (screenshots on failure), KEEP_E2E_TMP=1 (keep server data and logs).
# Every test runs with coturn in the namespace (the server hands out TURN credentials) and ICE-TCP
# on; connectivity.test.mjs forces relay-only and TCP-only (needs `turnserver` and `nft`). The
# server sends its mail to an SMTP sink in the namespace (aiosmtpd, tests/smtp; installed into
# tests/smtp/.venv by tests/smtp/setup.sh, which this script runs: cheap when up to date); tests
# read what arrived from $E2E_MAILDIR (lib/mailbox.mjs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=lib/server.sh
source tests/e2e/lib/server.sh

files=()
for f in "$@"; do files+=("tests/e2e/${f#tests/e2e/}"); done
[ ${#files[@]} -gt 0 ] || files=(tests/e2e/*.test.mjs)

cr_npm_ci tests/e2e
tests/smtp/setup.sh >/dev/null || cr_die "tests/smtp/setup.sh failed (the SMTP test sink)"
CR_WITH_TURN=1 CR_WITH_MEDIA_TCP=1 CR_WITH_SMTP=1 cr_start_server "$ROOT"

# `timeout` kills the whole test run (browsers included) if anything hangs.
timeout --kill-after=10 "${E2E_TIMEOUT:-1500}" \
  ip netns exec "$NETNS" node --test --test-concurrency=1 "${files[@]}"
