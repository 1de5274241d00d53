#!/usr/bin/env bash
# The Python side of the weight-file tests: a venv in .cache/file-fixtures-venv with the pinned
# requirements.txt (safetensors, numpy, h5py), created on first use and reused while
# requirements.txt is unchanged. With arguments, runs them inside the venv:
#   bash scripts/file-fixtures/venv.sh python scripts/file-fixtures/verify.py …
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
requirements="$here/requirements.txt"
venv="${NORMCLIP_FILE_FIXTURES_VENV:-$root/.cache/file-fixtures-venv}"
stamp="$venv/.requirements"
mkdir -p "$(dirname "$venv")"
# Test files run in parallel and may all ask for the venv at once: one of them builds it.
exec 9>"$venv.lock"
if command -v flock >/dev/null; then flock 9; fi
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
  cp "$requirements" "$stamp"
fi
exec 9>&-
if [ "$#" -gt 0 ]; then
  export PATH="$venv/bin:$PATH"
  exec "$@"
fi
