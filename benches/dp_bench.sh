#!/usr/bin/env bash
# Data-parallel MNIST training: Ember's distributed ML layer against PyTorch DistributedDataParallel
# (CPU, gloo, 2 processes x 1 thread on 127.0.0.1), in the same run. Per model (MLP 784-256-10,
# then LeNet), interleaved, one process each:
#   ember single          one network, 2 GEMM threads
#   ember dp              dense data parallel, 2 workers x 1 thread (local[2])
#   ember averaging       resident parameter averaging, every 5 steps
#   ember averaging-jobs  DL4J-style parameter averaging, one job per averaging round
#   pytorch-ddp           benches/pytorch/ddp_bench.py
# All train with batch 128 in total, SGD momentum 0.9, lr 0.01, over the 60,000 training images,
# then measure the test accuracy. Prints a table per model (samples/s, s/epoch, comm share, test
# accuracy) and the ratios: Ember dp / Ember single (target >= 0.9x), Ember dp / PyTorch DDP
# (target >= 3x), each averaging mode / Ember dp. The raw JSON lines and the table go to
# benches/results/dp-latest.txt.
#
# usage: benches/dp_bench.sh [MNIST_DIR] [EPOCHS]
#   MNIST_DIR  the four MNIST IDX .gz files (default data/mnist, from the repo root)
#   EPOCHS     epochs per run (default 1)
# Environment:
#   EMBER_BENCH_CACHE  where the Python venv with torch lives (default ~/.cache/ember-bench);
#                      the first run pip-installs torch from PyPI there (several GB: never in CI)
#   BENCH_WORKERS      workers (Ember dp/averaging, PyTorch processes) and single's threads (default 2)
#   DP_BENCH_OUT       where the results go (default benches/results/dp-latest.txt)
#   DP_BENCH_REPORT    a file of result lines: skip building and running, print its table only
#
# Not a test: the figures depend on the machine and on whatever else it runs (the load average is
# printed and saved).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MNIST_DIR="${1:-data/mnist}"
EPOCHS="${2:-1}"
WORKERS="${BENCH_WORKERS:-2}"
CACHE="${EMBER_BENCH_CACHE:-$HOME/.cache/ember-bench}"
VENV="$CACHE/venv"
RESULTS="${DP_BENCH_OUT:-$ROOT/benches/results/dp-latest.txt}"

if ! "$VENV/bin/python" -c "import torch, numpy" >/dev/null 2>&1; then
    echo "dp_bench: installing torch and numpy into $VENV (from PyPI; large download)" >&2
    mkdir -p "$CACHE"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check torch numpy
fi

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
LINES="$OUT/results.jsonl"
NOTES="$OUT/notes.txt"
: >"$LINES"
: >"$NOTES"
note() { echo "dp_bench: $*" >&2; echo "$*" >>"$NOTES"; }

# Runs one command, appends the lines of its stdout that start with '{' to $LINES; a failure or a
# run without a result line is noted, not fatal.
run_one() { # label command...
    local label="$1"; shift
    local log="$OUT/run.out" rc=0
    echo "dp_bench: $label" >&2
    "$@" >"$log" 2>"$OUT/run.err" || rc=$?
    if [ "$rc" != 0 ] || ! grep -q '^{' "$log"; then
        note "FAILED: $label (exit $rc): $(tail -n 3 "$OUT/run.err" | tr '\n' ' ')"
    fi
    grep '^{' "$log" >>"$LINES" || true
}

LOAD_BEFORE="" LOAD_AFTER=""
if [ -n "${DP_BENCH_REPORT:-}" ]; then
    cp "$DP_BENCH_REPORT" "$LINES"
    RESULTS="${DP_BENCH_OUT:-}"   # re-rendering saves nothing unless asked to
else
    EMBER_OK=1
    echo "dp_bench: building the Ember side (release)" >&2
    if ! cargo build --quiet --release --example mnist_distributed; then
        EMBER_OK=0
        note "FAILED: cargo build --release --example mnist_distributed; the Ember side did not run"
    fi
    EMBER_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/mnist_distributed"
    [ "$EMBER_OK" = 1 ] && [ ! -x "$EMBER_BIN" ] && {
        EMBER_OK=0
        note "FAILED: $EMBER_BIN is missing; the Ember side did not run"
    }

    LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "load average before: $LOAD_BEFORE"
    for model in mlp lenet; do
        if [ "$EMBER_OK" = 1 ]; then
            common=(--data "$MNIST_DIR" --model "$model" --epochs "$EPOCHS" --json)
            EMBER_ML_THREADS="$WORKERS" run_one "ember single $model" \
                "$EMBER_BIN" "${common[@]}" --master single --threads "$WORKERS"
            EMBER_ML_THREADS=1 run_one "ember dp $model" \
                "$EMBER_BIN" "${common[@]}" --master dp --workers "$WORKERS" --threads 1
            EMBER_ML_THREADS=1 run_one "ember averaging $model" \
                "$EMBER_BIN" "${common[@]}" --master averaging --workers "$WORKERS" --threads 1 \
                --averaging-frequency 5
            EMBER_ML_THREADS=1 run_one "ember averaging-jobs $model" \
                "$EMBER_BIN" "${common[@]}" --master averaging-jobs --workers "$WORKERS" \
                --threads 1 --averaging-frequency 5
        fi
        OMP_NUM_THREADS=1 run_one "pytorch-ddp $model" \
            "$VENV/bin/python" -W ignore benches/pytorch/ddp_bench.py "$MNIST_DIR" \
            --model "$model" --epochs "$EPOCHS" --workers "$WORKERS"
    done
    LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "load average after:  $LOAD_AFTER"
