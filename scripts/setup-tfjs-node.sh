#!/usr/bin/env bash
# Optional step: a working @tensorflow/tfjs-node 4.22.0 in this repo's node_modules, built only from
# npm, PyPI and the local toolchain (no storage.googleapis.com, no nodejs.org).
#
#   npm install && bash scripts/setup-tfjs-node.sh      (in this repo)
#   npx normclip setup-tfjs-node                        (in a project that depends on normclip)
#
# Why this exists: tfjs-node's install script downloads libtensorflow 2.9.1 and a prebuilt
# tfjs_binding.node from storage.googleapis.com, which our machines cannot reach. Instead:
#   1. libtensorflow: the `tensorflow-cpu` 2.12.1 wheel from PyPI (hash-pinned in
#      scripts/tfjs-node/libtensorflow-requirements.txt) carries libtensorflow_cc.so.2 (which
#      exports the TF_/TFE_ C API), libtensorflow_framework.so.2 and the C headers. We unzip just
#      those; the wheel is never installed or imported. Older wheels (2.9-2.11) do not export the
#      C API from a standalone library, so 2.12.1 is the closest usable release to tfjs-node's 2.9.1.
#   2. tfjs-node: `npm ci --ignore-scripts` of a pinned staging project (scripts/tfjs-node/
#      package.json + package-lock.json) in the cache, libtensorflow staged as the package's
#      deps/lib + deps/include, then the package's own binding.gyp is built by its own node-pre-gyp
#      (`install --build-from-source`, as its install.js does) with npm's bundled node-gyp and the
#      local Node headers (--nodedir, so node-gyp never downloads headers).
#   3. The built package is hard-linked into node_modules/@tensorflow/tfjs-node with its own
#      non-tfjs dependencies nested under it, but WITHOUT a nested @tensorflow/*: its
#      require('@tensorflow/tfjs') then resolves to the project's copy, so there is one tfjs-core
#      (one engine, one kernel/serialization registry). npm itself never touches the project tree,
#      so package.json / package-lock.json stay as they are.
#
# Idempotent and cached (default cache: <repo>/.cache/tfjs-node, override with
# NORMCLIP_TFJS_NODE_CACHE). A later plain `npm install` prunes node_modules/@tensorflow/tfjs-node
# (it is not in package.json); re-running this script restores it from the cache in seconds.
# Exits non-zero with an ERROR line on any real failure.
set -euo pipefail

TFJS_NODE_VERSION=4.22.0
TF_VERSION=2.12.1
# Bump when the layout/procedure below changes, so stale caches and installs are rebuilt.
RECIPE=1

# The recipe (this script and scripts/tfjs-node/) ships in the normclip repo and in the npm package;
# the project it installs into is the one beside the recipe (the repo) unless NORMCLIP_PROJECT_DIR
# names another: `npx normclip setup-tfjs-node` sets it to the user's project.
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$SELF/scripts/tfjs-node"
PROJECT="$(cd "${NORMCLIP_PROJECT_DIR:-$SELF}" && pwd)" || { echo "[setup-tfjs-node] ERROR: no directory ${NORMCLIP_PROJECT_DIR}" >&2; exit 1; }
CACHE="${NORMCLIP_TFJS_NODE_CACHE:-$PROJECT/.cache/tfjs-node}"
DEST="$PROJECT/node_modules/@tensorflow/tfjs-node"
STAMP_NAME=.normclip-setup-stamp
START=$SECONDS

log() { echo "[setup-tfjs-node] $*" >&2; }
die() { echo "[setup-tfjs-node] ERROR: $*" >&2; exit 1; }
on_exit() {
  local rc=$?
  [[ -n "${TMPWORK:-}" && -d "${TMPWORK:-}" ]] && rm -rf "$TMPWORK"
  [[ -n "${DEST_TMP:-}" && -d "${DEST_TMP:-}" ]] && rm -rf "$DEST_TMP"
  if [[ $rc -ne 0 ]]; then echo "[setup-tfjs-node] FAILED (exit $rc) after $((SECONDS - START))s" >&2; fi
}
trap on_exit EXIT

