package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TestData;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import java.util.List;
import java.util.Random;
import java.util.function.BiFunction;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Every operation of the CUDA backend, run on the emulated device (the kernels' Java ports and cuBLAS's column-major
 * GEMM), against the CPU backend on the same inputs: this checks the backend's own logic (shapes, pointer offsets,
 * pitches, GEMM transposes and leading dimensions, chunking of attention and im2col); the kernels themselves are
 * checked by {@code CudaKernelsOnHostTest} and, on a GPU, by the GPU checks.
 */
class CudaBackendTest {
    private static final double TOL = 2e-5;
    private final Random random = new Random(7);
    private final CpuBackend cpu = new CpuBackend(1);
    private final EmulatedDevice device = new EmulatedDevice();
    /** Small workspaces, so attention (on the GEMM path) and im2col run in several chunks. */
    private static final CudaBackend.Workspace SMALL = new CudaBackend.Workspace(4 * 2 * 9 * 9, 4 * 18 * 5);

    private final CudaBackend gpu = new CudaBackend(device, SMALL, CudaBackend.AttentionPath.FLASH);
    /** The same on the GEMM attention path (scores GEMM + softmax + GEMM per chunk of heads). */
    private final EmulatedDevice gemmDevice = new EmulatedDevice();

    private final CudaBackend gemmAttention = new CudaBackend(gemmDevice, SMALL, CudaBackend.AttentionPath.GEMM);

    @AfterEach
    void close() {
        gpu.close();
        gemmAttention.close();
        cpu.close();
    }

    private float[] data(int... shape) {
        return TestData.randn(random, shape);
    }

    /** Runs {@code op} on both backends with the same uploaded inputs and compares the downloads. */
    private void same(String what, float[][] inputs, int[][] shapes, BiFunction<Backend, Tensor[], Tensor> op) {
        BackendComparison c = BackendComparison.run(what, cpu, gpu, inputs, shapes, op);
        assertTrue(
                c.relativeL2() <= TOL, what + ": relative L2 error " + c.relativeL2() + " (" + c.firstValues() + ")");
    }

    private void same(String what, int[] shape, BiFunction<Backend, Tensor, Tensor> op) {
        same(what, new float[][] {data(shape)}, new int[][] {shape}, (be, t) -> op.apply(be, t[0]));
    }

    @Test
    void elementwise() {
        int[] s = {2, 3, 37};
        same("gelu", s, Backend::gelu);
        same("silu", s, Backend::silu);
        same("quickGelu", s, Backend::quickGelu);
        same("add", new float[][] {data(s), data(s)}, new int[][] {s, s}, (be, t) -> be.add(t[0], t[1]));
        same("mul", new float[][] {data(s), data(s)}, new int[][] {s, s}, (be, t) -> be.mul(t[0], t[1]));
    }

    @Test
    void norms() {
        int[] s = {2, 5, 40};
        int[] c = {40};
        same("layerNorm", s, (be, t) -> be.layerNorm(t, 1e-6f));
        same(
                "layerNorm affine",
                new float[][] {data(s), data(c), data(c)},
                new int[][] {s, c, c},
                (be, t) -> be.layerNorm(t[0], t[1], t[2], 1e-5f));
        same("rmsNorm", new float[][] {data(s), data(c)}, new int[][] {s, c}, (be, t) -> be.rmsNorm(t[0], t[1], 1e-6f));
        int[] img = {2, 8, 3, 5};
        int[] ch = {8};
        same(
                "groupNorm",
                new float[][] {data(img), data(ch), data(ch)},
                new int[][] {img, ch, ch},
                (be, t) -> be.groupNorm(t[0], 4, t[1], t[2], 1e-6f));
    }

    @Test
    void perSampleOps() {
        int[] x = {2, 7, 12};
        int[] v = {2, 12};
        same(
                "modulate",
                new float[][] {data(x), data(v), data(v)},
                new int[][] {x, v, v},
                (be, t) -> be.modulate(t[0], t[1], t[2]));
        same(
                "gatedAdd",
                new float[][] {data(x), data(v), data(x)},
                new int[][] {x, v, x},
                (be, t) -> be.gatedAdd(t[0], t[1], t[2]));
    }

