#!/usr/bin/env bash
# The straggler benchmark (issue 6): the cached logistic regression with one deliberately slowed
# worker, for each locality wait, on Spark and on Ember with the same settings in the same run;
# then a side-by-side table of total time and locality mix.
#
#   benches/straggler.sh [--waits 0,100ms,3s] [--slow-ms 200] [--lr-points 200000]
#                        [--partitions 8] [--iterations 5] [--warmup 1] [--spark-conf k=v]...
#
# Spark: benches/spark/build_and_run.sh --straggler (StragglerBench.scala): per wait a fresh
#   SparkContext on local-cluster[2,1,2048] (two executor JVMs, one core each) with
#   spark.locality.wait = the wait; partition p's block cached on executor p % 2; every
#   iteration task on executor 1 sleeps --slow-ms first. --spark-conf passes more Spark settings
#   (e.g. spark.scheduler.revive.interval=100ms: see benches/README.md, "Straggler").
# Ember: per wait, ember-submit --processes 2 --workers 1 -- ember-straggler-bench --wait W ...
#   (skipped, with a message, while benches/src/bin/ember-straggler-bench.rs does not exist).
# Both print one JSON line per wait ("workload":"lr_straggler"; format in benches/README.md,
# "Straggler"). The raw lines and the table go to benches/results/raw/straggler-<time>/.
#
# Environment:
#   EMBER_STRAGGLER_SKIP  comma-separated sides to skip: spark,ember
#   SPARK_BENCH_HEAP      the Spark driver's heap (default here 2g; executors get 1g each)
#   EMBER_BENCH_CACHE     cache root for the Spark venv and jar (default ~/.cache/ember-bench)
#   CARGO_TARGET_DIR      cargo's target directory (default <repo>/target)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

waits="0,100ms,3s"
slow_ms=200
points=200000
partitions=8
iterations=5
warmup=1
spark_conf=()
usage() {
    sed -n '6,7p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2
}
while [[ $# -gt 0 ]]; do
    case "$1" in
        --waits) waits="$2"; shift 2 ;;
        --slow-ms) slow_ms="$2"; shift 2 ;;
        --lr-points) points="$2"; shift 2 ;;
        --partitions) partitions="$2"; shift 2 ;;
        --iterations) iterations="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --spark-conf) spark_conf+=(--conf "$2"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "straggler.sh: unknown argument $1" >&2; usage; exit 2 ;;
    esac
done
for v in "$slow_ms" "$points" "$partitions" "$iterations" "$warmup"; do
    [[ "$v" =~ ^[0-9]+$ ]] || { echo "straggler.sh: '$v' is not a non-negative integer" >&2; exit 2; }
done
IFS=',' read -r -a wait_list <<< "$waits"
for w in "${wait_list[@]}"; do
    [[ "$w" =~ ^[0-9]+(\.[0-9]+)?(ms|s|min)?$ ]] \
        || { echo "straggler.sh: bad wait '$w' (use e.g. 0, 100ms, 3s)" >&2; exit 2; }
done

skip=",${EMBER_STRAGGLER_SKIP:-},"
target="${CARGO_TARGET_DIR:-$root/target}"
raw="benches/results/raw/straggler-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$raw"
: > "$raw/spark.jsonl"
: > "$raw/ember.jsonl"
common=(--slow-ms "$slow_ms" --lr-points "$points" --partitions "$partitions"
        --iterations "$iterations" --warmup "$warmup")

