#!/usr/bin/env bash
# Runs every dlbench test on a fresh machine: formatting, lints, then the whole workspace.
# It installs whatever the tests need (nothing beyond cargo yet; libtorch and the ONNX test
# data join here when their backends land). `.ci/run` calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

# --features test-backends registers the faulty `test-...` backends that tests/workers.rs runs.
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked --features test-backends -- -D warnings

echo "== cargo test"
cargo test --workspace --locked --features test-backends
