#!/usr/bin/env bash
# Test accuracy after BLOCKS blocks (default 30) of a devnet with SOURCES data sources
# (default 10) on DATASET (default breast-cancer), of which 0, 1, 2 or 3 are adversaries,
# for every aggregation rule against each attack. Prints a markdown table (one row per
# rule and attack, one column per adversary count), as in the README.
#
#   scripts/robustness.sh                       # the full table (about 100 devnet runs)
#   RULES="mean median" ATTACKS="sign-flip" scripts/robustness.sh
#   PLOT=robustness.svg scripts/robustness.sh   # also robustness.csv and a bar chart
#
# With PLOT=FILE.svg (or .png) the table is also written as CSV beside it (FILE.csv; a
# failed run is an empty cell) and drawn by `learnchain plot` as grouped bars, one group
# per rule and attack; the printed table is the same.
#
# Every run is a fresh devnet with the default privacy (ε = 2 at δ = 1e-5, DP-SGD); the
# adversaries are the last data sources. Uses the release binary of cargo's target dir if present (or
# LEARNCHAIN_BIN), else builds it.
set -euo pipefail
BLOCKS="${BLOCKS:-30}"
SOURCES="${SOURCES:-10}"
DATASET="${DATASET:-breast-cancer}"
RULES="${RULES:-mean median trimmed-mean:0.3 krum:3 multi-krum:3,4 bulyan:1 geometric-median:10 l-nearest:5}"
ATTACKS="${ATTACKS:-sign-flip sign-flip:10 scale:10 gaussian:1}"
COUNTS="${COUNTS:-0 1 2 3}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/release-bin.sh
source "$ROOT/scripts/release-bin.sh"
PLOT="${PLOT:-}"
if [ -n "$PLOT" ]; then
  case "$PLOT" in *.svg|*.png) ;; *) echo "PLOT=$PLOT: the file name must end in .svg or .png" >&2; exit 1 ;; esac
  CSV="${PLOT%.*}.csv"
  : >"$CSV" # fails now, not after the runs, when the directory is missing
fi
WORK="$(mktemp -d -t learnchain-robust-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

run() { # run RULE ATTACK COUNT -> accuracy in percent, or "fail"
  local out="$WORK/summary.json"
  rm -f "$out"
  if "$BIN" devnet --blocks "$BLOCKS" --data-sources "$SOURCES" --dataset "$DATASET" \
      --aggregation "$1" --adversary "$2" --adversaries "$3" --summary-json "$out" >/dev/null 2>"$WORK/err"; then
    sed -n 's/.*"test_accuracy": *\([0-9.eE-]*\).*/\1/p' "$out" | awk '{ printf "%.1f", $1 * 100 }'
  else
    echo "fail"
  fi
}

header="| rule | attack |"
rule_line="|---|---|"
for c in $COUNTS; do header="$header $c adv. |"; rule_line="$rule_line---|"; done
echo "test accuracy (%) after $BLOCKS blocks, $SOURCES data sources on $DATASET"
echo
echo "$header"
echo "$rule_line"
if [ -n "$PLOT" ]; then
  csv_line="rule / attack"
  for c in $COUNTS; do csv_line="$csv_line,$c adv."; done
  echo "$csv_line" >"$CSV"
fi
for rule in $RULES; do
  clean="" # the 0-adversary run is the same for every attack
  for attack in $ATTACKS; do
    line="| $rule | $attack |"
    csv_line="\"$rule / $attack\"" # rules such as multi-krum:3,4 hold commas
    for c in $COUNTS; do
      if [ "$c" = 0 ] && [ -n "$clean" ]; then acc="$clean"; else acc=$(run "$rule" "$attack" "$c"); fi
      [ "$c" = 0 ] && clean="$acc"
      line="$line $acc |"
      if [ "$acc" = fail ]; then csv_line="$csv_line,"; else csv_line="$csv_line,$acc"; fi
    done
    echo "$line"
    [ -z "$PLOT" ] || echo "$csv_line" >>"$CSV"
  done
done
if [ -n "$PLOT" ]; then
  "$BIN" plot --input "$CSV" --output "$PLOT" --bars \
    --title "test accuracy after $BLOCKS blocks, $SOURCES data sources on $DATASET" \
    --x-label "rule / attack" --y-label "test accuracy (%)"
  echo "chart: $PLOT (table: $CSV)" >&2
fi
