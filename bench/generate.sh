#!/usr/bin/env bash
# Seconds per image and per step on the shipped miniature; writes bench/results/generate-<host>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q -Dstyle.color=never -DskipTests package
mkdir -p bench/results
out="bench/results/generate-$(hostname -s).txt"
{
  echo "command: bench/generate.sh   ($(date -u +%Y-%m-%dT%H:%MZ))"
  java --add-modules=jdk.incubator.vector -Xmx8g -cp "jobs/target/lib/*" bench/GenerateBenchmark.java "$@" 2>&1 \
    | grep -vE "incubat|^1 warning"
} | tee "$out"
echo "written: $out"
