#!/usr/bin/env bash
# Tokenizer throughput over PartiPrompts and T5 encoder time per prompt; writes bench/results/text-<host>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q -Dstyle.color=never -DskipTests package
mkdir -p bench/results
out="bench/results/text-$(hostname -s).txt"
{
  echo "command: bench/text.sh   ($(date -u +%Y-%m-%dT%H:%MZ))"
  java --add-modules=jdk.incubator.vector -cp "jobs/target/lib/*" bench/TextBenchmark.java "$@" 2>&1 \
    | grep -vE "incubat|^1 warning"
} | tee "$out"
echo "written: $out"
