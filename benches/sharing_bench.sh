#!/usr/bin/env bash
# Gradient sharing on MNIST: Ember's threshold-encoded sharing (SharedGradients, DL4J's
# SharedTrainingMaster) against Ember's dense data parallel and PyTorch DDP with its compression
# hooks, in the same run. Per model, interleaved, one process (or ember-submit group) each:
#   ember dp                    dense data parallel, 2 workers x 1 thread (local[2])
#   ember sharing               adaptive threshold (DL4J's defaults), synchronous
#   ember sharing staleness 2   workers may run 2 steps ahead of the slowest
#   ember sharing warmup/mask   (MLP only) 100 dense warm-up steps; momentum factor masking (DGC)
#   ember sharing [staleness 2] momentum 0.9   the same at the dense runs' momentum, for reference
#   pytorch ddp allreduce|fp16|powersgd   benches/pytorch/ddp_bench.py --hook ...
# All train with batch 128 in total and SGD at the same learning rate over the 60,000 training
# images for EPOCHS epochs, then measure the test accuracy. Dense runs (Ember dp, PyTorch) use
# momentum 0.9; sharing runs SHARING_BENCH_MOMENTUM (0.8): the residual and staleness delay part
# of every update, which adds momentum of its own (see SharedGradients' docs and
# benches/README.md), so sharing is run at the momentum it is meant to be used with, and at 0.9
# beside it. Printed per model: samples/s,
# test accuracy and its difference from Ember dp (target: sharing within 0.3 points), bytes each
# worker sends per step after the first epoch and how many times fewer than Ember dp (target:
# at least 300x fewer).
#
# Then, unless SHARING_BENCH_THROTTLE=0, the MLP again on a link throttled to 100 Mbit/s: a
# network namespace whose loopback has a `tc` token-bucket filter, Ember as 2 processes x 1
# worker through ember-submit (cluster mode, TCP over that loopback) and PyTorch DDP (gloo over
# it). If the namespace cannot be made (no CAP_NET_ADMIN), that section says so and is skipped.
#
# usage: benches/sharing_bench.sh [MNIST_DIR] [EPOCHS]
#   MNIST_DIR  the four MNIST IDX .gz files (default data/mnist, from the repo root)
#   EPOCHS     epochs per run (default 5; at least 2, so there is an epoch after the first)
# Environment:
#   EMBER_BENCH_CACHE       the Python venv with torch (default ~/.cache/ember-bench; installed on
#                           first use from PyPI, several GB: never in CI)
#   SHARING_BENCH_MODELS    models to run (default "mlp lenet")
#   SHARING_BENCH_LR        learning rate of every run (default 0.05)
#   SHARING_BENCH_MOMENTUM  SGD momentum of the sharing runs (default 0.8; dense runs use 0.9)
#   SHARING_BENCH_THROTTLE  1 (default) to run the throttled section, 0 to skip it
#   THROTTLE_EPOCHS         epochs of the throttled runs (default 2)
#   SHARING_BENCH_OUT       where the results go (default benches/results/sharing-latest.txt)
#
# Not a test: the figures depend on the machine and on whatever else it runs (the load average is
# printed and saved).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MNIST_DIR="${1:-data/mnist}"
EPOCHS="${2:-5}"
MODELS="${SHARING_BENCH_MODELS:-mlp lenet}"
LR="${SHARING_BENCH_LR:-0.05}"
SM="${SHARING_BENCH_MOMENTUM:-0.8}"
THROTTLE="${SHARING_BENCH_THROTTLE:-1}"
TEPOCHS="${THROTTLE_EPOCHS:-2}"
CACHE="${EMBER_BENCH_CACHE:-$HOME/.cache/ember-bench}"
VENV="$CACHE/venv"
RESULTS="${SHARING_BENCH_OUT:-$ROOT/benches/results/sharing-latest.txt}"
[ "$EPOCHS" -ge 2 ] || { echo "sharing_bench: EPOCHS must be at least 2" >&2; exit 2; }

if ! "$VENV/bin/python" -c "import torch, numpy" >/dev/null 2>&1; then
    echo "sharing_bench: installing torch and numpy into $VENV (from PyPI; large download)" >&2
    mkdir -p "$CACHE"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check torch numpy
fi

