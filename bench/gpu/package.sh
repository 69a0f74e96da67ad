#!/usr/bin/env bash
# Builds gpu-kit/ for a GPU check: everything bench/gpu/run-on-gpu.sh needs on a GPU machine that has CUDA 13 and
# python3 with the nvidia-* wheels but no Java, no Maven and no network. Run it HERE (a machine with JDK 17 + Maven),
# from anywhere; the kit goes to the repository root (git-ignored through .git/info/exclude). A device run sends the
# working tree (tracked and untracked-not-ignored files, about 16 MiB with models/) AND the carried kit, 64 MiB in
# all: this script fails when the two together reach 64 MiB and warns above 60 MiB.
#
#   gpu-kit/jre.tar.xz      a jlink runtime of JDK 17 (java.base, java.logging, jdk.unsupported, jdk.incubator.vector,
#                           and java.xml for the JUnit console launcher's XML reports), libjvm.so stripped of its
#                           symbol table, as one xz tarball (about 12 MB instead of 40 MB as a folder);
#                           run-on-gpu.sh unpacks it under $TMPDIR (with tar and xz, or python3's tarfile)
#   gpu-kit/lib/            the kernel jar (with the fatbins when nvcc is here), the model jar, their runtime jars
#                           (JavaCPP and the CUDA presets with their linux-x86_64 natives, cut down to the JNI
#                           libraries of cudart, cublas and nvrtc; Jackson, Commons Text, ...) and the JUnit console
#                           launcher; not the OpenBLAS preset (its natives jar alone is 19.7 MB): the CPU backend there
#                           keeps its Vector API products, which NativeBlas logs
#   gpu-kit/test-classes/   the kernel's compiled tests (the model tests need its EmulatedDevice)
#   gpu-kit/model-test-classes/  the model's compiled tests
#   gpu-kit/golden/         the golden data those model tests read (run-on-gpu.sh passes -Dfluxbatch.golden): the
#                           flux-tiny-dev and flux-tiny-schnell snapshots and their cases' forward-1, forward-2 and
#                           quant-absmean (and t5, clip, vae for flux-tiny-dev), and flux1-dev-layout.json for the
#                           benchmark
#
# Then, with the device tool: run(command="bash bench/gpu/run-on-gpu.sh", carry=["gpu-kit"]).
#
# Environment: JAVA17_HOME (default: $JAVA_HOME when it is a 17, else /usr/lib/jvm/java-17-openjdk-amd64),
# GPU_KIT (default: <repo>/gpu-kit), GOLDEN (default: <repo>/../shared/golden), KEEP_TARGET=1 keeps
# kernel/target-kit and model/target-kit. Needs tar and xz; zip to cut the CUDA natives jar down (without it the
# whole jar goes) and strip for libjvm.so (without it the symbol table stays).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
kit="${GPU_KIT:-$root/gpu-kit}"
golden="${GOLDEN:-$root/../shared/golden}"
target="target-kit"
junit_console_version="1.14.1"
limit_bytes=$((64 * 1024 * 1024))

# JDK 17's jlink: the runtime must match the release the classes are compiled for
java17=""
for candidate in "${JAVA17_HOME:-}" "${JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/temurin-17-jdk-amd64; do
  if [ -n "$candidate" ] && [ -x "$candidate/bin/jlink" ] \
      && "$candidate/bin/jlink" --version 2>/dev/null | grep -q '^17\.'; then
    java17="$candidate"
    break
  fi
done
if [ -z "$java17" ]; then
  echo "package.sh: no JDK 17 with jlink found (set JAVA17_HOME)" >&2
  exit 1
fi
echo "package.sh: JDK 17 at $java17; kit at $kit"

cd "$root"
if [ ! -d "$golden/flux-tiny-dev" ] || [ ! -d "$golden/cases/flux-tiny-dev" ]; then
  echo "package.sh: no golden data at $golden (set GOLDEN)" >&2
  exit 1
fi
rm -rf "$kit" "kernel/$target" "model/$target"
mkdir -p "$kit/lib"

# the kernel jar (nvcc compiles the fatbins into it where /usr/local/cuda/bin/nvcc exists), the model jar, their
# compiled tests and their runtime jars: JavaCPP and the CUDA presets with the linux-x86_64 natives, Jackson, Commons
# Text (one reactor build, so that the model resolves the kernel and its test-jar from this build); without OpenBLAS
mvn -B -q -pl kernel,model "-Dfluxbatch.target=$target" -DskipTests package dependency:copy-dependencies \
  -DincludeScope=runtime -DexcludeGroupIds=ai.fluxbatch -DexcludeArtifactIds=openblas "-DoutputDirectory=$kit/lib"
jar="$(find "kernel/$target" -maxdepth 1 -name 'fluxbatch-kernel-*.jar' ! -name '*-tests.jar' ! -name '*-sources.jar' | head -n 1)"
if [ -z "$jar" ]; then
  echo "package.sh: no kernel jar in kernel/$target" >&2
  exit 1
fi
cp "$jar" "$kit/lib/"
cp -r "kernel/$target/test-classes" "$kit/test-classes"
model_jar="$(find "model/$target" -maxdepth 1 -name 'fluxbatch-model-*.jar' ! -name '*-tests.jar' ! -name '*-sources.jar' | head -n 1)"
if [ -z "$model_jar" ]; then
  echo "package.sh: no model jar in model/$target" >&2
  exit 1
