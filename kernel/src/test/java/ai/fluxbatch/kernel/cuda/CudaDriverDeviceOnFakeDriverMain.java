package ai.fluxbatch.kernel.cuda;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.kernel.TestData;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.function.BiFunction;
import java.util.stream.Stream;

/**
 * The child JVM of {@link CudaDriverDeviceOnFakeDriverTest}: runs {@link CudaDriverDevice} and {@link CudaBackend}
 * through JavaCPP's real JNI libraries on the fake CUDA libraries of {@code src/test/fake-cuda} (LD_LIBRARY_PATH
 * names them), comparing every operation with {@link CpuBackend} on the same inputs. One line per check, "ok ..."
 * or "FAIL ..."; exit status 1 when a check failed. The fake driver's log (environment FAKE_CUDA_LOG) tells what it
 * saw: launches, GEMMs, module loads, NVRTC compiles, errors it returned and FAULTs.
 *
 * <p>Modes (the first argument):
 * <ul>
 *   <li>{@code ops}: opening, the kernel table, every backend operation, the error paths, BF16 GEMMs, closing.</li>
 *   <li>{@code oom}: run with a small FAKE_CUDA_CAPACITY: the pool's trim-and-retry, then
 *   {@link DeviceOutOfMemoryException}; then a GPU fault (a kernel given a pointer outside every allocation) and
 *   how it surfaces.</li>
 *   <li>{@code nvrtc}: run with FAKE_CUDA_NO_FATBIN=1: the modules come from NVRTC through the disk cache;
 *   {@code nvrtc stale} first puts CUBINs for another GPU in the cache, which the driver refuses, so they are compiled
 *   again.</li>
 *   <li>{@code nolibs}: run with FAKE_CUDA_INIT_RESULT=100 and no libcublas.so.13 on the library path: what
 *   {@link CudaDriverDevice#open} says.</li>
 *   <li>{@code attention}: the flash attention kernels (the host build of {@code fluxbatch_ops.cu}) through
 *   {@link CudaBackend#attention} against the CPU backend at the model's shapes: the flux-shapes miniature's
 *   transformer (2 x 528 tokens, 4 heads of 32), T5's bias, CLIP's causal mask, and the two larger head sizes.</li>
 * </ul>
 */
final class CudaDriverDeviceOnFakeDriverMain {
    static final String DEVICE_NAME = "fake CUDA device (host emulation)";
    private static final double TOL = 1e-5;
    private static final double BF16_TOL = 1e-2;

    private final Random random = new Random(11);
    private final CpuBackend cpu = new CpuBackend(1);
    private final Path log = Path.of(System.getenv().getOrDefault("FAKE_CUDA_LOG", "/dev/null"));
    private int checks;
    private int failures;

    public static void main(String[] args) throws Exception {
        CudaDriverDeviceOnFakeDriverMain m = new CudaDriverDeviceOnFakeDriverMain();
        String mode = args.length > 0 ? args[0] : "ops";
        long t0 = System.nanoTime();
        try {
            switch (mode) {
                case "ops" -> m.ops();
                case "oom" -> m.outOfMemoryAndFault();
                case "nvrtc" -> m.nvrtc(args.length > 1 && args[1].equals("stale"));
                case "nolibs" -> m.noLibraries();
                case "attention" -> m.flashAttention();
                default -> throw new IllegalArgumentException("unknown mode " + mode);
            }
        } catch (Throwable t) {
            m.fail("mode " + mode + " aborted", t);
        }
        System.out.printf(
                Locale.ROOT,
                "%s: %d checks, %d failed, %.1f s%n",
                mode,
                m.checks,
                m.failures,
                (System.nanoTime() - t0) / 1e9);
        System.out.flush();
        System.exit(m.failures == 0 ? 0 : 1);
    }

    // ---- reporting -----------------------------------------------------------------------------------------------

    @FunctionalInterface
    interface Check {
        String run() throws Exception;
    }

    private void check(String name, Check c) {
        checks++;
        try {
            String detail = c.run();
            System.out.println("ok   " + name + (detail == null || detail.isEmpty() ? "" : ": " + detail));
        } catch (Throwable t) {
            fail(name, t);
        }
        System.out.flush();
    }

    private void fail(String name, Throwable t) {
        failures++;
        StringWriter w = new StringWriter();
        t.printStackTrace(new PrintWriter(w));
        System.out.println("FAIL " + name + ": " + w);
        System.out.flush();
    }

    private static void expect(boolean condition, String message) {
        if (!condition) {
            throw new AssertionError(message);
        }
    }

    private static <T extends Throwable> T expectThrows(Class<T> type, Runnable r, String what) {
        try {
            r.run();
        } catch (Throwable t) {
            if (type.isInstance(t)) {
                return type.cast(t);
            }
            throw new AssertionError(what + ": expected " + type.getSimpleName() + ", got " + t, t);
        }
        throw new AssertionError(what + ": expected " + type.getSimpleName() + ", nothing was thrown");
    }

    private List<String> logLines() throws IOException {
        if (!Files.exists(log)) {
            return List.of();
        }
        try (Stream<String> s = Files.lines(log)) {
            return s.toList();
        }
    }

    private long logCount(String prefix) throws IOException {
        return logLines().stream().filter(l -> l.startsWith(prefix)).count();
    }

    // ---- data and comparisons ------------------------------------------------------------------------------------

    private float[] data(int... shape) {
        return TestData.randn(random, shape);
    }

    /** The bfloat16 bits of each value, truncated. */
    private static short[] bf16(float[] values) {
        short[] bits = new short[values.length];
        for (int i = 0; i < values.length; i++) {
            bits[i] = (short) (Float.floatToRawIntBits(values[i]) >>> 16);
        }
        return bits;
    }

    /** Runs op on the CPU backend and on gpu with the same inputs; the relative L2 error of the downloads. */
    private double compare(
            String what, Backend gpu, float[][] inputs, int[][] shapes, BiFunction<Backend, Tensor[], Tensor> op) {
        BackendComparison c = BackendComparison.run(what, cpu, gpu, inputs, shapes, op);
        if (!(c.relativeL2() <= TOL)) {
            throw new AssertionError(String.format(
                    Locale.ROOT, "relative L2 error %.3g > %.1g; %s", c.relativeL2(), TOL, c.firstValues()));
        }
        return c.relativeL2();
    }