# ---------------------------------------------------------------- preconditions
[[ "$(uname -s)" == Linux && "$(uname -m)" == x86_64 ]] ||
  die "only linux x86_64 is supported (the tensorflow-cpu wheel used is manylinux x86_64); got $(uname -s) $(uname -m)"
for tool in node npm python3 make g++ nm; do
  command -v "$tool" >/dev/null || die "'$tool' not found on PATH (needed: node npm python3 make g++ binutils)"
done
[[ -f "$PROJECT/node_modules/@tensorflow/tfjs/package.json" ]] ||
  die "node_modules/@tensorflow/tfjs is missing in $PROJECT: run 'npm install' there first (a project of its own needs 'npm install @tensorflow/tfjs@$TFJS_NODE_VERSION')"
PROJECT_TFJS="$(node -p "require('$PROJECT/node_modules/@tensorflow/tfjs/package.json').version")"
# tfjs-node 4.22.0 depends on @tensorflow/tfjs exactly 4.22.0; reusing a different project version
# would run tfjs-node's code on an engine it was not released with.
[[ "$PROJECT_TFJS" == "$TFJS_NODE_VERSION" ]] ||
  die "the project has @tensorflow/tfjs $PROJECT_TFJS, tfjs-node $TFJS_NODE_VERSION needs exactly $TFJS_NODE_VERSION"

# The binding is a Node-API addon: tfjs-node builds the highest of its napi_versions (3..8) that
# this Node supports; the key changes if that does.
NAPI_BUILD="$(node -p 'Math.min(8, Number(process.versions.napi))')"
KEY="tfjs-node-$TFJS_NODE_VERSION-tf-$TF_VERSION-napi$NAPI_BUILD-r$RECIPE"

# ---------------------------------------------------------------- fast path
if [[ -f "$DEST/$STAMP_NAME" && "$(cat "$DEST/$STAMP_NAME")" == "$KEY" ]]; then
  if out="$(cd "$PROJECT" && node "$HERE/verify.cjs" "$PROJECT" --shared 2>&1)"; then
    log "already set up: $out ($((SECONDS - START))s)"
    exit 0
  fi
  log "installed copy does not verify ($out); reinstalling from cache"
elif [[ -d "$DEST" && ! -f "$DEST/$STAMP_NAME" ]]; then
  # Someone installed tfjs-node another way. Keep it if it really works and shares our tfjs.
  if out="$(cd "$PROJECT" && node "$HERE/verify.cjs" "$PROJECT" --shared 2>&1)"; then
    log "a working tfjs-node not installed by this script is present, leaving it: $out"
    exit 0
  fi
  log "replacing the non-working node_modules/@tensorflow/tfjs-node ($out)"
fi

mkdir -p "$CACHE"
# Serialize concurrent runs (two CI jobs sharing a cache, or a user re-running in another shell).
if command -v flock >/dev/null; then
  exec 9>"$CACHE/.lock"
  flock 9
fi

# ---------------------------------------------------------------- 1. libtensorflow from PyPI
LIBTF="$CACHE/libtensorflow-$TF_VERSION"
# The TF_/TFE_ symbols tfjs-node 4.22.0's binding (binding/*.cc, *.h) calls. Checked up front so a
# wrong wheel fails here with a symbol name rather than at first use of an op.
REQUIRED_SYMBOLS="TFE_ContextListDevices TFE_DeleteContext TFE_DeleteContextOptions TFE_DeleteOp
TFE_DeleteTensorHandle TFE_Execute TFE_NewContext TFE_NewContextOptions TFE_NewOp TFE_NewTensorHandle
TFE_OpAddInput TFE_OpSetAttrBool TFE_OpSetAttrBoolList TFE_OpSetAttrFloat TFE_OpSetAttrFloatList
TFE_OpSetAttrInt TFE_OpSetAttrIntList TFE_OpSetAttrShape TFE_OpSetAttrString TFE_OpSetAttrType
TFE_TensorHandleCopyToDevice TFE_TensorHandleDataType TFE_TensorHandleDim TFE_TensorHandleNumDims
TFE_TensorHandleResolve TF_AllocateTensor TF_DataTypeSize TF_DeleteBuffer TF_DeleteDeviceList
TF_DeleteGraph TF_DeleteSession TF_DeleteSessionOptions TF_DeleteStatus TF_DeleteTensor
TF_DeviceListCount TF_DeviceListName TF_DeviceListType TF_Dim TF_GetCode TF_GraphOperationByName
TF_LoadSessionFromSavedModel TF_Message TF_NewBuffer TF_NewBufferFromString TF_NewGraph
TF_NewSessionOptions TF_NewStatus TF_NewTensor TF_NumDims TF_SessionRun TF_TensorByteSize
TF_TensorData TF_TensorElementCount TF_TensorType TF_Version"

