#!/usr/bin/env bash
# Installs the SMTP test server (aiosmtpd, pinned in tests/smtp/requirements.txt) into
# tests/smtp/.venv (gitignored) and prints the venv's python. Called by the Rust tests
# (consultroom_testkit::smtp) and by scripts/test.sh; safe to run concurrently (a lock) and
# cheap when the venv is up to date. On a fresh Debian machine it installs python3-venv first
# when `python3 -m venv` cannot work (needs root for that step only).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
die() { echo "smtp setup: $*" >&2; exit 1; }
exec 9>"$HERE/.setup.lock"
flock -w 600 9 || die "timed out waiting for another setup"
if ! cmp -s "$HERE/requirements.txt" "$VENV/.requirements" 2>/dev/null; then
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    [ "$(id -u)" = 0 ] || die "python3 -m venv fails: install python3-venv (apt-get install python3-venv)"
    echo "smtp setup: installing python3-venv" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --disable-pip-version-check -q -r "$HERE/requirements.txt" >&2 \
    || die "pip install -r $HERE/requirements.txt failed"
  cp "$HERE/requirements.txt" "$VENV/.requirements"
fi
echo "$VENV/bin/python"