    private void same(
            Backend gpu, String what, float[][] inputs, int[][] shapes, BiFunction<Backend, Tensor[], Tensor> op) {
        check(what, () -> String.format(Locale.ROOT, "rel %.2e", compare(what, gpu, inputs, shapes, op)));
    }

    private void same(Backend gpu, String what, int[] shape, BiFunction<Backend, Tensor, Tensor> op) {
        same(gpu, what, new float[][] {data(shape)}, new int[][] {shape}, (be, t) -> op.apply(be, t[0]));
    }

    /** Every kernel of {@link OpsKernels} (its public static final String fields but MODULE) and the ternary ones. */
    static List<String[]> kernels() throws IllegalAccessException {
        List<String[]> names = new ArrayList<>();
        for (Field f : OpsKernels.class.getDeclaredFields()) {
            int mod = f.getModifiers();
            if (Modifier.isPublic(mod)
                    && Modifier.isStatic(mod)
                    && Modifier.isFinal(mod)
                    && f.getType() == String.class
                    && !f.getName().equals("MODULE")) {
                names.add(new String[] {OpsKernels.MODULE, (String) f.get(null)});
            }
        }
        names.add(new String[] {CudaModules.TERNARY_MATMUL, TernaryLaunch.SMALL_M_KERNEL});
        names.add(new String[] {CudaModules.TERNARY_MATMUL, TernaryLaunch.TILED_KERNEL});
        names.add(new String[] {CudaModules.TERNARY_MATMUL, TernaryLaunch.INPUT_GRAD_KERNEL});
        return names;
    }

    // ---- mode ops ------------------------------------------------------------------------------------------------

    private void ops() throws Exception {
        CudaDriverDevice[] holder = new CudaDriverDevice[1];
        check("open CUDA device 0 (FP32)", () -> {
            CudaDriverDevice dev = CudaDriverDevice.open(0, GemmPrecision.FP32);
            holder[0] = dev;
            String want = DEVICE_NAME + " (sm_90, 16.0 GiB, CUDA device 0)";
            expect(dev.describe().equals(want), "describe() = '" + dev.describe() + "', expected '" + want + "'");
            expect(dev.arch().equals("sm_90"), "arch " + dev.arch());
            expect(dev.totalBytes() == 16L << 30, "totalBytes " + dev.totalBytes());
            expect(dev.precision() == GemmPrecision.FP32, "precision " + dev.precision());
            expect(
                    dev.nvrtcCache().dir().equals(NvrtcCache.defaultDir()),
                    "NVRTC cache " + dev.nvrtcCache().dir());
            return dev.describe();
        });
        CudaDriverDevice dev = holder[0];
        if (dev == null) {
            return;
        }
        check("open CUDA device 1 (there is one device)", () -> {
            IllegalArgumentException e = expectThrows(
                    IllegalArgumentException.class, () -> CudaDriverDevice.open(1, GemmPrecision.FP32), "open(1)");
            expect(
                    e.getMessage().contains("there is no CUDA device 1: this machine shows 1 CUDA device (0..0)"),
                    e.getMessage());
            return e.getMessage();
        });
        check("every kernel of OpsKernels and TernaryLaunch loads, with its parameter sizes", () -> {
            StringBuilder sizes = new StringBuilder();
            List<String[]> all = kernels();
            for (String[] k : all) {
                int[] s = dev.parameterSizes(k[0], k[1]);
                expect(s != null && s.length > 0, k[0] + "." + k[1] + ": cuFuncGetParamInfo told no sizes");
                for (int size : s) {
                    expect(size == 4 || size == 8, k[1] + ": parameter sizes " + Arrays.toString(s));
                }
                if (k[1].equals(OpsKernels.LAYER_NORM)) {
                    sizes.append(k[1]).append(' ').append(Arrays.toString(s));
                }
            }
            return all.size() + " kernels; e.g. " + sizes;
        });

        CudaBackend.Workspace small = new CudaBackend.Workspace(4 * 2 * 9 * 9, 4 * 18 * 5);
        CudaBackend gpu = new CudaBackend(dev, small, CudaBackend.AttentionPath.FLASH);
        check("backend name", () -> {
            expect(gpu.name().equals("cuda(" + dev.describe() + ")"), gpu.name());
            return gpu.name();
        });
        backendOps(gpu);
        // attention on the GEMM path (a second device object on the same GPU, closed with its backend)
        check("attention on the GEMM path (3 heads in chunks of 2: scores GEMM, softmax, GEMM)", () -> {
            try (CudaBackend gemm = new CudaBackend(
                    CudaDriverDevice.open(0, GemmPrecision.FP32), small, CudaBackend.AttentionPath.GEMM)) {
                int[] as = {2, 9, 12}, ab = {3, 9, 9};
                long before = logCount("launch " + OpsKernels.SOFTMAX_ROWS + " ");
                double rel = compare(
                        "attention, GEMM path",
                        gemm,
                        new float[][] {data(as), data(as), data(as), data(ab)},
                        new int[][] {as, as, as, ab},
                        (be, t) -> be.attention(t[0], t[1], t[2], 3, 0.7f, t[3], true));
                long softmax = logCount("launch " + OpsKernels.SOFTMAX_ROWS + " ") - before;
                expect(softmax == 4, softmax + " softmax launches, expected 2 samples x 2 chunks");
                return String.format(Locale.ROOT, "rel %.2e", rel);
            }
        });
        check("an operation on another thread (the context made current there)", () -> {
            double[] rel = {-1};
            Throwable[] error = new Throwable[1];
            Thread t = new Thread(
                    () -> {
                        try {
                            rel[0] = compare(
                                    "silu on a second thread",
                                    gpu,
                                    new float[][] {data(3, 20)},
                                    new int[][] {{3, 20}},
                                    (be, in) -> be.silu(in[0]));
                        } catch (Throwable e) {
                            error[0] = e;
                        }
                    },
                    "second-thread");
            t.start();
            t.join();
            if (error[0] != null) {
                throw new AssertionError("on the second thread: " + error[0], error[0]);
            }
            return String.format(Locale.ROOT, "rel %.2e", rel[0]);
        });
        devicePaths(dev);

        // BF16: a second device object on the same GPU (the primary context is shared)
        check("BF16 linear (CUBLAS_COMPUTE_32F_FAST_16BF, inputs rounded to bfloat16)", () -> {
            try (CudaDriverDevice bf = CudaDriverDevice.open(0, GemmPrecision.BF16);
                    CudaBackend bgpu = new CudaBackend(bf)) {
                float[] x = data(4, 64), w = data(32, 64), b = data(32);
                Tensor xc = cpu.upload(x, 4, 64), wc = cpu.upload(w, 32, 64), bc = cpu.upload(b, 32);
                Tensor xg = bgpu.upload(x, 4, 64), wg = bgpu.upload(w, 32, 64), bg = bgpu.upload(b, 32);
                float[] want = cpu.download(cpu.linear(xc, wc, bc));
                float[] got = bgpu.download(bgpu.linear(xg, wg, bg));
                double rel = TestData.relativeL2(want, got);
                expect(rel <= BF16_TOL, "relative L2 error " + rel + " > " + BF16_TOL);
                expect(rel > 1e-5, "relative L2 error " + rel + ": the inputs were not rounded to bfloat16");
                List<String> bfGemms = logLines().stream()
                        .filter(l -> l.startsWith("gemm ") && l.contains("compute=75") && l.contains("rounding=bf16"))
                        .toList();
                expect(!bfGemms.isEmpty(), "no GEMM with compute type 75 (CUBLAS_COMPUTE_32F_FAST_16BF) in the log");
                return String.format(Locale.ROOT, "rel %.2e, %d bf16 GEMM(s)", rel, bfGemms.size());
            }
        });
        check("FP32 GEMMs use CUBLAS_COMPUTE_32F without TF32", () -> {
            List<String> gemms =
                    logLines().stream().filter(l -> l.startsWith("gemm ")).toList();
            long fp32 = gemms.stream()
                    .filter(l -> l.contains("compute=68") && l.contains("rounding=none"))
                    .count();
            long bf16 = gemms.stream().filter(l -> l.contains("compute=75")).count();
            expect(fp32 + bf16 == gemms.size(), "GEMMs of other compute types or roundings: " + gemms);
            expect(fp32 > 0, "no FP32 GEMM");
            return fp32 + " FP32 GEMMs, " + bf16 + " BF16";
        });

        check("close: the backend frees its memory and the device", () -> {
            gpu.close();
            gpu.close();
            IllegalStateException e = expectThrows(IllegalStateException.class, dev::synchronize, "synchronize");
            expect(e.getMessage().contains("is closed"), e.getMessage());
            return e.getMessage();
        });
        check("the fake driver saw every kernel launched", () -> {
            List<String> lines = logLines();
            List<String> missing = new ArrayList<>();
            for (String[] k : kernels()) {
                if (lines.stream().noneMatch(l -> l.startsWith("launch " + k[1] + " "))) {
                    missing.add(k[1]);
                }
            }
            expect(missing.isEmpty(), "never launched: " + missing);
            return logCount("launch ") + " launches, " + logCount("gemm ") + " GEMMs";
        });
        check("the context was destroyed with nothing left behind", () -> {
            List<String> destroyed = logLines().stream()
                    .filter(l -> l.startsWith("context destroyed"))
                    .toList();
            expect(destroyed.size() == 1, "context destroyed lines: " + destroyed);
            String d = destroyed.get(0);
            expect(
                    d.startsWith("context destroyed: 0 device allocations (0 bytes) still allocated, 0 modules still"
                            + " loaded, 0 streams and 0 events still alive, 0 faults"),
                    d);
            return d.substring(0, d.indexOf("; launches"));
        });
        check("no FAULT in the fake driver's log", () -> {
            List<String> faults =
                    logLines().stream().filter(l -> l.startsWith("FAULT")).toList();
            expect(faults.isEmpty(), String.join("\n", faults));
            return "";
        });
    }

