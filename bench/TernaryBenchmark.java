import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The CPU ternary (1.58-bit) matmul against the dense float32 CpuBackend.linear at FLUX shapes (x [M, K] times a
 * weight [N, K]), both measured in this run with all cores. For M = 1 each kernel walks a stack of distinct layers
 * larger than the last-level cache, so the weights come from memory; the ternary stream rate is set against the
 * memory bandwidth this benchmark measures (a vectorized sum over a large array). Run with bench/ternary.sh.
 *
 * <p>Arguments (all optional): {@code shapes=KxN,KxN... ms=1,256,4096 stack-mib=N}.
 */
public final class TernaryBenchmark {
    private static final int[][] SHAPES = {
        {3072, 3072}, {3072, 9216}, {3072, 12288}, {3072, 18432}, {12288, 3072}, {15360, 3072}
    };
    private static final int[] MS = {1, 256, 4096};
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    public static void main(String[] args) throws Exception {
        int[][] shapes = SHAPES;
        int[] ms = MS;
        long stackBytes = -1;
        for (String a : args) {
            if (a.startsWith("shapes=")) {
                String[] parts = a.substring(7).split(",");
                shapes = new int[parts.length][];
                for (int i = 0; i < parts.length; i++) {
                    String[] kn = parts[i].split("x");
                    shapes[i] = new int[] {Integer.parseInt(kn[0]), Integer.parseInt(kn[1])};
                }
            } else if (a.startsWith("ms=")) {
                ms = java.util.Arrays.stream(a.substring(3).split(","))
                        .mapToInt(Integer::parseInt)
                        .toArray();
            } else if (a.startsWith("stack-mib=")) {
                stackBytes = Long.parseLong(a.substring(10)) << 20;
            } else {
                throw new IllegalArgumentException("unknown argument " + a + " (shapes=KxN,... ms=1,256 stack-mib=N)");
            }
        }
        int threads = Runtime.getRuntime().availableProcessors();
        long l3 = printMachine();
        if (stackBytes < 0) {
            stackBytes = Math.max(1L << 30, 2 * l3);
        }
        double bandwidth = memoryBandwidth(threads, Math.max(1L << 30, 2 * l3));
        System.out.printf(
                "M = 1 stacks: distinct layers of at least %d MiB per kernel (2 x L3, at least 1 GiB), dense "
                        + "capped at half the max heap; every layer is run once per pass, time per layer is the best pass%n",
                stackBytes >> 20);
        System.out.printf(
                "%-5s %-6s %-6s %12s %12s %10s %12s %12s   %s%n",
                "M", "K", "N", "dense ms", "ternary ms", "speedup", "dense GF/s", "tern GF/s", "notes");
        try (Backend be = new CpuBackend(threads)) {
            for (int[] shape : shapes) {
                int k = shape[0], n = shape[1];
                Random r = new Random(1);
                float[] w = random(r, n * k), bias = random(r, n);
                byte[] packed = randomPacked(r, n, k);
                float[] scale = random(r, n);
                for (int m : ms) {
                    float[] x = random(r, m * k);
                    if (m == 1) {
                        memoryBound(be, x, w, bias, packed, scale, n, k, stackBytes, bandwidth);
                    } else {
                        computeBound(be, x, w, bias, packed, scale, m, n, k);
                    }
                }
            }
        }
        System.out.println("load average at the end (1, 5, 15 min): " + loadAverage());
        System.out.println("dense: CpuBackend.linear (float32 weights); ternary: CpuBackend.ternaryLinear (2-bit"
                + " codes + per-row scale); both with bias, all cores; speedup = dense time / ternary time;"
                + " GF/s = 2MNK / time. M = 1: the ternary stream is its packed bytes (residentBytes) read per second,"
                + " against the memory bandwidth above. M > 1: one layer, up to 5 warm-up calls (none at 100 GFLOP or"
                + " more: the M = 256 runs of the same kernels warmed them), then the best of the timed repetitions"
                + " (reps; fewer for the big shapes to keep the run to minutes).");
    }

