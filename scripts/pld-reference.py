#!/usr/bin/env python3
"""Reference ε from Google's dp-accounting PLD accountant, and the comparison with ours.

Run through scripts/pld-compare.sh, which makes the virtualenv and installs dp-accounting;
this script installs nothing, and needs dp-accounting only for `compare`.

  pld-reference.py grid [--extra]
      print the comparison grid, one JSON object {"q", "sigma", "steps", "delta"} a line:
      q in {0.001, 0.01, 0.05, 0.1}, sigma in {0.8, 1.1, 2, 4}, steps in {100, 1000, 10000},
      delta = 1e-5; with --extra also some cells off that grid (q = 1, single steps, up to
      10^6 steps, other deltas). It is the input of
      `cargo run --release -p learnchain-privacy --example pld_grid`.
  pld-reference.py compare OURS.jsonl [--tolerance REL] [--below-rel REL] [--below-abs ABS]
      compute dp-accounting's ε for every cell of OURS.jsonl (the example's output) and print
      a table: q, σ, steps, δ, dp-accounting ε, ours, relative difference, and the times.
      Exits 1 if any cell differs by more than --tolerance (default 0.02) relative, or if ours
      is below dp-accounting's by more than below-rel·ε + below-abs (default: the float
      error stated in crates/privacy/src/pld.rs, 1e-5·ε + 1e-8).

dp-accounting is used as documented: PLDAccountant(NeighboringRelation.ADD_OR_REMOVE_ONE)
with its default value_discretization_interval (1e-4), composing
SelfComposedDpEvent(PoissonSampledDpEvent(q, GaussianDpEvent(σ)), steps), then
get_epsilon(δ).
"""

import argparse
import json
import sys
import time

GRID_Q = (0.001, 0.01, 0.05, 0.1)
GRID_SIGMA = (0.8, 1.1, 2.0, 4.0)
GRID_STEPS = (100, 1000, 10000)
GRID_DELTA = 1e-5

# Off the grid: full batches, single steps, long runs, other deltas.
EXTRA = (
    (1.0, 5.0, 10, 1e-5),
    (1.0, 2.0, 1000, 1e-5),
    (0.5, 1.0, 100, 1e-5),
    (0.8, 3.0, 50, 1e-3),
    (0.3, 0.7, 1000, 1e-5),
    (0.01, 1.1, 1, 1e-5),
    (0.1, 0.5, 1, 1e-3),
    (0.001, 10.0, 1, 1e-5),
    (0.02, 0.6, 3000, 1e-6),
    (0.05, 2.0, 5000, 1e-6),
    (0.004266666666666667, 1.0, 14063, 1e-5),
    (0.002, 4.0, 20000, 1e-7),
    (0.0001, 0.6, 100000, 1e-6),
    (0.001, 0.8, 100000, 1e-7),
    (0.01, 1.1, 100000, 1e-5),
    (0.25, 10.0, 100000, 1e-5),
    (0.001, 1.0, 1000000, 1e-6),
    (0.01, 1.1, 1000000, 1e-5),
)

# The float error pld.rs states for ε (PLD_EPSILON_ERROR_REL, PLD_EPSILON_ERROR_ABS).
STATED_REL = 1e-5
STATED_ABS = 1e-8


def grid(extra):
    for q in GRID_Q:
        for sigma in GRID_SIGMA:
            for steps in GRID_STEPS:
                yield {"q": q, "sigma": sigma, "steps": steps, "delta": GRID_DELTA}
    if extra:
        for q, sigma, steps, delta in EXTRA:
            yield {"q": q, "sigma": sigma, "steps": steps, "delta": delta}


def dp_accounting_epsilon(q, sigma, steps, delta):
    import dp_accounting
    from dp_accounting.pld import pld_privacy_accountant

    acc = pld_privacy_accountant.PLDAccountant(
        dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE)
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps)
    acc.compose(event)
    return acc.get_epsilon(delta)


def dp_accounting_version():
    try:
        from importlib import metadata
        return metadata.version("dp-accounting")
    except Exception:  # pylint: disable=broad-except
        return "?"


def compare(path, tolerance, below_rel, below_abs):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    print(f"dp-accounting {dp_accounting_version()}; target |rel diff| <= {tolerance:g};"
          f" ours may be below by at most {below_rel:g}*eps + {below_abs:g}")
    header = (f"{'q':>7} {'sigma':>5} {'steps':>7} {'delta':>6} {'dp-accounting':>16}"
              f" {'ours':>16} {'rel diff':>10} {'ref s':>6} {'ours ms':>8} {'grid':>6}")
    print(header)
    print("-" * len(header))
    worst = 0.0
    worst_below = 0.0
    outside = []
    below = []
    for r in rows:
        t0 = time.perf_counter()
        ref = dp_accounting_epsilon(r["q"], r["sigma"], r["steps"], r["delta"])
        ref_s = time.perf_counter() - t0
        ours = r["epsilon"]
        rel = (ours - ref) / ref if ref > 0 else (0.0 if ours == ref else float("inf"))
        worst = max(worst, abs(rel))
        worst_below = max(worst_below, -rel)
        flag = ""
        if abs(rel) > tolerance:
            outside.append(r)
            flag += " OUTSIDE"
        if ours < ref - (below_rel * ref + below_abs):
            below.append(r)
            flag += " BELOW"
        print(f"{r['q']:>7g} {r['sigma']:>5g} {r['steps']:>7d} {r['delta']:>6g} {ref:>16.10g}"
              f" {ours:>16.10g} {rel:>10.2e} {ref_s:>6.2f} {r.get('ms', float('nan')):>8.1f}"
              f" {r.get('interval', float('nan')):>6g}{flag}")
        sys.stdout.flush()
    print("-" * len(header))
    print(f"cells: {len(rows)}; max |rel diff|: {worst:.2e}; largest relative amount below:"
          f" {max(worst_below, 0.0):.2e}; outside {tolerance:g}: {len(outside)};"
          f" below by more than the stated error: {len(below)}")
    return 0 if not outside and not below else 1


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grid")
    g.add_argument("--extra", action="store_true")
    c = sub.add_parser("compare")
    c.add_argument("ours")
    c.add_argument("--tolerance", type=float, default=0.02)
    c.add_argument("--below-rel", type=float, default=STATED_REL)
    c.add_argument("--below-abs", type=float, default=STATED_ABS)
    a = p.parse_args()
    if a.cmd == "grid":
        for cell in grid(a.extra):
            print(json.dumps(cell))
        return 0
    return compare(a.ours, a.tolerance, a.below_rel, a.below_abs)


if __name__ == "__main__":
    sys.exit(main())
