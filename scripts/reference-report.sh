#!/usr/bin/env bash
# The reference report under reports/reference/: the four seed specs (mlp, cnn, rnn, vae) on
# every backend of a `tch` build (native, burn, candle, tract, tch), one and two threads, each
# measured in PROCESSES interleaved worker processes, then one `dlbench report` over the four
# records. The records are kept (reports/reference/records/<spec>.json), so the report can be
# rewritten without running anything: `dlbench report reports/reference/records/{mlp,cnn,rnn,vae}.json --out
# reports/reference`.
#
#   bash scripts/reference-report.sh [PROCESSES=3] [BACKENDS=native,burn,candle,tract,tch]
#
# Needs the libtorch environment of scripts/test.sh (scripts/setup-torch.sh, then the exports
# the README gives); builds dlbench in release with `--features tch`.
set -euo pipefail
cd "$(dirname "$0")/.."
processes=${1:-3}
backends=${2:-native,burn,candle,tract,tch}
cargo build --release --features tch --quiet
bin=target/release/dlbench
runs=target/reference-runs
dest=reports/reference
mkdir -p "$dest/records"
for spec in mlp cnn rnn vae; do
    "$bin" run "specs/$spec.yaml" --backends "$backends" --threads 1,2 \
        --processes "$processes" --out "$runs/$spec"
    cp "$runs/$spec/results.json" "$dest/records/$spec.json"
done
rm -rf "$dest/charts"
"$bin" report "$dest"/records/{mlp,cnn,rnn,vae}.json --out "$dest"
