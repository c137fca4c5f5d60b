#!/usr/bin/env bash
# Installs the Python tools the tests call (scripts/tools-requirements.txt)
# into .venv-tools at the repository root. Idempotent: does nothing when the
# installed requirements file equals the committed one.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv-tools
requirements=scripts/tools-requirements.txt
stamp="$venv/installed-requirements.txt"

if [ -f "$stamp" ] && cmp -s "$stamp" "$requirements"; then
  exit 0
fi
echo "== tools: installing $requirements into $venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --requirement "$requirements"
cp "$requirements" "$stamp"