OUT="$(mktemp -d)"
NS="ember-bench-$$"
cleanup() { ip netns del "$NS" 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT
LINES="$OUT/results.jsonl"
NOTES="$OUT/notes.txt"
: >"$LINES"
: >"$NOTES"
note() { echo "sharing_bench: $*" >&2; echo "$*" >>"$NOTES"; }

# Runs one command with a label; the JSON line it prints (possibly after ember-submit's "[pN] "
# prefix) is tagged with the label and appended to $LINES. A failure is noted, not fatal.
run_one() { # label command...
    local label="$1"; shift
    local log="$OUT/run.out" rc=0
    echo "sharing_bench: $label" >&2
    "$@" >"$log" 2>"$OUT/run.err" || rc=$?
    local line
    line="$(sed -n 's/^\(\[p[0-9]*\] \)\{0,1\}\({.*\)$/\2/p' "$log" | tail -n 1)"
    if [ "$rc" != 0 ] || [ -z "$line" ]; then
        note "FAILED: $label (exit $rc): $(tail -n 3 "$OUT/run.err" | tr '\n' ' ')"
        return 0
    fi
    "$VENV/bin/python" -c 'import json,sys; d=json.loads(sys.argv[2]); d["label"]=sys.argv[1]; print(json.dumps(d))' \
        "$label" "$line" >>"$LINES"
}

echo "sharing_bench: building the Ember side (release)" >&2
cargo build --quiet --release --example mnist_distributed --bin ember-submit
BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
EMBER="$BIN_DIR/examples/mnist_distributed"
SUBMIT="$BIN_DIR/ember-submit"
PY=("$VENV/bin/python" -W ignore benches/pytorch/ddp_bench.py "$MNIST_DIR" --workers 2
    --lr "$LR" --nosync-steps 0)

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "load average before: $LOAD_BEFORE"
for model in $MODELS; do
    common=(--data "$MNIST_DIR" --model "$model" --epochs "$EPOCHS" --lr "$LR" --json
            --workers 2 --threads 1)
    export EMBER_ML_THREADS=1 OMP_NUM_THREADS=1
    run_one "$model|ember dp" "$EMBER" "${common[@]}" --master dp --momentum 0.9
    run_one "$model|ember sharing" "$EMBER" "${common[@]}" --master sharing --momentum "$SM"
    run_one "$model|pytorch ddp allreduce" "${PY[@]}" --model "$model" --epochs "$EPOCHS"
    run_one "$model|ember sharing staleness 2" "$EMBER" "${common[@]}" --master sharing \
        --staleness 2 --momentum "$SM"
    run_one "$model|pytorch ddp fp16" "${PY[@]}" --model "$model" --epochs "$EPOCHS" --hook fp16
    run_one "$model|ember sharing momentum 0.9" "$EMBER" "${common[@]}" --master sharing \
        --momentum 0.9
    run_one "$model|ember sharing staleness 2 momentum 0.9" "$EMBER" "${common[@]}" \
        --master sharing --staleness 2 --momentum 0.9
    if [ "$model" = mlp ]; then
        run_one "$model|ember sharing warmup 100" "$EMBER" "${common[@]}" --master sharing \
            --warmup 100 --momentum "$SM"
        run_one "$model|ember sharing masking" "$EMBER" "${common[@]}" --master sharing \
            --masking --momentum "$SM"
    fi
    run_one "$model|pytorch ddp powersgd" "${PY[@]}" --model "$model" --epochs "$EPOCHS" \
        --hook powersgd
done

THROTTLED=""
if [ "$THROTTLE" = 1 ]; then
    # Loopback's 64 KiB MTU is larger than any sane bucket: 1500 bytes, as on Ethernet.
    if ip netns add "$NS" 2>"$OUT/ns.err" && ip netns exec "$NS" ip link set lo mtu 1500 \
        && ip netns exec "$NS" ip link set lo up \
        && ip netns exec "$NS" tc qdisc add dev lo root tbf rate 100mbit burst 256kb latency 50ms; then
        THROTTLED="$(ip netns exec "$NS" tc qdisc show dev lo | head -n 1)"
        in_ns=(ip netns exec "$NS" env EMBER_ML_THREADS=1 OMP_NUM_THREADS=1)
        common=(--data "$MNIST_DIR" --model mlp --epochs "$TEPOCHS" --lr "$LR" --json --threads 1)
        run_one "throttled|ember dp" "${in_ns[@]}" "$SUBMIT" -n 2 -w 1 -- "$EMBER" \
            "${common[@]}" --master dp --momentum 0.9
        run_one "throttled|ember sharing" "${in_ns[@]}" "$SUBMIT" -n 2 -w 1 -- "$EMBER" \
            "${common[@]}" --master sharing --momentum "$SM"
        run_one "throttled|pytorch ddp allreduce" "${in_ns[@]}" "${PY[@]}" --model mlp \
            --epochs "$TEPOCHS"
        run_one "throttled|pytorch ddp powersgd" "${in_ns[@]}" "${PY[@]}" --model mlp \
            --epochs "$TEPOCHS" --hook powersgd
    else
        note "throttled section skipped: cannot make a network namespace with tc ($(tr '\n' ' ' <"$OUT/ns.err"))"
    fi
fi
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "load average after:  $LOAD_AFTER"

"$VENV/bin/python" - "$LINES" "$NOTES" "$EPOCHS" "$LR" "$THROTTLED" "$TEPOCHS" "$SM" >"$OUT/table.txt" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
notes = [l.rstrip("\n") for l in open(sys.argv[2]) if l.strip()]
epochs, lr, throttled, tepochs, sm = sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]

