package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TestData;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import java.io.File;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The reverse-mode operations of the CUDA backend on the real GPU (FP32 GEMMs), against the CPU backend: every case of
 * {@link BackwardCases}, then shapes past the small ones (a ternary layer of 1000 inputs, not a multiple of 32, on
 * both input-gradient paths; attention over 300 tokens), and the same bits from a second run of each reduction.
 * Skipped without a GPU (no /dev/nvidiactl), unless -Dfluxbatch.requireGpu=true; bench/gpu/run-on-gpu.sh runs it.
 */
class CudaBackwardOnGpuTest {
    private static final boolean GPU =
            new File("/dev/nvidiactl").exists() || Boolean.getBoolean("fluxbatch.requireGpu");
    private static final String NO_GPU = "no NVIDIA GPU here (/dev/nvidiactl is absent): the CUDA device is not run";
    /** Relative L2 error against the CPU: the GPU's tanhf/expf and cuBLAS's summation order differ in the last bits. */
    private static final double TOL = 1e-4;

    @TempDir
    Path cacheDir;

    private final Random random = new Random(23);
    private final CpuBackend cpu = new CpuBackend(2);
    private CudaBackend gpu;

    @BeforeEach
    void open() {
        Assumptions.assumeTrue(GPU, NO_GPU);
        gpu = new CudaBackend(CudaDriverDevice.open(0, GemmPrecision.FP32, cacheDir));
    }

    @AfterEach
    void close() {
        if (gpu != null) {
            gpu.close();
        }
        cpu.close();
    }

    private void same(BackwardCases.Case c) {
        BackendComparison r = BackendComparison.run(c.what(), cpu, gpu, c.inputs(), c.shapes(), c.op());
        assertTrue(
                r.relativeL2() <= TOL,
                c.what() + ": relative L2 error " + r.relativeL2() + " (" + r.firstValues() + ")");
    }

    @Test
    void everyBackwardCaseMatchesTheCpuBackend() {
        for (BackwardCases.Case c : BackwardCases.all(random)) {
            same(c);
        }
    }

    @Test
    void largerTernaryLayerAndAttention() {
        int out = 384, in = 1000;
        byte[] codes = new byte[out * in];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (random.nextInt(3) - 1);
        }
        byte[] packed = TestData.hfPack(codes, out, in);
        float[] scale = TestData.randn(random, out);
        scale[0] = 0f;
        for (int m : new int[] {1, 16, 100, TernaryLaunch.DENSE_FROM_M + 44}) {
            int[] xs = {m, in}, ys = {m, out};
            float[][] inputs = {TestData.randn(random, xs), TestData.randn(random, ys)};
            for (String part : List.of("input", "scale", "bias")) {
                same(new BackwardCases.Case(
                        "ternaryLinearBackward [" + m + ", " + in + "] -> " + out + " " + part,
                        inputs,
                        new int[][] {xs, ys},
                        (be, t) -> {
                            Backend.TernaryLinearGrads g = be.ternaryLinearBackward(
                                    t[0], be.uploadTernary(packed, out, in, scale), t[1], true);
                            return part.equals("input") ? g.input() : part.equals("scale") ? g.scale() : g.bias();
                        }));
            }
        }
        int[] qs = {1, 300, 128};
        float[][] qkv = {
            TestData.randn(random, qs),
            TestData.randn(random, qs),
            TestData.randn(random, qs),
            TestData.randn(random, qs)
        };
        for (String part : List.of("query", "key", "value")) {
            same(new BackwardCases.Case(
                    "attentionBackward 300 tokens, 4 heads " + part, qkv, new int[][] {qs, qs, qs, qs}, (be, t) -> {
                        Backend.AttentionGrads g = be.attentionBackward(t[0], t[1], t[2], t[3], 4, 0.125f);
                        return part.equals("query") ? g.query() : part.equals("key") ? g.key() : g.value();
                    }));
        }
    }

    private void sameBitsTwice(String what, Function<Backend, Tensor> op) {
        float[] first = gpu.download(op.apply(gpu));
        float[] second = gpu.download(op.apply(gpu));
        assertArrayEquals(first, second, 0f, what + ": a second run gave other bits");
    }

    @Test
    void reductionsGiveTheSameBitsEveryRun() {
        int out = 200, in = 300;
        byte[] codes = new byte[out * in];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (random.nextInt(3) - 1);
        }
        Tensor w = gpu.uploadTernary(TestData.hfPack(codes, out, in), out, in, TestData.randn(random, out));
        for (int m : new int[] {40, 2000}) {
            Tensor x = gpu.upload(TestData.randn(random, m, in), m, in);
            Tensor dy = gpu.upload(TestData.randn(random, m, out), m, out);
            sameBitsTwice(
                    "ternary scale gradient M=" + m,
                    be -> be.ternaryLinearBackward(x, w, dy, false).scale());
            sameBitsTwice(
                    "ternary bias gradient M=" + m,
                    be -> be.ternaryLinearBackward(x, w, dy, false).bias());
            sameBitsTwice(
                    "ternary input gradient M=" + m,
                    be -> be.ternaryLinearBackward(x, w, dy, true).input());
        }
        int[] s = {2, 1000, 64}, v = {2, 64};
        Tensor x = gpu.upload(TestData.randn(random, s), s), dy = gpu.upload(TestData.randn(random, s), s);
        Tensor sc = gpu.upload(TestData.randn(random, v), v);
        sameBitsTwice(
                "modulate scale gradient", be -> be.modulateBackward(x, sc, dy).scale());
        sameBitsTwice("gate gradient", be -> be.gatedAddBackward(sc, x, dy).gate());
        sameBitsTwice(
                "attention key gradient",
                be -> be.attentionBackward(x, dy, x, dy, 2, 0.2f).key());
    }
}
