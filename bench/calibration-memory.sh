#!/usr/bin/env bash
# Calibration statistics memory at full FLUX.1-dev layer sizes, and ternary GPTQ time on one full-size layer; writes
# bench/results/calibration-memory-<host>.txt.   bench/calibration-memory.sh [REGEX]   (default: single block 0)
# Takes about 10 minutes on 2 cores (most of it gptq on the 3072 x 12288 layer).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${FLUXBATCH_TARGET:-target}"
mvn -B -q -Dstyle.color=never -Dfluxbatch.target="$target" -DskipTests -pl kernel,model -am package
model_jar=$(ls model/"$target"/fluxbatch-model-*.jar | grep -v tests | head -1)
kernel_jar=$(ls kernel/"$target"/fluxbatch-kernel-*.jar | grep -v tests | head -1)
mvn -B -q -Dstyle.color=never -Dfluxbatch.target="$target" -pl model dependency:build-classpath \
  -Dmdep.outputFile="$PWD/model/$target/classpath.txt" >/dev/null
mkdir -p bench/results
out="bench/results/calibration-memory-$(hostname -s).txt"
{
  echo "command: bench/calibration-memory.sh $*   ($(date -u +%Y-%m-%dT%H:%MZ))"
  java --add-modules=jdk.incubator.vector -Xmx12g -cp "$model_jar:$kernel_jar:$(cat "model/$target/classpath.txt")" \
    bench/CalibrationMemory.java ../shared/golden/flux1-dev-layout.json "$@" 2>&1 | grep -vE "incubat|^1 warning"
} | tee "$out"
echo "written: $out"
