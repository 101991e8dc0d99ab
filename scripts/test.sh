#!/usr/bin/env bash
# Runs every test of Consultroom on this machine: Rust unit and integration tests on SQLite and
# PostgreSQL, the API contract test (schemathesis), then the browser end-to-end tests (headless
# Chromium in a loopback-only network namespace) on SQLite and PostgreSQL. Installs what is missing
# (Debian packages, npm and Python packages) and starts a local PostgreSQL cluster when one is
# installed but stopped.
#
# Needs root (apt-get, ip netns). Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

log() { printf '\n==> %s\n' "$*" >&2; }

# Every runner's output is also kept, so that one closing line can sum them all up.
RESULTS=$(mktemp -d)
PASSED=0
FAILED=0
# A runner that exits non-zero marks the run failed even when its log has no count to tally
# (e.g. it did not compile); the other suites still run, so one failure does not hide another.
SUITE_FAILED=""

# One line per suite for the closing timing table: name, seconds, status.
TIMINGS=()
SUITE_T0=0
suite_start() { SUITE_T0=$SECONDS; }
suite_end() { # suite_end <name> <status>
  TIMINGS+=("$(printf '%-34s %6ss  %s' "$1" $((SECONDS - SUITE_T0)) "$2")")
}

tally() { # tally <log> <passed-regex> <failed-regex>
  local p f
  p=$(grep -oE "$2" "$1" | grep -oE '[0-9]+' | tail -1 || true)
  f=$(grep -oE "$3" "$1" | grep -oE '[0-9]+' | tail -1 || true)
  PASSED=$((PASSED + ${p:-0}))
  FAILED=$((FAILED + ${f:-0}))
}

