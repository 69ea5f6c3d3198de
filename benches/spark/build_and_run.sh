#!/usr/bin/env bash
# The Spark peer of the Ember benchmarks: installs Spark (pip install pyspark 4.x into a venv),
# compiles the Scala RDD jobs in this directory with the Scala compiler jar that pyspark ships,
# and runs them in local[2] mode. Arguments are passed to EmberBench (see EmberBench.scala), e.g.
#
#   benches/spark/build_and_run.sh --text ~/.cache/ember-bench/data/words-200MB.txt
#
# Prints the JSON result lines on stdout; Spark's logs go to $SPARK_BENCH_LOG
# (default: $EMBER_BENCH_CACHE/spark-bench.log).
#
# Environment: EMBER_BENCH_CACHE (default ~/.cache/ember-bench) holds the venv and the jar;
# SPARK_BENCH_HEAP (default 8g) is the JVM heap; SPARK_MASTER (default local[2], and
# local-cluster[2,1,2048] with --straggler: see StragglerBench.scala).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${EMBER_BENCH_CACHE:-$HOME/.cache/ember-bench}"
venv="$cache/venv"
build="$cache/spark-build"
log="${SPARK_BENCH_LOG:-$cache/spark-bench.log}"
mkdir -p "$cache" "$build"

command -v java >/dev/null || { echo "spark: java not found (Java 17 is needed)" >&2; exit 1; }

# 1. Spark, from PyPI, in our own venv (pyspark is an sdist: a fresh setuptools is needed).
if ! "$venv/bin/python" -c 'import pyspark, sys; sys.exit(0 if pyspark.__version__.startswith("4.") else 1)' 2>/dev/null; then
    echo "spark: installing pyspark 4.x into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -U pip setuptools wheel >&2
    "$venv/bin/pip" install -q 'pyspark>=4,<5' >&2
fi
SPARK_HOME="$("$venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
spark_version="$("$venv/bin/python" -c 'import pyspark; print(pyspark.__version__)')"
export SPARK_HOME

# 2. Compile the jobs when the sources or the Spark version changed.
jar="$build/ember-bench-spark.jar"
stamp="$build/stamp"
want_stamp="$(cat "$here"/*.scala | sha256sum | cut -d' ' -f1) $spark_version"
if [[ ! -f "$jar" || ! -f "$stamp" || "$(cat "$stamp")" != "$want_stamp" ]]; then
    echo "spark: compiling $(ls "$here"/*.scala | xargs -n1 basename | tr '\n' ' ')against Spark $spark_version" >&2
    rm -f "$jar"
    java -cp "$SPARK_HOME/jars/*" scala.tools.nsc.Main -nowarn -d "$jar" \
        -classpath "$SPARK_HOME/jars/*" "$here"/*.scala >&2
    echo "$want_stamp" > "$stamp"
fi

# 3. Run. The flags are those Spark's launcher adds on Java 17 (JavaModuleOptions).
opens=(
    -XX:+IgnoreUnrecognizedVMOptions
    --add-modules=jdk.incubator.vector
    --add-opens=java.base/java.lang=ALL-UNNAMED
    --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
    --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens=java.base/java.io=ALL-UNNAMED
    --add-opens=java.base/java.net=ALL-UNNAMED
    --add-opens=java.base/java.nio=ALL-UNNAMED
    --add-opens=java.base/java.util=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens=java.base/sun.nio.cs=ALL-UNNAMED
    --add-opens=java.base/sun.security.action=ALL-UNNAMED
    --add-opens=java.base/sun.util.calendar=ALL-UNNAMED
    --add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED
    -Djdk.reflect.useDirectMethodHandle=false
    -Dio.netty.tryReflectionSetAccessible=true
)
# The straggler benchmark needs executor JVMs (two executors, one core each).
# Its executors are launched by Spark's in-process standalone workers: they need the Scala version
# (the launcher looks for a source build's directories without it) and write their logs under
# $SPARK_HOME/work/<app>/<executor>/stderr (cleared here at each run).
if [[ " $* " == *" --straggler "* ]]; then
    SPARK_MASTER="${SPARK_MASTER:-local-cluster[2,1,2048]}"
    export SPARK_SCALA_VERSION="${SPARK_SCALA_VERSION:-2.13}"
    rm -rf "$SPARK_HOME/work"
fi
echo "spark: running EmberBench (Spark $spark_version, ${SPARK_MASTER:-local[2]}); log: $log" >&2
launch_ms="$(date +%s%3N)"
if ! java -Xmx"${SPARK_BENCH_HEAP:-8g}" "${opens[@]}" -cp "$jar:$SPARK_HOME/jars/*" \
    EmberBench --master "${SPARK_MASTER:-local[2]}" --launch-ms "$launch_ms" "$@" 2>"$log"; then
    echo "spark: EmberBench failed; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
fi
