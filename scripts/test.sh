#!/usr/bin/env bash
# Every check CI makes, in the order that fails fastest. `npm test` runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== rustfmt, clippy, tsc"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
npx tsc --noEmit -p tsconfig.json

echo "== cargo test (release: the property tests run large tensors)"
cargo test -p normclip-core --release --quiet

echo "== vitest"
npx vitest run