# --- system packages -------------------------------------------------------------------------
need_pkgs=()
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v node >/dev/null || need_pkgs+=(nodejs npm)
command -v pg_ctlcluster >/dev/null || need_pkgs+=(postgresql)
command -v turnserver >/dev/null || need_pkgs+=(coturn)
command -v nft >/dev/null || need_pkgs+=(nftables)
# The contract test's venv (tests/contract/run.sh installs python3-venv itself when it is missing).
command -v python3 >/dev/null || need_pkgs+=(python3 python3-venv)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- PostgreSQL ------------------------------------------------------------------------------
PG_URL=${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up && command -v pg_ctlcluster >/dev/null; then
  log "starting the local PostgreSQL cluster"
  for v in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  done
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if pg_up; then
  export TEST_PG_URL=$PG_URL
else
  echo "PostgreSQL is not reachable on 127.0.0.1:5432; the PostgreSQL variants cannot run" >&2
  exit 1
fi

# --- Rust tests ------------------------------------------------------------------------------
# The SMTP server the mail tests start (aiosmtpd, pinned, into tests/smtp/.venv); the tests call
# the same script themselves, this only installs it once before they run in parallel.
log "SMTP test server (aiosmtpd)"
tests/smtp/setup.sh >/dev/null
log "building"
suite_start
cargo build --workspace --all-targets
suite_end "build" ok
status=ok
suite_start
if command -v cargo-nextest >/dev/null; then
  log "cargo nextest (SQLite + PostgreSQL)"
  cargo nextest run --workspace --no-fail-fast 2>&1 | tee "$RESULTS/rust.log" || { SUITE_FAILED+=" rust"; status=FAILED; }
  tally "$RESULTS/rust.log" '[0-9]+ passed' '[0-9]+ failed'
else
  log "cargo test (SQLite + PostgreSQL)"
  cargo test --workspace --no-fail-fast 2>&1 | tee "$RESULTS/rust.log" || { SUITE_FAILED+=" rust"; status=FAILED; }
  PASSED=$((PASSED + $(grep -oE 'ok\. [0-9]+ passed' "$RESULTS/rust.log" | awk '{s += $2} END {print s + 0}')))
fi
suite_end "rust (SQLite + PostgreSQL)" "$status"

# --- load generator smoke --------------------------------------------------------------------
# The str0m load generator against the real server and the SFU library (< 30 s, loopback only):
# fails unless every session connects and media flows end to end. The full benchmark is
# `loadtest bench` (docs/benchmarks.md), not part of the tests.
log "load generator smoke"
suite_start
if timeout 180 target/debug/loadtest smoke --server-bin "$ROOT/target/debug/consultroom" 2>&1 | tee "$RESULTS/smoke.log" \
    && grep -q '^smoke ok' "$RESULTS/smoke.log"; then
  PASSED=$((PASSED + 1))
else
  FAILED=$((FAILED + 1))
  echo "load generator smoke FAILED" >&2
fi
suite_end "loadtest smoke" "$(grep -q '^smoke ok' "$RESULTS/smoke.log" && echo ok || echo FAILED)"
suite_start
timeout 240 target/debug/loadtest faults --scenario all --seconds 20 2>&1 | tee "$RESULTS/faults.log" && grep -q '^faults ok' "$RESULTS/faults.log" && PASSED=$((PASSED + 1)) || { FAILED=$((FAILED + 1)); echo "fault scenarios (RELIABILITY A.9, A.11, A.12: loadtest faults) FAILED" >&2; }
suite_end "loadtest faults" "$(grep -q '^faults ok' "$RESULTS/faults.log" && echo ok || echo FAILED)"

# --- API contract ----------------------------------------------------------------------------
# schemathesis (property-based, from the served OpenAPI document alone) against the debug server
# with the demo data on SQLite: every response must be one the document declares (status, content
# type, headers, body schema), no 5xx, schema-valid data accepted and invalid data refused.
# Bounded (< 4 min); installs its pinned Python packages into tests/contract/.venv on first use.
log "API contract (schemathesis)"
suite_start
status=ok
CONSULTROOM_BIN="$ROOT/target/debug/consultroom" tests/contract/run.sh 2>&1 | tee "$RESULTS/contract.log" || { SUITE_FAILED+=" contract"; status=FAILED; }
suite_end "API contract (schemathesis)" "$status"
tally "$RESULTS/contract.log" '^contract: [0-9]+ passed' 'contract: [0-9]+ passed, [0-9]+ failed'

# --- browser end-to-end ----------------------------------------------------------------------
export CONSULTROOM_BIN="$ROOT/target/debug/consultroom"
if [ ! -d tests/e2e/node_modules ]; then
  log "installing e2e npm packages"
  (cd tests/e2e && npm ci --no-audit --no-fund)
fi

# Tiers: the whole browser suite runs once, on PostgreSQL (the production database). On SQLite
# only the files whose behaviour depends on what the database stores and returns run again; the
# media, connectivity and mocked-UI files do not touch the database beyond a login.
E2E_DB_FILES=(admin.test.mjs chat.test.mjs consultation.test.mjs guests.test.mjs mail.test.mjs
  mail-templates.test.mjs org-settings.test.mjs outbox-ops.test.mjs quick-consult.test.mjs
  scheduling.test.mjs staff-invite.test.mjs waiting-room.test.mjs walkin.test.mjs)

log "browser end-to-end on SQLite (database-dependent files)"
suite_start
status=ok
E2E_DATABASE_URL= tests/e2e/run.sh "${E2E_DB_FILES[@]}" 2>&1 | tee "$RESULTS/e2e-sqlite.log" || { SUITE_FAILED+=" e2e-sqlite"; status=FAILED; }
tally "$RESULTS/e2e-sqlite.log" '^# pass [0-9]+' '^# fail [0-9]+'
suite_end "browser, SQLite (${#E2E_DB_FILES[@]} files)" "$status"

log "browser end-to-end on PostgreSQL (every file)"
suite_start
status=ok
db="e2e_$(date +%s)_$$"
psql -q -h 127.0.0.1 -U postgres -c "create database $db" postgres
trap 'psql -q -h 127.0.0.1 -U postgres -c "drop database if exists $db with (force)" postgres || true' EXIT
# The namespace has only `lo`, so the server reaches PostgreSQL through its unix socket.
E2E_DATABASE_URL="postgres://postgres@localhost/$db?host=/var/run/postgresql" tests/e2e/run.sh 2>&1 \
  | tee "$RESULTS/e2e-postgres.log" || { SUITE_FAILED+=" e2e-postgres"; status=FAILED; }
tally "$RESULTS/e2e-postgres.log" '^# pass [0-9]+' '^# fail [0-9]+'
suite_end "browser, PostgreSQL (every file)" "$status"

printf '\n%-34s %7s  %s\n' "suite" "time" "status"
printf '%s\n' "${TIMINGS[@]}"
echo "all suites: $PASSED passed, $FAILED failed${SUITE_FAILED:+; runners that failed:$SUITE_FAILED}"
[ "$FAILED" -eq 0 ] && [ -z "$SUITE_FAILED" ] || exit 1
log "all tests passed"