    private void backendOps(CudaBackend gpu) {
        check("upload/download 10,000,000 floats (chunks through both pinned staging buffers)", () -> {
            float[] x = new float[10_000_000];
            for (int i = 0; i < x.length; i++) {
                x[i] = i * 0.5f - 7;
            }
            try (TensorScope scope = gpu.openScope()) {
                Tensor t = gpu.upload(x, x.length);
                float[] y = gpu.download(t);
                expect(Arrays.equals(x, y), "the download differs from the upload");
                Tensor small = gpu.upload(Arrays.copyOf(x, 5), 5);
                expect(Arrays.equals(Arrays.copyOf(x, 5), gpu.download(small)), "a small upload after a large one");
            }
            return "bit-exact";
        });
        check("upload/download of an empty tensor", () -> {
            Tensor t = gpu.upload(new float[0], 0, 3);
            expect(gpu.download(t).length == 0, "non-empty");
            return "";
        });

        int[] s = {2, 3, 37};
        int[] big = {4, 300};
        same(gpu, "gelu", s, Backend::gelu);
        same(gpu, "gelu (5 blocks)", big, Backend::gelu);
        same(gpu, "silu", s, Backend::silu);
        same(gpu, "quickGelu", s, Backend::quickGelu);
        same(gpu, "add", new float[][] {data(big), data(big)}, new int[][] {big, big}, (be, t) -> be.add(t[0], t[1]));
        same(gpu, "mul", new float[][] {data(s), data(s)}, new int[][] {s, s}, (be, t) -> be.mul(t[0], t[1]));

        int[] x = {2, 3, 20}, w = {9, 20}, b = {9};
        same(
                gpu,
                "linear with bias (cuBLAS, then fb_add_bias_rows)",
                new float[][] {data(x), data(w), data(b)},
                new int[][] {x, w, b},
                (be, t) -> be.linear(t[0], t[1], t[2]));
        same(
                gpu,
                "linear without bias",
                new float[][] {data(x), data(w)},
                new int[][] {x, w},
                (be, t) -> be.linear(t[0], t[1], null));
        int[] x2 = {5, 64}, w2 = {48, 64};
        same(
                gpu,
                "linear 5 x 64 -> 48",
                new float[][] {data(x2), data(w2)},
                new int[][] {x2, w2},
                (be, t) -> be.linear(t[0], t[1], null));

        int out = 70, in = 45;
        byte[] codes = new byte[out * in];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (random.nextInt(3) - 1);
        }
        byte[] packed = TestData.hfPack(codes, out, in);
        float[] scale = data(out);
        int[] bias = {out};
        for (int m : new int[] {1, 16, 17, TernaryLaunch.DENSE_FROM_M}) {
            String path = m >= TernaryLaunch.DENSE_FROM_M
                    ? "decode + GEMM + scale_bias_rows"
                    : TernaryLaunch.plan(m, out, in).kernel();
            int[] xs = {m, in};
            same(
                    gpu,
                    "ternaryLinear M=" + m + " (" + path + ")",
                    new float[][] {data(xs), data(bias)},
                    new int[][] {xs, bias},
                    (be, t) -> be.ternaryLinear(t[0], be.uploadTernary(packed, out, in, scale), t[1]));
        }
        for (int m : new int[] {1, 17, TernaryLaunch.DENSE_FROM_M}) {
            int[] xs = {m, in};
            same(
                    gpu,
                    "ternaryLinear M=" + m + " without bias",
                    new float[][] {data(xs)},
                    new int[][] {xs},
                    (be, t) -> be.ternaryLinear(t[0], be.uploadTernary(packed, out, in, scale), null));
        }

