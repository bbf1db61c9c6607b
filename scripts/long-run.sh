#!/usr/bin/env bash
# The long-run benchmark: a chain of many blocks, and what it costs a node to follow it,
# to keep it and to join it late.
#
#   scripts/long-run.sh [--blocks N] [--model mlp100k|softmax] [--update-encoding ENC]
#                       [--prune K] [--json]
#
# 1. `learnchain devnet` (4 data sources, 2 miners) mines N blocks (default 1000) of the
#    model (default `mlp100k`: digits, an MLP of 1333 hidden units, 100k parameters;
#    `softmax`: breast-cancer, 62 parameters) with `--update-encoding ENC` updates
#    (default i8). An observer in a process of its own follows it from the start; its
#    resident memory is printed every 100 blocks.
# 2. When the devnet stops, the observer (an archive node) serves three newcomers, one
#    after the other, each with an empty data dir: `--sync snapshot`, `--sync full`, and
#    `--sync full --prune K` (default 256). Each is timed until its head is the observer's.
# 3. Printed: the observer's peak resident memory, the disk use of the archives (the
#    observer, with the side blocks it saw, split into bodies and index; the full-sync
#    newcomer, best chain only) and of the pruned node (and the pruned target: 1.2 × the
#    bodies it keeps plus one model), the two sync times and the full sync's import rate.
#    With --json the last line is one object with observer_rss_max_mib, archive_disk_mb,
#    archive_bodies_mb, archive_index_mb, full_sync_disk_mb, pruned_disk_mb,
#    pruned_budget_mb, snapshot_sync_s, full_sync_s, full_sync_blocks_per_s, blocks, model,
#    update_encoding.
#
# Uses the release binary of cargo's target dir if present (or LEARNCHAIN_BIN), else
# builds it. KEEP=1 keeps the work directory.
set -euo pipefail
BLOCKS=1000
MODEL=mlp100k
ENCODING=i8
PRUNE=256
JSON=0
while [ $# -gt 0 ]; do
  case "$1" in
    --blocks) BLOCKS="$2"; shift 2 ;;
    --model) MODEL="$2"; shift 2 ;;
    --update-encoding) ENCODING="$2"; shift 2 ;;
    --prune) PRUNE="$2"; shift 2 ;;
    --json) JSON=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "long-run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$MODEL" in
  mlp100k) MODEL_FLAGS=(--dataset digits --hidden 1333); DATASET=digits ;;
  softmax) MODEL_FLAGS=(--dataset breast-cancer); DATASET=breast-cancer ;;
  *) echo "long-run.sh: --model mlp100k or softmax, not $MODEL" >&2; exit 2 ;;
esac
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/release-bin.sh
source "$ROOT/scripts/release-bin.sh"
for tool in jq curl; do command -v "$tool" >/dev/null || { echo "long-run.sh needs $tool" >&2; exit 1; }; done
WORK="$(mktemp -d -t learnchain-long-run-XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] && echo "kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT
say() { [ "$JSON" = 1 ] && echo "$*" >&2 || echo "$*"; }

