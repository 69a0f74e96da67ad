#!/usr/bin/env bash
# Full-size FLUX.1-dev storage and memory figures: a random BF16 checkpoint with the real layout, quantized with
# -Xmx4g, file sizes, and resident weight bytes. Needs ~30 GB of disk under WORK (default /tmp/fluxbatch-fullsize).
# Writes bench/results/fullsize-<host>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/fluxbatch-fullsize}
rm -rf "$work" && mkdir -p "$work" bench/results
out="bench/results/fullsize-$(hostname -s).txt"
mvn -B -q -Dstyle.color=never -DskipTests package
{
  echo "command: bench/fullsize.sh $work   ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "== synthetic BF16 checkpoint with ../shared/golden/flux1-dev-layout.json"
  /usr/bin/time -f "synth-checkpoint: %e s wall, peak RSS %M KiB" \
    bin/fluxbatch debug synth-checkpoint --layout ../shared/golden/flux1-dev-layout.json --output "$work/bf16" 2>&1 \
    | grep -vE "incubat"
  echo "== quantize with -Xmx4g"
  # RSS counts the pages of the memory-mapped source that were read (clean page cache the kernel can drop at
  # will); RssAnon is the process's own memory (heap and the rest): the figure the memory bound is about.
  FLUXBATCH_JAVA_OPTS=-Xmx4g bin/fluxbatch quantize --model "$work/bf16" --output "$work/q158" > "$work/quantize.log" 2>&1 &
  pid=$!; anon=0; rss=0
  while kill -0 "$pid" 2>/dev/null; do
    a=$(awk '/RssAnon/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0); r=$(awk '/VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${a:-0}" -gt "$anon" ] && anon=$a; [ "${r:-0}" -gt "$rss" ] && rss=$r
    sleep 1
  done
  wait "$pid"
  grep -vE "incubat" "$work/quantize.log" | awk 'NR % 8 == 1 || /written|other/'
  echo "quantize peak RssAnon $((anon / 1024)) MiB (heap capped at 4 GiB), peak RSS $((rss / 1024)) MiB (incl. mapped source pages)"
  bf=$(stat -c %s "$work/bf16/flux1-dev.safetensors"); q=$(stat -c %s "$work/q158/flux1-dev.safetensors")
  echo "== file sizes"
  awk -v b="$bf" -v q="$q" 'BEGIN { printf "BF16 %.0f bytes (%.2f GiB), 1.58-bit %.0f bytes (%.2f GiB): %.2fx smaller\n", b, b/2^30, q, q/2^30, b/q }'
  echo "== resident weight bytes after loading the 1.58-bit transformer (CPU backend)"
  java --add-modules=jdk.incubator.vector -Xmx12g -cp "jobs/target/lib/*" bench/ResidentBytes.java "$work/q158" 2>&1 \
    | grep -vE "incubat|^1 warning"
} | tee "$out"
echo "written: $out"
