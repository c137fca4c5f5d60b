#!/usr/bin/env bash
# A private, throw-away PostgreSQL server for the tests (docs/postgres.md).
#
#   scripts/pg.sh start   installs PostgreSQL when missing (Debian, as root),
#                         initdb's a temporary directory, starts the server on
#                         a free port of 127.0.0.1, creates the database
#                         braid_test, and writes its URL to
#                         target/braid-test-pg.url (read by the tests; also
#                         printed, for `export BRAID_TEST_DATABASE_URL=…`)
#   scripts/pg.sh stop    stops that server and deletes its directory
#
# scripts/test.sh starts it before the Rust tests and stops it on exit.
# Each test creates a database of its own on it (braid_store_postgres::testing).
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=target/braid-test-pg.dir
URL_FILE=target/braid-test-pg.url

# The newest installed server's binaries, else whatever is on PATH.
pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
    echo "$dir"
  elif command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

# Runs a server command as `postgres` when we are root (the server refuses
# to run as root), as ourselves otherwise.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  stop_quietly
  local bin
  bin=$(pg_bin)
  if [ -z "$bin" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "pg.sh: PostgreSQL (initdb, pg_ctl) is not installed and we are not root to install it" >&2
      exit 1
    fi
    echo "pg.sh: installing PostgreSQL (apt-get install -y postgresql)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >/dev/null ||
      { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >/dev/null; }
    bin=$(pg_bin)
  fi
  local dir port
  dir=$(mktemp -d /tmp/braid-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  # A port nobody listens on now (the kernel's pick for an ephemeral bind).
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_pg "$bin/initdb" -D "$dir/data" -A trust -U braid -E UTF8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  # Every local connection is trusted, except over TCP for members of
  # braid_password_login, who must give their password: the tests of a
  # wrong password need a server that checks one (created below; the first
  # matching line of pg_hba.conf wins). Rewritten in place, so the file
  # keeps its owner.
  local hba="$dir/data/pg_hba.conf"
  { echo "host all +braid_password_login 127.0.0.1/32 scram-sha-256"; cat "$hba"; } >"$dir/pg_hba.conf.new"
  cat "$dir/pg_hba.conf.new" >"$hba"
  rm "$dir/pg_hba.conf.new"
  # fsync stays on (the default): timings must be comparable with SQLite's.
  # Enough connections for nextest's parallel tests, each with its pool.
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400" start >/dev/null ||
    { cat "$dir/server.log" >&2; exit 1; }
  mkdir -p target
  printf '%s\n%s\n' "$dir" "$bin" >"$STATE"
  local url="postgresql://braid@127.0.0.1:$port/braid_test"
  "$bin/psql" -q "postgresql://braid@127.0.0.1:$port/postgres" -c 'CREATE DATABASE braid_test' \
    -c 'CREATE ROLE braid_password_login NOLOGIN' >/dev/null
  echo "$url" >"$URL_FILE"
  echo "$url"
}

stop_quietly() {
  [ -f "$STATE" ] || return 0
  local dir bin
  dir=$(sed -n 1p "$STATE")
  bin=$(sed -n 2p "$STATE")
  if [ -d "$dir/data" ]; then
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  rm -f "$STATE" "$URL_FILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop_quietly ;;
  *) echo "usage: scripts/pg.sh start|stop" >&2; exit 2 ;;
esac