        int[] ns = {2, 5, 40}, c = {40};
        same(gpu, "layerNorm", ns, (be, t) -> be.layerNorm(t, 1e-6f));
        same(
                gpu,
                "layerNorm affine",
                new float[][] {data(ns), data(c), data(c)},
                new int[][] {ns, c, c},
                (be, t) -> be.layerNorm(t[0], t[1], t[2], 1e-5f));
        same(
                gpu,
                "rmsNorm",
                new float[][] {data(ns), data(c)},
                new int[][] {ns, c},
                (be, t) -> be.rmsNorm(t[0], t[1], 1e-6f));
        // a large eps changes the result visibly: a float argument in the wrong launch slot would show
        same(
                gpu,
                "layerNorm affine, eps 0.5",
                new float[][] {data(ns), data(c), data(c)},
                new int[][] {ns, c, c},
                (be, t) -> be.layerNorm(t[0], t[1], t[2], 0.5f));
        same(
                gpu,
                "rmsNorm, eps 0.5",
                new float[][] {data(ns), data(c)},
                new int[][] {ns, c},
                (be, t) -> be.rmsNorm(t[0], t[1], 0.5f));
        int[] wide = {2, 300};
        int[] cw = {300};
        same(
                gpu,
                "layerNorm affine, 300 columns",
                new float[][] {data(wide), data(cw), data(cw)},
                new int[][] {wide, cw, cw},
                (be, t) -> be.layerNorm(t[0], t[1], t[2], 1e-6f));

        int[] px = {2, 7, 12}, pv = {2, 12};
        same(
                gpu,
                "modulate",
                new float[][] {data(px), data(pv), data(pv)},
                new int[][] {px, pv, pv},
                (be, t) -> be.modulate(t[0], t[1], t[2]));
        same(
                gpu,
                "gatedAdd",
                new float[][] {data(px), data(pv), data(px)},
                new int[][] {px, pv, px},
                (be, t) -> be.gatedAdd(t[0], t[1], t[2]));

        int[] lx = {2, 5, 12};
        same(gpu, "columns (cuMemcpy2DAsync)", lx, (be, t) -> be.columns(t, 3, 7));
        same(gpu, "sliceRows (cuMemcpy2DAsync)", lx, (be, t) -> be.sliceRows(t, 1, 3));
        int[] ly = {2, 3, 12};
        same(
                gpu,
                "concatRows (cuMemcpy2DAsync)",
                new float[][] {data(lx), data(ly)},
                new int[][] {lx, ly},
                (be, t) -> be.concatRows(t[0], t[1]));
        int[] lz = {2, 5, 4};
        same(
                gpu,
                "concatColumns (cuMemcpy2DAsync)",
                new float[][] {data(lx), data(lz)},
                new int[][] {lx, lz},
                (be, t) -> be.concatColumns(t[0], t[1]));
        same(gpu, "reshape", lx, (be, t) -> be.add(be.reshape(t, 10, 12), be.reshape(t, 10, 12)));

        int[] rx = {2, 3, 4, 8}, pe = {2, 3, 4, 2, 2};
        same(gpu, "rope", new float[][] {data(rx), data(pe)}, new int[][] {rx, pe}, (be, t) -> be.rope(t[0], t[1]));

        int[] as = {2, 9, 12};
        same(
                gpu,
                "attention (flash, 3 heads of 4)",
                new float[][] {data(as), data(as), data(as)},
                new int[][] {as, as, as},
                (be, t) -> be.attention(t[0], t[1], t[2], 3));
        int[] ab = {3, 9, 9};
        same(
                gpu,
                "attention with bias, causal",
                new float[][] {data(as), data(as), data(as), data(ab)},
                new int[][] {as, as, as, ab},
                (be, t) -> be.attention(t[0], t[1], t[2], 3, 0.7f, t[3], true));
        same(
                gpu,
                "attention with bias",
                new float[][] {data(as), data(as), data(as), data(ab)},
                new int[][] {as, as, as, ab},
                (be, t) -> be.attention(t[0], t[1], t[2], 3, 0.4f, t[3], false));
        same(
                gpu,
                "attention causal",
                new float[][] {data(as), data(as), data(as)},
                new int[][] {as, as, as},
                (be, t) -> be.attention(t[0], t[1], t[2], 3, 0.3f, null, true));
        int[] a64 = {1, 40, 96}, a128 = {1, 35, 256}, ab2 = {2, 35, 35};
        same(
                gpu,
                "attention (flash, 2 heads of 48, causal)",
                new float[][] {data(a64), data(a64), data(a64)},
                new int[][] {a64, a64, a64},
                (be, t) -> be.attention(t[0], t[1], t[2], 2, 0.2f, null, true));
        same(
                gpu,
                "attention (flash, 2 heads of 128, bias)",
                new float[][] {data(a128), data(a128), data(a128), data(ab2)},
                new int[][] {a128, a128, a128, ab2},
                (be, t) -> be.attention(t[0], t[1], t[2], 2, 0.09f, t[3], false));