    private static void memoryBound(
            Backend be,
            float[] x,
            float[] w,
            float[] bias,
            byte[] packed,
            float[] scale,
            int n,
            int k,
            long stackBytes,
            double bandwidth) {
        Tensor xt = be.upload(x, 1, k), bt = be.upload(bias, n);
        long denseBytes = 4L * n * k;
        long heapCap = Runtime.getRuntime().maxMemory() / 2;
        int denseLayers = (int) Math.max(1, Math.min(stackBytes, heapCap) / denseBytes + 1);
        List<Tensor> dense = new ArrayList<>();
        for (int i = 0; i < denseLayers; i++) {
            dense.add(be.upload(w, n, k));
        }
        double denseSec = stackPass(be, xt, dense, bt, false);
        dense.clear();
        System.gc();

        long t0 = System.nanoTime();
        Tensor first = be.uploadTernary(packed, n, k, scale);
        long ternBytes = first.residentBytes();
        int ternLayers = (int) (stackBytes / ternBytes + 1);
        List<Tensor> tern = new ArrayList<>();
        tern.add(first);
        for (int i = 1; i < ternLayers; i++) {
            tern.add(be.uploadTernary(packed, n, k, scale));
        }
        double uploadSec = (System.nanoTime() - t0) / 1e9;
        double ternSec = stackPass(be, xt, tern, bt, true);
        tern.clear();
        System.gc();
        double flops = 2.0 * n * k;
        System.out.printf(
                "%-5d %-6d %-6d %12.3f %12.3f %9.1fx %12.2f %12.2f   ternary stream %.1f GB/s = %.0f%% of"
                        + " the bandwidth%n",
                1,
                k,
                n,
                denseSec * 1e3,
                ternSec * 1e3,
                denseSec / ternSec,
                flops / denseSec / 1e9,
                flops / ternSec / 1e9,
                ternBytes / ternSec / 1e9,
                100 * ternBytes / ternSec / bandwidth);
        System.out.printf(
                "      stacks: dense %d x %.1f MiB = %.0f MiB (%.1f GB/s of float weights); ternary %d x %.2f"
                        + " MiB = %.0f MiB; ternary upload (validate + repack) %.0f M weights/s%n",
                denseLayers,
                denseBytes / 1048576.0,
                denseLayers * denseBytes / 1048576.0,
                denseBytes / denseSec / 1e9,
                ternLayers,
                ternBytes / 1048576.0,
                ternLayers * ternBytes / 1048576.0,
                (double) ternLayers * n * k / uploadSec / 1e6);
    }

    /** Seconds per layer: one warm-up pass over the stack, then the best of the timed passes. */
    private static double stackPass(Backend be, Tensor x, List<Tensor> layers, Tensor bias, boolean ternary) {
        double best = Double.MAX_VALUE;
        for (int pass = 0; pass < 4; pass++) {
            long t0 = System.nanoTime();
            for (Tensor w : layers) {
                Tensor y = ternary ? be.ternaryLinear(x, w, bias) : be.linear(x, w, bias);
                sink(y);
            }
            double sec = (System.nanoTime() - t0) / 1e9 / layers.size();
            if (pass > 0) {
                best = Math.min(best, sec);
            }
        }
        return best;
    }

    private static void computeBound(
            Backend be, float[] x, float[] w, float[] bias, byte[] packed, float[] scale, int m, int n, int k) {
        Tensor xt = be.upload(x, m, k), bt = be.upload(bias, n);
        Tensor dense = be.upload(w, n, k), tern = be.uploadTernary(packed, n, k, scale);
        double flops = 2.0 * m * n * k;
        int reps = (int) Math.max(2, Math.min(10, 3e11 / flops));
        // the biggest shapes are warmed by the M = 256 runs of the same kernels
        int warmUps = flops >= 1e11 ? 0 : (int) Math.max(1, Math.min(5, 2e10 / flops));
        double denseSec = best(() -> be.linear(xt, dense, bt), reps, warmUps);
        double ternSec = best(() -> be.ternaryLinear(xt, tern, bt), reps, warmUps);
        System.out.printf(
                "%-5d %-6d %-6d %12.1f %12.1f %9.2fx %12.2f %12.2f   reps %d%s%n",
                m,
                k,
                n,
                denseSec * 1e3,
                ternSec * 1e3,
                denseSec / ternSec,
                flops / denseSec / 1e9,
                flops / ternSec / 1e9,
                reps,
                warmUps == 0 ? ", no warm-up" : " after " + warmUps + " warm-up call" + (warmUps > 1 ? "s" : ""));
    }

    private interface Op {
        Tensor run();
    }

