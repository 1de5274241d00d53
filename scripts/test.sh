#!/usr/bin/env bash
# Every check CI makes, in the order that fails fastest. `npm test` runs this; it ends with one
# line counting every test that ran: `N passed, N failed, N skipped`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target

echo "== rustfmt, clippy, tsc"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
npx tsc --noEmit -p tsconfig.json

echo "== cargo test (release: the property tests run large tensors)"
cargo test -p normclip-core --release --quiet 2>&1 | tee target/cargo-test.log

echo "== vitest"
npx vitest run --reporter=default --reporter=json --outputFile.json=target/vitest-results.json

node scripts/test-summary.mjs target/cargo-test.log target/vitest-results.json
