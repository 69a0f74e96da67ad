#!/usr/bin/env bash
# Seconds per image (bench/GenerateBenchmark.java) of an earlier commit and of this tree, alternating in one run on
# this machine, so a change's speed is measured against its baseline under the same load.
# Usage: bench/compare-commits.sh BASE [ROUNDS]   writes bench/results/compare-<base>-<host>.txt
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench/compare-commits.sh BASE [ROUNDS]}
rounds=${2:-2}
here=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo "+changes")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q . "$work/base"
git -C "$work/base" checkout -q "$base"
(cd "$work/base" && mvn -B -q -Dstyle.color=never -DskipTests package)
mvn -B -q -Dstyle.color=never -DskipTests package
mkdir -p bench/results
harness="$PWD/bench/GenerateBenchmark.java" # one harness for both trees
out="bench/results/compare-$(git rev-parse --short "$base")-$(hostname -s).txt"
{
  echo "command: bench/compare-commits.sh $base $rounds   ($(date -u +%Y-%m-%dT%H:%MZ)); this tree: $here"
  for round in $(seq "$rounds"); do
    for tree in "$work/base" "$PWD"; do
      if [ "$tree" = "$PWD" ]; then echo "== this tree ($here), round $round"; else echo "== base $base, round $round"; fi
      (cd "$tree" && java --add-modules=jdk.incubator.vector -Xmx8g -cp "jobs/target/lib/*" \
        "$harness" 2>&1 | grep -vE "incubat|^1 warning")
    done
  done
} | tee "$out"
echo "written: $out"
