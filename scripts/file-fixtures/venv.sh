#!/usr/bin/env bash
# The Python side of the weight-file tests: a venv in .cache/file-fixtures-venv with the pinned
# requirements.txt (safetensors, numpy), created on first use and reused while requirements.txt
# is unchanged. With arguments, runs them inside the venv:
#   bash scripts/file-fixtures/venv.sh python scripts/file-fixtures/verify.py …
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${NORMCLIP_FILE_FIXTURES_VENV:-$root/.cache/file-fixtures-venv}"
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$stamp"
fi
if [ "$#" -gt 0 ]; then
  export PATH="$venv/bin:$PATH"
  exec "$@"
fi
