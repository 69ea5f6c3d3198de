#!/usr/bin/env bash
# Ember's ML core against PyTorch (CPU) on MNIST training, in the same run: MLP 784-256-10 and a
# LeNet-style CNN, batch 128, SGD with momentum, one epoch over the 60,000 training images.
# Prints each Ember figure beside PyTorch's with the ratio (Ember / PyTorch; above 1 = Ember faster).
#
# usage: benches/ml_bench.sh [MNIST_DIR] [EPOCHS]
#   MNIST_DIR  the four MNIST IDX .gz files (default ../shared/data/mnist, from the repo root)
#   EPOCHS     epochs per model; the fastest is reported (default 1)
# Environment:
#   EMBER_BENCH_CACHE  where the Python venv with torch lives (default ~/.cache/ember-bench);
#                      the first run pip-installs torch from PyPI there (several GB: never in CI)
#   BENCH_THREADS      threads for both frameworks (default 2)
#
# Not a test: the figures depend on the machine and on whatever else it runs (the load average is
# printed; PyTorch's OpenMP threads in particular slow down badly on a busy machine).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MNIST_DIR="${1:-../shared/data/mnist}"
EPOCHS="${2:-1}"
THREADS="${BENCH_THREADS:-2}"
CACHE="${EMBER_BENCH_CACHE:-$HOME/.cache/ember-bench}"
VENV="$CACHE/venv"

if ! "$VENV/bin/python" -c "import torch, numpy" >/dev/null 2>&1; then
    echo "ml_bench: installing torch and numpy into $VENV (from PyPI; large download)" >&2
    mkdir -p "$CACHE"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check torch numpy
fi

echo "ml_bench: building the Ember side (release)" >&2
cargo build --quiet --release -p ember-ml --example ml_bench
EMBER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/ml_bench"

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
run_pair() { # threads suffix
    for model in mlp lenet; do
        EMBER_ML_THREADS="$1" RAYON_NUM_THREADS="$1" \
            "$EMBER_BIN" "$MNIST_DIR" --model "$model" --epochs "$EPOCHS" >>"$OUT/ember$2.jsonl"
        OMP_NUM_THREADS="$1" "$VENV/bin/python" -W ignore benches/pytorch/mnist_bench.py \
            "$MNIST_DIR" --model "$model" --epochs "$EPOCHS" --threads "$1" >>"$OUT/torch$2.jsonl"
    done
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
run_pair "$THREADS" ""
# One thread each as well: a reference that a busy machine distorts far less (PyTorch's OpenMP
# threads spin and collapse when other processes hold the cores). BENCH_ONE_THREAD=0 skips it.
if [ "${BENCH_ONE_THREAD:-1}" != 0 ] && [ "$THREADS" != 1 ]; then
    run_pair 1 "-1t"
fi
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"

report() { # ember.jsonl torch.jsonl threads
"$VENV/bin/python" - "$1" "$2" "$3" <<'PY'
import json, sys
ember = {d["model"]: d for d in map(json.loads, open(sys.argv[1]))}
torch = {d["model"]: d for d in map(json.loads, open(sys.argv[2]))}
threads = sys.argv[3]
# Peak per core: 2.6 GHz (nominal, /proc/cpuinfo) x 64 FP32 FLOP/cycle: AMD family 26 (Zen 5)
# has two full-width 512-bit FMA pipes (2 x 16 lanes x 2 FLOP). Boost clocks can exceed it.
peak = int(threads) * 2.6 * 64
print(f"\nMNIST training, batch 128, SGD momentum 0.9, {threads} threads, best epoch of each")
print(f"{'model':<7}{'metric':<14}{'Ember':>12}{'PyTorch':>12}{'Ember/PyTorch':>15}")
for m in ("mlp", "lenet"):
    e, t = ember[m], torch[m]
    for key, label, fmt in (("samples_per_s", "samples/s", "{:12.0f}"),
                            ("seconds", "s/epoch", "{:12.2f}"),
                            ("gflops", "GFLOP/s", "{:12.1f}")):
        ratio = e[key] / t[key] if key != "seconds" else t[key] / e[key]
        print(f"{m:<7}{label:<14}" + fmt.format(e[key]) + fmt.format(t[key]) + f"{ratio:15.2f}")
    print(f"{m:<7}{'% of peak':<14}{100 * e['gflops'] / peak:12.1f}{100 * t['gflops'] / peak:12.1f}")
print(f"\n(epoch FLOPs, analytic: mlp {ember['mlp']['gflop_per_epoch']:.1f} GFLOP, "
      f"lenet {ember['lenet']['gflop_per_epoch']:.1f} GFLOP; peak yardstick {peak:.0f} GFLOP/s; "
      f"torch {torch['mlp'].get('torch')}; Ember GEMM {ember['mlp']['gemm']})")
PY
}
report "$OUT/ember.jsonl" "$OUT/torch.jsonl" "$THREADS"
if [ -s "$OUT/ember-1t.jsonl" ]; then
    report "$OUT/ember-1t.jsonl" "$OUT/torch-1t.jsonl" 1
fi
