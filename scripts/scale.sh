#!/usr/bin/env bash
# The scale benchmark: fresh devnets for every combination of data-source count, model and
# update encoding, and one markdown table of what each round cost. Every figure comes from
# the devnet's summary JSON:
#
#   interval ms    block_interval_ms: the genesis's target interval (sized to a round on this
#                  machine unless INTERVAL_MS is set)
#   s/block        seconds_per_block: mining start until the observer is BLOCKS higher, / BLOCKS
#   mined/height   blocks_mined / height: more blocks than heights means the miners forked
#   updates/block  submissions in the canonical chain / height (the devnet's data sources)
#   bytes/block    bytes_per_block: mean canonical encoding of the run's blocks
#   wire/node      wire_bytes_per_node_per_round: transport bytes each node received per block
#   wire ×         wire/node ÷ bytes/block (a node that received every update once and the
#                  block's header and ids would be near 1)
#   validate ms    validation_ms_per_block: time each node spent checking submissions and
#                  blocks per block, averaged over the nodes (the nodes of a devnet share
#                  pure results such as a verified ring signature, so this is the protocol's
#                  per-node cost with each signature checked once per process)
#   accuracy       test_accuracy of the observer's model at the final head
#
#   scripts/scale.sh                                   # the default matrix below
#   SOURCES="4 16" MODELS="softmax" ENCODINGS="i32 i8" BLOCKS=10 scripts/scale.sh
#   INTERVAL_MS=200 SOURCES=100 MODELS=softmax ENCODINGS=i32 scripts/scale.sh   # a fixed interval
#
# MODELS: `softmax` (breast-cancer, softmax regression, 62 parameters), `mlp100k` (digits,
# an MLP with 1333 hidden units: 100k parameters), `mlp1m` (digits, 13333 hidden units:
# 1M parameters). A run that fails prints `fail` in its row (its stderr is kept in $WORK
# when KEEP=1). Uses the release binary of cargo's target dir if present (or LEARNCHAIN_BIN), else builds
# it.
set -euo pipefail
BLOCKS="${BLOCKS:-20}"
SOURCES="${SOURCES:-4 16 32 100}"
MODELS="${MODELS:-softmax mlp100k mlp1m}"
ENCODINGS="${ENCODINGS:-i32 i8}"
TIMEOUT_S="${TIMEOUT_S:-900}"
# Empty: each devnet sizes its block interval to a round on this machine.
INTERVAL_MS="${INTERVAL_MS:-}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/release-bin.sh
source "$ROOT/scripts/release-bin.sh"
command -v jq >/dev/null || { echo "scale.sh needs jq" >&2; exit 1; }
WORK="$(mktemp -d -t learnchain-scale-XXXXXX)"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

model_flags() {
  case "$1" in
    softmax) echo "--dataset breast-cancer" ;;
    mlp100k) echo "--dataset digits --hidden 1333" ;;
    mlp1m) echo "--dataset digits --hidden 13333" ;;
    *) echo "unknown model $1 (softmax, mlp100k, mlp1m)" >&2; return 1 ;;
  esac
}

echo "learnchain devnet, $BLOCKS blocks per run, 2 miners, $(nproc) cores"
echo
echo "| sources | model | encoding | interval ms | s/block | mined/height | updates/block | bytes/block | wire/node | wire × | validate ms | accuracy |"
echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for model in $MODELS; do
  flags=$(model_flags "$model")
  for enc in $ENCODINGS; do
    for n in $SOURCES; do
      out="$WORK/$model-$enc-$n.json"
      interval=${INTERVAL_MS:+--block-interval-ms $INTERVAL_MS}
      # shellcheck disable=SC2086
      if "$BIN" devnet --blocks "$BLOCKS" --data-sources "$n" $flags $interval --update-encoding "$enc" \
          --timeout-s "$TIMEOUT_S" --summary-json "$out" >"$WORK/$model-$enc-$n.out" 2>"$WORK/$model-$enc-$n.err"; then
        jq -r --arg n "$n" --arg m "$model" '
          "| \($n) | \($m) | \(.update_encoding) | \(.block_interval_ms) | \(.seconds_per_block * 100 | round / 100) | \(.blocks_mined)/\(.height) | \(.submissions / .height * 10 | round / 10) | \(.bytes_per_block | round) | \(.wire_bytes_per_node_per_round | round) | \(.wire_bytes_per_node_per_round / .bytes_per_block * 100 | round / 100) | \(.validation_ms_per_block * 10 | round / 10) | \(.test_accuracy * 1000 | round / 10)% |"' "$out"
      else
        echo "| $n | $model | $enc | | fail | | | | | | | |"
      fi
    done
  done
done
