#!/usr/bin/env bash
# The CPU dense linear and 3 x 3 convolution at the flux-shapes-dev miniature's and FLUX's shapes, numpy's sgemm beside
# them in the same run (bench/MatmulBenchmark.java, bench/numpy_sgemm.py); prints the machine and writes
# bench/results/cpu-matmul-<host><SUFFIX>.txt.
# Usage: bench/matmul.sh [BASE] [ARGS...]   BASE: a commit whose kernel is built in a temporary clone and timed in the
# same JVM, alternately with this tree's; ARGS go to the benchmark (flux=false, shapes=MxNxK,..., numpy=off,
# variants=vector,blas,auto). MVN_FLAGS (e.g. "-o -Dfluxbatch.skipCuda=true") go to every mvn call. OpenBLAS (ours and
# numpy's) picks its kernels for the CPU unless OPENBLAS_CORETYPE says otherwise; SUFFIX names the results file apart.
set -euo pipefail
cd "$(dirname "$0")/.."
base=""
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then
  base=$1
  shift
fi
here=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo "+changes")
mvn -B -q -Dstyle.color=never ${MVN_FLAGS:-} -DskipTests -pl kernel package
jar=$(ls kernel/target/fluxbatch-kernel-*.jar | grep -v tests | head -1)
deps=$(mktemp)
trap 'rm -f "$deps"' EXIT
mvn -B -q -Dstyle.color=never ${MVN_FLAGS:-} -pl kernel dependency:build-classpath -Dmdep.includeScope=runtime \
  -Dmdep.outputFile="$deps" >/dev/null
args=("new=$jar" "cp=$(cat "$deps")")
if [ -n "$base" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work" "$deps"' EXIT
  git clone -q . "$work/base"
  git -C "$work/base" checkout -q "$base"
  (cd "$work/base" && mvn -B -q -Dstyle.color=never ${MVN_FLAGS:-} -DskipTests -pl kernel package)
  args+=("base=$(ls "$work"/base/kernel/target/fluxbatch-kernel-*.jar | grep -v tests | head -1)")
fi
mkdir -p bench/results
out="bench/results/cpu-matmul-$(hostname -s)${SUFFIX:-}.txt"
{
  echo "command: ${MVN_FLAGS:+MVN_FLAGS=\"$MVN_FLAGS\" }${SUFFIX:+SUFFIX=$SUFFIX }${OPENBLAS_CORETYPE:+OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE }bench/matmul.sh ${base:+$base }$*   ($(date -u +%Y-%m-%dT%H:%MZ)$([ -n "${OPENBLAS_CORETYPE:-}" ] || echo "; OPENBLAS_CORETYPE unset")); this tree: $here${base:+, base: $(git rev-parse --short "$base")}"
  java --add-modules=jdk.incubator.vector -Xmx8g bench/MatmulBenchmark.java "${args[@]}" "$@" 2>&1 \
    | grep -vE "incubat|^1 warning|^Note: "
} | tee "$out"
echo "written: $out"
