#!/usr/bin/env bash
# Times `learnchain model export` and `learnchain predict` on a model of about a million
# parameters: a devnet trains digits with one hidden layer of 13333 units (999,985
# parameters) for BLOCKS blocks (default 1), then each command runs RUNS times (default 3)
# and the script prints the file size and every wall time.
#
#   scripts/model-bench.sh            (HIDDEN=1000,900 for a two-hidden-layer model of 974,910)
#
# Uses the release binary of cargo's target dir if present, else builds it.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/release-bin.sh
source "$ROOT/scripts/release-bin.sh"
HIDDEN="${HIDDEN:-13333}"
BLOCKS="${BLOCKS:-1}"
RUNS="${RUNS:-3}"
WORK="$(mktemp -d -t learnchain-model-bench-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

"$BIN" devnet --blocks "$BLOCKS" --dataset digits --hidden "$HIDDEN" --data-dir "$WORK/devnet" >/dev/null 2>&1
"$BIN" data export --data builtin:digits --out "$WORK/digits.csv" 2>/dev/null
seconds() { # seconds CMD... -> wall seconds of one run
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
exports=() predicts=()
for i in $(seq 1 "$RUNS"); do
  exports+=("$(seconds "$BIN" model export --data-dir "$WORK/devnet/observer" --out "$WORK/model-$i.safetensors")")
  predicts+=("$(seconds "$BIN" predict --model "$WORK/model-1.safetensors" --data "csv:$WORK/digits.csv" --out "$WORK/predictions-$i.csv")")
done
params=$("$BIN" predict --model "$WORK/model-1.safetensors" --data builtin:digits --json | jq -r '.model.parameters')
bytes=$(stat -c %s "$WORK/model-1.safetensors")
echo "model: digits, hidden $HIDDEN, $params parameters, file $bytes bytes"
echo "model export --data-dir (s): ${exports[*]}"
echo "predict, 1797 examples from CSV, with --out (s): ${predicts[*]}"
