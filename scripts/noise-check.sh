#!/usr/bin/env bash
# Does `dlbench compare` tell a real slowdown from noise on this machine? Runs the MLP on three
# test backends that compute exactly what the f64 reference does: test-twin-a, test-twin-b, and
# test-twin-slowed (10% slower on purpose), in N interleaved worker processes each, TRIALS
# times; compares each run's twins against test-twin-a and counts the verdicts. The slowed twin
# should be `slower` every time, test-twin-b `no significant change` (nearly) every time.
#
#   bash scripts/noise-check.sh [TRIALS=10] [PROCESSES=20] [extra `dlbench run` flags...]
#
# Builds dlbench (release) with the `test-backends` feature, which has the twins.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-10}
processes=${2:-20}
shift $(($# < 2 ? $# : 2))
cargo build --release --features test-backends --quiet
bin=target/release/dlbench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
lscpu | sed -n 's/^Model name: *//p' | head -1 | sed 's/^/CPU: /'
for isa in avx512f avx2; do
    grep -q -w "$isa" /proc/cpuinfo && { echo "widest SIMD: $isa"; break; }
done
echo "trials: $trials, processes: $processes, run flags: ${*:-(none)}"
for t in $(seq 1 "$trials"); do
    "$bin" run specs/mlp.yaml --backends test-twin-a,test-twin-b,test-twin-slowed \
        --processes "$processes" --out "$out/$t" "$@" >"$out/$t.log" 2>&1 ||
        { cat "$out/$t.log"; exit 1; }
    "$bin" compare "$out/$t/results.json" --baseline test-twin-a >"$out/$t.compare"
    echo "trial $t:"
    grep -E '^test-twin-(b|slowed)' "$out/$t.compare" | sed 's/^/  /'
done
echo
echo "verdicts over $trials trials (measurement: verdict count):"
cat "$out"/*.compare | grep -E '^test-twin-(b|slowed)' |
    sed -E 's/^(test-twin-[a-z]+ cpu x[0-9]+: [a-z]+( step| batch [0-9]+)?) .*  (slower|faster|no significant change)$/\1: \3/' |
    sort | uniq -c