fi
cp "$model_jar" "$kit/lib/"
cp -r "model/$target/test-classes" "$kit/model-test-classes"
if ! "$java17/bin/jar" tf "$jar" | grep -q 'ai/fluxbatch/kernel/cuda/ternary_matmul.fatbin'; then
  echo "package.sh: WARNING: the kernel jar has no fatbins (no nvcc here): the GPU run compiles every module with NVRTC" >&2
fi

# the CUDA presets' natives jar holds the JNI library of every CUDA library (NPP, cuFFT, cuDNN, ...): keep those of
# the three the kernel binds (cudart, cublas, nvrtc) and every entry that is not a .so (JavaCPP's native-image
# configs, the manifest, module-info)
keep_jni='/lib(jnicudart|jnicublas|jninvrtc)\.so$'
for natives in "$kit"/lib/cuda-*-linux-x86_64.jar; do
  [ -f "$natives" ] || continue
  if ! command -v zip > /dev/null; then
    echo "package.sh: WARNING: no zip here: $(basename "$natives") goes whole" >&2
    continue
  fi
  drop=()
  while IFS= read -r entry; do
    drop+=("$entry")
  done < <("$java17/bin/jar" tf "$natives" | grep -E '\.so(\.[0-9.]+)?$' | grep -Ev "$keep_jni" || true)
  for so in libjnicudart.so libjnicublas.so libjninvrtc.so; do
    if ! "$java17/bin/jar" tf "$natives" | grep -q "/$so\$"; then
      echo "package.sh: $(basename "$natives") has no $so" >&2
      exit 1
    fi
  done
  if [ "${#drop[@]}" -gt 0 ]; then
    before="$(stat -c %s "$natives")"
    zip -q -d "$natives" "${drop[@]}"
    echo "package.sh: $(basename "$natives"): dropped ${#drop[@]} JNI libraries, $before -> $(stat -c %s "$natives") bytes"
  fi
done

# the golden data of the model tests that run-on-gpu.sh selects (FluxTransformerGoldenTest, QuantizedSnapshotTest,
# TextEncodersAndVaeOnCudaTest): the two tiny snapshots whole (QuantizedSnapshotTest copies and compares their
# other files) and only the cases they open
mkdir -p "$kit/golden/cases/flux-tiny-dev" "$kit/golden/cases/flux-tiny-schnell"
cp -r "$golden/flux-tiny-dev" "$golden/flux-tiny-schnell" "$kit/golden/"
# the real FLUX.1-dev tensor names and shapes, for the benchmark (model CudaBenchmark --layout)
cp "$golden/flux1-dev-layout.json" "$kit/golden/"
for f in forward-1 forward-2 quant-absmean t5 clip vae; do
  cp "$golden/cases/flux-tiny-dev/$f.safetensors" "$kit/golden/cases/flux-tiny-dev/"
done
for f in forward-1 forward-2 quant-absmean; do
  cp "$golden/cases/flux-tiny-schnell/$f.safetensors" "$kit/golden/cases/flux-tiny-schnell/"
done
# the JUnit console launcher (with the Jupiter engine inside)
mvn -B -q -N dependency:copy \
  "-Dartifact=org.junit.platform:junit-platform-console-standalone:$junit_console_version" "-DoutputDirectory=$kit/lib"

# a small Java 17 runtime
# a small Java 17 runtime, as an xz tarball: the modules image uncompressed (--compress=0) since xz packs it far
# better than jlink's zip, and libjvm.so without its symbol table (its dynamic symbols stay)
stage="$kit/.jre-stage"
rm -rf "$stage"
"$java17/bin/jlink" --add-modules java.base,java.logging,jdk.unsupported,jdk.incubator.vector,java.xml \
  --strip-debug --no-header-files --no-man-pages --compress=0 --output "$stage/jre"
if command -v strip > /dev/null; then
  strip --strip-unneeded "$stage/jre/lib/server/libjvm.so"
else
  echo "package.sh: WARNING: no strip here: libjvm.so keeps its symbol table (about 4 MB)" >&2
fi
"$stage/jre/bin/java" -version 2>&1 | head -n 1
# -h: the legal/ notices are relative links; dereferenced, the tarball holds no links at all
tar -C "$stage" -h -cf - jre | xz -9 -T0 > "$kit/jre.tar.xz"
rm -rf "$stage"

if [ "${KEEP_TARGET:-0}" != 1 ]; then
  rm -rf "kernel/$target" "model/$target"
fi

echo "package.sh: kit contents:"
(cd "$kit" && for part in jre.tar.xz lib test-classes model-test-classes golden golden/flux-tiny-dev \
    golden/flux-tiny-schnell golden/cases; do du -sh "$part"; done && ls -l lib)
total="$(du -sb "$kit" | cut -f1)"
# what else travels: the tracked and the untracked-not-ignored files of the working tree
tree="$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -r stat -c %s 2>/dev/null \
  | awk '{ t += $1 } END { print t + 0 }')"
sum=$((total + tree))
echo "package.sh: gpu-kit $total bytes ($((total / 1024 / 1024)) MiB) + working tree $tree bytes" \
  "($((tree / 1024 / 1024)) MiB) = $sum bytes ($((sum / 1024 / 1024)) MiB) of a device run's $limit_bytes (64 MiB)"
if [ "$sum" -ge "$limit_bytes" ]; then
  echo "package.sh: the kit and the working tree are too large for a device run (64 MiB in all)" >&2
  exit 1
fi
if [ "$sum" -gt $((60 * 1024 * 1024)) ]; then
  echo "package.sh: WARNING: the kit and the working tree leave less than 4 MiB of a device run's 64 MiB" >&2
fi
