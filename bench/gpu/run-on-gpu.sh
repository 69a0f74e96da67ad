#!/usr/bin/env bash
# The GPU check, run ON the GPU machine from the repository root, with gpu-kit/ built by bench/gpu/package.sh:
#
#   run(command="bash bench/gpu/run-on-gpu.sh", carry=["gpu-kit"])
#
# That machine has CUDA 13 and python3 with torch and the nvidia-cublas / cuda-nvrtc / cuda-runtime wheels, but no
# Java, no Maven and no network: the kit brings a Java runtime, the jars and the compiled tests; this script finds the
# CUDA 13 libraries of the Python wheels, puts them on LD_LIBRARY_PATH, shows the GPUs and runs the GPU tests (and
# any benchmarks listed below) with the JUnit console launcher. Everything goes to $OUT/gpu-check.log (and stdout);
# the JUnit XML reports to $OUT/junit/. Exits with the tests' status.
#
# Environment: OUT (default ./gpu-out), GPU_KIT (default ./gpu-kit), GPU_TEST_CLASSES and GPU_BENCH_MAINS to replace
# the lists below for one run, FLUXBATCH_REQUIRE_GPU (default true: a GPU test that finds no GPU fails; false for a
# dry run of the kit on a machine without a GPU, where the GPU tests skip themselves). The kit's Java runtime,
# gpu-kit/jre.tar.xz, is unpacked once under $TMPDIR (default /tmp); the model tests read gpu-kit/golden/.
set -uo pipefail

root="$(pwd)"
kit="${GPU_KIT:-$root/gpu-kit}"
out="${OUT:-$root/gpu-out}"
mkdir -p "$out"
log="$out/gpu-check.log"
exec > >(tee -a "$log") 2>&1

# ---- what to run ---------------------------------------------------------------------------------------------------
# >>> GPU TEST CLASSES: add more test classes (fully qualified) here <<<
test_classes=(
  ai.fluxbatch.kernel.cuda.CudaDriverDeviceTest
  ai.fluxbatch.kernel.cuda.CudaBackendTest
  ai.fluxbatch.kernel.cuda.CudaBackwardOnGpuTest
  ai.fluxbatch.kernel.cuda.CudaFlashAttentionOnGpuTest
  ai.fluxbatch.model.flux.FluxTransformerGoldenTest
  ai.fluxbatch.model.quant.QuantizedSnapshotTest
  ai.fluxbatch.model.TextEncodersAndVaeOnCudaTest
  ai.fluxbatch.model.text.TextEncodersBf16Test
)
# >>> BENCHMARKS: add "main.Class arg1 arg2 ..." entries here; each runs after the tests, output in $OUT/bench-N.log <<<
bench_mains=(
  # the 1.58-bit product (the backend's path, the SIMT kernel, decode + GEMM) against cuBLAS FP32/BF16 and torch's BF16
  # matmul on FLUX.1-dev's block linear shapes, M = 1 .. 4608 (where DENSE_FROM_M should be), and the weight bytes
  # against BF16 (under a minute on an H100)
  "ai.fluxbatch.model.bench.CudaBenchmark kernels --m 1,64,256,1024,4608 --torch $out/torch-baseline.json --layout $kit/golden/flux1-dev-layout.json"
  # forward attention: the flash kernels (float32 SIMT) against the GEMM path (cuBLAS FP32 and BF16 + softmax) at the
  # models' shapes, up to FLUX.1-dev's 4,608 tokens x 24 heads of 128 (well under a minute)
  "ai.fluxbatch.kernel.cuda.CudaAttentionBenchmark"
  # seconds per denoising step of the whole 1.58-bit FLUX.1-dev at 1024 x 1024 (4096 + 512 tokens), synthetic weights;
  # stops timing steps at 100 s (load + warm-up + steps)
  "ai.fluxbatch.model.bench.CudaBenchmark step --layout $kit/golden/flux1-dev-layout.json --steps 3 --max-seconds 100"
)
if [ -n "${GPU_TEST_CLASSES:-}" ]; then
  read -r -a test_classes <<< "$GPU_TEST_CLASSES"