def later_bytes(r):
    if r.get("framework") == "ember":
        return r.get("bytes_per_step_later_epochs") or r.get("bytes_per_step_first_epoch")
    return r.get("bytes_per_step")

def human(b):
    if b is None:
        return "-"
    return f"{b/1e6:.2f} MB" if b >= 1e6 else f"{b/1e3:.1f} kB" if b >= 1e3 else f"{b:.0f} B"

print(f"Gradient sharing on MNIST, batch 128 in total over 2 workers, SGD lr {lr}, "
      f"{epochs} epochs per run; momentum 0.9 for dense runs, {sm} for sharing runs unless named")
groups = []
for r in rows:
    g = r["label"].split("|")[0]
    if g not in groups:
        groups.append(g)
for g in groups:
    mine = [r for r in rows if r["label"].startswith(g + "|")]
    dense = next((r for r in mine if r["label"].endswith("|ember dp")), None)
    title = g if g != "throttled" else f"mlp, 100 Mbit/s loopback ({throttled}), {tepochs} epochs, 2 processes"
    print(f"\n{title}")
    print(f"  {'configuration':40} {'samples/s':>10} {'test acc':>9} {'vs dp':>8} "
          f"{'bytes/step':>11} {'fewer':>9} {'staleness':>9}")
    for r in mine:
        name = r["label"].split("|", 1)[1]
        acc = r.get("test_accuracy")
        diff = "-" if dense is None or acc is None else f"{100*(acc-dense['test_accuracy']):+.2f}pp"
        b = later_bytes(r)
        db = later_bytes(dense) if dense else None
        fewer = "-" if not b or not db else f"{db/b:.0f}x"
        st = r.get("staleness_max", "-")
        print(f"  {name:40} {r['samples_per_s']:>10.0f} {100*acc:>8.2f}% {diff:>8} {human(b):>11} "
              f"{fewer:>9} {st!s:>9}")
    sharing = [r for r in mine if r["label"].split("|", 1)[1].startswith("ember sharing")]
    for r in sharing:
        if dense is None:
            break
        name = r["label"].split("|", 1)[1]
        fewer = later_bytes(dense) / max(later_bytes(r), 1)
        dacc = 100 * (r["test_accuracy"] - dense["test_accuracy"])
        speed = r["samples_per_s"] / dense["samples_per_s"]
        print(f"  {name}: {fewer:.0f}x fewer bytes (target >= 300x: {'met' if fewer >= 300 else 'MISSED'}), "
              f"accuracy {dacc:+.2f}pp (target within 0.3: {'met' if abs(dacc) <= 0.3 or dacc > 0 else 'MISSED'}), "
              f"{speed:.2f}x dense samples/s")
        for w in r.get("warnings", []):
            print(f"    warning: {w}")
    for p in [r for r in mine if r["framework"] == "pytorch-ddp"]:
        if sharing:
            best = sharing[0]
            print(f"  ember sharing / {p['label'].split('|',1)[1]}: "
                  f"{best['samples_per_s']/p['samples_per_s']:.2f}x samples/s")
for n in notes:
    print(f"\nnote: {n}")
print("\nbytes/step: what each worker sends per step after the first epoch (Ember: measured; PyTorch:"
      " from its allreduce sizes, see ddp_bench.py)")
print("\nraw result lines:")
for r in rows:
    print(json.dumps(r, sort_keys=True))
PY

{
    echo "benches/sharing_bench.sh $MNIST_DIR $EPOCHS, $(date -u '+%Y-%m-%d %H:%M UTC'), $(getconf _NPROCESSORS_ONLN) cores"
    echo "load average before: $LOAD_BEFORE; after: $LOAD_AFTER"
    echo
    cat "$OUT/table.txt"
} | tee "$OUT/final.txt"
mkdir -p "$(dirname "$RESULTS")"
cp "$OUT/final.txt" "$RESULTS"
echo "sharing_bench: results in $RESULTS" >&2
