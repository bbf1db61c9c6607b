#!/usr/bin/env bash
# Test accuracy after BLOCKS blocks (default 30) of a devnet with SOURCES data sources
# (default 10) on DATASET (default breast-cancer), of which 0, 1, 2 or 3 are adversaries,
# for every aggregation rule against each attack. Prints a markdown table (one row per
# rule and attack, one column per adversary count), as in the README.
#
#   scripts/robustness.sh                       # the full table (about 100 devnet runs)
#   RULES="mean median" ATTACKS="sign-flip" scripts/robustness.sh
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
for rule in $RULES; do
  clean="" # the 0-adversary run is the same for every attack
  for attack in $ATTACKS; do
    line="| $rule | $attack |"
    for c in $COUNTS; do
      if [ "$c" = 0 ] && [ -n "$clean" ]; then acc="$clean"; else acc=$(run "$rule" "$attack" "$c"); fi
      [ "$c" = 0 ] && clean="$acc"
      line="$line $acc |"
    done
    echo "$line"
  done
done
