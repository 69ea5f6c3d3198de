#!/usr/bin/env bash
# One command for the Ember benchmark suite: every workload on Ember and on Spark (local[2]),
# plus the hand-written timely word count, in the same run; then the comparison table.
#
#   benches/run.sh
#
# Steps: build the bench binaries (release); generate the word-count text once into
# $EMBER_BENCH_DATA (default ~/.cache/ember-bench/data); run the Spark suite
# (benches/spark/build_and_run.sh, which installs pyspark on first use); run the timely
# baseline; run the Ember suite (the ember-engine-bench binary) and time a whole Ember
# `word_count` example process; merge the result lines with ember-bench-report, which checks
# the answers, prints the table and writes benches/results/latest.{json,md} and the table in
# benches/README.md.
#
# Environment:
#   EMBER_BENCH_CACHE      cache root (default ~/.cache/ember-bench): venv, Spark jar, data
#   EMBER_BENCH_DATA       where the text file lives (default $EMBER_BENCH_CACHE/data)
#   EMBER_BENCH_TEXT_SIZE  text size (default 200MB)
#   EMBER_BENCH_SKIP       comma-separated parts to skip: spark,timely,ember,process,storage
#                          (storage: ember-storage-levels-bench and Spark's cached LR per storage
#                          level, written to $raw/storage_levels.txt, outside the main table)
#   SPARK_BENCH_ARGS       extra arguments for EmberBench (e.g. "--repeat 3")
#   CARGO_TARGET_DIR       cargo's target directory (default <repo>/target)
set -uo pipefail
shopt -s nullglob

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cache="${EMBER_BENCH_CACHE:-$HOME/.cache/ember-bench}"
data="${EMBER_BENCH_DATA:-$cache/data}"
size="${EMBER_BENCH_TEXT_SIZE:-200MB}"
skip=",${EMBER_BENCH_SKIP:-},"
target="${CARGO_TARGET_DIR:-$root/target}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
raw="benches/results/raw/$stamp"
mkdir -p "$data" "$raw"

say() { printf '\n== %s   [load %s]\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" >&2; }
skipped() { [[ "$skip" == *",$1,"* ]]; }

say "building the bench binaries (release)"
cargo build --release -p ember-bench --bins || { echo "build failed" >&2; exit 1; }

text="$data/words-$size.txt"
if [[ ! -s "$text" ]]; then
    say "generating $text"
    "$target/release/ember-datagen" --out "$text" --size "$size" || exit 1
else
    say "using $text ($(stat -c %s "$text") bytes)"
fi

if skipped spark; then
    say "Spark: skipped"
else
    say "Spark 4 (local[2]): JVM start-up, warm-up, then each workload"
    # shellcheck disable=SC2086
    benches/spark/build_and_run.sh --text "$text" ${SPARK_BENCH_ARGS:-} | tee "$raw/spark.jsonl" \
        || echo "Spark suite FAILED (see the log named above); continuing" >&2
fi

if skipped timely; then
    say "timely: skipped"
else
    say "timely word count (2 workers)"
    "$target/release/timely-wordcount" "$text" --workers 2 | tee "$raw/timely.jsonl" \
        || echo "timely word count FAILED; continuing" >&2
fi

if skipped ember; then
    say "Ember: skipped"
elif [[ -f benches/src/bin/ember-engine-bench.rs || -f benches/src/bin/ember-engine-bench/main.rs ]]; then
    say "Ember suite (2 workers)"
    cargo run --release -p ember-bench --bin ember-engine-bench -- --text "$text" --workers 2 \
        | tee "$raw/ember.jsonl" || echo "Ember suite FAILED; continuing" >&2
else
    say "Ember suite: MISSING (benches/src/bin/ember-engine-bench.rs does not exist yet); Ember columns stay empty"
fi

if skipped process; then
    say "Ember word_count process: skipped"
elif [[ -f examples/word_count.rs || -f examples/word_count/main.rs ]]; then
    say "Ember word_count example: whole process, start to answer"
    if cargo build --release --example word_count; then
        t0="$(date +%s%N)"
        "$target/release/examples/word_count" "$text" > "$raw/word_count_process.out"
        rc=$?
        t1="$(date +%s%N)"
        if [[ $rc -eq 0 ]]; then
            secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')"
            line="{\"system\":\"ember\",\"workload\":\"word_count_process\",\"seconds\":$secs,\"command\":\"target/release/examples/word_count <text>\"}"
            echo "$line" | tee "$raw/process.jsonl"
        else
            echo "word_count example FAILED (exit $rc); output in $raw/word_count_process.out" >&2
        fi
    else
        echo "building the word_count example FAILED; continuing" >&2
    fi
else
    say "Ember word_count example: MISSING (examples/word_count.rs does not exist yet)"
fi

levels="MEMORY_ONLY,MEMORY_AND_DISK,MEMORY_ONLY_SER,MEMORY_AND_DISK_SER,DISK_ONLY"
if skipped storage; then
    say "storage levels: skipped"
else
    say "storage levels: footprint, re-read, codec, cached LR per level (Ember, then Spark)"
    "$target/release/ember-storage-levels-bench" --workers 2 | tee "$raw/storage_levels.txt" \
        || echo "ember-storage-levels-bench FAILED; continuing" >&2
    if ! skipped spark; then
        benches/spark/build_and_run.sh --only lr_levels --lr-levels "$levels" | tee -a "$raw/storage_levels.txt" \
            || echo "Spark LR per storage level FAILED; continuing" >&2
    fi
fi

say "report"
"$target/release/ember-bench-report" --reference --out-dir benches/results \
    --readme benches/README.md "$raw"/*.jsonl
status=$?
echo "raw result lines: $raw" >&2
exit $status
