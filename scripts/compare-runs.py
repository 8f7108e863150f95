#!/usr/bin/env python3
"""Do two `dlbench run` records of the same spec agree within their own intervals?

    python3 scripts/compare-runs.py A/results.json B/results.json

For every backend x device x thread count that is `ok` in both, and for each inference batch
size and the training step, checks that run A's median lies in run B's 95% interval and run B's
median in run A's (issue 3: "repeated runs agree on medians within their intervals"). Prints
one row per comparison and exits 1 when any median falls outside the other run's interval.
Standard library only.
"""

import json
import sys


def timings(record):
    """(backend, device, threads, what) -> (median_ns, [lo, hi]) for every ok run."""
    out = {}
    for run in record["runs"]:
        if run["status"] != "ok":
            continue
        key = (run["backend"], run["device"], run["threads"])
        for entry in run["inference"]:
            out[key + (f"infer b{entry['batch']}",)] = (
                entry["median_ns"],
                entry["median_ci95_ns"],
            )
        training = run.get("training")
        if training:
            step = training["step_time"]
            out[key + (f"train b{training['batch']}",)] = (
                step["median_ns"],
                step["median_ci95_ns"],
            )
    return out


def outside_by(value, interval):
    """How far `value` lies outside `interval`, relative to the value (0 when inside)."""
    lo, hi = interval
    if value < lo:
        return (lo - value) / value
    if value > hi:
        return (value - hi) / value
    return 0.0


def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.4g} {unit}"
    return f"{ns:.4g} ns"


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    a, b = (timings(json.load(open(path))) for path in argv[1:])
    keys = [k for k in a if k in b]
    if not keys:
        print("no timing measured in both records", file=sys.stderr)
        return 2
    header = ("run", "median A", "95% A", "median B", "95% B", "B-A", "A in B", "B in A")
    rows = []
    failures = 0
    for key in keys:
        (ma, ia), (mb, ib) = a[key], b[key]
        a_in_b, b_in_a = outside_by(ma, ib), outside_by(mb, ia)
        failures += (a_in_b > 0) + (b_in_a > 0)
        verdict = lambda off: "yes" if off == 0 else f"NO ({100 * off:.1f}% out)"
        rows.append((
            f"{key[0]} {key[1]} x{key[2]} {key[3]}",
            fmt(ma),
            f"[{fmt(ia[0])}, {fmt(ia[1])}]",
            fmt(mb),
            f"[{fmt(ib[0])}, {fmt(ib[1])}]",
            f"{100 * (mb - ma) / ma:+.1f}%",
            verdict(a_in_b),
            verdict(b_in_a),
        ))
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    print(f"{2 * len(keys) - failures} of {2 * len(keys)} medians lie in the other run's interval")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