# Defined dynamic symbols of a library, without their version suffix (TF exports TF_Version@@tensorflow).
defined_symbols() { for lib in "$@"; do nm -D --defined-only "$lib"; done | awk '{print $3}' | sed 's/@.*//' | sort -u; }

if [[ ! -f "$LIBTF/.complete" ]]; then
  log "fetching libtensorflow $TF_VERSION from the tensorflow-cpu wheel on PyPI"
  rm -rf "$LIBTF"
  TMPWORK="$(mktemp -d "$CACHE/tmp.XXXXXX")"
  # Pinned by hash; the platform/python flags make pip pick the same wheel whatever the local
  # Python is (we only unzip it).
  python3 -m pip download --quiet --disable-pip-version-check --no-cache-dir --no-deps --only-binary=:all: \
    --require-hashes -r "$HERE/libtensorflow-requirements.txt" \
    --python-version 3.11 --implementation cp --platform manylinux2014_x86_64 \
    -d "$TMPWORK/wheel" || die "pip download of tensorflow-cpu==$TF_VERSION failed (is PyPI reachable?)"
  WHEEL="$(ls "$TMPWORK"/wheel/tensorflow_cpu-"$TF_VERSION"-*.whl 2>/dev/null | head -n1)"
  [[ -n "$WHEEL" ]] || die "pip reported success but no tensorflow_cpu-$TF_VERSION wheel is in $TMPWORK/wheel"
  python3 - "$WHEEL" "$TMPWORK/out" <<'PY' || die "unpacking $WHEEL failed"
import os, shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
libs = {"tensorflow/libtensorflow_cc.so.2", "tensorflow/libtensorflow_framework.so.2"}
# Only the C API headers and the (header-only) TString implementation they include.
inc = "tensorflow/include/"
inc_dirs = ("tensorflow/c/", "tensorflow/core/platform/ctstring", "tensorflow/tsl/c/",
            "tensorflow/tsl/platform/ctstring")
