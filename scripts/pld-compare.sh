#!/usr/bin/env bash
# Compares the PLD accountant of crates/privacy with Google's dp-accounting (PyPI) over a
# grid of DP-SGD parameters: q in {0.001, 0.01, 0.05, 0.1}, σ in {0.8, 1.1, 2, 4},
# steps in {100, 1000, 10000}, δ = 1e-5 (with --extra also 18 cells off the grid, up to
# 10⁶ steps). Prints one table row per cell (dp-accounting's ε, ours, relative difference,
# both times) and a summary; exits 1 if any cell differs by more than 2 % or ours is below
# dp-accounting's by more than the float error stated in pld.rs.
#
#   scripts/pld-compare.sh [--extra] [compare options of scripts/pld-reference.py]
#
# The Python side runs in a virtualenv under ${XDG_CACHE_HOME:-~/.cache}/learnchain/
# pyenv-pld, created (with `pip install dp-accounting==$DP_ACCOUNTING_VERSION`, default
# 0.6.0) on first use; set PLD_PYENV to use another. Ours is
# `cargo run --release -p learnchain-privacy --example pld_grid` (CARGO_TARGET_DIR is
# honoured). The full grid takes about a minute for dp-accounting and two seconds for ours.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYENV="${PLD_PYENV:-${XDG_CACHE_HOME:-$HOME/.cache}/learnchain/pyenv-pld}"
DP_ACCOUNTING_VERSION="${DP_ACCOUNTING_VERSION:-0.6.0}"

GRID_ARGS=()
if [ "${1:-}" = "--extra" ]; then
  GRID_ARGS+=(--extra)
  shift
fi

if ! "$PYENV/bin/python" -c 'import dp_accounting' 2>/dev/null; then
  echo "creating $PYENV with dp-accounting $DP_ACCOUNTING_VERSION" >&2
  mkdir -p "$(dirname "$PYENV")"
  python3 -m venv "$PYENV"
  "$PYENV/bin/pip" install --quiet --disable-pip-version-check "dp-accounting==$DP_ACCOUNTING_VERSION"
fi

WORK="$(mktemp -d -t learnchain-pld-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
"$PYENV/bin/python" scripts/pld-reference.py grid "${GRID_ARGS[@]}" >"$WORK/cells.jsonl"
cargo build --release --quiet -p learnchain-privacy --example pld_grid
cargo run --release --quiet -p learnchain-privacy --example pld_grid <"$WORK/cells.jsonl" >"$WORK/ours.jsonl"
"$PYENV/bin/python" scripts/pld-reference.py compare "$WORK/ours.jsonl" "$@"
