#!/usr/bin/env bash
# Seconds per self-distillation step on the shipped miniature (batch 16, 64 x 64, one process, CPU backend), against
# one generated image measured in the same run; writes bench/results/distill-<host>.txt.
#   bench/distill.sh [MODEL [BATCH]]
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q -Dstyle.color=never -DskipTests package
mkdir -p bench/results
out="bench/results/distill-$(hostname -s).txt"
{
  echo "command: bench/distill.sh $*   ($(date -u +%Y-%m-%dT%H:%MZ))"
  java --add-modules=jdk.incubator.vector -Xmx8g -cp "jobs/target/lib/*" bench/DistillBenchmark.java "$@" 2>&1 \
    | grep -vE "incubat|^1 warning"
} | tee "$out"
echo "written: $out"
