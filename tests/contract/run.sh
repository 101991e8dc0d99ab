#!/usr/bin/env bash
# Contract test of the served OpenAPI document (clinic/openapi.json): starts the debug server
# (`consultroom demo`: seeded organisation, admin, practitioner, clients, appointments) on SQLite in
# a temporary data dir on 127.0.0.1, logs in, and runs schemathesis (property-based, from the
# document alone) over GET /api/v1/openapi.json with the session cookie. Every response must be
# one the document declares: status code, content type, headers and body schema; no 5xx; data
# the schema allows must not be refused as invalid, data it forbids must be refused.
#
# Builds nothing: cargo build -p consultroom && tests/contract/run.sh
# Installs its Python packages (tests/contract/requirements.txt, pinned) into tests/contract/.venv
# (gitignored); on a fresh Debian machine it installs python3-venv first when `python3 -m venv`
# cannot work (needs root for that step only).
#
# Prints one closing line `contract: N passed, M failed` (N, M: API operations, and the stateful
# scenario as one) and exits non-zero
# on any failure, on a server panic, or when the run does not finish within its time budget.
# Environment: CONSULTROOM_BIN (default target/debug/consultroom), CONTRACT_MAX_EXAMPLES (per
# operation and phase, default 12), CONTRACT_TIMEOUT (seconds for schemathesis, default 200),
# CONTRACT_SEED (default: a fixed seed, so CI is reproducible; `random` explores),
# KEEP_CONTRACT_TMP=1 (keep the data dir, logs and schemathesis reports).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
HERE=tests/contract
VENV="$HERE/.venv"
BIN="${CONSULTROOM_BIN:-$ROOT/target/debug/consultroom}"
MAX_EXAMPLES="${CONTRACT_MAX_EXAMPLES:-12}"
BUDGET="${CONTRACT_TIMEOUT:-200}"
SEED="${CONTRACT_SEED:-20261207}"

die() { echo "contract: $*" >&2; echo "contract: 0 passed, 1 failed"; exit 1; }
[ -x "$BIN" ] || die "server binary not found: $BIN (cargo build -p consultroom, or set CONSULTROOM_BIN)"

# --- Python packages -------------------------------------------------------------------------
if ! cmp -s "$HERE/requirements.txt" "$VENV/.requirements" 2>/dev/null; then
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian ships `venv` without ensurepip; the package python3-venv brings it.
    rm -rf "$VENV"
    [ "$(id -u)" = 0 ] || die "python3 -m venv fails: install python3-venv (apt-get install python3-venv)"
    echo "contract: installing python3-venv" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --disable-pip-version-check -q -r "$HERE/requirements.txt" \
    || die "pip install -r $HERE/requirements.txt failed"
  cp "$HERE/requirements.txt" "$VENV/.requirements"
fi
PY="$VENV/bin/python"

# --- the server ------------------------------------------------------------------------------
TMP="$(mktemp -d /tmp/consultroom-contract.XXXXXX)"
SERVER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "${KEEP_CONTRACT_TMP:-}" ]; then echo "contract: kept $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PW="contract-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkdir -p "$TMP/data"
RUST_LOG="${RUST_LOG:-info}" "$BIN" demo --http 127.0.0.1:0 --admin 127.0.0.1:0 \
  --media-bind 127.0.0.1:0 --media-announce 127.0.0.1 --data-dir "$TMP/data" --demo-password "$PW" \
  >"$TMP/server.out" 2>"$TMP/server.log" </dev/null &
SERVER_PID=$!
deadline=$((SECONDS + 60))
until grep -q '^consultroom ready ' "$TMP/server.out" 2>/dev/null; do
  kill -0 "$SERVER_PID" 2>/dev/null || { head -n 30 "$TMP/server.log" >&2; die "the server exited before it was ready"; }
  [ "$SECONDS" -lt "$deadline" ] || { tail -n 30 "$TMP/server.log" >&2; die "the server was not ready within 60 s"; }
  sleep 0.2
done
BASE_URL="$(sed -n 's/^consultroom ready http=\([^ ]*\).*/\1/p' "$TMP/server.out" | head -n1)"
EMAIL="$(sed -n 's/^demo practitioner_email=//p' "$TMP/server.out" | head -n1)"
ADMIN_EMAIL="admin@consultroom.test" # clinic/src/demo.rs: ADMIN_EMAIL, same password
echo "contract: server ready at $BASE_URL (data $TMP)" >&2

