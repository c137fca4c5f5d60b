#!/usr/bin/env bash
# Runs every check and test of the repository. Installs what the tests need
# that a fresh machine lacks. Used by CI (.ci/run) and by developers.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== tools (the OpenAPI validator of the braid-server tests)"
scripts/tools.sh

echo "== sizes (no product file over 1,000 lines, no function over 150)"
python3 scripts/check-size.py

echo "== format"
cargo fmt --all -- --check

echo "== lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== PostgreSQL (a private server for the PostgreSQL store's tests; docs/postgres.md)"
trap 'scripts/pg.sh stop' EXIT
BRAID_TEST_DATABASE_URL=$(scripts/pg.sh start)
export BRAID_TEST_DATABASE_URL

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast --profile ci
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "== web"
scripts/web-test.sh
