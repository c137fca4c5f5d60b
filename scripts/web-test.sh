#!/usr/bin/env bash
# The web UI's checks (the `== web` stage of scripts/test.sh; docs/web.md):
# Chromium present (installed when running as root), npm packages installed,
# TypeScript clean, src/api/schema.d.ts generated from src/api/openapi.json,
# the `braid` binary built, then the browser tests against it.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== web: installing Chromium (apt-get install chromium)"
    # The package lists may be stale or missing on a fresh machine.
    apt-get install -y -qq chromium >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
  else
    echo "error: the browser tests need Chromium at $chromium (Debian/Ubuntu: sudo apt-get install chromium;" >&2
    echo "       elsewhere set CHROMIUM=/path/to/chromium). They are never skipped." >&2
    exit 1
  fi
fi

if ! command -v npm >/dev/null; then
  echo "error: the web UI needs Node.js 20 or newer with npm (Debian/Ubuntu: apt-get install nodejs npm)" >&2
  exit 1
fi
cd web
# The rule the braid-web build script uses: install when node_modules is
# missing or older than the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== web: npm ci"
  npm ci --no-audit --no-fund
fi

echo "== web: typecheck"
npm run --silent typecheck

echo "== web: src/api/schema.d.ts is generated from src/api/openapi.json"
generated="$(mktemp -d)"
trap 'rm -rf "$generated"' EXIT
npx --no-install openapi-typescript src/api/openapi.json -o "$generated/schema.d.ts" >/dev/null 2>&1
if ! diff -u src/api/schema.d.ts "$generated/schema.d.ts"; then
  echo "error: src/api/schema.d.ts is stale: run \`npm run gen:api\` in web/ and commit it" >&2
  exit 1
fi

echo "== web: the braid binary"
# The same profile and feature set (--workspace) as the Rust tests, which built
# it already: this only checks. `-p braid-cli` alone would resolve features
# differently and build every dependency a second time.
(cd .. && cargo build --workspace --bin braid --locked --quiet)

echo "== web: browser tests (Chromium: $chromium)"
BRAID_BIN="${BRAID_BIN:-../target/debug/braid}" CHROMIUM="$chromium" npx --no-install playwright test
