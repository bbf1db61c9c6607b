#!/usr/bin/env bash
# The model file outside learnchain: a devnet trains a two-hidden-layer MLP on each built-in
# set, `learnchain model export` writes it, and Python with only the `safetensors` and
# `numpy` packages (installed here, into a virtualenv under ~/.cache/learnchain) runs the
# forward pass and must predict exactly what `learnchain predict` does.
#
#   scripts/model-python-check.sh        (LEARNCHAIN_BIN=path picks the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
bin="${LEARNCHAIN_BIN:-$target/debug/learnchain}"
if [ ! -x "$bin" ]; then
  cargo build -q -p learnchain-node
fi
venv="${XDG_CACHE_HOME:-$HOME/.cache}/learnchain/pyenv-model"
if ! "$venv/bin/python" -c "import safetensors, numpy" 2>/dev/null; then
  echo "installing safetensors and numpy into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check safetensors numpy
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for run in "breast-cancer 16,8" "digits 32,16"; do
  set -- $run
  ds=$1 hidden=$2
  "$bin" devnet --blocks 3 --dataset "$ds" --hidden "$hidden" --data-dir "$work/$ds" >/dev/null
  "$bin" model export --data-dir "$work/$ds/observer" --out "$work/$ds.safetensors" 2>/dev/null
  "$bin" data export --data "builtin:$ds" --split test --out "$work/$ds-test.csv" 2>/dev/null
  "$bin" predict --model "$work/$ds.safetensors" --data "csv:$work/$ds-test.csv" --out "$work/$ds-predictions.csv" --json >/dev/null
  "$venv/bin/python" scripts/model_forward.py "$work/$ds.safetensors" "$work/$ds-test.csv" "$work/$ds-predictions.csv"
done
echo "model-python-check: numpy and learnchain predict agree"
