# Sourced by tests/e2e/run.sh and loadtest/browser/run.sh (bash). Starts the consultroom demo
# server inside a fresh network namespace that has only `lo` (STACK.md §4.4), waits for its
# ready line and exports BASE_URL, DEMO_EMAIL, DEMO_PASSWORD, DEMO_INVITATION_URL, NETNS,
# CONSULTROOM_BIN, CR_DATA_DIR (and E2E_DATABASE_URL when set).
# Cleanup (server, coturn, SMTP sink, namespace, temp dir) is registered with `trap ... EXIT`.
#
# Options (environment, set by the caller before cr_start_server):
#   CR_WITH_TURN=1       also start coturn (`turnserver`) in the namespace on 127.0.0.1 with a
#                        random per-run `static-auth-secret`, and give the server --turn-url and
#                        --turn-secret-file; exports E2E_TURN_URLS, E2E_TURN_PORT, E2E_TURN_LOG.
#   CR_WITH_MEDIA_TCP=1  give the server --media-tcp-bind 127.0.0.1:0 (ICE over TCP).
#   CR_WITH_SMTP=1       also start the SMTP test sink (aiosmtpd with tests/smtp/test_handler.py,
#                        python from tests/smtp/.venv: run tests/smtp/setup.sh first) in the
#                        namespace on 127.0.0.1, and give the server --smtp-url to it (plain SMTP,
#                        `?tls=none`); exports E2E_MAILDIR (every accepted message is a file in
#                        $E2E_MAILDIR/new; tests/e2e/lib/mailbox.mjs reads it) and E2E_SMTP_PORT.

cr_die() { echo "error: $*" >&2; exit 2; }

