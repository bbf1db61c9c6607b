"""Runs a learnchain model file with nothing but safetensors and numpy, and compares the
result with `learnchain predict`.

usage: model_forward.py MODEL.safetensors DATA.csv PREDICTIONS.csv [LABEL_COLUMN]

DATA.csv holds raw features under the model's column names (and optionally the label
column); PREDICTIONS.csv is `learnchain predict --out` on the same data. Exits non-zero
unless every predicted class is the same and every probability agrees to 1e-9.
"""

import csv
import json
import sys

import numpy as np
from safetensors import safe_open


def load(path):
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    if meta.get("format") != "learnchain-model/1":
        raise SystemExit(f"{path}: not a learnchain model file")
    layers = len(json.loads(meta["hidden"])) + 1
    weights = [(tensors[f"layers.{i}.weight"], tensors[f"layers.{i}.bias"]) for i in range(layers)]
    return meta, weights


def forward(meta, weights, raw):
    transform = json.loads(meta["input_transform"])
    x = (raw - np.array(transform["centre"])) / np.array(transform["scale"])
    for i, (w, b) in enumerate(weights):
        x = x @ w.astype(np.float64) + b.astype(np.float64)
        if i + 1 < len(weights):
            x = np.maximum(x, 0.0)
    x = x - x.max(axis=1, keepdims=True)
    p = np.exp(x)
    return p / p.sum(axis=1, keepdims=True)


def main():
    model, data, predictions = sys.argv[1:4]
    label = sys.argv[4] if len(sys.argv) > 4 else "label"
    meta, weights = load(model)
    features = json.loads(meta["features"])
    classes = json.loads(meta["classes"])
    with open(data, newline="") as f:
        rows = list(csv.DictReader(f))
    raw = np.array([[float(r[name]) for name in features] for r in rows])
    p = forward(meta, weights, raw)
    ours = [classes[i] for i in p.argmax(axis=1)]
    with open(predictions, newline="") as f:
        theirs = list(csv.DictReader(f))
    if len(theirs) != len(rows):
        raise SystemExit(f"{len(theirs)} predictions for {len(rows)} examples")
    node_p = np.array([[float(r[f"prob_{c}"]) for c in classes] for r in theirs])
    same = sum(a == r["predicted"] for a, r in zip(ours, theirs))
    diff = float(np.abs(node_p - p).max())
    labelled = all(label in r for r in rows)
    accuracy = np.mean([a == r[label] for a, r in zip(ours, rows)]) if labelled else float("nan")
    print(
        f"{model}: {meta['architecture']}{meta['hidden']} at height {meta['height']}: numpy predicts "
        f"{same}/{len(rows)} examples as learnchain predict does, largest probability difference {diff:.2e}, "
        f"accuracy {accuracy:.4f}"
    )
    if same != len(rows) or diff > 1e-9:
        raise SystemExit("numpy and learnchain predict disagree")


if __name__ == "__main__":
    main()
