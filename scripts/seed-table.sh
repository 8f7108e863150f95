#!/usr/bin/env bash
# The README's side-by-side table: every seed spec on every backend named, one thread, in one
# sitting, then one markdown row per spec from the results records.
#
#   bash scripts/seed-table.sh [BACKENDS] [OUT]
#
# BACKENDS defaults to native,burn,candle,tract,tch (tch needs a release build with `--features tch`
# and the libtorch environment the README gives); OUT (default target/seed-table) keeps each
# spec's results.json, so the table can be printed again without re-running.
set -euo pipefail
cd "$(dirname "$0")/.."
backends=${1:-native,burn,candle,tract,tch}
out=${2:-target/seed-table}
for spec in mlp rnn vae cnn; do
  ./target/release/dlbench run "specs/$spec.yaml" --backends "$backends" --threads 1 \
    --out "$out/$spec"
done
python3 - "$backends" "$out" <<'PY'
import json, sys
backends, out = sys.argv[1].split(","), sys.argv[2]

def fmt(ns):
    if ns is None:
        return "-"
    for unit, scale in (("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"

cpu = None
print("| spec | what | " + " | ".join(backends) + " |")
print("|---|---|" + "---|" * len(backends))
for spec in ("mlp", "rnn", "vae", "cnn"):
    record = json.load(open(f"{out}/{spec}/results.json"))
    cpu = record["environment"]["cpu"]
    runs = {r["backend"]: r for r in record["runs"]}
    def cell(backend, pick):
        run = runs.get(backend)
        if run is None or run["status"] != "ok":
            return run["status"] if run else "absent"
        return fmt(pick(run))
    def infer(batch):
        return lambda r: next((i["median_ns"] for i in r["inference"] if i["batch"] == batch), None)
    rows = (
        ("train step b32", lambda r: (r.get("training") or {}).get("step_median_ns")),
        ("inference b1", infer(1)),
        ("inference b32", infer(32)),
    )
    for what, pick in rows:
        print(f"| {spec} | {what} | " + " | ".join(cell(b, pick) for b in backends) + " |")
print(f"\nCPU: {cpu}; medians of one run each, one thread.")
PY