login() { # login <email> -> prints the cr_session cookie value
  "$PY" - "$BASE_URL" "$1" "$PW" <<'PY'
import sys, requests
base, email, password = sys.argv[1:4]
r = requests.post(f"{base}/api/v1/auth/login", json={"email": email, "password": password}, timeout=10)
if r.status_code != 200 or "cr_session" not in r.cookies:
    sys.exit(f"login as a demo staff member failed: HTTP {r.status_code} {r.text[:200]}")
print(r.cookies["cr_session"])
PY
}

# --- schemathesis ----------------------------------------------------------------------------
# The organisation admin may call every operation (the practitioner gets 403 on the admin ones),
# so the main run uses the admin's session; a second, shorter run uses the practitioner's.
# Logout ends the session it is sent with, so it runs last, alone, with a session of its own.

seed_args=()
[ "$SEED" = random ] || seed_args=(--seed "$SEED")
RUN_START=$SECONDS
st() { # st <name> <session cookie> <max examples> <extra args...>
  local name="$1" cookie="$2" n="$3"; shift 3
  local left=$((BUDGET - (SECONDS - RUN_START)))
  [ "$left" -gt 5 ] || { echo "contract: FAILED: no time left for the $name run (budget ${BUDGET} s)" >&2; return 1; }
  # Run from the temp dir: Hypothesis writes its .hypothesis folder into the working directory.
  (cd "$TMP" && CR_SESSION="$cookie" timeout --kill-after=10 "$left" \
    "$ROOT/$VENV/bin/schemathesis" --config-file "$ROOT/$HERE/schemathesis.toml" --no-color run \
    "$BASE_URL/api/v1/openapi.json" --max-examples "$n" "${seed_args[@]}" \
    --workers 2 --request-timeout 10 --suppress-health-check too_slow \
    --report junit --report-junit-path "$TMP/junit-$name.xml" "$@" \
    >"$TMP/st-$name.log" 2>&1) && return 0
  local rc=$?
  [ "$rc" -lt 124 ] || echo "contract: FAILED: the $name run did not finish within the time budget (${BUDGET} s)" >&2
  return "$rc"
}

STATUS=0
ADMIN_SESSION="$(login "$ADMIN_EMAIL")" || die "cannot log in as the demo admin"
PRACT_SESSION="$(login "$EMAIL")" || die "cannot log in as the demo practitioner"
LOGOUT_SESSION="$(login "$EMAIL")" || die "cannot log in for the logout run"

st admin "$ADMIN_SESSION" "$MAX_EXAMPLES" --exclude-path /api/v1/auth/logout || STATUS=1
# The practitioner's run skips what does not read the session (login, logout, the public widget
# routes, invitations, consultation-file tickets, the document itself): the admin's run covered them.
st practitioner "$PRACT_SESSION" "$(( (MAX_EXAMPLES + 1) / 2 ))" --phases examples,coverage,fuzzing \
  --exclude-path-regex '^/api/v1/(auth/|public/|invitations/|consultation-files/|openapi\.json$)' || STATUS=1
st logout "$LOGOUT_SESSION" "$MAX_EXAMPLES" --include-path /api/v1/auth/logout || STATUS=1

for name in admin practitioner logout; do
  [ -f "$TMP/st-$name.log" ] || continue
  echo "contract: $name session: $(grep -E '^=+ .* in [0-9.]+s =+$' "$TMP/st-$name.log" | tail -n1 | tr -d '=' | xargs)" >&2
  if [ "$STATUS" != 0 ] || [ -n "${CONTRACT_VERBOSE:-}" ]; then
    echo "--- schemathesis ($name session):" >&2; cat "$TMP/st-$name.log" >&2
  fi
done

# A panic is a failure even when the response that followed it looked fine.
if grep -q 'panicked' "$TMP/server.log"; then
  echo "--- the server panicked:" >&2; grep -m5 -A5 'panicked' "$TMP/server.log" >&2
  STATUS=1
fi
kill -0 "$SERVER_PID" 2>/dev/null || { echo "contract: the server died during the run" >&2; STATUS=1; }

# One closing line: API operations (and the stateful scenario) that passed in every run, and those
# that failed in any.
"$PY" - "$TMP" "$STATUS" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
tmp, status = sys.argv[1], int(sys.argv[2])
ops, failed = set(), set()
for path in glob.glob(f"{tmp}/junit-*.xml"):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        continue  # a run cut off by its time budget; `status` says it failed
    for case in root.iter("testcase"):
        name = case.get("name")
        ops.add(name)
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(name)
for name in sorted(failed):
    print(f"contract: FAILED {name}", file=sys.stderr)
bad = len(failed)
if status and not bad:
    bad = 1  # a run timed out, crashed or the server panicked without a failed operation to show
print(f"contract: {len(ops) - len(failed)} passed, {bad} failed")
sys.exit(1 if bad else 0)
PY
