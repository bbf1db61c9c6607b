#!/usr/bin/env bash
# A learnchain cluster in docker containers (docker-compose.yml: a bootnode, 2 miners and 4
# data sources; docker-compose.join.yml: a 5th data source that joins later).
#
#   scripts/cluster.sh up [--no-build]     build the static binary and the image, start the
#                                          cluster, wait until every node is healthy, print status
#   scripts/cluster.sh status [--json]     one line (or one JSON object) per node, from its RPC
#   scripts/cluster.sh join                start datasource-5 (docker-compose.join.yml)
#   scripts/cluster.sh logs [ARGS...]      docker-compose logs ARGS... (e.g. -f --tail 50 miner-1)
#   scripts/cluster.sh down [--volumes]    stop and remove the containers (and the volumes)
#
# Environment:
#   COMPOSE_PROJECT_NAME      project name (default learnchain; the network is <project>_learnchain)
#   CARGO_TARGET_DIR          cargo's target dir (default ~/.cache/learnchain/target)
#   LEARNCHAIN_IMAGE          image tag (default learnchain:local)
#   LEARNCHAIN_SKIP_BUILD=1   same as --no-build: reuse the binary already built
#   LEARNCHAIN_RPC_<SERVICE>  host port of a node's JSON-RPC, e.g. LEARNCHAIN_RPC_MINER_1=9546
#                             (defaults 8545 bootnode, 8546-8547 miners, 8548-8552 data sources;
#                             always published on 127.0.0.1 only)
#   UP_TIMEOUT                seconds `up` and `join` wait for the nodes to be healthy (default 120)
#
# scripts/e2e-compose.sh sources this file for its settings and functions.
#
# No image is pulled: the image is FROM scratch around a statically linked binary built here.
# The `status` lines come from `learnchain status --rpc 127.0.0.1:PORT`, run on the host with
# the same static binary.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/learnchain/target}"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-learnchain}"
export LEARNCHAIN_IMAGE="${LEARNCHAIN_IMAGE:-learnchain:local}"
TRIPLE=x86_64-unknown-linux-gnu
BIN="$CARGO_TARGET_DIR/$TRIPLE/release/learnchain"
CONTEXT_BIN="$ROOT/target-docker/learnchain"   # the stripped copy the Dockerfile takes
UP_TIMEOUT="${UP_TIMEOUT:-120}"

# The nodes, in display order, and their published RPC ports (the same defaults and
# variables as the compose files).
NODES=(bootnode miner-1 miner-2 datasource-1 datasource-2 datasource-3 datasource-4 datasource-5)
BASE_SERVICES=(genesis bootnode miner-1 miner-2 datasource-1 datasource-2 datasource-3 datasource-4)
JOIN_SERVICE=datasource-5
declare -A PORT=(
  [bootnode]="${LEARNCHAIN_RPC_BOOTNODE:-8545}"
  [miner-1]="${LEARNCHAIN_RPC_MINER_1:-8546}"
  [miner-2]="${LEARNCHAIN_RPC_MINER_2:-8547}"
  [datasource-1]="${LEARNCHAIN_RPC_DATASOURCE_1:-8548}"
  [datasource-2]="${LEARNCHAIN_RPC_DATASOURCE_2:-8549}"
  [datasource-3]="${LEARNCHAIN_RPC_DATASOURCE_3:-8550}"
  [datasource-4]="${LEARNCHAIN_RPC_DATASOURCE_4:-8551}"
  [datasource-5]="${LEARNCHAIN_RPC_DATASOURCE_5:-8552}"
)
# Their published metrics ports (GET /metrics), as in the compose files and prometheus.yml.
declare -A METRICS_PORT=(
  [bootnode]="${LEARNCHAIN_METRICS_BOOTNODE:-9100}"
  [miner-1]="${LEARNCHAIN_METRICS_MINER_1:-9101}"
  [miner-2]="${LEARNCHAIN_METRICS_MINER_2:-9102}"
  [datasource-1]="${LEARNCHAIN_METRICS_DATASOURCE_1:-9103}"
  [datasource-2]="${LEARNCHAIN_METRICS_DATASOURCE_2:-9104}"
  [datasource-3]="${LEARNCHAIN_METRICS_DATASOURCE_3:-9105}"
  [datasource-4]="${LEARNCHAIN_METRICS_DATASOURCE_4:-9106}"
  [datasource-5]="${LEARNCHAIN_METRICS_DATASOURCE_5:-9107}"
)

die() { echo "cluster.sh: $*" >&2; exit 1; }
log() { echo "cluster.sh: $*" >&2; }

# docker-compose v1 (the Python one) or the `docker compose` plugin. Both compose files are
# always passed: compose puts the list of files into each container's config hash, so a
# different list would recreate running containers.
if command -v docker-compose >/dev/null 2>&1; then
  DC=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
  DC=(docker compose)
else
  die "neither docker-compose nor docker compose is installed"
fi
COMPOSE=("${DC[@]}" -p "$COMPOSE_PROJECT_NAME" -f "$ROOT/docker-compose.yml" -f "$ROOT/docker-compose.join.yml")
compose() { "${COMPOSE[@]}" "$@"; }

# The host-side binary for `status` (static, so it runs anywhere): the build output, or the
# stripped copy in the build context.
host_bin() {
  if [ -x "$BIN" ]; then echo "$BIN"
  elif [ -x "$CONTEXT_BIN" ]; then echo "$CONTEXT_BIN"
  else die "no learnchain binary: run scripts/cluster.sh up (or build $BIN)"
  fi
}