    @Test
    void layoutOps() {
        int[] x = {2, 5, 12};
        same("columns", x, (be, t) -> be.columns(t, 3, 7));
        same("sliceRows", x, (be, t) -> be.sliceRows(t, 1, 3));
        int[] y = {2, 3, 12};
        same("concatRows", new float[][] {data(x), data(y)}, new int[][] {x, y}, (be, t) -> be.concatRows(t[0], t[1]));
        int[] z = {2, 5, 4};
        same(
                "concatColumns",
                new float[][] {data(x), data(z)},
                new int[][] {x, z},
                (be, t) -> be.concatColumns(t[0], t[1]));
        same("transposeLast2", new int[] {3, 33, 70}, Backend::transposeLast2);
        same("upsampleNearest2x", new int[] {2, 3, 4, 5}, Backend::upsampleNearest2x);
        same("reshape", x, (be, t) -> be.add(be.reshape(t, 10, 12), be.reshape(t, 10, 12)));
    }

    @Test
    void embeddingAndRope() {
        int[] table = {11, 6};
        same("embedding", table, (be, t) -> be.embedding(t, new int[] {3, 0, 10, 3}));
        int[] x = {2, 3, 4, 8};
        int[] pe = {2, 3, 4, 2, 2};
        same("rope", new float[][] {data(x), data(pe)}, new int[][] {x, pe}, (be, t) -> be.rope(t[0], t[1]));
    }

    @Test
    void linear() {
        int[] x = {2, 3, 20};
        int[] w = {9, 20};
        int[] b = {9};
        same(
                "linear",
                new float[][] {data(x), data(w), data(b)},
                new int[][] {x, w, b},
                (be, t) -> be.linear(t[0], t[1], t[2]));
        same(
                "linear without bias",
                new float[][] {data(x), data(w)},
                new int[][] {x, w},
                (be, t) -> be.linear(t[0], t[1], null));
    }