say() { printf '\n== %s   [load %s]\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" >&2; }
skipped() { [[ "$skip" == *",$1,"* ]]; }

say "settings: waits $waits, slow worker sleeps ${slow_ms} ms per task, $points points in $partitions partitions, $iterations iterations (+$warmup warm-up)"

if skipped spark; then
    say "Spark: skipped"
else
    say "Spark 4 (local-cluster[2,1,2048]): one SparkContext per wait"
    SPARK_BENCH_HEAP="${SPARK_BENCH_HEAP:-2g}" benches/spark/build_and_run.sh --straggler \
        --waits "$waits" "${common[@]}" ${spark_conf[@]+"${spark_conf[@]}"} | tee "$raw/spark.jsonl" \
        || echo "Spark straggler run FAILED (see the log named above); continuing" >&2
fi

if skipped ember; then
    say "Ember: skipped"
elif [[ ! -f benches/src/bin/ember-straggler-bench.rs && ! -f benches/src/bin/ember-straggler-bench/main.rs ]]; then
    say "Ember: MISSING (benches/src/bin/ember-straggler-bench.rs does not exist yet); Ember columns stay empty"
else
    say "building ember-submit and ember-straggler-bench (release)"
    if cargo build --release -p ember --bin ember-submit && cargo build --release -p ember-bench --bin ember-straggler-bench; then
        for w in "${wait_list[@]}"; do
            say "Ember: 2 processes x 1 worker, wait $w"
            # Process 0's lines come prefixed with "[p0] "; its JSON line is the result.
            "$target/release/ember-submit" --processes 2 --workers 1 -- \
                "$target/release/ember-straggler-bench" --wait "$w" "${common[@]}" \
                | tee "$raw/ember-$w.out" | sed -n 's/^\[p0\] \({.*\)$/\1/p' | tee -a "$raw/ember.jsonl"
            [[ ${PIPESTATUS[0]} -eq 0 ]] || echo "Ember run with wait $w FAILED (output in $raw/ember-$w.out); continuing" >&2
        done
    else
        echo "building the Ember side FAILED; Ember columns stay empty" >&2
    fi
fi

say "table"
python3 - "$raw" "$waits" <<'EOF' | tee "$raw/table.md"
import json, re, sys
from pathlib import Path

raw, waits = Path(sys.argv[1]), sys.argv[2].split(",")

def wait_ms(text):
    m = re.fullmatch(r"([0-9.]+)(ms|s|min)?", str(text).strip())
    if not m:
        return None
    scale = {"ms": 1, None: 1, "s": 1000, "min": 60000}[m.group(2)]
    return round(float(m.group(1)) * scale)

def load(name):
    lines = {}
    for line in (raw / name).read_text().splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if r.get("workload") != "lr_straggler":
            continue
        key = r.get("wait_ms", wait_ms(r.get("wait")))
        lines[key] = r
    return lines

spark, ember = load("spark.jsonl"), load("ember.jsonl")

def total(r):
    return None if r is None else r.get("total_seconds", r.get("seconds"))

def mix(r):
    if r is None or not r.get("locality"):
        return "-"
    short = {"PROCESS_LOCAL": "P", "NODE_LOCAL": "N", "NO_PREF": "NP", "RACK_LOCAL": "R", "ANY": "A"}
    return " ".join(f"{short.get(k, k)}:{v}" for k, v in sorted(r["locality"].items()) if v)

def per_exec(r):
    t = None if r is None else r.get("tasks_per_executor")
    return "-" if not t else " ".join(f"{k}:{v}" for k, v in sorted(t.items()))

def agree(a, b):
    if a is None or b is None:
        return "-"
    wa, wb = a.get("answer", {}).get("w"), b.get("answer", {}).get("w")
    if not wa or not wb or len(wa) != len(wb):
        return "MISSING"
    tol = 1e-6 * max(abs(v) for v in wa + wb)
    return "agree" if all(abs(x - y) <= tol for x, y in zip(wa, wb)) else "DIFFER"

def f(x):
    return "-" if x is None else f"{x:.3f}"

print("| wait | Ember total s | Spark total s | Spark/Ember | Ember locality | Spark locality "
      "| Ember tasks per worker | Spark tasks per executor | weights |")
print("|---|---:|---:|---:|---|---|---|---|---|")
for w in waits:
    e, s = ember.get(wait_ms(w)), spark.get(wait_ms(w))
    te, ts = total(e), total(s)
    ratio = f"{ts / te:.1f}x" if te and ts else "-"
    print(f"| {w} | {f(te)} | {f(ts)} | {ratio} | {mix(e)} | {mix(s)} | {per_exec(e)} | {per_exec(s)} | {agree(e, s)} |")
print()
print("Locality: P = PROCESS_LOCAL, N = NODE_LOCAL, A = ANY (task counts over the timed iterations). "
      "Straggler: every task on worker/executor 1 sleeps first.")
EOF
echo "raw result lines and the table: $raw" >&2
