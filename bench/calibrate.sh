#!/usr/bin/env bash
# Calibration throughput (prompts/s) of `fluxbatch calibrate` on the shipped miniature, without and with --gram, in
# Spark local mode; writes bench/results/calibrate-<host>.txt.
#   bench/calibrate.sh [LIMIT [STEPS]]     (default 32 prompts, 20 steps, 64 x 64)
# PROMPTS=... picks the prompt file (default ../shared/prompts/shapes/train.txt); FLUXBATCH_TARGET=... the build
# folder (default target). The time is the job's: from the first task to the file written, model load included,
# Spark start-up not.
set -euo pipefail
cd "$(dirname "$0")/.."
limit="${1:-32}"
steps="${2:-20}"
prompts="${PROMPTS:-../shared/prompts/shapes/train.txt}"
target="${FLUXBATCH_TARGET:-target}"
model="models/flux-shapes-dev"
mvn -B -q -Dstyle.color=never -Dfluxbatch.target="$target" -DskipTests package
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p bench/results
out="bench/results/calibrate-$(hostname -s).txt"

calibrate() { # extra options...; prints the job's final line
  # shellcheck disable=SC2046
  java $(cat "jobs/$target/classes/ai/fluxbatch/jobs/jvm.options") -Xmx8g \
    -Dlog4j2.configurationFile=conf/log4j2.properties -Dfluxbatch.home=. \
    -cp "jobs/$target/fluxbatch-jobs.jar:jobs/$target/lib/*" ai.fluxbatch.jobs.Main calibrate \
    --model "$model" --prompts "$prompts" --limit "$limit" --steps "$steps" --output "$work/stats.safetensors" \
    --overwrite "$@" 2>"$work/err.txt" | grep '^calibrate: .* prompts/s' \
    || { cat "$work/err.txt" >&2; exit 1; }
}

{
  echo "command: bench/calibrate.sh $limit $steps   ($(date -u +%Y-%m-%dT%H:%MZ))"
  cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  echo "machine: ${cpu:-unknown CPU}, $(nproc) cores; $(java -version 2>&1 | head -1)"
  echo "problem: $model, $limit prompts of $prompts, $steps steps all recorded, 64 x 64, batch 4, 16 prompts a partition"
  for gram in off on; do
    if [ "$gram" = on ]; then line=$(calibrate --gram); else line=$(calibrate); fi
    echo "gram $gram: $(grep -o 'statistics take .*' "$work/err.txt")"
    echo "  $line"
  done
} | tee "$out"
echo "written: $out"