    @Test
    void ternaryLinearOnEveryPath() {
        int out = 70, in = 45;
        byte[] codes = new byte[out * in];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (random.nextInt(3) - 1);
        }
        byte[] packed = TestData.hfPack(codes, out, in);
        float[] scale = data(out);
        int[] b = {out};
        for (int m : new int[] {1, 16, 17, 70, TernaryLaunch.DENSE_FROM_M, TernaryLaunch.DENSE_FROM_M + 3}) {
            int[] x = {m, in};
            same(
                    "ternaryLinear M=" + m,
                    new float[][] {data(x), data(b)},
                    new int[][] {x, b},
                    (be, t) -> be.ternaryLinear(t[0], be.uploadTernary(packed, out, in, scale), t[1]));
        }
        assertTrue(device.launchedKernels().contains(OpsKernels.TERNARY_DECODE), "the GEMM path ran");
        assertTrue(device.launchedKernels().contains(TernaryLaunch.TILED_KERNEL), "the tiled kernel ran");
        assertTrue(device.launchedKernels().contains(TernaryLaunch.SMALL_M_KERNEL), "the small-M kernel ran");
    }

    private void sameOn(
            CudaBackend backend,
            String what,
            float[][] inputs,
            int[][] shapes,
            BiFunction<Backend, Tensor[], Tensor> op) {
        BackendComparison c = BackendComparison.run(what, cpu, backend, inputs, shapes, op);
        assertTrue(
                c.relativeL2() <= TOL, what + ": relative L2 error " + c.relativeL2() + " (" + c.firstValues() + ")");
    }

    private static long launches(EmulatedDevice d, String kernel) {
        return d.launches().stream().filter(l -> l.kernel().equals(kernel)).count();
    }

    @Test
    void attentionInChunksOfHeadsOnTheGemmPath() {
        int[] s = {2, 9, 12};
        sameOn(
                gemmAttention,
                "attention",
                new float[][] {data(s), data(s), data(s)},
                new int[][] {s, s, s},
                (be, t) -> be.attention(t[0], t[1], t[2], 3));
        int[] bias = {3, 9, 9};
        sameOn(
                gemmAttention,
                "attention with bias, causal",
                new float[][] {data(s), data(s), data(s), data(bias)},
                new int[][] {s, s, s, bias},
                (be, t) -> be.attention(t[0], t[1], t[2], 3, 0.7f, t[3], true));
        assertEquals(
                2 * 2 * 2, launches(gemmDevice, OpsKernels.SOFTMAX_ROWS), "3 heads in chunks of 2, 2 samples, 2 calls");
        assertEquals(0, launches(gemmDevice, OpsKernels.FLASH_ATTENTION_D32), "the GEMM path launched flash attention");
    }

    @Test
    void flashAttentionIsOneLaunchPerCall() {
        // head sizes 4, 48 and 128 take the three kernels; the flux-shapes miniature's transformer attention (2 x 528
        // tokens, 4 heads of 32), T5's bias, CLIP's causal mask, lengths that are not a multiple of a tile
        record Case(String what, int b, int l, int heads, int d, float scale, boolean bias, boolean causal) {}
        List<Case> cases = List.of(
                new Case("3 heads of 4", 2, 9, 3, 4, 0.5f, false, false),
                new Case("with bias, causal", 2, 9, 3, 4, 0.7f, true, true),
                new Case("miniature transformer", 2, 528, 4, 32, (float) (1 / Math.sqrt(32)), false, false),
                new Case("T5-like bias", 2, 45, 4, 12, 1f, true, false),
                new Case("CLIP-like causal", 2, 77, 4, 8, (float) (1 / Math.sqrt(8)), false, true),
                new Case("heads of 48, bias", 1, 70, 2, 48, 0.2f, true, false),
                new Case("heads of 128, bias, causal", 1, 100, 2, 128, (float) (1 / Math.sqrt(128)), true, true));
        for (Case c : cases) {
            int[] s = {c.b(), c.l(), c.heads() * c.d()}, bs = {c.heads(), c.l(), c.l()};
            float[][] in = c.bias()
                    ? new float[][] {data(s), data(s), data(s), data(bs)}
                    : new float[][] {data(s), data(s), data(s)};
            int[][] shapes = c.bias() ? new int[][] {s, s, s, bs} : new int[][] {s, s, s};
            device.clearLaunches();
            long gemms = device.gemms();
            sameOn(
                    gpu,
                    "flash attention, " + c.what(),
                    in,
                    shapes,
                    (be, t) ->
                            be.attention(t[0], t[1], t[2], c.heads(), c.scale(), c.bias() ? t[3] : null, c.causal()));
            assertEquals(
                    List.of(OpsKernels.flashAttentionKernel(c.d())),
                    device.launchedKernels(),
                    c.what() + ": one flash launch, nothing else");
            assertEquals(gemms, device.gemms(), c.what() + ": no GEMM");
        }
    }

    @Test
    void flashAttentionTakesNoScoreWorkspace() {
        int b = 2, l = 528, heads = 4, d = 32;
        int[] s = {b, l, heads * d};
        float[] q = data(s), k = data(s), v = data(s);
        long tensor = DeviceMemoryPool.rounded(4L * b * l * heads * d);
        for (CudaBackend.AttentionPath path : CudaBackend.AttentionPath.values()) {
            try (CudaBackend be = new CudaBackend(new EmulatedDevice(), CudaBackend.Workspace.DEFAULT, path)) {
                be.download(be.attention(be.upload(q, s), be.upload(k, s), be.upload(v, s), heads));
                long peak = be.memory().peakInUseBytes();
                if (path == CudaBackend.AttentionPath.FLASH) {
                    assertEquals(4 * tensor, peak, "flash: q, k, v and the output, nothing else");
                } else {
                    assertEquals(
                            4 * tensor + DeviceMemoryPool.rounded(4L * heads * l * l),
                            peak,
                            "GEMM: the four tensors and the scores of all 4 heads");
                }
            }
        }
    }

    @Test
    void headsOverTheFlashLimitTakeTheGemmPath() {
        int[] s = {1, 7, 2 * 130};
        device.clearLaunches();
        sameOn(
                gpu,
                "attention, 2 heads of 130",
                new float[][] {data(s), data(s), data(s)},
                new int[][] {s, s, s},
                (be, t) -> be.attention(t[0], t[1], t[2], 2, 0.1f, null, true));
        assertTrue(launches(device, OpsKernels.SOFTMAX_ROWS) > 0, "heads of 130 features: " + device.launchedKernels());
        assertTrue(
                device.launchedKernels().stream().noneMatch(k -> k.startsWith("fb_flash_attention")),
                "flash attention for heads of 130 features: " + device.launchedKernels());
    }

    @Test
    void attentionPathFromTheSystemProperty() {
        String key = CudaBackend.AttentionPath.PROPERTY, old = System.getProperty(key);
        try {
            System.clearProperty(key);
            assertEquals(CudaBackend.AttentionPath.FLASH, CudaBackend.AttentionPath.fromSystemProperty());
            System.setProperty(key, "GEMM");
            assertEquals(CudaBackend.AttentionPath.GEMM, CudaBackend.AttentionPath.fromSystemProperty());
            try (CudaBackend b = new CudaBackend(new EmulatedDevice())) {
                assertEquals(CudaBackend.AttentionPath.GEMM, b.attentionPath());
            }
            System.setProperty(key, "fast");
            IllegalArgumentException e =
                    assertThrows(IllegalArgumentException.class, CudaBackend.AttentionPath::fromSystemProperty);
            assertTrue(e.getMessage().contains("-D" + key + "=fast"), e.getMessage());
        } finally {
            if (old == null) {
                System.clearProperty(key);
            } else {
                System.setProperty(key, old);
            }
        }
    }

    @Test
    void convolutions() {
        int[] x = {2, 3, 6, 7};
        int[] w = {4, 3, 3, 3};
        int[] b = {4};
        same(
                "conv2d 3x3 pad 1",
                new float[][] {data(x), data(w), data(b)},
                new int[][] {x, w, b},
                (be, t) -> be.conv2d(t[0], t[1], t[2], 1, 1));
        same(
                "conv2d 3x3 stride 2, asymmetric padding",
                new float[][] {data(x), data(w), data(b)},
                new int[][] {x, w, b},
                (be, t) -> be.conv2d(t[0], t[1], t[2], 2, 0, 1, 0, 1));
        int[] w1 = {5, 3, 1, 1};
        same(
                "conv2d 1x1",
                new float[][] {data(x), data(w1)},
                new int[][] {x, w1},
                (be, t) -> be.conv2d(t[0], t[1], null, 1, 0));
    }

    // ---- reverse mode ----------------------------------------------------------------------------------------

    @Test
    void everyBackwardOperationMatchesTheCpuBackend() {
        for (BackwardCases.Case c : BackwardCases.all(random)) {
            same(c.what(), c.inputs(), c.shapes(), c.op());
        }
        List<String> kernels = device.launchedKernels();
        for (String k : List.of(
                TernaryLaunch.INPUT_GRAD_KERNEL,
                OpsKernels.TERNARY_DECODE,
                OpsKernels.SUM_ROWS,
                OpsKernels.SOFTMAX_BACKWARD_ROWS,
                OpsKernels.MUL_PER_SAMPLE,
                OpsKernels.FILL)) {
            assertTrue(kernels.contains(k), k + " ran");
        }
    }

    @Test
    void attentionBackwardInChunksOfHeads() {
        int[] s = {2, 9, 12};
        float[][] in = {data(s), data(s), data(s), data(s)};
        int[][] shapes = {s, s, s, s};
        // this backend's workspace holds one head's two score buffers; a second one holds two heads'
        EmulatedDevice second = new EmulatedDevice();
        try (CudaBackend two = new CudaBackend(second, new CudaBackend.Workspace(2 * 2 * 4 * 9 * 9, 0))) {
            for (CudaBackend b : List.of(gpu, two)) {
                EmulatedDevice d = b == gpu ? device : second;
                d.clearLaunches();
                for (int part = 0; part < 3; part++) {
                    int which = part;
                    BackendComparison c =
                            BackendComparison.run("attentionBackward part " + part, cpu, b, in, shapes, (be, t) -> {
                                Backend.AttentionGrads g = be.attentionBackward(t[0], t[1], t[2], t[3], 3, 0.5f);
                                return which == 0 ? g.query() : which == 1 ? g.key() : g.value();
                            });
                    assertTrue(c.relativeL2() <= TOL, "part " + part + ": " + c.relativeL2() + " " + c.firstValues());
                }
                long chunks = d.launches().stream()
                        .filter(l -> l.kernel().equals(OpsKernels.SOFTMAX_BACKWARD_ROWS))
                        .count();
                assertEquals(b == gpu ? 3 * 2 * 3 : 3 * 2 * 2, chunks, "3 calls, 2 samples, heads in chunks");
            }
        }
    }

    @Test
    void ternaryLinearBackwardWithoutInputGradientAndOverNoRows() {
        byte[] packed = BackwardCases.ternaryCodes(random);
        float[] scale = BackwardCases.ternaryScale(random);
        int in = BackwardCases.TERNARY_IN, out = BackwardCases.TERNARY_OUT;
        for (int m : new int[] {3, TernaryLaunch.DENSE_FROM_M}) {
            Tensor w = gpu.uploadTernary(packed, out, in, scale);
            Backend.TernaryLinearGrads g = gpu.ternaryLinearBackward(
                    gpu.upload(data(m, in), m, in), w, gpu.upload(data(m, out), m, out), false);
            assertEquals(null, g.input(), "no input gradient asked for");
            assertEquals(out, g.scale().numel());
        }
        Tensor w = gpu.uploadTernary(packed, out, in, scale);
        Backend.TernaryLinearGrads g =
                gpu.ternaryLinearBackward(gpu.upload(new float[0], 0, in), w, gpu.upload(new float[0], 0, out), true);
        assertArrayEquals(new float[out], gpu.download(g.scale()), "no rows: zero gradients");
        assertArrayEquals(new float[out], gpu.download(g.bias()));
        assertArrayEquals(new int[] {0, in}, g.input().shape());

        Tensor x = gpu.upload(data(2, in), 2, in);
        String m = assertThrows(
                        IllegalArgumentException.class,
                        () -> gpu.ternaryLinearBackward(x, w, gpu.upload(data(2, out - 1), 2, out - 1), true))
                .getMessage();
        assertTrue(m.contains("ternaryLinearBackward"), m);
        m = assertThrows(IllegalArgumentException.class, () -> gpu.ternaryLinearBackward(x, x, x, true))
                .getMessage();
        assertTrue(m.contains("uploadTernary"), m);
    }

    @Test
    void withTernaryScaleSharesTheCodesAndOwnsOnlyItsScale() {
        byte[] packed = BackwardCases.ternaryCodes(random);
        int in = BackwardCases.TERNARY_IN, out = BackwardCases.TERNARY_OUT;
        float[] scale = data(out), scale2 = data(out);
        Tensor x = gpu.upload(data(5, in), 5, in);
        Tensor w = gpu.uploadTernary(packed, out, in, scale);
        float[] before = gpu.download(gpu.ternaryLinear(x, w, null));
        long allocated = gpu.memory().inUseBytes();
        Tensor w2 = gpu.withTernaryScale(w, scale2);
        assertEquals(DeviceMemoryPool.GRANULE, gpu.memory().inUseBytes() - allocated, "one block: the new scales");
        assertTrue(((CudaTernaryTensor) w2).codes == ((CudaTernaryTensor) w).codes, "the device codes are shared");
        float[] after = gpu.download(gpu.ternaryLinear(x, w2, null));
        Tensor w2OnCpu = cpu.withTernaryScale(cpu.uploadTernary(packed, out, in, scale), scale2);
        float[] want = cpu.download(cpu.ternaryLinear(cpu.upload(gpu.download(x), 5, in), w2OnCpu, null));
        assertTrue(TestData.relativeL2(want, after) <= TOL, "the new scales are used");
        w2.close();
        assertArrayEquals(before, gpu.download(gpu.ternaryLinear(x, w, null)), "the original stays valid");
        String m = assertThrows(IllegalArgumentException.class, () -> gpu.withTernaryScale(w, new float[out - 1]))
                .getMessage();
        assertTrue(m.contains("expected " + out), m);
        float[] bad = data(out);
        bad[4] = Float.NaN;
        m = assertThrows(IllegalArgumentException.class, () -> gpu.withTernaryScale(w, bad))
                .getMessage();
        assertTrue(m.contains("scale[4]"), m);
        Tensor w3 = gpu.withTernaryScale(w, scale2);
        w.close();
        m = assertThrows(IllegalStateException.class, () -> gpu.ternaryLinear(x, w3, null))
                .getMessage();
        assertTrue(m.contains("used after it was freed"), "the codes went with their owner: " + m);
    }

    @Test
    void badArgumentsGetTheCpuBackendsMessages() {
        Tensor a = gpu.upload(data(2, 3), 2, 3);
        Tensor b = gpu.upload(data(3, 2), 3, 2);
        String m = assertThrows(IllegalArgumentException.class, () -> gpu.add(a, b))
                .getMessage();
        assertTrue(m.contains("shapes differ"), m);
        m = assertThrows(IllegalArgumentException.class, () -> gpu.columns(a, 2, 2))
                .getMessage();
        assertTrue(m.contains("outside"), m);
        Tensor table = gpu.upload(data(4, 2), 4, 2);
        m = assertThrows(IllegalArgumentException.class, () -> gpu.embedding(table, new int[] {4}))
                .getMessage();
        assertTrue(m.contains("outside the vocabulary of 4"), m);
        Tensor onCpu = cpu.upload(data(2, 3), 2, 3);
        m = assertThrows(IllegalArgumentException.class, () -> gpu.add(a, onCpu))
                .getMessage();
        assertTrue(m.contains("another backend"), m);
        m = assertThrows(IllegalArgumentException.class, () -> gpu.upload(new float[5], 2, 3))
                .getMessage();
        assertTrue(m.contains("5 values"), m);
    }
}
