#!/usr/bin/env bash
# Installs the peer workflow engines that `braid-bench --compare` runs, into
# git-ignored folders of this repository:
#
#   .peers/venv      Python virtualenv: LangGraph (+ SqliteSaver), DBOS, Prefect,
#                    httpx and aiohttp (the mock LLM server of the peer scripts)
#   .peers/restate   node_modules for the Restate scripts (restate-server binary
#                    from npm + the TypeScript SDK), from the pinned package.json
#
# Versions are those of the reference results (bench/peers/RESULTS.md).
# Each part is installed on its own: one that fails is reported and the
# others are still installed. `braid-bench --compare` reports a peer that is
# missing as "not installed: <reason>".
#
# usage: scripts/install-peers.sh [--peers-dir DIR] [--bench-dir DIR]
#   --bench-dir  the shared bench folder holding peers/ (default ../shared/bench)
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
peers_dir="$here/.peers"
bench_dir="${BRAID_BENCH_DIR:-$here/../shared/bench}"
while [ $# -gt 0 ]; do
  case "$1" in
    --peers-dir) peers_dir="$2"; shift 2 ;;
    --bench-dir) bench_dir="$2"; shift 2 ;;
    -h|--help) sed -n 2,17p "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$peers_dir"
status="$peers_dir/install-status.txt"
: > "$status"
failed=0

note() { printf '%s\t%s\n' "$1" "$2" >> "$status"; printf '%-10s %s\n' "$1" "$2"; }

# --- Python peers ----------------------------------------------------------
py=${PYTHON:-python3}
venv="$peers_dir/venv"
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv" || { note python "not installed: python3 -m venv failed"; venv=""; failed=1; }
fi
if [ -n "$venv" ]; then
  pip=("$venv/bin/pip" install --disable-pip-version-check -q)
  # Shared by every Python peer and the mock LLM server.
  if "${pip[@]}" "httpx==0.28.1" "aiohttp==3.14.5"; then note mock_llm ok; else note mock_llm "not installed: pip install httpx aiohttp failed"; failed=1; fi
  if "${pip[@]}" "langgraph==1.2.22" "langgraph-checkpoint==4.3.2" "langgraph-checkpoint-sqlite==3.1.2"; then
    note langgraph ok
  else
    note langgraph "not installed: pip install langgraph failed"; failed=1
  fi
  if "${pip[@]}" "dbos==3.4.0"; then note dbos ok; else note dbos "not installed: pip install dbos failed"; failed=1; fi
  # prefect 3.8.8's temporary server does not import with fastapi >= 0.165.
  if "${pip[@]}" "prefect==3.8.8" "fastapi==0.139.0"; then note prefect ok; else note prefect "not installed: pip install prefect failed"; failed=1; fi
fi

# --- Restate ---------------------------------------------------------------
pkg="$bench_dir/peers/restate/package.json"
if ! command -v npm >/dev/null 2>&1; then
  note restate "not installed: npm not found"; failed=1
elif [ ! -f "$pkg" ]; then
  note restate "not installed: $pkg not found"; failed=1
else
  mkdir -p "$peers_dir/restate"
  cp "$pkg" "$peers_dir/restate/package.json"
  # npm does not run the analytics install script of @scarf/scarf unless approved; leave it so.
  if (cd "$peers_dir/restate" && npm install --no-audit --no-fund --loglevel=error) \
     && "$peers_dir/restate/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server" --version >/dev/null 2>&1; then
    note restate ok
  else
    note restate "not installed: npm install of @restatedev/restate-server failed"; failed=1
  fi
fi

echo "status written to $status"
exit $failed
