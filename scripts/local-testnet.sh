#!/usr/bin/env bash
# Runs a small learnchain network as separate processes on this machine, the way a person
# would by hand: one miner, two data sources (breast-cancer, 2 shards) and one observer.
# Prints the observer's head and test accuracy over JSON-RPC until the chain reaches
# HEIGHT (default 10), then each data source's privacy spend, and stops every node with
# SIGTERM.
#
#   scripts/local-testnet.sh [HEIGHT]
#
# Uses the release binary of cargo's target dir if present, else builds it. Work files go to a temp dir.
set -euo pipefail
HEIGHT="${1:-10}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/release-bin.sh
source "$ROOT/scripts/release-bin.sh"
DIR="$(mktemp -d -t learnchain-local-XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

rpc() { # rpc PORT METHOD [PARAMS]
  curl -s -X POST -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":${3:-[]}}" "http://127.0.0.1:$1"
}

# 1. Member keys for the data sources, and a genesis that lists them.
# (Unencrypted here; give --passphrase-file to seal a key.)
"$BIN" keys new "$DIR/source-1/member.key" >/dev/null 2>&1
"$BIN" keys new "$DIR/source-2/member.key" >/dev/null 2>&1
"$BIN" genesis new --out "$DIR/genesis.toml" --name local --dataset breast-cancer \
  --member-key "$DIR/source-1/member.key" --member-key "$DIR/source-2/member.key" \
  --quorum 2 --block-interval-ms 1000

# 2. The miner listens on a fixed port; everybody else bootstraps from it.
"$BIN" run --name miner --role miner --genesis "$DIR/genesis.toml" --data-dir "$DIR/miner" \
  --listen /ip4/127.0.0.1/tcp/40333 --rpc 127.0.0.1:18545 >"$DIR/miner.log" 2>&1 &
PIDS+=($!)
sleep 0.5
MINER_ID=$(rpc 18545 node_info | sed -n 's/.*"peer_id":"\([^"]*\)".*/\1/p')
BOOT="/ip4/127.0.0.1/tcp/40333/p2p/$MINER_ID"
for i in 1 2; do
  "$BIN" run --name "source-$i" --role data-source --genesis "$DIR/genesis.toml" --data-dir "$DIR/source-$i" \
    --data builtin:breast-cancer --shards 2 --shard $((i - 1)) --listen /ip4/127.0.0.1/tcp/0 \
    --bootnode "$BOOT" --rpc "127.0.0.1:$((18546 + i))" --epsilon-budget 8 >"$DIR/source-$i.log" 2>&1 &
  PIDS+=($!)
done
"$BIN" run --name observer --role observer --genesis "$DIR/genesis.toml" --data-dir "$DIR/observer" \
  --data builtin:breast-cancer --split test --listen /ip4/127.0.0.1/tcp/0 --bootnode "$BOOT" \
  --rpc 127.0.0.1:18546 >"$DIR/observer.log" 2>&1 &
PIDS+=($!)

# 3. Watch the observer.
echo "nodes running; logs in $DIR"
last=-1
for _ in $(seq 1 600); do
  head=$(rpc 18546 chain_head || true)
  h=$(echo "$head" | sed -n 's/.*"height":\([0-9]*\).*/\1/p')
  if [ -n "$h" ] && [ "$h" != "$last" ]; then
    acc=$(rpc 18546 model_metrics | sed -n 's/.*"accuracy":\([0-9.]*\).*/\1/p')
    echo "height $h  accuracy ${acc:-n/a}"
    last=$h
  fi
  if [ -n "$h" ] && [ "$h" -ge "$HEIGHT" ]; then break; fi
  sleep 0.5
done
[ "$last" -ge "$HEIGHT" ] || { echo "did not reach height $HEIGHT" >&2; exit 1; }
for i in 1 2; do
  p=$(rpc $((18546 + i)) privacy_status)
  eps=$(echo "$p" | sed -n 's/.*"epsilon_spent":\([0-9.e-]*\).*/\1/p')
  rounds=$(echo "$p" | sed -n 's/.*"rounds_contributed":\([0-9]*\).*/\1/p')
  echo "source-$i: ε spent ${eps:-?} of 8 (δ = 1e-5) over ${rounds:-?} rounds"
done
# The registry the ring signatures are made over (the blocks never say which member sent
# which update; each submission shows only its round tag).
"$BIN" members list --rpc 127.0.0.1:18546
echo "reached height $last; stopping nodes"
