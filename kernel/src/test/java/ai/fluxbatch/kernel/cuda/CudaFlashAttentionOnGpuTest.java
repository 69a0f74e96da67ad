package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.kernel.TestData;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import java.io.File;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The flash attention kernels ({@link CudaBackend.AttentionPath#FLASH}) on the real GPU against the CPU backend at
 * the shapes the models use, up to FLUX.1-dev's attention at 1024 x 1024 (4,096 image + 512 text tokens, 24 heads of
 * 128); against the GEMM path (FP32) on the same GPU; and the same bits from a second run. Skipped without a GPU (no
 * /dev/nvidiactl), unless -Dfluxbatch.requireGpu=true; bench/gpu/run-on-gpu.sh runs it. Speed is not checked here:
 * {@code CudaAttentionBenchmark} times both paths.
 */
class CudaFlashAttentionOnGpuTest {
    private static final boolean GPU =
            new File("/dev/nvidiactl").exists() || Boolean.getBoolean("fluxbatch.requireGpu");
    private static final String NO_GPU = "no NVIDIA GPU here (/dev/nvidiactl is absent): the CUDA device is not run";
    /** Relative L2 error against the CPU: the GPU's expf and the kernels' summation order differ in the last bits. */
    private static final double TOL = 1e-4;

    /** One attention call: {@code b} samples of {@code l} tokens, {@code heads} heads of {@code d} features. */
    record Shape(String what, int b, int l, int heads, int d, boolean bias, boolean causal) {
        float scale() {
            return (float) (1 / Math.sqrt(d));
        }
    }

    static final List<Shape> SHAPES = List.of(
            new Shape(
                    "flux-shapes transformer, 2 x (512 text + 16 image) tokens, 4 heads of 32",
                    2,
                    528,
                    4,
                    32,
                    false,
                    false),
            new Shape("flux-shapes transformer at 256 x 256, 2 x 768 tokens", 2, 768, 4, 32, false, false),
            new Shape("CLIP-L, 2 x 77 tokens, 12 heads of 64, causal", 2, 77, 12, 64, false, true),
            new Shape("T5-XXL, 512 tokens, 64 heads of 64, relative-position bias", 1, 512, 64, 64, true, false),
            new Shape("T5 miniature, 2 x 45 tokens, 4 heads of 12, bias", 2, 45, 4, 12, true, false),
            new Shape("FLUX.1-dev at 512 x 512, 1,024 + 512 tokens, 24 heads of 128", 1, 1536, 24, 128, false, false),
            new Shape("FLUX.1-dev at 1024 x 1024, 4,096 + 512 tokens, 24 heads of 128", 1, 4608, 24, 128, false, false),
            new Shape("heads of 100, bias and causal", 2, 333, 3, 100, true, true));

    @TempDir
    Path cacheDir;

    private final Random random = new Random(31);
    private final CpuBackend cpu = new CpuBackend(Runtime.getRuntime().availableProcessors());
    private CudaBackend flash;
    private CudaBackend gemm;

    @BeforeEach
    void open() {
        Assumptions.assumeTrue(GPU, NO_GPU);
        flash = new CudaBackend(
                CudaDriverDevice.open(0, GemmPrecision.FP32, cacheDir),
                CudaBackend.Workspace.DEFAULT,
                CudaBackend.AttentionPath.FLASH);
        gemm = new CudaBackend(
                CudaDriverDevice.open(0, GemmPrecision.FP32, cacheDir),
                CudaBackend.Workspace.DEFAULT,
                CudaBackend.AttentionPath.GEMM);
    }

    @AfterEach
    void close() {
        if (flash != null) {
            flash.close();
        }
        if (gemm != null) {
            gemm.close();
        }
        cpu.close();
    }

    private float[][] inputs(Shape s) {
        int[] x = {s.b(), s.l(), s.heads() * s.d()};
        float[][] in = {TestData.randn(random, x), TestData.randn(random, x), TestData.randn(random, x), null};
        if (s.bias()) {
            in[3] = TestData.randn(random, s.heads(), s.l(), s.l());
        }
        return in;
    }

    private static float[] attend(CudaBackend backend, Shape s, float[][] in) {
        int[] x = {s.b(), s.l(), s.heads() * s.d()};
        try (TensorScope scope = backend.openScope()) {
            Tensor bias = in[3] == null ? null : backend.upload(in[3], s.heads(), s.l(), s.l());
            Tensor out = backend.attention(
                    backend.upload(in[0], x),
                    backend.upload(in[1], x),
                    backend.upload(in[2], x),
                    s.heads(),
                    s.scale(),
                    bias,
                    s.causal());
            return backend.download(out);
        }
    }

    private float[] attendOnCpu(Shape s, float[][] in) {
        int[] x = {s.b(), s.l(), s.heads() * s.d()};
        Tensor bias = in[3] == null ? null : cpu.upload(in[3], s.heads(), s.l(), s.l());
        return cpu.download(cpu.attention(
                cpu.upload(in[0], x),
                cpu.upload(in[1], x),
                cpu.upload(in[2], x),
                s.heads(),
                s.scale(),
                bias,
                s.causal()));
    }

    @Test
    void everyModelShapeMatchesTheCpuBackendAndTheGemmPath() {
        for (Shape s : SHAPES) {
            float[][] in = inputs(s);
            float[] want = attendOnCpu(s, in);
            float[] got = attend(flash, s, in);
            double rel = TestData.relativeL2(want, got);
            assertTrue(rel <= TOL, s.what() + ": flash against the CPU, relative L2 error " + rel);
            double relGemm = TestData.relativeL2(attend(gemm, s, in), got);
            assertTrue(relGemm <= TOL, s.what() + ": flash against the GEMM path, relative L2 error " + relGemm);
        }
    }

    @Test
    void sameBitsEveryRun() {
        for (Shape s : List.of(SHAPES.get(0), SHAPES.get(3), SHAPES.get(SHAPES.size() - 1))) {
            float[][] in = inputs(s);
            assertArrayEquals(
                    attend(flash, s, in), attend(flash, s, in), 0f, s.what() + ": a second run gave other bits");
        }
    }

    @Test
    void noAttentionWorkspace() {
        Shape s = SHAPES.get(6);
        float[][] in = inputs(s);
        attend(flash, s, in);
        long scores = 4L * s.heads() * s.l() * s.l();
        long peak = flash.memory().peakInUseBytes();
        long tensors = 4 * DeviceMemoryPool.rounded(4L * s.b() * s.l() * s.heads() * s.d());
        assertEquals(
                tensors,
                peak,
                "peak device bytes in use: q, k, v and the output only (" + scores
                        + " bytes of scores would be the GEMM path's)");
    }
}
