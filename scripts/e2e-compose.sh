#!/usr/bin/env bash
# End-to-end test of the container cluster (docker-compose.yml), driven only through the
# published JSON-RPC ports on 127.0.0.1, docker and docker-compose:
#
#   1. a fresh cluster (`scripts/cluster.sh up`, after removing any old `learnchain` project
#      and its volumes); the bootnode reaches height 10; all 7 nodes agree on the head and
#      model hash; every node has at least 3 peers though each was told only of the bootnode
#      (Kademlia); every data source registered itself (open enrolment); every node's
#      /metrics answers on its published port with the height its RPC reports;
#   2. miner-2 and datasource-4 stopped: the chain still grows by 3 blocks; started again:
#      both catch up with the bootnode's head (timed);
#   3. datasource-3 cut off the network (`docker network disconnect`) while the others mine 4
#      blocks; reconnected: it converges on the same head (timed);
#   4. the bootnode stops; datasource-5 joins (docker-compose.join.yml) knowing only miner-1:
#      it finds at least 3 peers, registers, syncs, and a block carries one of its submissions;
#      the bootnode starts again and all 8 nodes agree;
#   5. everything is torn down with its volumes (also on failure: trap on EXIT).
#
#   scripts/e2e-compose.sh
#
# Environment: LEARNCHAIN_SKIP_BUILD=1 reuses the static binary already built;
# E2E_KEEP=1 leaves the cluster running at the end (for a look around); E2E_PARTITION=SERVICE
# is the node cut off in step 3 (default datasource-3; miner-1 works too); E2E_JOIN=0 skips
# step 4. Every wait has a deadline and polls every second. On a failure it prints the check,
# the status of every node and the last 50 log lines of each container, and exits 1. The last
# line is `e2e-compose: N passed, M failed`. Needs docker, docker-compose (or `docker
# compose`), curl and jq.
set -euo pipefail

# Settings and helpers (compose, container_of, container_state, PORT, NODES, host_bin, ...).
# shellcheck source=scripts/cluster.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cluster.sh"
CLUSTER="$ROOT/scripts/cluster.sh"
PARTITION="${E2E_PARTITION:-datasource-3}"
JOIN="${E2E_JOIN:-1}"
NETWORK="${COMPOSE_PROJECT_NAME}_learnchain"
BASE_NODES=(bootnode miner-1 miner-2 datasource-1 datasource-2 datasource-3 datasource-4)

for tool in docker curl jq; do
  command -v "$tool" >/dev/null 2>&1 || { echo "e2e-compose: needs $tool" >&2; exit 1; }
done

PASSED=0
FAILED=0
partitioned=0
E2E_START=$(date +%s)
now_ms() { date +%s%3N; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }   # ms -> "12.3"

# ---- reporting --------------------------------------------------------------------------

pass() { PASSED=$((PASSED + 1)); echo "ok   $PASSED  $*"; }

diagnostics() {
  echo "---- status of every node"
  cmd_status || true
  local n id
  for n in "${NODES[@]}"; do
    id="$(container_of "$n")"
    [ -n "$id" ] || continue
    echo "---- last 50 log lines of $n ($(container_state "$n"))"
    docker logs --tail 50 "$id" 2>&1 || true
  done
}

fail() {
  FAILED=$((FAILED + 1))
  echo "FAIL $*" >&2
  diagnostics >&2
  exit 1
}

cleanup() {
  local rc=$?
  if [ "$FAILED" -eq 0 ] && [ "$rc" -ne 0 ]; then
    # Died outside a check (set -e): count it as a failure and show why.
    FAILED=1
    echo "FAIL unexpected error (exit $rc)" >&2
    diagnostics >&2 || true
  fi
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    # Do not leave a node cut off the network.
    [ "$partitioned" = 0 ] || docker network connect --alias "$PARTITION" "$NETWORK" "$(container_of "$PARTITION")" || true
    echo "E2E_KEEP=1: the cluster keeps running (scripts/cluster.sh down --volumes to remove it)"
  else
    "$CLUSTER" down --volumes >/dev/null 2>&1 || echo "warning: teardown failed" >&2
  fi
  echo "e2e-compose: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ] && [ "$rc" -eq 0 ] || exit 1
}
trap cleanup EXIT

# ---- node queries -----------------------------------------------------------------------

LC=""   # the host-side learnchain binary (set once the cluster is built)

# status_json SERVICE: its `learnchain status --json`, over the published port; if that does
# not answer (a container cut off the network loses its port mapping), from inside the
# container. Empty when the node does not answer either way.
status_json() {
  local s="$1" id
  "$LC" status --rpc "127.0.0.1:${PORT[$s]}" --json --timeout-s 2 2>/dev/null && return 0
  id="$(container_of "$s")"
  [ -n "$id" ] || return 0
  docker exec "$id" /learnchain status --rpc 127.0.0.1:8545 --json --timeout-s 2 2>/dev/null || true
}

