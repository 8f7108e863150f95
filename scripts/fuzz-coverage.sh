#!/usr/bin/env bash
# Coverage-guided fuzzing of every dlbench parser with libFuzzer (cargo-fuzz on nightly Rust),
# the same targets as `dlbench-fuzz`, seeded with its corpora and dictionaries. Not part of the
# test command (which runs the stable mutation loop): this is the long run, a million inputs per
# target by default. Failing inputs land in target/fuzz-coverage/artifacts/<target>/.
#
#   bash scripts/fuzz-coverage.sh                  # every target, RUNS=1000000 each
#   RUNS=100000 bash scripts/fuzz-coverage.sh spec # one target
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-1000000}"
TARGETS="${*:-spec csv npy npz safetensors pickle onnx}"
OUT=target/fuzz-coverage

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz-coverage: cargo-fuzz needs a nightly toolchain (rustup toolchain install nightly);" >&2
    echo "without one, run the stable loop: cargo run --release -p dlbench-fuzz -- all" >&2
    exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

cargo run --quiet --release -p dlbench-fuzz -- all --export "$OUT/seeds"
for target in $TARGETS; do
    mkdir -p "$OUT/corpus/$target" "$OUT/artifacts/$target"
    cp -n "$OUT/seeds/$target/"* "$OUT/corpus/$target/"
    echo "== $target: $RUNS inputs"
    # -a: debug assertions and overflow checks, as in the test build; no sanitizer (the
    # parsers are safe Rust), for speed. The caps are the issue's: 1 GiB, 10 s.
    cargo +nightly fuzz run --fuzz-dir crates/dlbench-fuzz/fuzz --sanitizer none -a "$target" \
        "$OUT/corpus/$target" -- \
        -runs="$RUNS" -rss_limit_mb=1024 -malloc_limit_mb=1024 -timeout=10 \
        -dict="$OUT/seeds/$target.dict" -artifact_prefix="$OUT/artifacts/$target/" \
        -print_final_stats=1
done
