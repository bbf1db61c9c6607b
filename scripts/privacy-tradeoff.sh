#!/usr/bin/env bash
# Measures the accuracy-against-privacy trade-off of learnchain devnet: for each ε budget,
# RUNS fresh devnets (2 miners, SOURCES DP-SGD data sources, breast-cancer unless DATASET
# is set) of BLOCKS blocks, each planning its noise multiplier with the PLD accountant (the
# data sources' default) so every data source stays within the budget at δ = 1e-5. Prints
# one Markdown table row per budget: σ, the largest ε any data source spent, and the
# observer's test accuracy (mean, min, max over runs).
#
#   scripts/privacy-tradeoff.sh [EPSILONS...]     (default: 0.25 0.5 1 2 4 8)
#   RUNS=3 BLOCKS=20 DATASET=breast-cancer SOURCES=4 HIDDEN=0 PARTITION=iid scripts/privacy-tradeoff.sh
#   DATASET=digits SOURCES=10 HIDDEN=64,32 PARTITION=dirichlet:0.5 scripts/privacy-tradeoff.sh 1 3
#   PLOT=tradeoff.png scripts/privacy-tradeoff.sh   # also tradeoff.csv and a line chart
#
# With PLOT=FILE.svg (or .png) the table is also written as CSV beside it (FILE.csv) and
# drawn by `learnchain plot`: test accuracy (mean, min, max) and ε spent against the ε
# budget on a logarithmic axis; the printed table is the same.
#
# Uses the release binary of cargo's target dir if present, else builds it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/release-bin.sh
source "$ROOT/scripts/release-bin.sh"
RUNS="${RUNS:-3}"
BLOCKS="${BLOCKS:-20}"
DATASET="${DATASET:-breast-cancer}"
SOURCES="${SOURCES:-4}"
HIDDEN="${HIDDEN:-0}"
PARTITION="${PARTITION:-iid}"
EPSILONS=("$@")
[ ${#EPSILONS[@]} -gt 0 ] || EPSILONS=(0.25 0.5 1 2 4 8)
PLOT="${PLOT:-}"
CSV=""
if [ -n "$PLOT" ]; then
  case "$PLOT" in *.svg|*.png) ;; *) echo "PLOT=$PLOT: the file name must end in .svg or .png" >&2; exit 1 ;; esac
  CSV="${PLOT%.*}.csv"
  echo "ε budget,σ,ε spent (max over sources),test accuracy mean (%),test accuracy min (%),test accuracy max (%)" >"$CSV"
fi
WORK="$(mktemp -d -t learnchain-tradeoff-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

echo "dataset $DATASET, $SOURCES sources ($PARTITION), hidden $HIDDEN, $BLOCKS blocks, $RUNS runs per budget, δ = 1e-5"
echo
echo "| ε budget | σ | ε spent (max over sources) | test accuracy mean | min | max |"
echo "|---:|---:|---:|---:|---:|---:|"
for eps in "${EPSILONS[@]}"; do
  rows=()
  for run in $(seq 1 "$RUNS"); do
    out="$WORK/$eps-$run.json"
    if ! "$BIN" devnet --blocks "$BLOCKS" --dataset "$DATASET" --epsilon-budget "$eps" \
        --data-sources "$SOURCES" --hidden "$HIDDEN" --partition "$PARTITION" \
        --data-dir "$WORK/$eps-$run" --summary-json "$out" >"$WORK/$eps-$run.log" 2>&1; then
      echo "devnet failed for ε = $eps (run $run); log:" >&2
      tail -20 "$WORK/$eps-$run.log" >&2
      exit 1
    fi
    jq -e '.nodes_agree' "$out" >/dev/null || { echo "nodes disagree for ε = $eps run $run" >&2; exit 1; }
    rows+=("$(jq -r '[.noise_multiplier, .epsilon_spent_max, .test_accuracy] | @tsv' "$out")")
  done
  printf '%s\n' "${rows[@]}" | awk -v eps="$eps" -v csv="$CSV" '
    { s = $1; if ($2 > e) e = $2; a[NR] = $3; sum += $3 }
    END {
      min = a[1]; max = a[1]
      for (i = 1; i <= NR; i++) { if (a[i] < min) min = a[i]; if (a[i] > max) max = a[i] }
      printf "| %s | %.3f | %.3f | %.2f%% | %.2f%% | %.2f%% |\n", eps, s, e, 100 * sum / NR, 100 * min, 100 * max
      if (csv != "") printf "%s,%.3f,%.3f,%.2f,%.2f,%.2f\n", eps, s, e, 100 * sum / NR, 100 * min, 100 * max >> csv
    }'
done
if [ -n "$PLOT" ]; then
  "$BIN" plot --input "$CSV" --output "$PLOT" --log-x \
    --columns "test accuracy mean (%),test accuracy min (%),test accuracy max (%),ε spent (max over sources)" \
    --right "ε spent (max over sources)" \
    --title "$DATASET, $SOURCES sources ($PARTITION), hidden $HIDDEN, $BLOCKS blocks, $RUNS runs per budget" \
    --x-label "ε budget (δ = 1e-5)" --y-label "test accuracy (%)" --y2-label "ε spent"
  echo "chart: $PLOT (table: $CSV)" >&2
fi
