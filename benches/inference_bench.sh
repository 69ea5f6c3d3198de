#!/usr/bin/env bash
# Parquet inference and distributed evaluation: Ember's distributed ML layer against PyTorch on the
# same rows, in the same run.
#   1. writes ROWS MNIST-shaped rows (the training images repeated; id int64, pixels
#      fixed_size_list<uint8, 784>) as Parquet, and an MLP 784-256-10 (ml/examples/inference_bench.rs)
#   2. ember:   DistributedNetwork::predict_parquet on local[2] (read, forward in batches of 512,
#               write keys + predictions as Parquet through the committer)
#   3. pytorch: pyarrow read, torch.no_grad forward in batches of 512 (2 threads), pyarrow write
#               (benches/pytorch/inference_bench.py)
#   4. distributed evaluation of the 10,000 MNIST test images (classification + one-vs-all ROC) on
#      local[2] against one process in one thread
# Prints the JSON lines, rows/s of each and the ratio Ember / PyTorch (target >= 2x), and the
# evaluation times; everything also goes to benches/results/inference-latest.txt with `uptime`.
#
# usage: benches/inference_bench.sh [ROWS] [MNIST_DIR]   (defaults 1000000, data/mnist)
# Environment: EMBER_BENCH_CACHE (the venv with torch and pyarrow, default ~/.cache/ember-bench;
# pyarrow and torch are pip-installed there when missing: never in CI), INFERENCE_BENCH_DIR (where
# the data goes, default a temporary directory, removed at the end).
# Not a test: the figures depend on the machine and its load.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ROWS="${1:-1000000}"
MNIST_DIR="${2:-data/mnist}"
CACHE="${EMBER_BENCH_CACHE:-$HOME/.cache/ember-bench}"
VENV="$CACHE/venv"
RESULTS="$ROOT/benches/results/inference-latest.txt"

if ! "$VENV/bin/python" -c "import torch, numpy, pyarrow" >/dev/null 2>&1; then
    echo "inference_bench: installing torch, numpy and pyarrow into $VENV (from PyPI)" >&2
    mkdir -p "$CACHE"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check torch numpy pyarrow
fi

DIR="${INFERENCE_BENCH_DIR:-$(mktemp -d)}"
mkdir -p "$DIR"
[ -n "${INFERENCE_BENCH_DIR:-}" ] || trap 'rm -rf "$DIR"' EXIT

cargo build --release -q -p ember-ml --example inference_bench
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/inference_bench"

LINES="$DIR/results.jsonl"
{
    echo "# inference_bench ROWS=$ROWS $(date -u +%FT%TZ)"
    echo "# uptime before: $(uptime)"
} >"$LINES"
"$BIN" write "$DIR" "$ROWS" "$MNIST_DIR" >>"$LINES"
"$BIN" predict "$DIR" >>"$LINES"
"$VENV/bin/python" benches/pytorch/inference_bench.py "$DIR" --threads 2 >>"$LINES"
"$BIN" eval "$MNIST_DIR" >>"$LINES"
echo "# uptime after: $(uptime)" >>"$LINES"

python3 - "$LINES" <<'PY' | tee -a "$LINES"
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
pred = {r["system"]: r for r in runs if r.get("mode") == "predict"}
ev = next((r for r in runs if r.get("mode") == "eval"), None)
for name, r in pred.items():
    print(f"# {name:8} {r['rows']} rows in {r['seconds']:.2f} s: {r['rows_per_s']:.0f} rows/s")
if "ember" in pred and "pytorch" in pred:
    print(f"# ember / pytorch rows/s: {pred['ember']['rows_per_s'] / pred['pytorch']['rows_per_s']:.2f}x (target >= 2x)")
if ev:
    print(f"# eval {ev['examples']} test images: single {ev['single_seconds']:.3f} s, local[2] "
          f"{ev['distributed_seconds']:.3f} s ({ev['single_seconds'] / ev['distributed_seconds']:.2f}x), "
          f"same counts: {ev['same_counts']}")
PY
mkdir -p "$(dirname "$RESULTS")"
cp "$LINES" "$RESULTS"