    private static double best(Op op, int reps, int warmUps) {
        for (int i = 0; i < warmUps; i++) {
            sink(op.run());
        }
        long best = Long.MAX_VALUE;
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            sink(op.run());
            best = Math.min(best, System.nanoTime() - t0);
        }
        return best / 1e9;
    }

    private static int sinkHash;

    private static void sink(Tensor t) {
        sinkHash += t.shape()[0];
    }

    /** Bytes per second of a vectorized sum over an array of {@code bytes}, all threads, best of 5. */
    private static double memoryBandwidth(int threads, long bytes) throws Exception {
        int len = (int) Math.min(Integer.MAX_VALUE - 64, bytes / 4);
        float[] a = new float[len];
        for (int i = 0; i < len; i += 1024) {
            a[i] = i;
        }
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        double best1 = 0, bestAll = 0;
        try {
            for (int rep = 0; rep < 5; rep++) {
                long t0 = System.nanoTime();
                sum(a, 0, len);
                best1 = Math.max(best1, 4.0 * len / ((System.nanoTime() - t0) / 1e9));
                t0 = System.nanoTime();
                List<Future<Float>> parts = new ArrayList<>();
                int step = (len + threads - 1) / threads;
                for (int t = 0; t < threads; t++) {
                    int from = t * step, to = Math.min(len, from + step);
                    parts.add(pool.submit(() -> sum(a, from, to)));
                }
                float s = 0;
                for (Future<Float> f : parts) {
                    s += f.get();
                }
                bestAll = Math.max(bestAll, 4.0 * len / ((System.nanoTime() - t0) / 1e9));
                sinkHash += (int) s;
            }
        } finally {
            pool.shutdown();
        }
        System.out.printf(
                "memory bandwidth (vectorized float sum over %d MiB, best of 5): %.1f GB/s with 1 thread,"
                        + " %.1f GB/s with %d threads%n",
                4L * len >> 20, best1 / 1e9, bestAll / 1e9, threads);
        return bestAll;
    }

    private static float sum(float[] a, int from, int to) {
        FloatVector s0 = FloatVector.zero(S), s1 = FloatVector.zero(S), s2 = FloatVector.zero(S);
        FloatVector s3 = FloatVector.zero(S);
        int l = S.length(), i = from;
        for (; i + 4 * l <= to; i += 4 * l) {
            s0 = s0.add(FloatVector.fromArray(S, a, i));
            s1 = s1.add(FloatVector.fromArray(S, a, i + l));
            s2 = s2.add(FloatVector.fromArray(S, a, i + 2 * l));
            s3 = s3.add(FloatVector.fromArray(S, a, i + 3 * l));
        }
        float s = s0.add(s1).add(s2).add(s3).reduceLanes(VectorOperators.ADD);
        for (; i < to; i++) {
            s += a[i];
        }
        return s;
    }

    private static float[] random(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    /** Random codes in the Hugging Face BitNet packing: each of a byte's four 2-bit fields is 0, 1 or 2. */
    private static byte[] randomPacked(Random r, int out, int in) {
        byte[] valid = new byte[81];
        for (int v = 0; v < 81; v++) {
            valid[v] = (byte) ((v % 3) | (v / 3 % 3) << 2 | (v / 9 % 3) << 4 | (v / 27) << 6);
        }
        byte[] packed = new byte[(out + 3) / 4 * in];
        for (int i = 0; i < packed.length; i++) {
            packed[i] = valid[r.nextInt(81)];
        }
        return packed;
    }

    private static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split(" ");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (Exception e) {
            return "unknown";
        }
    }

    /** Prints the machine; returns the last-level cache size in bytes (0 if unknown). */
    private static long printMachine() throws Exception {
        String cpu = "unknown CPU";
        Path info = Path.of("/proc/cpuinfo");
        if (Files.exists(info)) {
            cpu = Files.readAllLines(info).stream()
                    .filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).trim())
                    .findFirst()
                    .orElse(cpu);
        }
        long l3 = 0;
        Path l3File = Path.of("/sys/devices/system/cpu/cpu0/cache/index3/size");
        if (Files.exists(l3File)) {
            String s = Files.readString(l3File).trim();
            long unit = s.endsWith("K") ? 1024 : s.endsWith("M") ? 1 << 20 : 1;
            l3 = Long.parseLong(s.replaceAll("[^0-9]", "")) * unit;
        }
        System.out.println("machine: " + cpu + ", " + Runtime.getRuntime().availableProcessors() + " cores, L3 "
                + (l3 >> 20) + " MiB (" + l3File + "), " + System.getProperty("os.name") + " "
                + System.getProperty("os.arch") + ", max heap "
                + Runtime.getRuntime().maxMemory() / (1 << 20)
                + " MiB");
        System.out.println("load average at the start (1, 5, 15 min): " + loadAverage()
                + " (other processes on the machine skew the figures)");
        System.out.println(
                "java: " + Runtime.version() + " " + System.getProperty("java.vm.name") + ", vector species " + S);
        return l3;
    }
}
