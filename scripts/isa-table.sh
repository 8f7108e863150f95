#!/usr/bin/env bash
# The README's instruction-set table: every seed workload's training step and batch-1 /
# batch-32 inference on native and libtorch, at 1 and 2 threads, each backend first on its own
# choice of instruction set, then both capped to AVX2 (DLBENCH_ISA=avx2 for native; oneDNN's,
# ATen's and MKL's own variables for libtorch). Medians of REPS runs of the step_loop example,
# interleaved (thread counts included) so that a noisy minute slows every configuration alike.
#
#   bash scripts/isa-table.sh [REPS]
#
# Needs the libtorch environment the README gives (`--features tch`). Prints a Markdown table,
# then each backend's gain from the second thread on the CNN and VAE training steps.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
# Only native and libtorch are timed: the pure-Rust frameworks stay out of the build.
cargo build --release --quiet -p dlbench-benchmarks --no-default-features --features tch \
  --example step_loop
bin=${CARGO_TARGET_DIR:-target}/release/examples/step_loop
samples=$(mktemp)
trap 'rm -f "$samples"' EXIT
for spec in mlp rnn vae cnn; do
  for what in train b1 b32; do
    steps=400
    [ "$spec" = cnn ] && steps=100
    [ "$what" = b1 ] && steps=2000
    for _ in $(seq "$reps"); do
      for threads in 1 2; do
        for run in native/own native/avx2 tch/own tch/avx2; do
          backend=${run%/*}
          caps=()
          if [ "${run#*/}" = avx2 ]; then
            caps=(DLBENCH_ISA=avx2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2
              ONEDNN_MAX_CPU_ISA=AVX2)
          fi
          median=$(env "${caps[@]}" "$bin" "$spec" "$what" "$backend" "$steps" "$threads" |
            grep -o 'median [0-9.]*' | cut -d' ' -f2)
          echo "$spec $what $threads $run $median" >>"$samples"
        done
      done
    done
  done
done
python3 - "$samples" <<'PY'
import collections, statistics, sys

runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    spec, what, threads, run, us = line.split()
    runs[spec, what, threads, run].append(float(us))

def median(*key):
    return statistics.median(runs[key])

def fmt(us):
    if us >= 1000:
        return f"{us / 1000:.3g} ms"
    return f"{us:.3g} us"

names = {"train": "train step b32", "b1": "inference b1", "b32": "inference b32"}
cols = ["native/own", "tch/own", "native/avx2", "tch/avx2"]
print("| spec | what | threads | native | libtorch | native AVX2 | libtorch AVX2 |")
print("|---|---|---|---|---|---|---|")
for spec in ["mlp", "rnn", "vae", "cnn"]:
    for what in ["train", "b1", "b32"]:
        for threads in ["1", "2"]:
            cells = [fmt(median(spec, what, threads, c)) for c in cols]
            print(f"| {spec} | {names[what]} | {threads} | " + " | ".join(cells) + " |")
print()
for spec in ["cnn", "vae"]:
    gains = ", ".join(
        f"{c} {median(spec, 'train', '1', c) / median(spec, 'train', '2', c):.2f}x" for c in cols
    )
    print(f"{spec} training step, 1 -> 2 threads: {gains}")
PY
