#!/usr/bin/env bash
# FLUX.1-dev inference memory on the GPU, 1.58-bit as fluxbatch holds it against all-BF16, per component, with the
# activation peaks of each stage measured by running the CUDA backend on a dry-run device (addresses only: no GPU
# needed, about 15 s). The model test class ai.fluxbatch.model.bench.InferenceMemory; writes
# bench/results/memory-<host>.txt. Usage: bench/memory.sh [SIZE]   (image side, default 1024)
# MVN_FLAGS (e.g. "-o -Dfluxbatch.skipCuda=true") go to every mvn call.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1024}
here=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo "+changes")
mvn -B -q -Dstyle.color=never ${MVN_FLAGS:-} -pl model -am test-compile
cpfile=$(mktemp)
trap 'rm -f "$cpfile"' EXIT
mvn -B -q -Dstyle.color=never ${MVN_FLAGS:-} -pl model dependency:build-classpath -Dmdep.includeScope=test \
  "-Dmdep.outputFile=$cpfile"
# this tree's kernel and model classes, not whatever fluxbatch jars the local repository holds
deps=$(tr ':' '\n' < "$cpfile" | grep -v '/ai/fluxbatch/' | paste -sd: -)
cp="model/target/test-classes:model/target/classes:kernel/target/test-classes:kernel/target/classes:$deps"
mkdir -p bench/results
out="bench/results/memory-$(hostname -s).txt"
{
  echo "command: bench/memory.sh $size   ($(date -u +%Y-%m-%dT%H:%MZ)); this tree: $here"
  java --add-modules=jdk.incubator.vector -Xmx8g -cp "$cp" ai.fluxbatch.model.bench.InferenceMemory \
    ../shared/golden/flux1-dev-layout.json "$size" 2>&1 | grep -v "Using incubator modules"
} | tee "$out"
echo "written: $out"
