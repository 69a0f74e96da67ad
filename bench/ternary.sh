#!/usr/bin/env bash
# CPU ternary (1.58-bit) matmul against dense float32 at FLUX shapes; prints the machine and writes
# bench/results/cpu-ternary-<host>.txt. Arguments go to the benchmark (e.g. shapes=3072x3072 ms=1,256).
# FLUXBATCH_TARGET picks the build folder (default target), for a second build of one work tree.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${FLUXBATCH_TARGET:-target}"
mvn -B -q -Dstyle.color=never -Dfluxbatch.target="$target" -DskipTests -pl kernel package
jar=$(ls kernel/"$target"/fluxbatch-kernel-*.jar | grep -v tests | head -1)
mkdir -p bench/results
out="bench/results/cpu-ternary-$(hostname -s).txt"
# 16 GiB heap: the M = 1 stacks (about 1 GiB of dense and 1 GiB of ternary weights) plus the M = 4096 operands
{
  echo "command: bench/ternary.sh $*   ($(date -u +%Y-%m-%dT%H:%MZ))"
  java --add-modules=jdk.incubator.vector -Xmx16g -cp "$jar" bench/TernaryBenchmark.java "$@" 2>&1 \
    | grep -vE "incubat|^1 warning"
} | tee "$out"
echo "written: $out"
