#!/usr/bin/env bash
# Storage benchmarks: text line throughput vs raw read, Parquet scan (projection, 2 workers) vs
# pyarrow on the same file, S3 streaming reads vs a plain object_store GET loop on s3s-fs.
# Not run in CI. pyarrow goes into a venv under ${EMBER_BENCH_CACHE:-$HOME/.cache/ember-bench}.
# Extra arguments go to the bench binary: --text-mb N --rounds N --parquet-rows N --s3-mb N --dir DIR.
# Latest text figures and how they were measured: benches/storage/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${EMBER_BENCH_CACHE:-$HOME/.cache/ember-bench}"
VENV="$CACHE/venv-storage"
mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import pyarrow" 2>/dev/null; then
    "$VENV/bin/pip" install --quiet pyarrow
fi
bash .ci/setup.d/40-s3s.sh >/dev/null
export EMBER_BENCH_PYTHON="$VENV/bin/python"
cargo run --release -p ember-storage --example storage_bench -- --dir "$CACHE/storage" "$@"
