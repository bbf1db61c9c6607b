#!/usr/bin/env bash
# Times the PLD accountant in release mode: one pld_epsilon call at q = 0.01, σ = 1.1,
# δ = 1e-5 for STEPS steps (default 100, 1000 and 10000; the target is under 100 ms for
# 10,000), REPEATS (default 20) calls each, median and minimum; the first call of the
# process also builds the erfcx table and the FFT plans.
#
#   scripts/pld-bench.sh [STEPS...]
#   scripts/pld-bench.sh --criterion      the criterion benchmark instead
#                                         (cargo bench -p learnchain-privacy --bench pld)
#
# CARGO_TARGET_DIR is honoured.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ "${1:-}" = "--criterion" ]; then
  exec cargo bench -p learnchain-privacy --bench pld
fi
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(100 1000 10000)
cargo build --release --quiet -p learnchain-privacy --example pld_grid
for t in "${STEPS[@]}"; do
  cargo run --release --quiet -p learnchain-privacy --example pld_grid -- time "$t" "${REPEATS:-20}"
done
