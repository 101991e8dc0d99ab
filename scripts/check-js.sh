#!/usr/bin/env bash
# Checks of the web client's JavaScript (issue #11), run by .ci/run: tsc --checkJs over
# web-client/js and widget/widget.js (tools/jscheck/tsconfig.json), eslint
# (tools/jscheck/eslint.config.mjs), and the JSON examples of docs/protocol.md against the
# protocol types (web-client/js/protocol.js), and the language catalogues (tests/i18n: the same
# keys and placeholders in every language, no unknown or unused key, no untranslated fixed string
# on the patient pages and the staff app; node:test, no browser). The tools are dev dependencies pinned in
# tools/jscheck/package-lock.json, installed with `npm ci` when missing; nothing of them is
# served (the binary embeds web-client/ only). Takes a few seconds once installed.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=tools/jscheck
if [ ! -x "$tools/node_modules/.bin/tsc" ] || [ ! -x "$tools/node_modules/.bin/eslint" ] \
  || [ "$tools/package-lock.json" -nt "$tools/node_modules/.package-lock.json" ]; then
  (cd "$tools" && npm ci --no-audit --no-fund)
fi
status=0
echo "check-js: tsc --checkJs"
"$tools/node_modules/.bin/tsc" -p "$tools/tsconfig.json" --pretty false || status=1
echo "check-js: eslint"
"$tools/node_modules/.bin/eslint" -c "$tools/eslint.config.mjs" web-client/js web-client/i18n widget/widget.js "$tools"/*.mjs tests/i18n/*.mjs || status=1
echo "check-js: protocol examples"
node "$tools/protocol-examples.mjs" || status=1
echo "check-js: language catalogues"
node --test --test-reporter=dot tests/i18n/catalogues.test.mjs || status=1
if [ "$status" -ne 0 ]; then
  echo "check-js: FAILED" >&2
  exit 1
fi
echo "check-js: ok"
