#!/usr/bin/env bash
# The differential benchmark (issue 16), one run: PageRank (20 iterations) and connected
# components on Debian's dependency graph (data/graphs) and on an R-MAT graph, by Ember's
# differential dataflows, by Ember RDD programs of one job per iteration, by a single-thread
# Rust baseline and by Spark GraphX (local[2], installed by benches/spark/build_and_run.sh into
# the bench cache, never by CI); then ten joins against one arranged table vs ten plain joins.
#
#   benches/graph_bench.sh [--rmat-edges N] [--join-rows N] [--workers W]
#
# Environment: EMBER_BENCH_SKIP=spark leaves GraphX out; CARGO_TARGET_DIR as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${EMBER_BENCH_CACHE:-$HOME/.cache/ember-bench}"
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$cache/graphs"
cargo build --release -q -p ember-bench --bin ember-graph-bench
bin="$target/release/ember-graph-bench"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
peer=()
if [[ ",${EMBER_BENCH_SKIP:-}," != *",spark,"* ]]; then
    files="$("$bin" "$@" --write-edges "$cache/graphs" | paste -sd, -)"
    bash benches/spark/build_and_run.sh --graph-bench --edges "$files" > "$cache/graphx.jsonl"
    peer=(--peer "$cache/graphx.jsonl")
fi
"$bin" "$@" "${peer[@]}"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
