#!/usr/bin/env bash
# CPU matmul benchmark at FLUX shapes; prints the machine and writes bench/results/cpu-matmul-<host>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
mvn -B -q -Dstyle.color=never -DskipTests -pl kernel package
jar=$(ls kernel/target/fluxbatch-kernel-*.jar | grep -v tests | head -1)
mkdir -p bench/results
out="bench/results/cpu-matmul-$(hostname -s).txt"
{
  echo "command: bench/matmul.sh   ($(date -u +%Y-%m-%dT%H:%MZ))"
  java --add-modules=jdk.incubator.vector -Xmx8g -cp "$jar" bench/MatmulBenchmark.java 2>&1 | grep -vE "incubat|^1 warning"
} | tee "$out"
echo "written: $out"