fi
if [ -n "${GPU_BENCH_MAINS:-}" ]; then
  IFS=';' read -r -a bench_mains <<< "$GPU_BENCH_MAINS"
fi
# ---------------------------------------------------------------------------------------------------------------------

echo "== run-on-gpu.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
tmp="${TMPDIR:-/tmp}"
# the kit's Java runtime: gpu-kit/jre.tar.xz unpacked once under $TMPDIR, outside the kit so that the kit does not
# grow (a kit of an older package.sh has gpu-kit/jre/ itself)
unpack_jre() { # tarball folder: with tar and xz, else with python3's tarfile
  rm -rf "$2" && mkdir -p "$2" || return 1
  if command -v xz > /dev/null && tar -C "$2" -xJf "$1"; then
    return 0
  fi
  rm -rf "$2" && mkdir -p "$2" || return 1
  python3 -c 'import sys, tarfile
t = tarfile.open(sys.argv[1])
t.extractall(sys.argv[2], **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))' "$1" "$2"
}
if [ -x "$kit/jre/bin/java" ]; then
  java="$kit/jre/bin/java"
else
  jre_home="$tmp/fluxbatch-gpu-jre-$(cksum < "$kit/jre.tar.xz" 2>/dev/null | cut -d' ' -f1)"
  if [ -f "$kit/jre.tar.xz" ] && [ ! -x "$jre_home/jre/bin/java" ]; then
    echo "unpacking $kit/jre.tar.xz to $jre_home"
    if unpack_jre "$kit/jre.tar.xz" "$jre_home.part"; then
      rm -rf "$jre_home" && mv "$jre_home.part" "$jre_home"
    else
      echo "run-on-gpu.sh: could not unpack $kit/jre.tar.xz (needs tar and xz, or python3)" >&2
    fi
  fi
  java="$jre_home/jre/bin/java"
fi
if [ ! -x "$java" ]; then
  echo "run-on-gpu.sh: no Java runtime in $kit (jre.tar.xz): build the kit with bench/gpu/package.sh and carry gpu-kit" >&2
  exit 2
fi

# ---- the CUDA 13 libraries of the Python wheels --------------------------------------------------------------------
search_dirs=()
while IFS= read -r d; do
  [ -n "$d" ] && [ -d "$d" ] && search_dirs+=("$d")
done < <(python3 - <<'PY' 2>/dev/null
import os, site, sys
paths = []
try:
    import nvidia  # a namespace package: __file__ may be None, __path__ lists its folders
    paths += list(getattr(nvidia, "__path__", []))
    if getattr(nvidia, "__file__", None):
        paths.append(os.path.dirname(nvidia.__file__))
except Exception:
    pass
try:
    paths += site.getsitepackages()
except Exception:
    pass
try:
    paths.append(site.getusersitepackages())
except Exception:
    pass
paths += [p for p in sys.path if p.endswith("-packages")]
seen = set()
for p in paths:
    if p and os.path.isdir(p) and p not in seen:
        seen.add(p)
        print(p)
PY
)
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && search_dirs+=("$d")
done
echo "library search folders: ${search_dirs[*]:-(none)}"

lib_dirs=()
add_dir() {
  local d="$1" e
  for e in "${lib_dirs[@]}"; do
    [ "$e" = "$d" ] && return 0
  done
  lib_dirs+=("$d")
}
missing=0
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libnvrtc.so.13; do
  found=""
  if [ "${#search_dirs[@]}" -gt 0 ]; then
    found="$(find -H "${search_dirs[@]}" -maxdepth 5 \( -type f -o -type l \) -name "$lib" -print 2>/dev/null | head -n 1)"
  fi
  if [ -n "$found" ]; then
    echo "found $lib: $found"
    add_dir "$(dirname "$found")"
  else
    echo "WARNING: $lib not found under the Python packages or /usr/local/cuda"
    missing=1
  fi
done
# NVRTC loads its builtins library (libnvrtc-builtins.so.13.*) from the library path too
builtins=""
if [ "${#lib_dirs[@]}" -gt 0 ]; then
  builtins="$(find "${lib_dirs[@]}" -maxdepth 1 -name 'libnvrtc-builtins.so.13*' -print 2>/dev/null | head -n 1)"
