#!/usr/bin/env bash
# Ternary GPTQ seconds per layer at each distinct shape of FLUX.1-dev's block linear layers and the estimated time for
# all of them (bench/GptqBenchmark.java), then the Java fallback (-Dfluxbatch.blas=off) on one 3072 x 3072 layer;
# writes bench/results/gptq-<host>.txt. About 8 minutes on 2 cores, 12 GB of memory.
# Usage: bench/gptq.sh [BASE] [ARGS...]   BASE: a commit whose model and kernel are built in a temporary clone; its gptq
# runs on one layer (old=OUTxIN, default 3072 x 3072: its full-size times are minutes) in the same JVM as this tree's,
# and the codes and scales are compared. ARGS go to the benchmark (shapes=OUTxIN,..., old=OUTxIN).
# MVN_FLAGS (e.g. "-o -Dfluxbatch.skipCuda=true") go to every mvn call.
# Fresh memory is slow to touch on some virtual machines (4 KiB page faults, seconds per GB): the JVM and glibc's
# malloc (OpenBLAS's buffers) are asked for transparent huge pages, as a quantize run on such a machine should be.
set -euo pipefail
cd "$(dirname "$0")/.."
base=""
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then
  base=$1
  shift
fi
here=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo "+changes")
mvn -B -q -Dstyle.color=never ${MVN_FLAGS:-} -DskipTests -pl kernel,model -am package
jars() { # the model and kernel jars of a tree, and their dependencies
  local model kernel
  model=$(ls "$1"/model/target/fluxbatch-model-*.jar | grep -v tests | head -1)
  kernel=$(ls "$1"/kernel/target/fluxbatch-kernel-*.jar | grep -v tests | head -1)
  (cd "$1" && mvn -B -q -Dstyle.color=never ${MVN_FLAGS:-} -pl model dependency:build-classpath \
    -Dmdep.includeScope=runtime -Dmdep.outputFile="$1/model/target/classpath.txt" >/dev/null)
  echo "$model:$kernel:$(tr ':' '\n' <"$1/model/target/classpath.txt" | grep -v '/fluxbatch-' | paste -sd:)"
}
cp=$(jars "$PWD")
args=()
if [ -n "$base" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  git clone -q . "$work/base"
  git -C "$work/base" checkout -q "$base"
  (cd "$work/base" && mvn -B -q -Dstyle.color=never ${MVN_FLAGS:-} -DskipTests -pl kernel,model -am package)
  args+=("base=$(jars "$work/base")")
fi
export GLIBC_TUNABLES=glibc.malloc.hugetlb=1
java_flags=(--add-modules=jdk.incubator.vector -XX:+UseTransparentHugePages -Xmx12g)
mkdir -p bench/results
out="bench/results/gptq-$(hostname -s).txt"
{
  echo "command: bench/gptq.sh ${base:+$base }$*   ($(date -u +%Y-%m-%dT%H:%MZ)); this tree: $here${base:+, base: $(git rev-parse --short "$base")}"
  echo "load average before: $(cat /proc/loadavg)"
  java "${java_flags[@]}" -cp "$cp" bench/GptqBenchmark.java "${args[@]}" "$@" 2>&1 | grep -vE "incubat|^1 warning"
  echo "--- the Java fallback of this tree (-Dfluxbatch.blas=off), one layer:"
  java "${java_flags[@]}" -Dfluxbatch.blas=off -cp "$cp" bench/GptqBenchmark.java shapes=3072x3072 2>&1 \
    | grep -vE "incubat|^1 warning|^machine|^JVM|^FLUX|OpenBLAS turned off|^[A-Z][a-z]{2} [0-9]+, [0-9]{4}"
  echo "load average after: $(cat /proc/loadavg)"
} | tee "$out"
echo "written: $out"
