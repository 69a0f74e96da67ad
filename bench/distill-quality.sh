#!/usr/bin/env bash
# Self-distillation on flux-shapes-dev, as issue 14 asks: calibrate --gram on every 10th caption of shapes/train.txt
# (8 steps, 64 x 64), quantize (gptq), distill with its defaults on train.txt, then generate the 200 held-out
# shapes/eval.txt captions (seeds 1000 + i, 20 steps, guidance 3.5) from gptq and from gptq+distill and score both
# with ../shared/tools/shapes_eval.py. About 1-2 hours on 2 cores. Writes bench/results/distill-quality-<host>.txt.
#   bench/distill-quality.sh [WORK-DIR]   (kept when given, a temporary folder otherwise)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then work="$1"; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
host=$(hostname -s)
out="bench/results/distill-quality-$host.txt"
train=../shared/prompts/shapes/train.txt
awk 'NR % 10 == 1' "$train" > "$work/train-every10.txt"
python3 -c "
import json
lines = [l.rstrip('\n') for l in open('../shared/prompts/shapes/eval.txt') if l.strip()]
with open('$work/shapes-eval.jsonl', 'w') as f:
    for i, l in enumerate(lines):
        f.write(json.dumps({'prompt': l, 'seed': 1000 + i}) + '\n')"
start=$(date +%s)
bin/fluxbatch calibrate --model models/flux-shapes-dev --prompts "$work/train-every10.txt" --steps 8 --height 64 \
  --width 64 --gram --output "$work/stats.safetensors"
bin/fluxbatch quantize --model models/flux-shapes-dev --calibration "$work/stats.safetensors" --output "$work/q-gptq"
t0=$(date +%s)
bin/fluxbatch distill --model models/flux-shapes-dev --quantized "$work/q-gptq" --prompts "$train" \
  --output "$work/q-gptq-distill" 2>&1 | tee "$work/distill.log" | grep -E 'step [0-9]*0/|steps \('
t1=$(date +%s)
{
  echo "command: bench/distill-quality.sh   ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo "machine: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
  echo "calibration: every 10th caption of shapes/train.txt ($(wc -l < "$work/train-every10.txt") prompts), 8 steps, 64 x 64, --gram"
  echo "distill: defaults (300 steps x 16 samples, lr 2e-3, scales and biases) on shapes/train.txt, $((t1 - t0)) s"
  grep -E 'steps \(' "$work/distill.log" || true
  echo "eval: shapes/eval.txt (200 captions, none in train.txt), seeds 1000 + i, 64 x 64, 20 steps, guidance 3.5"
  for m in q-gptq q-gptq-distill; do
    bin/fluxbatch generate --model "$work/$m" --prompts "$work/shapes-eval.jsonl" --steps 20 --guidance 3.5 \
      --batch-size 4 --output "$work/out-$m" >/dev/null 2>&1
    echo "$m: $(python3 ../shared/tools/shapes_eval.py "$work/out-$m/images" --json)"
  done
  echo "total: $(( $(date +%s) - start )) s"
} | tee "$out"
echo "written: $out"