# Container id of a service ("" if it has none), running or not.
container_of() {
  docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
    --filter "label=com.docker.compose.service=$1" | head -n1
}

# "running (healthy)", "exited (0)", ... of a service's container, or "no container".
container_state() {
  local id
  id="$(container_of "$1")"
  [ -n "$id" ] || { echo "no container"; return; }
  docker inspect -f '{{.State.Status}}{{if eq .State.Status "running"}}{{if .State.Health}} ({{.State.Health.Status}}){{end}}{{end}}{{if eq .State.Status "exited"}} (exit {{.State.ExitCode}}){{end}}' "$id" 2>/dev/null \
    || echo "unknown"
}

# The nodes that have a container (datasource-5 only once it has joined).
present_nodes() {
  local n
  for n in "${NODES[@]}"; do
    if [ "$n" != "$JOIN_SERVICE" ] || [ -n "$(container_of "$n")" ]; then echo "$n"; fi
  done
}

build() {
  local t0 t1
  log "building the static binary (cargo, --target $TRIPLE, crt-static)"
  t0=$(date +%s)
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$TRIPLE" -p learnchain-node
  t1=$(date +%s)
  log "static build: $((t1 - t0)) s; binary $(stat -c %s "$BIN") bytes"
}

image() {
  [ -x "$BIN" ] || die "$BIN is missing (build it, or run without --no-build)"
  mkdir -p "$ROOT/target-docker/empty"
  strip -o "$CONTEXT_BIN.tmp" "$BIN"
  mv -f "$CONTEXT_BIN.tmp" "$CONTEXT_BIN"
  log "stripped binary: $(stat -c %s "$CONTEXT_BIN") bytes"
  local out
  # (-q; the legacy builder's deprecation notice is noise, so its output shows only on failure)
  out="$(docker build -q -t "$LEARNCHAIN_IMAGE" "$ROOT" 2>&1)" || { echo "$out" >&2; die "docker build failed"; }
  log "image $LEARNCHAIN_IMAGE: $(docker image inspect -f '{{.Size}}' "$LEARNCHAIN_IMAGE") bytes"
}

# wait_healthy TIMEOUT SERVICE...: until every service's container is healthy.
wait_healthy() {
  local timeout="$1"; shift
  local deadline=$(( $(date +%s) + timeout )) s st pending
  while :; do
    pending=()
    for s in "$@"; do
      st="$(container_state "$s")"
      [ "$st" = "running (healthy)" ] || pending+=("$s: $st")
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "not healthy after ${timeout} s: ${pending[*]}"
      return 1
    fi
    sleep 1
  done
}

cmd_up() {
  local skip="${LEARNCHAIN_SKIP_BUILD:-0}"
  for a in "$@"; do
    case "$a" in
      --no-build) skip=1 ;;
      *) die "up: unknown option $a" ;;
    esac
  done
  [ "$skip" = 1 ] || build
  image
  log "starting project $COMPOSE_PROJECT_NAME"
  # `up` itself waits for the genesis to complete and for the bootnode and the miners to be
  # healthy (depends_on conditions); bound it all the same.
  timeout "$((UP_TIMEOUT + 60))" "${COMPOSE[@]}" up -d "${BASE_SERVICES[@]}"
  local nodes
  mapfile -t nodes < <(present_nodes)
  wait_healthy "$UP_TIMEOUT" "${nodes[@]}" || { cmd_status || true; exit 1; }
  cmd_status
}

cmd_join() {
  [ "$(container_state miner-1)" = "running (healthy)" ] || die "join: the cluster is not up (miner-1, which the newcomer dials: $(container_state miner-1))"
  # --no-deps: the cluster is running; do not touch the genesis or the nodes.
  timeout "$((UP_TIMEOUT + 60))" "${COMPOSE[@]}" up -d --no-deps "$JOIN_SERVICE"
  wait_healthy "$UP_TIMEOUT" "$JOIN_SERVICE" || { cmd_status || true; exit 1; }
  cmd_status
}

cmd_status() {
  local json=0 bin n out
  for a in "$@"; do
    case "$a" in
      --json) json=1 ;;
      *) die "status: unknown option $a" ;;
    esac
  done
  bin="$(host_bin)"
  while read -r n; do
    if [ "$json" = 1 ]; then
      if out="$("$bin" status --rpc "127.0.0.1:${PORT[$n]}" --json --timeout-s 3 2>/dev/null)"; then
        echo "$out"
      else
        printf '{"name":"%s","service":"%s","rpc":"127.0.0.1:%s","answering":false,"container":"%s"}\n' \
          "$n" "$n" "${PORT[$n]}" "$(container_state "$n")"
      fi
    else
      if ! "$bin" status --rpc "127.0.0.1:${PORT[$n]}" --timeout-s 3 2>/dev/null; then
        printf '%-14s not answering on 127.0.0.1:%s (container: %s)\n' "$n" "${PORT[$n]}" "$(container_state "$n")"
      fi
    fi
  done < <(present_nodes)
}

cmd_down() {
  local args=(--remove-orphans)
  for a in "$@"; do
    case "$a" in
      --volumes|-v) args+=(--volumes) ;;
      *) die "down: unknown option $a" ;;
    esac
  done
  timeout 180 "${COMPOSE[@]}" down "${args[@]}"
}

# Sourced (by scripts/e2e-compose.sh): functions and settings only.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then return 0; fi

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  status) cmd_status "$@" ;;
  join) cmd_join "$@" ;;
  logs) compose logs "$@" ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2 ;;
esac
