#!/usr/bin/env bash
# Quality of the 1.58-bit methods on flux-shapes-dev (the shipped model): calibrate on shapes/train.txt, quantize with
# absmean, refit, gptq and sequential gptq, generate the 200 held-out shapes/eval.txt captions (seeds 1000 + i, 64 x 64,
# 20 steps, guidance 3.5) and score them with ../shared/tools/shapes_eval.py; then `fluxbatch evaluate` on the first
# 32 eval captions. About an hour on 2 cores. Writes bench/results/shapes-quality-<host>.txt and
# bench/results/shapes-evaluate-<host>.{md,json}.
#   bench/shapes-quality.sh [CALIBRATION-PROMPTS [SEQUENTIAL-PROMPTS-PER-PASS]]   (default 256 and 64)
set -euo pipefail
cd "$(dirname "$0")/.."
limit="${1:-256}"
seq_limit="${2:-64}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
host=$(hostname -s)
out="bench/results/shapes-quality-$host.txt"
python3 -c "
import json, sys
lines = [l.rstrip('\n') for l in open('../shared/prompts/shapes/eval.txt') if l.strip()]
with open('$work/shapes-eval.jsonl', 'w') as f:
    for i, l in enumerate(lines):
        f.write(json.dumps({'prompt': l, 'seed': 1000 + i}) + '\n')"
train=../shared/prompts/shapes/train.txt
bin/fluxbatch calibrate --model models/flux-shapes-dev --prompts "$train" --limit "$limit" --steps 20 --gram \
  --output "$work/stats.safetensors"
bin/fluxbatch quantize --model models/flux-shapes-dev --output "$work/q-absmean"
bin/fluxbatch quantize --model models/flux-shapes-dev --calibration "$work/stats.safetensors" --method refit --output "$work/q-refit"
bin/fluxbatch quantize --model models/flux-shapes-dev --calibration "$work/stats.safetensors" --output "$work/q-gptq"
bin/fluxbatch-sequential-quantize --model models/flux-shapes-dev --output "$work/q-gptq-sequential" --work "$work/seq" \
  -- --prompts "$train" --limit "$seq_limit" --steps 20
{
  echo "command: bench/shapes-quality.sh $limit $seq_limit   ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo "machine: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
  echo "calibration: $limit prompts of shapes/train.txt, 20 steps all recorded, --gram; sequential: $seq_limit a pass"
  echo "eval: shapes/eval.txt (200 captions, none in train.txt), seeds 1000 + i, 64 x 64, 20 steps, guidance 3.5"
  for m in absmean refit gptq gptq-sequential; do
    bin/fluxbatch generate --model "$work/q-$m" --prompts "$work/shapes-eval.jsonl" --steps 20 --guidance 3.5 \
      --batch-size 4 --output "$work/out-$m" >/dev/null 2>&1
    echo "$m: $(python3 ../shared/tools/shapes_eval.py "$work/out-$m/images" --json)"
  done
} | tee "$out"
bin/fluxbatch evaluate --reference models/flux-shapes-dev --quantized "$work/q-absmean" --quantized "$work/q-refit" \
  --quantized "$work/q-gptq" --quantized "$work/q-gptq-sequential" --prompts ../shared/prompts/shapes/eval.txt \
  --limit 32 --steps 20 --output "bench/results/shapes-evaluate-$host"
echo "written: $out, bench/results/shapes-evaluate-$host.md"