rpc() { # rpc ADDR METHOD
  curl -sf -m 5 -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":null}" "http://$1" | jq -c '.result'
}
height() { rpc "$1" chain_head 2>/dev/null | jq -r '.height // 0' 2>/dev/null || echo 0; }
head_hash() { rpc "$1" chain_head 2>/dev/null | jq -r '.hash // ""' 2>/dev/null || echo ""; }
rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# Disk use: the blocks a directory holds (redb's file is sparse: its apparent size is larger).
disk_mb() { du -s -B1 "$1" | awk '{ printf "%.1f", $1 / 1e6 }'; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_rpc() { # wait_rpc ADDR PID
  for _ in $(seq 1 300); do
    rpc "$1" node_info >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "long-run.sh: the node behind $1 exited; its log:" >&2; tail -20 "$WORK"/*.log >&2; exit 1; }
    sleep 0.2
  done
  echo "long-run.sh: no RPC on $1" >&2; exit 1
}

# 1. The devnet, and an observer of it.
say "long-run: $BLOCKS blocks of $MODEL with $ENCODING updates, 4 data sources, $(nproc) cores"
"$BIN" devnet "${MODEL_FLAGS[@]}" --data-sources 4 --update-encoding "$ENCODING" --blocks "$BLOCKS" \
  --timeout-s $((BLOCKS * 30 + 120)) --data-dir "$WORK/net" --summary-json "$WORK/summary.json" \
  > "$WORK/devnet.log" 2>&1 &
DEVNET=$!
PIDS+=("$DEVNET")
MINER_RPC=""
for _ in $(seq 1 600); do
  MINER_RPC=$(awk '$1 == "miner-1" && $2 == "rpc" { sub("http://", "", $3); print $3 }' "$WORK/devnet.log")
  [ -n "$MINER_RPC" ] && break
  kill -0 "$DEVNET" 2>/dev/null || { echo "long-run.sh: the devnet exited:" >&2; tail -20 "$WORK/devnet.log" >&2; exit 1; }
  sleep 0.2
done
[ -n "$MINER_RPC" ] || { echo "long-run.sh: the devnet printed no RPC address" >&2; exit 1; }
MINER_ADDR=$(rpc "$MINER_RPC" node_info | jq -r '.listen_addrs[0]')
GENESIS="$WORK/net/genesis.toml"

start_node() { # start_node NAME ARGS... ; sets NODE_PID NODE_RPC NODE_ADDR
  local name="$1"; shift
  local port; port=$(free_port)
  "$BIN" run --name "$name" --role observer --genesis "$GENESIS" --data-dir "$WORK/$name" \
    --listen /ip4/127.0.0.1/tcp/0 --rpc "127.0.0.1:$port" --bootnode-timeout-s 0 "$@" \
    > "$WORK/$name.log" 2>&1 &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  NODE_RPC="127.0.0.1:$port"
  wait_rpc "$NODE_RPC" "$NODE_PID"
  NODE_ADDR=$(rpc "$NODE_RPC" node_info | jq -r '.listen_addrs[0]')
}

# The observer evaluates every block on the test split, as the devnet's own does.
start_node observer --bootnode "$MINER_ADDR" --sync full --data "builtin:$DATASET" --split test
OBS_PID=$NODE_PID OBS_RPC=$NODE_RPC OBS_ADDR=$NODE_ADDR
RSS_MAX=0
next=100
started=$(date +%s)
while kill -0 "$DEVNET" 2>/dev/null; do
  h=$(height "$OBS_RPC")
  rss=$(rss_mib "$OBS_PID")
  RSS_MAX=$(awk -v a="$RSS_MAX" -v b="$rss" 'BEGIN { print (b > a) ? b : a }')
  if [ "$h" -ge "$next" ]; then
    say "  height $h: observer resident memory $rss MiB ($(( $(date +%s) - started )) s)"
    next=$((next + 100))
  fi
  sleep 1
done
wait "$DEVNET" || { echo "long-run.sh: the devnet failed:" >&2; tail -20 "$WORK/devnet.log" >&2; exit 1; }
TOP=$(jq -r '.height' "$WORK/summary.json")
BYTES_PER_BLOCK=$(jq -r '.bytes_per_block' "$WORK/summary.json")
# The devnet's last blocks reach the observer before or just after the devnet stops.
for _ in $(seq 1 100); do [ "$(height "$OBS_RPC")" -ge "$TOP" ] && break; sleep 0.2; done
TOP=$(height "$OBS_RPC")
TOP_HASH=$(head_hash "$OBS_RPC")
RSS_MAX=$(awk -v a="$RSS_MAX" -v b="$(rss_mib "$OBS_PID")" 'BEGIN { print (b > a) ? b : a }')
say "  the observer is at height $TOP; peak resident memory $RSS_MAX MiB"
ARCHIVE_MB=$(disk_mb "$WORK/observer")
ARCHIVE_BODIES_MB=$(disk_mb "$WORK/observer/chain.blocks")
ARCHIVE_INDEX_MB=$(disk_mb "$WORK/observer/chain.redb")

# 2. Newcomers, synced from the observer.
join() { # join NAME ARGS... ; sets JOIN_S, the seconds until its head is the observer's
  local t0; t0=$(date +%s.%N)
  start_node "$@" --bootnode "$OBS_ADDR"
  local deadline=$(( $(date +%s) + BLOCKS * 2 + 300 ))
  until [ "$(head_hash "$NODE_RPC")" = "$TOP_HASH" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "long-run.sh: $1 did not reach height $TOP; its log:" >&2; tail -20 "$WORK/$1.log" >&2; exit 1; }
    kill -0 "$NODE_PID" 2>/dev/null || { echo "long-run.sh: $1 exited; its log:" >&2; tail -20 "$WORK/$1.log" >&2; exit 1; }
    sleep 0.1
  done
  JOIN_S=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  kill "$NODE_PID" 2>/dev/null || true
  wait "$NODE_PID" 2>/dev/null || true
}
join snapshot --sync snapshot
SNAPSHOT_S=$JOIN_S
SNAP_HEIGHT=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/snapshot.log" | grep -o 'snapshot installed.*height=[0-9]*' | grep -o 'height=[0-9]*' | head -1 || true)
say "  newcomer by snapshot: in sync after $SNAPSHOT_S s (${SNAP_HEIGHT:+snapshot at }${SNAP_HEIGHT:-no snapshot installed: synced in full})"
join full --sync full
FULL_S=$JOIN_S
FULL_RATE=$(awk -v n="$TOP" -v s="$FULL_S" 'BEGIN { printf "%.1f", n / s }')
say "  newcomer by full sync: in sync after $FULL_S s ($FULL_RATE blocks/s)"
# The full-sync newcomer is an archive of the best chain alone (the observer also keeps the
# side blocks it saw while the miners raced).
FULL_MB=$(disk_mb "$WORK/full")
join pruned --sync full --prune "$PRUNE"
PRUNED_S=$JOIN_S
PRUNED_MB=$(disk_mb "$WORK/pruned")
PARAMS=$(rpc "$OBS_RPC" model_get | jq -r '.weights | length')
KEPT=$(( TOP < PRUNE ? TOP : PRUNE ))
BUDGET_MB=$(awk -v k="$KEPT" -v b="$BYTES_PER_BLOCK" -v p="$PARAMS" 'BEGIN { printf "%.1f", 1.2 * (k * b + 4 * p) / 1e6 }')
say "  disk: the observer (an archive that followed live, side blocks included) $ARCHIVE_MB MB: bodies $ARCHIVE_BODIES_MB MB, index $ARCHIVE_INDEX_MB MB; an archive by full sync (best chain only, $TOP bodies of $BYTES_PER_BLOCK bytes) $FULL_MB MB"
say "  disk: --prune $PRUNE $PRUNED_MB MB (target ≤ $BUDGET_MB MB: 1.2 × $KEPT bodies of $BYTES_PER_BLOCK bytes + a model of $PARAMS parameters); its sync took $PRUNED_S s"
if [ "$JSON" = 1 ]; then
  jq -cn --argjson rss "$RSS_MAX" --argjson archive "$ARCHIVE_MB" --argjson pruned "$PRUNED_MB" \
    --argjson archive_bodies "$ARCHIVE_BODIES_MB" --argjson archive_index "$ARCHIVE_INDEX_MB" --argjson full_disk "$FULL_MB" \
    --argjson budget "$BUDGET_MB" --argjson snap "$SNAPSHOT_S" --argjson full "$FULL_S" \
    --argjson rate "$FULL_RATE" --argjson blocks "$TOP" --arg model "$MODEL" --arg enc "$ENCODING" \
    '{observer_rss_max_mib: $rss, archive_disk_mb: $archive, archive_bodies_mb: $archive_bodies, archive_index_mb: $archive_index,
      full_sync_disk_mb: $full_disk, pruned_disk_mb: $pruned, pruned_budget_mb: $budget,
      snapshot_sync_s: $snap, full_sync_s: $full, full_sync_blocks_per_s: $rate, blocks: $blocks,
      model: $model, update_encoding: $enc}'
fi