field() { jq -r ".$1 // empty" 2>/dev/null || true; }   # field NAME < json
height_of() { status_json "$1" | field height; }
head_of() { status_json "$1" | field head_hash; }

# rpc METHOD PARAMS: a JSON-RPC call to $RPC_NODE (the bootnode unless set); prints .result.
RPC_NODE=bootnode
rpc() { rpc_to "$RPC_NODE" "$@"; }
# rpc_to SERVICE METHOD PARAMS: the same to SERVICE.
rpc_to() {
  curl -sf -m 5 -X POST -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":${3:-[]}}" \
    "http://127.0.0.1:${PORT[$1]}" | jq -c '.result // empty'
}
# peers_of SERVICE: how many peers it has (net_peers).
peers_of() { rpc_to "$1" net_peers | jq 'length' 2>/dev/null || true; }
# all_have_peers MIN SERVICE...: every one of them has at least MIN peers.
all_have_peers() {
  local min="$1" s n; shift
  for s in "$@"; do n="$(peers_of "$s")"; [ -n "$n" ] && [ "$n" -ge "$min" ] || return 1; done
}
block_ts() { rpc chain_getBlock "[$1]" | field timestamp_ms; }

# agree SERVICE...: succeeds when all of them answer with the same head and model hash.
agree() {
  local s v first="" 
  for s in "$@"; do
    v="$(status_json "$s" | jq -r '"\(.head_hash) \(.model_hash)"' 2>/dev/null || true)"
    [ -n "$v" ] && [ "$v" != "null null" ] || return 1
    if [ -z "$first" ]; then first="$v"; elif [ "$v" != "$first" ]; then return 1; fi
  done
}

