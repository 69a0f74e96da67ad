#!/usr/bin/env bash
# CPU reverse-mode operations against their forwards at the flux-shapes-dev miniature's sizes; prints the machine
# and writes bench/results/cpu-backward-<host>.txt. Arguments go to the benchmark (e.g. b=1).
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q -Dstyle.color=never -DskipTests -pl kernel package
jar=$(ls kernel/target/fluxbatch-kernel-*.jar | grep -v tests | head -1)
mkdir -p bench/results
out="bench/results/cpu-backward-$(hostname -s).txt"
{
  echo "command: bench/backward.sh $*   ($(date -u +%Y-%m-%dT%H:%MZ))"
  java --add-modules=jdk.incubator.vector -Xmx8g -cp "$jar" bench/BackwardBenchmark.java "$@" 2>&1 \
    | grep -vE "incubat|^1 warning"
} | tee "$out"
echo "written: $out"