fi
echo "NVRTC builtins: ${builtins:-not found beside libnvrtc.so.13}"
if [ "${#lib_dirs[@]}" -gt 0 ]; then
  joined="$(IFS=:; echo "${lib_dirs[*]}")"
  export LD_LIBRARY_PATH="$joined${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
echo "libcuda.so.1 (the driver): $(ldconfig -p 2>/dev/null | grep -m1 'libcuda\.so\.1 ' || echo 'not in the ldconfig cache')"
[ "$missing" = 0 ] || echo "WARNING: some CUDA 13 libraries are missing: expect the tests to say which"

# ---- the GPUs ------------------------------------------------------------------------------------------------------
nvidia-smi -L || echo "WARNING: nvidia-smi -L failed"
# the model tests (TestBackends) run cuda-fp32 and cuda-bf16 only where /dev/nvidiactl or /dev/nvidia0 exists
if [ ! -e /dev/nvidiactl ] && [ ! -e /dev/nvidia0 ]; then
  echo "WARNING: neither /dev/nvidiactl nor /dev/nvidia0 here: the model tests skip their GPU backends"
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,compute_cap --format=csv \
  || echo "WARNING: nvidia-smi --query-gpu failed"
"$java" -version

# ---- the tests -----------------------------------------------------------------------------------------------------
console="$(find "$kit/lib" -maxdepth 1 -name 'junit-platform-console-standalone-*.jar' | head -n 1)"
# the kernel's tests (the model tests use its EmulatedDevice), the model's tests, then the kernel, model and
# runtime jars
classpath="$kit/test-classes"
[ -d "$kit/model-test-classes" ] && classpath="$classpath:$kit/model-test-classes"
for jar in "$kit"/lib/*.jar; do
  [ "$jar" = "$console" ] || classpath="$classpath:$jar"
done
jvm_opts=(
  --add-modules=jdk.incubator.vector
  -Xmx16g
  "-Dorg.bytedeco.javacpp.cachedir=$tmp/fluxbatch-javacpp"
  "-Dfluxbatch.cuda.cache=$tmp/fluxbatch-cuda-cache"
  # a GPU test that finds no GPU here fails instead of skipping itself (FLUXBATCH_REQUIRE_GPU=false: it skips)
  "-Dfluxbatch.requireGpu=${FLUXBATCH_REQUIRE_GPU:-true}"
  # the golden data of the model tests (Golden.dir())
  "-Dfluxbatch.golden=$kit/golden"
)
select=()
for c in "${test_classes[@]}"; do
  select+=("--select-class=$c")
done
echo "== JUnit: ${test_classes[*]}"
"$java" "${jvm_opts[@]}" -jar "$console" execute --disable-banner --disable-ansi-colors --details=tree --fail-if-no-tests \
  "--class-path=$classpath" "--reports-dir=$out/junit" "${select[@]}"
status=$?
echo "== JUnit exit status $status"

# ---- the torch baseline of the benchmarks (cuBLAS BF16 through torch.matmul, this machine, this run) ----------------
# (only when a benchmark reads it: --torch .../torch-baseline.json)
if [[ "${bench_mains[*]:-}" == *torch-baseline.json* ]]; then
  echo "== torch baseline: python3 bench/gpu/torch_baseline.py $out/torch-baseline.json"
  python3 bench/gpu/torch_baseline.py "$out/torch-baseline.json"
  torch_status=$?
  if [ "$torch_status" != 0 ]; then
    echo "WARNING: bench/gpu/torch_baseline.py failed (exit status $torch_status, its error above): the benchmarks" \
      "print no ratios against torch's BF16 matmul"
  fi
fi

# ---- benchmarks ----------------------------------------------------------------------------------------------------
n=0
for entry in "${bench_mains[@]}"; do
  n=$((n + 1))
  read -r -a argv <<< "$entry"
  echo "== benchmark $n: ${argv[*]} (log $out/bench-$n.log)"
  "$java" "${jvm_opts[@]}" -cp "$classpath" "${argv[@]}" > "$out/bench-$n.log" 2>&1
  echo "== benchmark $n exit status $?"
  tail -n 20 "$out/bench-$n.log"
done

exit "$status"