# wait_until TIMEOUT_S COMMAND...: polls every second until COMMAND succeeds; fails after the deadline.
wait_until() {
  local timeout="$1"; shift
  local deadline=$(( $(date +%s) + timeout ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 1
  done
}

height_at_least() { local h; h="$(height_of "$1")"; [ -n "$h" ] && [ "$h" -ge "$2" ]; }
same_head_as_bootnode() {
  local b s h
  b="$(head_of bootnode)"; [ -n "$b" ] || return 1
  for s in "$@"; do h="$(head_of "$s")"; [ "$h" = "$b" ] || return 1; done
}
members_active() { local n; n="$(rpc members_list | field active)"; [ -n "$n" ] && [ "$n" -ge "$1" ]; }

# ---- 1. a fresh cluster -----------------------------------------------------------------

echo "== 1. fresh cluster (project $COMPOSE_PROJECT_NAME)"
"$CLUSTER" down --volumes >/dev/null 2>&1 || true
"$CLUSTER" up || fail "cluster.sh up: the cluster did not come up healthy"
LC="$(host_bin)"
pass "cluster up: all 7 nodes healthy"

wait_until 180 height_at_least bootnode 10 || fail "the bootnode did not reach height 10 within 180 s"
boot_started_ms=$(date -d "$(docker inspect -f '{{.State.StartedAt}}' "$(container_of bootnode)")" +%s%3N)
ts10="$(block_ts 10)"
[ -n "$ts10" ] || fail "chain_getBlock 10 on the bootnode"
first10_ms=$(( ts10 - boot_started_ms ))
pass "bootnode at height ≥ 10 ($(secs "$first10_ms") s from the bootnode's start to block 10)"

wait_until 60 agree "${BASE_NODES[@]}" || fail "the 7 nodes do not agree on head and model hash within 60 s"
phase1_h="$(height_of bootnode)"
pass "all 7 nodes agree: height $phase1_h head $(head_of bootnode | cut -c1-12)"

wait_until 60 all_have_peers 3 "${BASE_NODES[@]}" \
  || fail "not every node found 3 peers within 60 s: $(for s in "${BASE_NODES[@]}"; do printf '%s=%s ' "$s" "$(peers_of "$s")"; done)"
peer_counts="$(for s in "${BASE_NODES[@]}"; do printf '%s=%s ' "$s" "$(peers_of "$s")"; done)"
pass "a mesh, not a star: every node has at least 3 peers ($peer_counts)"

acc="$(status_json bootnode | field accuracy)"
[ -n "$acc" ] || fail "the bootnode reports no test accuracy"
pass "bootnode reports test accuracy $acc"

# The trained model leaves the cluster: exported from the bootnode's RPC and fetched from a
# miner's GET /model.safetensors at the same height, the bytes are the same, and predict
# reads the file back.
MODEL_DIR="$(mktemp -d -t learnchain-e2e-model-XXXXXX)"
"$LC" model export --rpc "127.0.0.1:${PORT[bootnode]}" --height "$phase1_h" --out "$MODEL_DIR/bootnode.safetensors" 2>/dev/null \
  || fail "model export --rpc from the bootnode at height $phase1_h"
curl -sf -m 10 "http://127.0.0.1:${PORT[miner-1]}/model.safetensors?height=$phase1_h" -o "$MODEL_DIR/miner-1.safetensors" \
  || fail "GET /model.safetensors?height=$phase1_h on miner-1"
cmp -s "$MODEL_DIR/bootnode.safetensors" "$MODEL_DIR/miner-1.safetensors" \
  || fail "the model files of height $phase1_h from the bootnode and miner-1 differ"
model_acc="$("$LC" predict --model "$MODEL_DIR/bootnode.safetensors" --data builtin:breast-cancer --split test --json | field accuracy)"
[ -n "$model_acc" ] || fail "predict could not read the exported model"
rm -rf "$MODEL_DIR"
pass "model of height $phase1_h: the bootnode's export and miner-1's GET /model.safetensors are the same bytes; predict gives test accuracy $model_acc"

# Every node's metrics answer on its published port with the height its RPC reports, and
# prometheus.yml scrapes exactly those ports.
metrics_height() {
  curl -sf -m 5 "http://127.0.0.1:${METRICS_PORT[$1]}/metrics" | awk '$1 == "learnchain_chain_head_height" { print $2 }'
}
metrics_match_rpc() {
  local s m r
  for s in "${BASE_NODES[@]}"; do
    m="$(metrics_height "$s")"; r="$(height_of "$s")"
    [ -n "$m" ] && [ "$m" = "$r" ] || return 1
  done
}
for s in "${BASE_NODES[@]}"; do
  grep -q "127.0.0.1:${METRICS_PORT[$s]}\"\]" "$ROOT/prometheus.yml" || fail "prometheus.yml does not scrape $s at 127.0.0.1:${METRICS_PORT[$s]}"
done
# A block may land between the two reads: retried until both agree.
wait_until 30 metrics_match_rpc \
  || fail "metrics and RPC heights differ: $(for s in "${BASE_NODES[@]}"; do printf '%s=%s/%s ' "$s" "$(metrics_height "$s")" "$(height_of "$s")"; done)"
pass "every node's /metrics answers on 127.0.0.1 with its height ($(for s in "${BASE_NODES[@]}"; do printf '%s=%s ' "$s" "$(metrics_height "$s")"; done)); prometheus.yml scrapes each"

members_active 4 || fail "fewer than 4 members registered: $(rpc members_list)"
pass "4 data sources registered themselves (open enrolment)"

ts1="$(block_ts 1)"; tsh="$(block_ts "$phase1_h")"
blocks_per_min=$(awk -v n="$((phase1_h - 1))" -v ms="$((tsh - ts1))" 'BEGIN { printf "%.1f", (ms > 0 ? 60000 * n / ms : 0) }')

# ---- 2. two nodes stopped, restarted ----------------------------------------------------

echo "== 2. stop miner-2 and datasource-4"
compose stop miner-2 datasource-4 >/dev/null 2>&1 || fail "docker-compose stop miner-2 datasource-4"
h0="$(height_of bootnode)"
wait_until 120 height_at_least bootnode $((h0 + 3)) || fail "the chain did not grow by 3 blocks (from $h0) with miner-2 and datasource-4 stopped"
pass "chain grows without miner-2 and datasource-4: $h0 → $(height_of bootnode)"

t0=$(now_ms)
compose start miner-2 datasource-4 >/dev/null 2>&1 || fail "docker-compose start miner-2 datasource-4"
wait_until 120 same_head_as_bootnode miner-2 datasource-4 || fail "miner-2 and datasource-4 did not catch up within 120 s"
catchup_ms=$(( $(now_ms) - t0 ))
pass "miner-2 and datasource-4 caught up in $(secs "$catchup_ms") s (height $(height_of bootnode))"

# ---- 3. a network partition -------------------------------------------------------------

echo "== 3. cut $PARTITION off the network"
pid="$(container_of "$PARTITION")"
[ -n "$pid" ] || fail "no container for $PARTITION"
others=()
for s in "${BASE_NODES[@]}"; do [ "$s" = "$PARTITION" ] || others+=("$s"); done
docker network disconnect "$NETWORK" "$pid" || fail "docker network disconnect $NETWORK $PARTITION"
partitioned=1
hp="$(height_of bootnode)"
wait_until 120 height_at_least bootnode $((hp + 4)) || fail "the rest of the cluster did not mine 4 blocks (from $hp) while $PARTITION was cut off"
hi="$(height_of "$PARTITION")"   # over docker exec: its published port is gone while it is cut off
hb="$(height_of bootnode)"
[ -n "$hi" ] && [ "$hi" -lt "$hb" ] || fail "$PARTITION does not look cut off (its height '$hi', the bootnode's $hb)"
pass "the rest mined $hp → $hb while $PARTITION stayed at $hi"

t0=$(now_ms)
docker network connect --alias "$PARTITION" "$NETWORK" "$pid" || fail "docker network connect $NETWORK $PARTITION"
partitioned=0
wait_until 180 agree "$PARTITION" "${others[@]}" || fail "$PARTITION did not converge within 180 s of reconnecting"
converge_ms=$(( $(now_ms) - t0 ))
port_back="yes"
"$LC" status --rpc "127.0.0.1:${PORT[$PARTITION]}" --timeout-s 2 >/dev/null 2>&1 || port_back="no (answered over docker exec)"
pass "$PARTITION converged $(secs "$converge_ms") s after reconnecting (height $(height_of bootnode)); published port back: $port_back"

# ---- 4. a data source joins -------------------------------------------------------------

if [ "$JOIN" = 1 ]; then
  echo "== 4. the bootnode stops; datasource-5 joins through miner-1"
  compose stop bootnode >/dev/null 2>&1 || fail "docker-compose stop bootnode"
  RPC_NODE=miner-1
  t0=$(now_ms)
  "$CLUSTER" join >/dev/null || fail "cluster.sh join: datasource-5 did not become healthy"
  wait_until 60 all_have_peers 3 datasource-5 || fail "datasource-5 found only $(peers_of datasource-5) peers through miner-1 within 60 s"
  pass "with the bootnode down, datasource-5 found $(peers_of datasource-5) peers through miner-1"
  wait_until 120 members_active 5 || fail "datasource-5 did not register within 120 s: $(rpc members_list)"
  join_reg_ms=$(( $(now_ms) - t0 ))
  pass "datasource-5 registered $(secs "$join_reg_ms") s after starting"

  # One of its submissions in a block: the round tag it logs must be in that round's block.
  included() {
    local line round tag
    while read -r line; do
      round="$(sed -n 's/.*round=\([0-9]*\).*/\1/p' <<<"$line")"
      tag="$(sed -n 's/.*tag=\([0-9a-f]*\).*/\1/p' <<<"$line")"
      [ -n "$round" ] && [ -n "$tag" ] || continue
      rpc chain_getBlock "[$round]" | jq -e --arg t "$tag" '[.submissions[].round_tag | startswith($t)] | any' >/dev/null 2>&1 \
        && { echo "$round"; return 0; }
    done < <(docker logs "$(container_of datasource-5)" 2>&1 | grep 'submitted update' | tail -n 5)
    return 1
  }
  wait_until 90 included >/dev/null || fail "no submission of datasource-5 made it into a block within 90 s"
  pass "a block carries datasource-5's submission (round $(included)), with the bootnode down"

  compose start bootnode >/dev/null 2>&1 || fail "docker-compose start bootnode"
  RPC_NODE=bootnode
  wait_until 120 agree "${NODES[@]}" || fail "the 8 nodes do not agree on head and model hash within 120 s of the bootnode's restart"
  pass "the bootnode is back and all 8 nodes agree: height $(height_of bootnode) head $(head_of bootnode | cut -c1-12)"
fi

# ---- figures ----------------------------------------------------------------------------

echo "== status"
cmd_status
image_bytes="$(docker image inspect -f '{{.Size}}' "$LEARNCHAIN_IMAGE")"
echo "== figures"
echo "image size:                 $(awk -v b="$image_bytes" 'BEGIN { printf "%.1f MB", b / 1e6 }') ($LEARNCHAIN_IMAGE)"
echo "static binary (stripped):   $(awk -v b="$(stat -c %s "$CONTEXT_BIN")" 'BEGIN { printf "%.1f MB", b / 1e6 }')"
final_h="$(height_of bootnode)"; tsf="$(block_ts "$final_h")"
rate_all=$(awk -v n="$((final_h - 1))" -v ms="$((tsf - ts1))" 'BEGIN { printf "%.1f", (ms > 0 ? 60000 * n / ms : 0) }')
echo "blocks per minute:          $blocks_per_min (blocks 1 → $phase1_h, block timestamps); $rate_all over the whole run (1 → $final_h)"
echo "first 10 blocks:            $(secs "$first10_ms") s (bootnode start → block 10)"
echo "catch-up after restart:     $(secs "$catchup_ms") s (miner-2, datasource-4)"
echo "convergence after partition: $(secs "$converge_ms") s ($PARTITION)"
[ "$JOIN" = 1 ] && echo "join, start → registered:   $(secs "$join_reg_ms") s (datasource-5)"
echo "peers after start:          $peer_counts"
echo "e2e wall time:              $(( $(date +%s) - E2E_START )) s"
