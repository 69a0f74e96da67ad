package ai.fluxbatch.kernel.cuda;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.kernel.TestData;
import java.io.File;
import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The CUDA backend's forward attention on its two paths, timed on a GPU (run by {@code bench/gpu/run-on-gpu.sh}; a
 * test-scope main so that the GPU kit carries it): the flash kernels ({@link CudaBackend.AttentionPath#FLASH},
 * float32 SIMT) against the GEMM path ({@link CudaBackend.AttentionPath#GEMM}: cuBLAS scores, softmax, cuBLAS) with
 * FP32 and with BF16 GEMMs, at the shapes the models use: {@link CudaFlashAttentionOnGpuTest#SHAPES} (the
 * flux-shapes miniature, CLIP-L, T5-XXL, FLUX.1-dev at 512 and 1024 pixels). Per shape and path: warm-up calls, then
 * calls back to back until {@code --min-seconds} (default 0.5) have passed or {@code --reps} calls (default 200),
 * synchronize, wall time / calls; TFLOP/s counts {@code 4 B H D} times the unmasked (query, key) pairs; the pool's
 * peak device bytes in use (inputs, output and any score workspace); the flash output's relative L2 error against
 * the FP32 GEMM path's. Usage: {@code CudaAttentionBenchmark [--emulated] [--reps N] [--min-seconds S]};
 * {@code --emulated} runs tiny shapes on the heap ({@link EmulatedDevice}) to check the plumbing without a GPU.
 * Exit status 2 where there is no usable GPU.
 */
public final class CudaAttentionBenchmark {
    private static final int WARMUP = 2;

    private CudaAttentionBenchmark() {}

    private record Path(String name, CudaBackend.AttentionPath attention, GemmPrecision precision) {}

    private static final List<Path> PATHS = List.of(
            new Path("flash fp32", CudaBackend.AttentionPath.FLASH, GemmPrecision.FP32),
            new Path("gemm fp32", CudaBackend.AttentionPath.GEMM, GemmPrecision.FP32),
            new Path("gemm bf16", CudaBackend.AttentionPath.GEMM, GemmPrecision.BF16));

    public static void main(String[] args) {
        int status = run(args, System.out);
        System.out.flush();
        if (status != 0) {
            System.exit(status);
        }
    }

    /** Runs the benchmark, printing to {@code out}; returns the exit status (1: bad arguments, 2: no GPU). */
    static int run(String[] args, PrintStream out) {
        boolean emulated = false;
        int reps = 200;
        double minSeconds = 0.5;
        try {
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--emulated" -> emulated = true;
                    case "--reps" -> reps = Integer.parseInt(value(args, ++i, "--reps"));
                    case "--min-seconds" -> minSeconds = Double.parseDouble(value(args, ++i, "--min-seconds"));
                    default -> throw new IllegalArgumentException("unknown argument " + args[i]);
                }
            }
            if (reps < 1 || !(minSeconds >= 0)) {
                throw new IllegalArgumentException("--reps must be at least 1 and --min-seconds at least 0");
            }
        } catch (IllegalArgumentException e) {
            out.println("CudaAttentionBenchmark: " + e.getMessage());
            out.println("usage: CudaAttentionBenchmark [--emulated] [--reps N] [--min-seconds S]");
            return 1;
        }
        if (!emulated && !new File("/dev/nvidiactl").exists() && !new File("/dev/nvidia0").exists()) {
            out.println("CudaAttentionBenchmark: no NVIDIA GPU on this machine (/dev/nvidiactl and /dev/nvidia0 are"
                    + " absent): run it on a GPU machine (bash bench/gpu/run-on-gpu.sh), or pass --emulated");
            return 2;
        }
        List<CudaFlashAttentionOnGpuTest.Shape> shapes = emulated
                ? List.of(
                        new CudaFlashAttentionOnGpuTest.Shape("tiny, heads of 32", 2, 40, 2, 32, false, false),
                        new CudaFlashAttentionOnGpuTest.Shape("tiny, heads of 64, causal", 1, 33, 2, 64, false, true),
                        new CudaFlashAttentionOnGpuTest.Shape("tiny, heads of 128, bias", 1, 20, 2, 128, true, false))
                : CudaFlashAttentionOnGpuTest.SHAPES;
        Random random = new Random(5);
        boolean first = true;
        for (CudaFlashAttentionOnGpuTest.Shape s : shapes) {
            StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%-66s", s.what()));
            float[][] in = inputs(random, s);
            float[][] outputs = new float[PATHS.size()][];
            double[] ms = new double[PATHS.size()];
            for (int p = 0; p < PATHS.size(); p++) {
                // a backend per shape and path: its pool's peak is this call's
                Device device;
                try {
                    device = emulated
                            ? new EmulatedDevice(Long.MAX_VALUE, PATHS.get(p).precision())
                            : CudaDriverDevice.open(0, PATHS.get(p).precision());
                } catch (IllegalStateException | LinkageError e) {
                    out.println("CudaAttentionBenchmark: the GPU cannot be used: " + e.getMessage());
                    return 2;
                }
                try (CudaBackend be = new CudaBackend(
                        device, CudaBackend.Workspace.DEFAULT, PATHS.get(p).attention())) {
                    if (first) {
                        out.println("machine: " + device.describe());
                        out.println("attention forward, ms per call (TFLOP/s, peak device MiB in use); the flash"
                                + " output's relative L2 error against gemm fp32's");
                        first = false;
                    }
                    Timing t = time(be, s, in, reps, minSeconds);
                    outputs[p] = t.output();
                    ms[p] = t.ms();
                    line.append(String.format(
                            Locale.ROOT,
                            " | %s %9.3f ms (%6.2f TFLOP/s, %7.1f MiB)",
                            PATHS.get(p).name(),
                            t.ms(),
                            flops(s) / (t.ms() * 1e-3) / 1e12,
                            t.peakBytes() / (1024.0 * 1024)));
                }
            }
            line.append(String.format(
                    Locale.ROOT,
                    " | time flash / gemm fp32 %.2f, flash / gemm bf16 %.2f | rel L2 %.1e",
                    ms[0] / ms[1],
                    ms[0] / ms[2],
                    TestData.relativeL2(outputs[1], outputs[0])));
            out.println(line);
        }
        return 0;
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return args[i];
    }

    /** Multiply-adds of the two products times 2: {@code 4 B H D} per unmasked (query, key) pair. */
    static double flops(CudaFlashAttentionOnGpuTest.Shape s) {
        double pairs = s.causal() ? s.l() * (s.l() + 1.0) / 2 : (double) s.l() * s.l();
        return 4.0 * s.b() * s.heads() * s.d() * pairs;
    }

    private static float[][] inputs(Random random, CudaFlashAttentionOnGpuTest.Shape s) {
        int[] x = {s.b(), s.l(), s.heads() * s.d()};
        return new float[][] {
            TestData.randn(random, x),
            TestData.randn(random, x),
            TestData.randn(random, x),
            s.bias() ? TestData.randn(random, s.heads(), s.l(), s.l()) : null
        };
    }

    private record Timing(double ms, long peakBytes, float[] output) {}

    private static Timing time(
            CudaBackend be, CudaFlashAttentionOnGpuTest.Shape s, float[][] in, int reps, double minSeconds) {
        int[] x = {s.b(), s.l(), s.heads() * s.d()};
        try (TensorScope inputs = be.openScope()) {
            Tensor q = be.upload(in[0], x), k = be.upload(in[1], x), v = be.upload(in[2], x);
            Tensor bias = in[3] == null ? null : be.upload(in[3], s.heads(), s.l(), s.l());
            float[] output;
            try (TensorScope call = be.openScope()) {
                output = be.download(be.attention(q, k, v, s.heads(), s.scale(), bias, s.causal()));
            }
            long peak = be.memory().peakInUseBytes();
            for (int w = 1; w < WARMUP; w++) {
                try (TensorScope call = be.openScope()) {
                    be.attention(q, k, v, s.heads(), s.scale(), bias, s.causal());
                }
            }
            be.device().synchronize();
            long t0 = System.nanoTime();
            int calls = 0;
            while (calls < reps && (calls == 0 || (System.nanoTime() - t0) < minSeconds * 1e9)) {
                try (TensorScope call = be.openScope()) {
                    be.attention(q, k, v, s.heads(), s.scale(), bias, s.causal());
                }
                calls++;
                if (calls % 8 == 0) {
                    be.device().synchronize(); // the clock sees finished work, not queued work
                }
            }
            be.device().synchronize();
            double ms = (System.nanoTime() - t0) / 1e6 / calls;
            return new Timing(ms, peak, output);
        }
    }
}