fi

"$VENV/bin/python" - "$LINES" "$NOTES" "$EPOCHS" >"$OUT/table.txt" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        try:
            rows.append(json.loads(line))
        except ValueError:
            print(f"(unparsable result line ignored: {line[:80]})")
notes = [l.rstrip("\n") for l in open(sys.argv[2]) if l.strip()]
order = ["single", "dp", "averaging", "averaging-jobs", "pytorch-ddp"]

def key(d):
    return "pytorch-ddp" if d.get("framework") == "pytorch-ddp" else d.get("master", "?")

def label(k, d):
    if k == "pytorch-ddp":
        return f"PyTorch DDP {d.get('workers', '?')}x1 (torch {d.get('torch', '?')})"
    if k == "single":
        return "Ember single, 2 GEMM threads" if d.get("workers") in (None, 1) else "Ember single"
    return f"Ember {k} {d.get('workers', '?')}x1"

def num(v, fmt):
    return "-" if v is None else fmt.format(v)

print(f"\nData-parallel MNIST training, batch 128 in total, SGD momentum 0.9 lr 0.01, "
      f"{sys.argv[3]} epoch(s) per run")
ember_seen = any(d.get("framework") == "ember" for d in rows)
for m in ("mlp", "lenet"):
    by = {}
    for d in rows:
        if d.get("model") == m:
            by[key(d)] = d
    if not by:
        print(f"\n{m}: no results")
        continue
    print(f"\n{m}")
    print(f"  {'configuration':<44}{'samples/s':>11}{'s/epoch':>10}{'comm share':>12}{'test acc':>10}")
    for k in order + sorted(set(by) - set(order)):
        if k not in by:
            continue
        d = by[k]
        print(f"  {label(k, d):<44}{num(d.get('samples_per_s'), '{:.0f}'):>11}"
              f"{num(d.get('seconds'), '{:.2f}'):>10}"
              f"{num(None if d.get('comm_share') is None else 100 * d['comm_share'], '{:.1f}%'):>12}"
              f"{num(None if d.get('test_accuracy') is None else 100 * d['test_accuracy'], '{:.2f}%'):>10}")
    ratios = []
    for a, b, target, what in (("dp", "single", 0.9, "Ember dp / Ember single"),
                               ("dp", "pytorch-ddp", 3, "Ember dp / PyTorch DDP"),
                               ("averaging", "dp", None, "Ember averaging / Ember dp"),
                               ("averaging-jobs", "dp", None, "Ember averaging-jobs / Ember dp")):
        sa = by.get(a, {}).get("samples_per_s")
        sb = by.get(b, {}).get("samples_per_s")
        if sa and sb:
            r = sa / sb
            verdict = "" if target is None else f"  (target >= {target}x: {'met' if r >= target else 'MISSED'})"
            ratios.append(f"  {what:<44}{r:>10.2f}x{verdict}")
    if ratios:
        print("  samples/s ratios")
        print("\n".join(ratios))
    t = by.get("pytorch-ddp")
    if t and t.get("step_ms") is not None and t.get("nosync_step_ms") is not None:
        print(f"  (PyTorch comm share = 1 - no-sync step {t['nosync_step_ms']:.2f} ms / step "
              f"{t['step_ms']:.2f} ms; allreduce in flight {100 * t.get('allreduce_inflight_share', 0):.1f}% "
              f"of the epoch, over {t.get('buckets', '?')} bucket(s))")
if not ember_seen:
    print("\nTHE EMBER SIDE FAILED: no Ember result line (only the PyTorch side is shown).")
for n in notes:
    print(n)
PY
cat "$OUT/table.txt"

if [ -n "$RESULTS" ]; then
    mkdir -p "$(dirname "$RESULTS")"
    {
        echo "benches/dp_bench.sh $MNIST_DIR $EPOCHS, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
        echo "load average before: $LOAD_BEFORE; after: $LOAD_AFTER"
        cat "$OUT/table.txt"
        echo
        echo "raw result lines:"
        cat "$LINES"
    } >"$RESULTS"
    echo "dp_bench: results in ${RESULTS#"$ROOT"/}" >&2
fi
