#!/usr/bin/env bash
# Figures of the peer-to-peer layer, from the in-process tests that exercise it (release
# build unless --debug):
#
#   - tests/tests/mesh.rs: 30 nodes whose only bootnode is node 0 find each other through
#     Kademlia; prints the median (and min, max) number of peers, the hops from the miner to
#     every node over the connection graph, and how long 5 new blocks took to reach every
#     node (p50 and p99 over nodes and blocks, from the miner's head change to each node's);
#   - tests/tests/flood.rs: a hostile peer floods the observer of a 4-node testnet with up to
#     10,000 invalid messages of each kind; prints, per kind, how many it got out before it
#     was cut off, how many the observer judged, whether it ended banned, and the test
#     process's peak resident memory.
#
#   scripts/mesh.sh [--debug] [--runs N]
#
# --runs N repeats each test N times (default 1), to see the spread.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
profile=(--release)
runs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) profile=() ;;
    --runs) runs="${2:?--runs needs a number}"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "mesh.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for _ in $(seq "$runs"); do
  for t in mesh flood; do
    cargo test "${profile[@]}" --locked -q -p learnchain-tests --test "$t" -- --nocapture --test-threads 1 2>/dev/null \
      | grep -E '^(mesh|flood) figures:' || { echo "mesh.sh: the $t test failed" >&2; exit 1; }
  done
done