found = set()
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name in libs:
            dest = os.path.join(out, "lib", os.path.basename(name))
        elif name.startswith(inc) and name.endswith(".h") and name[len(inc):].startswith(inc_dirs):
            dest = os.path.join(out, "include", name[len(inc):])
        else:
            continue
        found.add(name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(name) as src, open(dest, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        if name in libs:
            os.chmod(dest, 0o755)
missing = [l for l in libs if l not in found]
if missing:
    sys.exit(f"wheel lacks {missing}")
for h in ("tensorflow/c/c_api.h", "tensorflow/c/eager/c_api.h"):
    if not os.path.exists(os.path.join(out, "include", h)):
        sys.exit(f"wheel lacks header {h}")
PY
  # The binding links both libraries; 2.12.1 exports all of these from libtensorflow_cc.so.2
  # (newer wheels move some TF_Tensor/TF_Status ones to libtensorflow_framework.so.2).
  defined_symbols "$TMPWORK/out/lib/libtensorflow_cc.so.2" "$TMPWORK/out/lib/libtensorflow_framework.so.2" >"$TMPWORK/defined.txt"
  missing=""
  for s in $REQUIRED_SYMBOLS; do grep -qx "$s" "$TMPWORK/defined.txt" || missing+=" $s"; done
  [[ -z "$missing" ]] || die "libtensorflow of tensorflow-cpu $TF_VERSION does not export:$missing"
  log "nm -D: all $(wc -w <<<"$REQUIRED_SYMBOLS") TF_/TFE_ symbols the binding uses are exported by libtensorflow $TF_VERSION"
  # binding.gyp links -ltensorflow -ltensorflow_framework. The linker records the SONAMEs
  # (libtensorflow_cc.so.2, libtensorflow_framework.so.2), which the binding's rpath
  # $ORIGIN/../../deps/lib then finds at run time.
  ln -s libtensorflow_cc.so.2 "$TMPWORK/out/lib/libtensorflow.so"
  ln -s libtensorflow_framework.so.2 "$TMPWORK/out/lib/libtensorflow_framework.so"
  touch "$TMPWORK/out/.complete"
  mv "$TMPWORK/out" "$LIBTF"
  rm -rf "$TMPWORK"; TMPWORK=""
else
  log "libtensorflow $TF_VERSION: cached"
fi

# ---------------------------------------------------------------- 2. build tfjs-node
BUILT="$CACHE/$KEY"
if [[ ! -f "$BUILT/.complete" ]]; then
  log "building @tensorflow/tfjs-node $TFJS_NODE_VERSION against libtensorflow $TF_VERSION"
  rm -rf "$BUILT"
  TMPWORK="$(mktemp -d "$CACHE/tmp.XXXXXX")"
  STAGE="$TMPWORK/stage"
  mkdir -p "$STAGE"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$STAGE/"
  # --ignore-scripts: the package's install.js would try storage.googleapis.com.
  (cd "$STAGE" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2) ||
    die "npm ci of the tfjs-node staging project failed (is the npm registry reachable?)"
  PKG="$STAGE/node_modules/@tensorflow/tfjs-node"
  [[ "$(node -p "require('$PKG/package.json').version")" == "$TFJS_NODE_VERSION" ]] ||
    die "staging installed an unexpected tfjs-node version"

  # Hard links: the 580 MB of libraries exist once on disk however many trees use them.
  mkdir -p "$PKG/deps"
  cp -al "$LIBTF/lib" "$PKG/deps/lib" 2>/dev/null || cp -a "$LIBTF/lib" "$PKG/deps/lib"
  cp -a "$LIBTF/include" "$PKG/deps/include"

  # Node headers for node-gyp. Without --nodedir it would download them from nodejs.org.
  NODEDIR="${NORMCLIP_NODEDIR:-}"
  if [[ -z "$NODEDIR" ]]; then
    node_prefix="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
    for cand in "$(npm config get nodedir 2>/dev/null || true)" "$node_prefix" /usr /usr/local \
                "$HOME/.cache/node-gyp/$(node -p process.versions.node)"; do
      if [[ -n "$cand" && "$cand" != undefined && "$cand" != null && -f "$cand/include/node/node_api.h" ]]; then
        NODEDIR="$cand"; break
      fi
    done
  fi
  [[ -n "$NODEDIR" && -f "$NODEDIR/include/node/node_api.h" ]] ||
    die "Node headers (include/node/node_api.h) not found next to $(command -v node), in /usr or /usr/local; set NORMCLIP_NODEDIR to a directory containing include/node"
  # npm ships node-gyp; node-pre-gyp would also find it beside the node binary, but be explicit.
  NODE_GYP="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  [[ -f "$NODE_GYP" ]] || die "npm's bundled node-gyp not found at $NODE_GYP"
  log "node-gyp $(node "$NODE_GYP" --version 2>/dev/null) with Node headers from $NODEDIR/include/node"

  # Exactly what the package's install.js runs when given a custom libtensorflow:
  # `node-pre-gyp install --build-from-source` builds only the best Node-API version.
  (cd "$PKG" && npm_config_node_gyp="$NODE_GYP" npm_config_nodedir="$NODEDIR" \
      node ../../@mapbox/node-pre-gyp/bin/node-pre-gyp install --build-from-source \
      --nodedir="$NODEDIR" --loglevel=warn >"$TMPWORK/build.log" 2>&1) ||
    { tail -n 40 "$TMPWORK/build.log" >&2; die "building tfjs_binding.node failed (log above)"; }
  BINDING="$PKG/lib/napi-v$NAPI_BUILD/tfjs_binding.node"
  [[ -f "$BINDING" ]] || die "build finished but $BINDING is missing"
  rm -rf "$PKG"/build "$PKG"/build-tmp-napi-v*

  # Every TF symbol the built binding imports must be defined by the staged library.
  defined_symbols "$PKG/deps/lib/libtensorflow_cc.so.2" "$PKG/deps/lib/libtensorflow_framework.so.2" >"$TMPWORK/defined.txt"
  nm -D --undefined-only "$BINDING" | awk '{print $2}' | sed 's/@.*//' | grep -E '^TFE?_' | sort -u >"$TMPWORK/needed.txt"
  unresolved="$(comm -23 "$TMPWORK/needed.txt" "$TMPWORK/defined.txt" | tr '\n' ' ')"
  [[ -z "$unresolved" ]] || die "tfjs_binding.node imports symbols libtensorflow does not export: $unresolved"
  log "tfjs_binding.node imports $(wc -l <"$TMPWORK/needed.txt") TF_/TFE_ symbols, all exported by libtensorflow $TF_VERSION"

  # LD_BIND_NOW: resolve every symbol at load, so a missing one fails here, not mid-training.
  (cd "$STAGE" && LD_BIND_NOW=1 node "$HERE/verify.cjs" "$STAGE" >&2) ||
    die "the freshly built tfjs-node does not load or compute correctly in the staging tree"

  # The staging copies of tfjs (~280 MB) were only needed for that check: the project install below
  # takes tfjs-node and its non-tfjs dependencies and uses the project's own tfjs.
  find "$STAGE/node_modules/@tensorflow" -mindepth 1 -maxdepth 1 ! -name tfjs-node -exec rm -rf {} +
  touch "$STAGE/.complete"
  mv "$STAGE" "$BUILT"
  rm -rf "$TMPWORK"; TMPWORK=""
else
  log "tfjs-node build $KEY: cached"
fi

# ---------------------------------------------------------------- 3. install into the project
log "installing into node_modules/@tensorflow/tfjs-node"
DEST_TMP="$(dirname "$DEST")/.tfjs-node.tmp.$$"
rm -rf "$DEST_TMP"
cp -al "$BUILT/node_modules/@tensorflow/tfjs-node" "$DEST_TMP" 2>/dev/null ||
  { rm -rf "$DEST_TMP"; cp -a "$BUILT/node_modules/@tensorflow/tfjs-node" "$DEST_TMP"; }
mkdir -p "$DEST_TMP/node_modules"
# Its runtime dependencies (node-pre-gyp, google-protobuf, ...) nested under it; @tensorflow/* is
# left out on purpose so that it resolves the project's single copy of tfjs.
for entry in "$BUILT"/node_modules/* "$BUILT"/node_modules/.[!.]*; do
  [[ -e "$entry" ]] || continue
  case "$(basename "$entry")" in
    @tensorflow | .bin | .package-lock.json) continue ;;
  esac
  cp -al "$entry" "$DEST_TMP/node_modules/" 2>/dev/null || cp -a "$entry" "$DEST_TMP/node_modules/"
done
rm -rf "$DEST"
mv "$DEST_TMP" "$DEST"
DEST_TMP=""

out="$(cd "$PROJECT" && LD_BIND_NOW=1 node "$HERE/verify.cjs" "$PROJECT" --shared 2>&1)" ||
  die "installed, but the check from $PROJECT fails: $out"
echo "$KEY" >"$DEST/$STAMP_NAME"
log "$out"
log "done in $((SECONDS - START))s (cache: $CACHE, $(du -sh "$CACHE" 2>/dev/null | cut -f1))"