cr_start_server() {
  [ "$(id -u)" = 0 ] || cr_die "must run as root (ip netns needs it)"
  command -v ip >/dev/null || cr_die "the 'ip' command (iproute2) is missing"
  local root="$1"
  CONSULTROOM_BIN="${CONSULTROOM_BIN:-$root/target/debug/consultroom}"
  case "$CONSULTROOM_BIN" in /*) ;; *) CONSULTROOM_BIN="$root/$CONSULTROOM_BIN" ;; esac
  [ -x "$CONSULTROOM_BIN" ] || cr_die "server binary not found: $CONSULTROOM_BIN (build it with 'cargo build -p consultroom' or set CONSULTROOM_BIN)"
  [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || cr_die "Chromium not found at ${CHROMIUM_PATH:-/usr/bin/chromium}"

  NETNS="cr-e2e-$$"
  CR_TMP="$(mktemp -d /tmp/consultroom-e2e.XXXXXX)"
  CR_SERVER_PID=""
  CR_TURN_PID=""
  CR_SMTP_PID=""
  trap cr_cleanup EXIT
  trap 'exit 130' INT TERM

  ip netns add "$NETNS"
  ip netns exec "$NETNS" ip link set lo up

  local pw
  pw="e2e-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  local args=(demo --http 127.0.0.1:0 --admin 127.0.0.1:0 --media-bind 127.0.0.1:0 --media-announce 127.0.0.1
              --data-dir "$CR_TMP/data" --demo-password "$pw" --drain-window-secs 0)
  [ -n "${E2E_DATABASE_URL:-}" ] && args+=(--database-url "$E2E_DATABASE_URL")
  mkdir -p -m 700 "$CR_TMP/data"
  [ -n "${CR_WITH_MEDIA_TCP:-}" ] && args+=(--media-tcp-bind 127.0.0.1:0)
  if [ -n "${CR_WITH_TURN:-}" ]; then
    cr_start_turn
    args+=(--turn-url "$E2E_TURN_URLS" --turn-secret-file "$CR_TMP/turn.secret" --turn-ttl-minutes 10)
  fi
  if [ -n "${CR_WITH_SMTP:-}" ]; then
    cr_start_smtp "$root"
    args+=(--smtp-url "smtp://127.0.0.1:$E2E_SMTP_PORT?tls=none" --mail-from "Consultroom E2E <noreply@consultroom.test>")
  fi
  # `ip netns exec` execs the binary, so $! is the server itself.
  RUST_LOG="${RUST_LOG:-info}" ip netns exec "$NETNS" "$CONSULTROOM_BIN" "${args[@]}" \
    >"$CR_TMP/server.out" 2>"$CR_TMP/server.log" </dev/null &
  CR_SERVER_PID=$!

  local deadline=$((SECONDS + ${SERVER_READY_TIMEOUT:-60}))
  until grep -q '^consultroom ready ' "$CR_TMP/server.out" 2>/dev/null \
        && grep -q '^demo invitation_url=' "$CR_TMP/server.out" \
        && grep -q '^demo practitioner_email=' "$CR_TMP/server.out"; do
    if ! kill -0 "$CR_SERVER_PID" 2>/dev/null; then
      echo "server exited before it was ready; stdout:" >&2; cat "$CR_TMP/server.out" >&2
      # The cause is at the top (anyhow prints the error chain before the backtrace).
      echo "--- stderr (first 30 lines):" >&2; head -n 30 "$CR_TMP/server.log" >&2
      CR_LOG_SHOWN=1
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "server not ready within ${SERVER_READY_TIMEOUT:-60}s; stdout:" >&2; cat "$CR_TMP/server.out" >&2
      echo "--- stderr (last 40 lines):" >&2; tail -n 40 "$CR_TMP/server.log" >&2
      exit 1
    fi
    sleep 0.2
  done

  local ready
  ready="$(grep -m1 '^consultroom ready ' "$CR_TMP/server.out")"
  BASE_URL="$(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<<"$ready")"
  DEMO_EMAIL="$(sed -n 's/^demo practitioner_email=//p' "$CR_TMP/server.out" | head -n1)"
  DEMO_PASSWORD="$(sed -n 's/^demo practitioner_password=//p' "$CR_TMP/server.out" | head -n1)"
  DEMO_PASSWORD="${DEMO_PASSWORD:-$pw}" # we chose it with --demo-password anyway
  DEMO_INVITATION_URL="$(sed -n 's/^demo invitation_url=//p' "$CR_TMP/server.out" | head -n1)"
  [ -n "$BASE_URL" ] || cr_die "could not parse http= from: $ready"
  # CR_DATA_DIR and E2E_DATABASE_URL: where `consultroom demo-organisation` finds the server's
  # database (tests/e2e/lib/harness.mjs seedOrganisation).
  CR_DATA_DIR="$CR_TMP/data"
  export BASE_URL DEMO_EMAIL DEMO_PASSWORD DEMO_INVITATION_URL NETNS CONSULTROOM_BIN CR_DATA_DIR
  [ -n "${E2E_DATABASE_URL:-}" ] && export E2E_DATABASE_URL
  export CONSULTROOM_SERVER_LOG="$CR_TMP/server.log"
  echo "server ready: $ready (netns $NETNS, logs $CR_TMP/server.log)" >&2
}

# The SMTP test sink (the one the Rust tests use, consultroom_testkit::smtp) on 127.0.0.1 inside
# $NETNS (a fresh namespace, so the port is free): aiosmtpd from tests/smtp/.venv with
# tests/smtp/test_handler.py, a Maildir at $CR_TMP/maildir. Ready once it greets with 220.
cr_start_smtp() {
  local root="$1"
  local python="$root/tests/smtp/.venv/bin/python"
  [ -x "$python" ] || cr_die "the SMTP test server is missing: run tests/smtp/setup.sh (run.sh does)"
  E2E_SMTP_PORT="${E2E_SMTP_PORT:-2525}"
  E2E_MAILDIR="$CR_TMP/maildir"
  # `ip netns exec` execs python, so $! is the server itself.
  PYTHONPATH="$root/tests/smtp" ip netns exec "$NETNS" "$python" -m aiosmtpd -n \
    -l "127.0.0.1:$E2E_SMTP_PORT" -c test_handler.TestHandler "$E2E_MAILDIR" \
    >"$CR_TMP/smtp.log" 2>&1 </dev/null &
  CR_SMTP_PID=$!
  local deadline=$((SECONDS + 30))
  until [ "$(ip netns exec "$NETNS" timeout 5 bash -c \
            "exec 3<>/dev/tcp/127.0.0.1/$E2E_SMTP_PORT && head -c 3 <&3" 2>/dev/null)" = 220 ]; do
    kill -0 "$CR_SMTP_PID" 2>/dev/null || { echo "aiosmtpd exited:" >&2; cat "$CR_TMP/smtp.log" >&2; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || cr_die "aiosmtpd not greeting on 127.0.0.1:$E2E_SMTP_PORT within 30 s"
    sleep 0.2
  done
  export E2E_MAILDIR E2E_SMTP_PORT
  echo "SMTP sink ready on 127.0.0.1:$E2E_SMTP_PORT (netns $NETNS, maildir $E2E_MAILDIR)" >&2
}

# coturn on 127.0.0.1 inside $NETNS (a fresh namespace, so the port is free), TURN REST
# credentials only (`use-auth-secret`), loopback peers allowed (the SFU is on 127.0.0.1), no TLS,
# no CLI. The secret goes in a 0600 config file, not on the command line.
cr_start_turn() {
  command -v turnserver >/dev/null || cr_die "turnserver (Debian package coturn) is missing"
  E2E_TURN_PORT="${E2E_TURN_PORT:-3478}"
  E2E_TURN_LOG="$CR_TMP/turnserver.log"
  local secret
  secret="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  (umask 077; printf '%s\n' "$secret" >"$CR_TMP/turn.secret")
  (umask 077; cat >"$CR_TMP/turnserver.conf" <<CONF
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=$E2E_TURN_PORT
min-port=40000
max-port=40999
use-auth-secret
static-auth-secret=$secret
realm=consultroom.test
allow-loopback-peers
no-multicast-peers
no-cli
no-tls
no-dtls
fingerprint
no-software-attribute
verbose
log-file=$E2E_TURN_LOG
simple-log
no-stdout-log
pidfile=$CR_TMP/turnserver.pid
CONF
  )
  ip netns exec "$NETNS" turnserver -c "$CR_TMP/turnserver.conf" >"$CR_TMP/turnserver.out" 2>&1 </dev/null &
  CR_TURN_PID=$!
  local deadline=$((SECONDS + 15))
  # Ready once its TCP listener accepts (it opens UDP and TCP on the same port together).
  until ip netns exec "$NETNS" bash -c "exec 3<>/dev/tcp/127.0.0.1/$E2E_TURN_PORT" 2>/dev/null; do
    kill -0 "$CR_TURN_PID" 2>/dev/null || { echo "turnserver exited:" >&2; cat "$CR_TMP/turnserver.out" "$E2E_TURN_LOG" >&2 2>/dev/null; exit 1; }
    [ "$SECONDS" -lt "$deadline" ] || cr_die "turnserver not listening on 127.0.0.1:$E2E_TURN_PORT within 15 s"
    sleep 0.2
  done
  E2E_TURN_URLS="turn:127.0.0.1:$E2E_TURN_PORT?transport=udp,turn:127.0.0.1:$E2E_TURN_PORT?transport=tcp"
  export E2E_TURN_URLS E2E_TURN_PORT E2E_TURN_LOG
  echo "coturn ready on 127.0.0.1:$E2E_TURN_PORT (netns $NETNS, log $E2E_TURN_LOG)" >&2
}

cr_cleanup() {
  local rc=$?
  if [ -n "${CR_SERVER_PID:-}" ] && kill -0 "$CR_SERVER_PID" 2>/dev/null; then
    kill -TERM "$CR_SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$CR_SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CR_SERVER_PID" 2>/dev/null || true
    wait "$CR_SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "${CR_TURN_PID:-}" ] && kill -0 "$CR_TURN_PID" 2>/dev/null; then
    kill -TERM "$CR_TURN_PID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$CR_TURN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CR_TURN_PID" 2>/dev/null || true
    wait "$CR_TURN_PID" 2>/dev/null || true
  fi
  if [ -n "${CR_SMTP_PID:-}" ] && kill -0 "$CR_SMTP_PID" 2>/dev/null; then
    kill -TERM "$CR_SMTP_PID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$CR_SMTP_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CR_SMTP_PID" 2>/dev/null || true
    wait "$CR_SMTP_PID" 2>/dev/null || true
  fi
  if [ -n "${NETNS:-}" ]; then
    # Anything still running in the namespace (e.g. a Chromium left behind by a killed test).
    for pid in $(ip netns pids "$NETNS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$NETNS" 2>/dev/null || true
  fi
  if [ -n "${CR_TMP:-}" ] && [ -d "$CR_TMP" ]; then
    if [ "$rc" != 0 ] && [ -z "${CR_LOG_SHOWN:-}" ] && [ -s "$CR_TMP/server.log" ]; then
      echo "--- server stderr (last 60 lines):" >&2; tail -n 60 "$CR_TMP/server.log" >&2
    fi
    if [ -n "${KEEP_E2E_TMP:-}" ]; then echo "kept $CR_TMP" >&2; else rm -rf "$CR_TMP"; fi
  fi
  exit "$rc"
}

# Installs the pinned packages when node_modules is missing or older than package-lock.json (a
# checkout that changed the lock, e.g. one that added a package).
cr_npm_ci() {
  local dir="$1"
  if [ ! -d "$dir/node_modules/playwright-core" ] \
     || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && timeout 300 npm ci --no-audit --no-fund) || cr_die "npm ci failed in $dir"
  fi
}