        int[] cx = {2, 3, 6, 7}, cwt = {4, 3, 3, 3}, cb = {4};
        same(
                gpu,
                "conv2d 3x3 pad 1 (im2col in chunks + GEMM + bias)",
                new float[][] {data(cx), data(cwt), data(cb)},
                new int[][] {cx, cwt, cb},
                (be, t) -> be.conv2d(t[0], t[1], t[2], 1, 1));
        same(
                gpu,
                "conv2d 3x3 stride 2, asymmetric padding",
                new float[][] {data(cx), data(cwt), data(cb)},
                new int[][] {cx, cwt, cb},
                (be, t) -> be.conv2d(t[0], t[1], t[2], 2, 0, 1, 0, 1));
        int[] c1 = {5, 3, 1, 1};
        same(
                gpu,
                "conv2d 1x1 (direct GEMM)",
                new float[][] {data(cx), data(c1)},
                new int[][] {cx, c1},
                (be, t) -> be.conv2d(t[0], t[1], null, 1, 0));
        int[] c1b = {5};
        same(
                gpu,
                "conv2d 1x1 with bias",
                new float[][] {data(cx), data(c1), data(c1b)},
                new int[][] {cx, c1, c1b},
                (be, t) -> be.conv2d(t[0], t[1], t[2], 1, 0));

        int[] img = {2, 8, 3, 5}, ch = {8};
        same(
                gpu,
                "groupNorm",
                new float[][] {data(img), data(ch), data(ch)},
                new int[][] {img, ch, ch},
                (be, t) -> be.groupNorm(t[0], 4, t[1], t[2], 1e-6f));
        same(
                gpu,
                "groupNorm, eps 0.5",
                new float[][] {data(img), data(ch), data(ch)},
                new int[][] {img, ch, ch},
                (be, t) -> be.groupNorm(t[0], 2, t[1], t[2], 0.5f));
        same(gpu, "upsampleNearest2x", new int[] {2, 3, 4, 5}, Backend::upsampleNearest2x);
        same(gpu, "transposeLast2", new int[] {3, 33, 70}, Backend::transposeLast2);
        same(gpu, "embedding (int upload)", new int[] {11, 6}, (be, t) -> be.embedding(t, new int[] {3, 0, 10, 3}));
        short[] weightBits = bf16(data(7, 33));
        same(gpu, "linear with a bfloat16 weight (fb_bf16_widen, then the GEMM)", new int[] {5, 33}, (be, input) -> {
            try (Tensor bf16Weight = be.uploadBf16(weightBits, 7, 33)) {
                return be.linear(input, bf16Weight, null);
            }
        });
        short[] tableBits = bf16(data(11, 6));
        same(gpu, "embedding of a bfloat16 table (fb_embedding_bf16)", new int[] {1}, (be, unused) -> {
            try (Tensor table = be.uploadBf16(tableBits, 11, 6)) {
                return be.embedding(table, new int[] {3, 0, 10, 3});
            }
        });

