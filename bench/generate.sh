#!/usr/bin/env bash
# Seconds per image and per step on the shipped miniature, beside the reference FLUX code in PyTorch timed in the same
# run on the same snapshot and sizes; writes bench/results/generate-<host>.txt.
#
# The reference (../shared/tools/reference/time_reference.py: float32, denoise + decode, mean of IMAGES images after a
# warm-up) needs Debian's python3-torch at /usr/bin/python3, FLUX_SRC (the src/ folder, or the root, of a
# black-forest-labs/flux checkout) and the einops wheel in ../shared/tools/wheels; without one of them its columns say
# why it was skipped. Environment: FLUX_SRC, IMAGES (default 3), MODEL (default models/flux-shapes-dev),
# MVN_FLAGS (e.g. "-o -Dfluxbatch.skipCuda=true"), JAVA_OPTS (e.g. -Dfluxbatch.blas=off).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${MODEL:-models/flux-shapes-dev}"
images="${IMAGES:-3}"
steps=20
threads=$(nproc)
mvn -B -q -Dstyle.color=never ${MVN_FLAGS:-} -DskipTests package
mkdir -p bench/results
out="bench/results/generate-$(hostname -s).txt"
tools="$(cd .. && pwd)/shared/tools"

reference_skip=""
flux_src="${FLUX_SRC:-}"
if [ -n "$flux_src" ] && [ -d "$flux_src/src/flux" ]; then
  flux_src="$flux_src/src"
fi
einops=$(ls "$tools"/wheels/einops-*.whl 2>/dev/null | head -1 || true)
if [ ! -f "$tools/reference/time_reference.py" ]; then
  reference_skip="no $tools/reference/time_reference.py"
elif ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  reference_skip="no PyTorch for /usr/bin/python3 (apt-get install python3-torch)"
elif [ -z "$flux_src" ] || [ ! -d "$flux_src/flux" ]; then
  reference_skip="FLUX_SRC is not a black-forest-labs/flux checkout (${FLUX_SRC:-unset})"
elif [ -z "$einops" ]; then
  reference_skip="no einops wheel in $tools/wheels"
fi

reference=()
reference_line="reference: skipped: $reference_skip"
if [ -z "$reference_skip" ]; then
  torch_version=$(/usr/bin/python3 -c "import torch; print(torch.__version__)")
  blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || echo "unknown")
  reference_line="reference: black-forest-labs/flux $(git -C "$flux_src/.." rev-parse --short HEAD 2>/dev/null \
    || echo checkout) in PyTorch $torch_version (float32, $threads threads, BLAS $blas), denoise + decode, mean of\
 $images images after a warm-up image"
  for side in 64 256; do
    json=$(PYTHONPATH="$flux_src:$einops" /usr/bin/python3 "$tools/reference/time_reference.py" "$model" "$side" \
      "$images" "$steps" "$threads" 2>/dev/null | tail -1)
    seconds=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['s_per_image'])" "$json")
    reference+=("reference${side}=$seconds")
  done
fi

{
  echo "command: bench/generate.sh   ($(date -u +%Y-%m-%dT%H:%MZ))${FLUX_SRC:+  FLUX_SRC=$FLUX_SRC}"
  echo "$reference_line"
  # shellcheck disable=SC2086
  java --add-modules=jdk.incubator.vector -Xmx8g ${JAVA_OPTS:-} -cp "jobs/target/lib/*" bench/GenerateBenchmark.java \
    "$model" "images=$images" "${reference[@]}" 2>&1 | grep -vE "incubat|^1 warning"
} | tee "$out"
echo "written: $out"
