#!/usr/bin/env bash
# Runs every check and test of the repository. Installs what the tests need
# that a fresh machine lacks. Used by CI (.ci/run) and by developers.
set -euo pipefail
cd "$(dirname "$0")/.."
# In CI, no incremental caches: they only cost disk on a one-off build.
if [[ "${CI:-}" == "true" ]]; then export CARGO_INCREMENTAL=0; fi

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

echo "== API tests on PostgreSQL"
# The braid-server API tests again, each server on a PostgreSQL database of
# its own; left out: the two that open the SQLite file behind the server
# (hand-written SQL, nothing written) and the OpenAPI validator (no store).
PG_API_SKIP=(hand_written_sql_workflow_runs_over_http bad_requests_answer_precise_errors_and_write_nothing
             openapi_document_passes_openapi_spec_validator)
if cargo nextest --version >/dev/null 2>&1; then
  # --workspace, as above: the same feature set, so nothing is built again.
  filter="package(braid-server) & binary(api)"
  for t in "${PG_API_SKIP[@]}"; do filter+=" & !test($t)"; done
  BRAID_TEST_STORE=postgres cargo nextest run --workspace --locked --no-fail-fast --profile ci -E "$filter"
else
  skips=()
  for t in "${PG_API_SKIP[@]}"; do skips+=(--skip "$t"); done
  BRAID_TEST_STORE=postgres cargo test --workspace --locked --no-fail-fast --test api -- "${skips[@]}"
fi

echo "== web"
scripts/web-test.sh
