#!/usr/bin/env bash
# The CPU forward attention of an earlier commit (default HEAD) and of this tree, in one JVM and in turn on the same
# inputs (bench/AttentionBenchmark.java); prints the machine and writes bench/results/cpu-attention-<host>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-HEAD}
shift || true
here=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- kernel || echo "+changes")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q . "$work/base"
git -C "$work/base" checkout -q "$base"
# shellcheck disable=SC2086
(cd "$work/base" && mvn -B -q -Dstyle.color=never ${MAVEN_ARGS:-} -DskipTests -pl kernel package)
# shellcheck disable=SC2086
mvn -B -q -Dstyle.color=never ${MAVEN_ARGS:-} -DskipTests -pl kernel package
jar() { ls "$1"/kernel/target/fluxbatch-kernel-*.jar | grep -v tests | head -1; }
mkdir -p bench/results
out="bench/results/cpu-attention-$(hostname -s).txt"
{
  echo "command: ${MAVEN_ARGS:+MAVEN_ARGS=\"$MAVEN_ARGS\" }bench/attention.sh $base $*   ($(date -u +%Y-%m-%dT%H:%MZ)); base $(git rev-parse --short "$base"),"\
" this tree $here; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  java --add-modules=jdk.incubator.vector -Xmx8g bench/AttentionBenchmark.java "$(jar "$work/base")" "$(jar "$PWD")" \
    "$@" 2>&1 | grep -vE "incubat|^1 warning"
} | tee "$out"
echo "written: $out"
