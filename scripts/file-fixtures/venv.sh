#!/usr/bin/env bash
# The Python side of the weight-file tests, in venvs made from PyPI with pinned requirements,
# created on first use and reused while their requirements file is unchanged:
#   (default)  requirements.txt (safetensors, numpy, h5py) in .cache/file-fixtures-venv
#   --keras    requirements-keras.txt (Keras 3, jax[cpu], h5py, numpy) in
#              ~/.cache/normclip/keras-venv: some 400 MB, so kept per user, beside the tfjs-node
#              cache, where a fresh clone (CI) finds it again
# With arguments, runs them inside the venv:
#   bash scripts/file-fixtures/venv.sh python scripts/file-fixtures/verify.py …
#   bash scripts/file-fixtures/venv.sh --keras python scripts/file-fixtures/keras_load.py …
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ "${1:-}" = "--keras" ]; then
  shift
  requirements="$here/requirements-keras.txt"
  venv="${NORMCLIP_KERAS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/normclip/keras-venv}"
  export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
else
  requirements="$here/requirements.txt"
  venv="${NORMCLIP_FILE_FIXTURES_VENV:-$root/.cache/file-fixtures-venv}"
fi
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
