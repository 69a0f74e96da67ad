#!/usr/bin/env bash
# Images per second at the miniature size: the pipeline in one process against the Spark generate job in local mode
# with 1 and 2 task slots, in one run; writes bench/results/spark-overhead-<host>.txt.
# FLUXBATCH_TARGET=target-2 builds into (and runs from) another build folder, as -Dfluxbatch.target does.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${FLUXBATCH_TARGET:-target}"
mvn -B -q -Dstyle.color=never -Dfluxbatch.target="$target" -DskipTests package
mkdir -p bench/results
out="bench/results/spark-overhead-$(hostname -s).txt"
# the JVM options Spark and the Vector API need on Java 17+, as the launcher uses them
jvm_options=$(cat "jobs/$target/classes/ai/fluxbatch/jobs/jvm.options")
{
  echo "command: ${FLUXBATCH_TARGET:+FLUXBATCH_TARGET=$FLUXBATCH_TARGET }bench/spark-overhead.sh $*   ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  # shellcheck disable=SC2086
  java $jvm_options -Xmx8g -Dlog4j2.configurationFile=conf/log4j2.properties \
    -cp "jobs/$target/fluxbatch-jobs.jar:jobs/$target/lib/*" bench/SparkOverheadBenchmark.java "$@" 2>&1 \
    | grep -vE "incubat|^1 warning"
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 minutes; other work on the machine slows every figure)"
} | tee "$out"
echo "written: $out"