        // reverse mode: the host build of every backward kernel, reached through the backend (attention at one scale
        // only: each call launches over a hundred blocks of the thread-per-CUDA-thread emulation)
        for (BackwardCases.Case bc : BackwardCases.all(random)) {
            if (!bc.what().contains("scale 0.7")) {
                same(gpu, bc.what(), bc.inputs(), bc.shapes(), bc.op());
            }
        }
    }

    // ---- mode attention ------------------------------------------------------------------------------------------

    /**
     * The flash attention kernels against the CPU backend at the shapes the models use, each call one launch of the
     * kernel {@link OpsKernels#flashAttentionKernel} names (the fake driver's log says which ran).
     */
    private void flashAttention() throws Exception {
        record Case(String what, int b, int l, int heads, int d, float scale, boolean bias, boolean causal) {}
        List<Case> cases = List.of(
                new Case(
                        "flux-shapes transformer: 2 x 528 tokens (512 text + 16 image), 4 heads of 32",
                        2,
                        528,
                        4,
                        32,
                        (float) (1 / Math.sqrt(32)),
                        false,
                        false),
                new Case(
                        "T5-like: 2 x 45 tokens, 4 heads of 12, relative-position bias", 2, 45, 4, 12, 1f, true, false),
                new Case(
                        "CLIP-like: 2 x 77 tokens, 4 heads of 8, causal",
                        2,
                        77,
                        4,
                        8,
                        (float) (1 / Math.sqrt(8)),
                        false,
                        true),
                new Case("2 x 100 tokens, 2 heads of 32, bias and causal", 2, 100, 2, 32, 0.3f, true, true),
                new Case("77 tokens, 2 heads of 64, causal", 1, 77, 2, 64, 0.125f, false, true),
                new Case("70 tokens, 2 heads of 128, bias", 1, 70, 2, 128, (float) (1 / Math.sqrt(128)), true, false));
        try (CudaBackend gpu = new CudaBackend(
                CudaDriverDevice.open(0, GemmPrecision.FP32),
                CudaBackend.Workspace.DEFAULT,
                CudaBackend.AttentionPath.FLASH)) {
            for (Case c : cases) {
                check("flash attention, " + c.what(), () -> {
                    int[] s = {c.b(), c.l(), c.heads() * c.d()}, bs = {c.heads(), c.l(), c.l()};
                    float[][] in = c.bias()
                            ? new float[][] {data(s), data(s), data(s), data(bs)}
                            : new float[][] {data(s), data(s), data(s)};
                    int[][] shapes = c.bias() ? new int[][] {s, s, s, bs} : new int[][] {s, s, s};
                    String kernel = OpsKernels.flashAttentionKernel(c.d());
                    long launches = logCount("launch " + kernel + " "), all = logCount("launch ");
                    double rel = compare(
                            c.what(),
                            gpu,
                            in,
                            shapes,
                            (be, t) -> be.attention(
                                    t[0], t[1], t[2], c.heads(), c.scale(), c.bias() ? t[3] : null, c.causal()));
                    expect(logCount("launch " + kernel + " ") - launches == 1, "no launch of " + kernel);
                    expect(logCount("launch ") - all == 1, "launches besides the one of " + kernel);
                    return String.format(Locale.ROOT, "%s, rel %.2e", kernel, rel);
                });
            }
        }
        check("no FAULT in the fake driver's log", () -> {
            List<String> faults =
                    logLines().stream().filter(l -> l.startsWith("FAULT")).toList();
            expect(faults.isEmpty(), String.join("\n", faults));
            return "";
        });
    }

    /** CudaDriverDevice's own paths: plain copies, argument checks, error codes and messages. */
    private void devicePaths(CudaDriverDevice dev) {
        check("copy (cuMemcpyDtoDAsync)", () -> {
            long a = dev.allocate(4 * 100), b = dev.allocate(4 * 100);
            try {
                float[] x = data(100);
                dev.upload(a, x, 0, 100);
                dev.copy(b, a, 4 * 60);
                dev.copy(b + 4 * 60, a + 4 * 60, 4 * 40);
                float[] y = new float[100];
                dev.download(b, y);
                expect(Arrays.equals(x, y), "the copy differs");
                float[] part = new float[30];
                dev.upload(b, x, 70, 30);
                dev.download(b, part);
                expect(Arrays.equals(Arrays.copyOfRange(x, 70, 100), part), "an upload from an offset");
                return "";
            } finally {
                dev.free(a);
                dev.free(b);
            }
        });
        check("a launch with dynamic shared memory above 48 KiB opts in (cuFuncSetAttribute)", () -> {
            long a = dev.allocate(4 * 64), b = dev.allocate(4 * 64), y = dev.allocate(4 * 64);
            try {
                float[] xa = data(64), xb = data(64);
                dev.upload(a, xa, 0, 64);
                dev.upload(b, xb, 0, 64);
                KernelArgs args = new KernelArgs().ptr(a).ptr(b).ptr(y).i(64);
                dev.launch(OpsKernels.MODULE, OpsKernels.ADD, new LaunchGeometry(1, 1, 1, 256, 1, 1, 64 * 1024), args);
                dev.launch(OpsKernels.MODULE, OpsKernels.ADD, new LaunchGeometry(1, 1, 1, 256, 1, 1, 50 * 1024), args);
                float[] got = new float[64];
                dev.download(y, got);
                for (int i = 0; i < 64; i++) {
                    expect(got[i] == xa[i] + xb[i], "element " + i);
                }
                long optIns = logLines().stream()
                        .filter(l -> l.startsWith("note cuFuncSetAttribute fb_add MAX_DYNAMIC_SHARED_SIZE_BYTES=65536"))
                        .count();
                expect(optIns == 1, optIns + " opt-ins logged");
                return "";
            } finally {
                dev.free(a);
                dev.free(b);
                dev.free(y);
            }
        });
        check("a kernel the module lacks: CUDA_ERROR_NOT_FOUND through cuGetErrorName/String", () -> {
            CudaException e = expectThrows(
                    CudaException.class,
                    () -> dev.launch(
                            OpsKernels.MODULE, "fb_no_such_kernel", LaunchGeometry.of(1, 32), new KernelArgs()),
                    "launch");
            expect(e.errorName().equals("CUDA_ERROR_NOT_FOUND"), e.errorName());
            expect(e.call().equals("cuModuleGetFunction"), e.call());
            expect(e.getMessage().contains("(named symbol not found)"), e.getMessage());
            return e.getMessage();
        });
        check("a launch with the wrong number of arguments (cuFuncGetParamInfo sizes)", () -> {
            IllegalArgumentException e = expectThrows(
                    IllegalArgumentException.class,
                    () -> dev.launch(
                            OpsKernels.MODULE,
                            OpsKernels.ADD,
                            LaunchGeometry.of(1, 256),
                            new KernelArgs().ptr(0).i(1)),
                    "launch");
            expect(e.getMessage().contains("takes 4 parameters; the launch passes 2"), e.getMessage());
            IllegalArgumentException kind = expectThrows(
                    IllegalArgumentException.class,
                    () -> dev.launch(
                            OpsKernels.MODULE,
                            OpsKernels.ADD,
                            LaunchGeometry.of(1, 256),
                            new KernelArgs().ptr(0).ptr(0).i(1).i(1)),
                    "launch");
            expect(kind.getMessage().contains("parameter 2 is 8 bytes"), kind.getMessage());
            return e.getMessage() + " / " + kind.getMessage();
        });
        check("a block above the kernel's __launch_bounds__: cuLaunchKernel's error", () -> {
            CudaException e = expectThrows(
                    CudaException.class,
                    () -> dev.launch(
                            OpsKernels.MODULE,
                            OpsKernels.ADD,
                            LaunchGeometry.of(1, 512),
                            new KernelArgs().ptr(0).ptr(0).ptr(0).i(0)),
                    "launch");
            expect(
                    e.errorName().equals("CUDA_ERROR_INVALID_VALUE") && e.call().equals("cuLaunchKernel"),
                    e.getMessage());
            return e.getMessage();
        });
        check("an invalid GEMM: cuBLAS's status through cublasGetStatusName/String", () -> {
            long a = dev.allocate(4 * 16), b = dev.allocate(4 * 16), y = dev.allocate(4 * 16);
            try {
                CudaException e = expectThrows(
                        CudaException.class,
                        () -> dev.gemm(false, false, 4, 4, 4, 1f, a, 2, 0, b, 4, 0, 0f, y, 4, 0, 1),
                        "gemm");
                expect(e.errorName().equals("CUBLAS_STATUS_INVALID_VALUE"), e.errorName());
                expect(e.getMessage().contains("an invalid numeric value was used as an argument"), e.getMessage());
                expect(e.getMessage().contains("lda 2"), e.getMessage());
                return e.getMessage();
            } finally {
                dev.free(a);
                dev.free(b);
                dev.free(y);
            }
        });
        check("a GEMM with alpha and beta (C read when beta != 0)", () -> {
            int m = 3, n = 5, k = 4;
            float[] av = data(m * k), bv = data(k * n), cv = data(m * n);
            long a = dev.allocate(4L * av.length), b = dev.allocate(4L * bv.length), y = dev.allocate(4L * cv.length);
            try {
                dev.upload(a, av, 0, av.length);
                dev.upload(b, bv, 0, bv.length);
                dev.upload(y, cv, 0, cv.length);
                dev.gemm(false, false, m, n, k, 0.5f, a, m, 0, b, k, 0, 2f, y, m, 0, 1);
                float[] got = new float[cv.length];
                dev.download(y, got);
                float[] want = new float[cv.length];
                for (int j = 0; j < n; j++) {
                    for (int i = 0; i < m; i++) {
                        double acc = 0;
                        for (int l = 0; l < k; l++) {
                            acc += (double) av[i + l * m] * bv[l + j * k];
                        }
                        want[i + j * m] = (float) (0.5 * acc + 2.0 * cv[i + j * m]);
                    }
                }
                double rel = TestData.relativeL2(want, got);
                expect(rel <= TOL, "relative L2 error " + rel);
                return String.format(Locale.ROOT, "rel %.2e", rel);
            } finally {
                dev.free(a);
                dev.free(b);
                dev.free(y);
            }
        });
        check("an allocation beyond the device: DeviceOutOfMemoryException", () -> {
            DeviceOutOfMemoryException e =
                    expectThrows(DeviceOutOfMemoryException.class, () -> dev.allocate(1L << 40), "allocate");
            expect(e.requestedBytes() == 1L << 40, "requestedBytes " + e.requestedBytes());
            expect(e.getMessage().contains("is out of memory: cannot allocate 1099511627776 bytes"), e.getMessage());
            expect(e.getMessage().contains("GiB free of 16.00 GiB"), e.getMessage());
            return e.getMessage();
        });
        check("freeing a pointer that was never allocated", () -> {
            CudaException e = expectThrows(CudaException.class, () -> dev.free(0x1000), "free");
            expect(e.errorName().equals("CUDA_ERROR_INVALID_VALUE") && e.call().equals("cuMemFree"), e.getMessage());
            return e.getMessage();
        });
    }

    // ---- mode oom ------------------------------------------------------------------------------------------------

    private void outOfMemoryAndFault() throws Exception {
        CudaDriverDevice dev = CudaDriverDevice.open(0, GemmPrecision.FP32);
        CudaBackend gpu = new CudaBackend(dev);
        check("open with FAKE_CUDA_CAPACITY=" + System.getenv("FAKE_CUDA_CAPACITY"), () -> {
            expect(dev.totalBytes() == 8L << 20, "totalBytes " + dev.totalBytes());
            return dev.describe();
        });
        int oneMb = 1_000_000, fiveMb = 1_250_000;
        Tensor[] kept = new Tensor[1];
        check("a full device: the pool frees its cache and retries", () -> {
            try (TensorScope scope = gpu.openScope()) {
                gpu.upload(new float[oneMb], oneMb); // 4 MB, back to the pool's cache when the scope closes
            }
            long oomBefore = logCount("error cuMemAlloc_v2 -> CUDA_ERROR_OUT_OF_MEMORY");
            float[] x = data(fiveMb);
            Tensor t = gpu.retain(gpu.upload(x, fiveMb)); // 5 MB: only after the cached 4 MB are freed
            kept[0] = t;
            expect(Arrays.equals(x, gpu.download(t)), "the download differs");
            long oom = logCount("error cuMemAlloc_v2 -> CUDA_ERROR_OUT_OF_MEMORY") - oomBefore;
            expect(oom == 1, oom + " out-of-memory answers (expected 1, then the retry)");
            return gpu.memory().toString();
        });
        check("no room even after trimming: DeviceOutOfMemoryException", () -> {
            DeviceOutOfMemoryException e = expectThrows(
                    DeviceOutOfMemoryException.class, () -> gpu.upload(new float[fiveMb], fiveMb), "upload");
            expect(e.getMessage().contains("is out of memory: cannot allocate 5000192 bytes"), e.getMessage());
            expect(e.getMessage().contains("the pool holds 5000192 bytes in live tensors"), e.getMessage());
            expect(e.getMessage().contains("free of 0.01 GiB"), e.getMessage());
            return e.getMessage();
        });
        same(gpu, "the device still works after running out of memory", new int[] {3, 40}, Backend::silu);
        check("a failing cublasCreate_v2 (FAKE_CUBLAS_CREATE_FAIL_AT=2): open releases what it made", () -> {
            CudaException e =
                    expectThrows(CudaException.class, () -> CudaDriverDevice.open(0, GemmPrecision.FP32), "open");
            expect(
                    e.call().equals("cublasCreate_v2") && e.errorName().equals("CUBLAS_STATUS_NOT_INITIALIZED"),
                    e.getMessage());
            List<String> released = logLines().stream()
                    .filter(l -> l.startsWith("context released"))
                    .toList();
            expect(
                    !released.isEmpty()
                            && released.get(released.size() - 1).equals("context released refs=1 streams=1 events=2"),
                    "after the failed open: " + released);
            return e.getMessage();
        });

        // a GPU fault: a kernel given an address outside every allocation
        check("a fault in a queued kernel surfaces at the next synchronization", () -> {
            long y = dev.allocate(4 * 64);
            dev.launch(
                    OpsKernels.MODULE,
                    OpsKernels.ADD,
                    LaunchGeometry.of(1, 256),
                    new KernelArgs().ptr(y).ptr(0x1000).ptr(y).i(64));
            CudaException e = expectThrows(CudaException.class, dev::synchronize, "synchronize");
            expect(e.errorName().equals("CUDA_ERROR_ILLEGAL_ADDRESS"), e.getMessage());
            expect(e.getMessage().contains("an illegal memory access was encountered"), e.getMessage());
            expect(e.getMessage().contains("an error here may come from any earlier queued kernel"), e.getMessage());
            return e.getMessage();
        });
        check("closing after a fault releases the context", () -> {
            RuntimeException closing = null;
            try {
                gpu.close();
            } catch (RuntimeException e) {
                closing = e;
            }
            boolean destroyed = logCount("context destroyed") == 1;
            String note = "CudaBackend.close() " + (closing == null ? "returned" : "threw " + closing) + "; context "
                    + (destroyed ? "destroyed" : "NOT destroyed");
            expect(destroyed, "the context outlived CudaBackend.close() after a fault: " + note);
            return note;
        });
    }

    // ---- mode nolibs ---------------------------------------------------------------------------------------------

    private void noLibraries() {
        check("cuInit answers CUDA_ERROR_NO_DEVICE: IllegalStateException", () -> {
            IllegalStateException e = expectThrows(
                    IllegalStateException.class, () -> CudaDriverDevice.open(0, GemmPrecision.FP32), "open");
            expect(
                    e.getMessage()
                            .startsWith("CUDA is not usable on this machine: cuInit failed: CUDA_ERROR_NO_DEVICE"
                                    + " (no CUDA-capable device is detected) while initialising the CUDA driver"),
                    e.getMessage());
            expect(e.getMessage().contains("libcublas.so.13"), "says what is needed: " + e.getMessage());
            return e.getMessage();
        });
        for (String attempt : new String[] {"first", "second"}) {
            check("no libcublas.so.13 on the library path (" + attempt + " attempt)", () -> {
                IllegalStateException e;
                try {
                    CudaDriverDevice.open(0, GemmPrecision.FP32).close();
                    return "skipped: a libcublas.so.13 was found elsewhere on this machine";
                } catch (IllegalStateException ise) {
                    e = ise;
                }
                String m = e.getMessage();
                expect(
                        m.startsWith("CUDA is not available: cannot load the cuBLAS binding (JavaCPP's jnicublas): "
                                + "libcublas.so.13 is missing (a CUDA 13 library: put the folder holding it on"
                                + " LD_LIBRARY_PATH)"),
                        m);
                return m;
            });
        }
        check("nothing was left retained", () -> {
            expect(logCount("context retained") == 0, "a context was retained");
            return "";
        });
    }

    // ---- mode nvrtc ----------------------------------------------------------------------------------------------

    private void nvrtc(boolean stale) throws Exception {
        long compilesBefore = logCount("nvrtc-compile");
        if (stale) {
            check("CUBINs for sm_80 in the cache", () -> {
                NvrtcCache cache = NvrtcCache.atDefaultDir();
                for (String module : new String[] {CudaModules.OPS, CudaModules.TERNARY_MATMUL}) {
                    String key = NvrtcCache.key(
                            module,
                            CudaModules.source(module).orElseThrow(),
                            NvrtcCompiler.nvrtcOptions("sm_90"),
                            "sm_90",
                            "13.1");
                    byte[] old = ("FAKECUBIN\narch=sm_80\nname=" + module + ".cu\nkernels=\n\0")
                            .getBytes(java.nio.charset.StandardCharsets.US_ASCII);
                    cache.getOrCompile(key, () -> old);
                    expect(Files.isRegularFile(cache.file(key)), "no cache file " + cache.file(key));
                }
                return cache.dir().toString();
            });
        }
        CudaDriverDevice dev = CudaDriverDevice.open(0, GemmPrecision.FP32);
        CudaBackend gpu = new CudaBackend(dev);
        same(gpu, "gelu (module fluxbatch_ops through NVRTC)", new int[] {3, 50}, Backend::gelu);
        same(
                gpu,
                "layerNorm (module fluxbatch_ops through NVRTC)",
                new int[] {3, 50},
                (be, t) -> be.layerNorm(t, 1e-6f));
        int out = 20, in = 40;
        byte[] codes = new byte[out * in];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (random.nextInt(3) - 1);
        }
        byte[] packed = TestData.hfPack(codes, out, in);
        float[] scale = data(out);
        int[] xs = {2, in};
        same(
                gpu,
                "ternaryLinear M=2 (module ternary_matmul through NVRTC)",
                new float[][] {data(xs)},
                new int[][] {xs},
                (be, t) -> be.ternaryLinear(t[0], be.uploadTernary(packed, out, in, scale), null));
        check("both modules came from the NVRTC cache folder", () -> {
            List<String> lines = logLines();
            long cubins = lines.stream()
                    .filter(l -> l.startsWith("module loaded kind=cubin"))
                    .count();
            long fatbins = lines.stream()
                    .filter(l -> l.startsWith("module loaded kind=fatbin"))
                    .count();
            long refused = lines.stream()
                    .filter(l -> l.startsWith("module fatbin refused"))
                    .count();
            expect(cubins == 2 && fatbins == 0, cubins + " CUBIN and " + fatbins + " fatbin loads");
            List<String> files;
            try (Stream<Path> s = Files.list(dev.nvrtcCache().dir())) {
                files = s.map(p -> p.getFileName().toString()).sorted().toList();
            }
            expect(
                    files.size() == 2
                            && files.get(0).startsWith("fluxbatch_ops-sm_90-nvrtc13.1-")
                            && files.get(1).startsWith("ternary_matmul-sm_90-nvrtc13.1-")
                            && files.stream().allMatch(f -> f.endsWith(".cubin")),
                    "cache folder: " + files);
            long compiles = logCount("nvrtc-compile") - compilesBefore;
            List<String> bad = lines.stream()
                    .filter(l -> l.startsWith("nvrtc-compile")
                            && !(l.contains("options=[--gpu-architecture=sm_90 -std=c++17]") && !l.contains("FAILED")))
                    .toList();
            expect(bad.isEmpty(), "NVRTC compiles with other options or a failed host check: " + bad);
            if (stale) {
                long refusedCubins = lines.stream()
                        .filter(l -> l.startsWith("error cuModuleLoadData")
                                && l.contains("a CUBIN for sm_80 on an sm_90 device"))
                        .count();
                expect(refusedCubins == 2, refusedCubins + " stale CUBINs refused (expected 2, then compiled anew)");
            }
            System.out.println("nvrtc-compiles " + compiles);
            return compiles + " NVRTC compiles, " + refused + " fatbins refused, cache " + files;
        });
        check("close", () -> {
            gpu.close();
            expect(logCount("context destroyed") == 1, "the context was not destroyed");
            expect(logLines().stream().noneMatch(l -> l.startsWith("FAULT")), "FAULTs in the log");
            return "";
        });
    }
}
