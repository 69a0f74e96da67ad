package ai.fluxbatch.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.kernel.cuda.CudaBackend;
import ai.fluxbatch.kernel.cuda.DeviceMemoryPool;
import ai.fluxbatch.kernel.cuda.EmulatedDevice;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Weights kept in bfloat16 ({@link Backend#uploadBf16}) on the CPU backend (1 and 2 threads) and the CUDA backend on
 * the emulated device: {@code linear} and {@code embedding} give what they give on the float32 tensor of the widened
 * values, and the weight takes half the bytes.
 */
class Bf16WeightTest {
    /** (m, n, k): one row (the direct path), bands with columns past a tile's width, odd k, several KB blocks. */
    private static final int[][] SHAPES = {{1, 37, 29}, {1, 70, 300}, {13, 70, 45}, {300, 9, 130}, {7, 64, 257}};

    static Stream<String> backends() {
        return Stream.of("cpu-1", "cpu-2", "cuda-emulated");
    }

    private static Backend open(String name) {
        return switch (name) {
            case "cpu-1" -> new CpuBackend(1);
            case "cpu-2" -> new CpuBackend(2);
            case "cuda-emulated" -> new CudaBackend(new EmulatedDevice());
            default -> throw new IllegalArgumentException(name);
        };
    }

    /** bfloat16 patterns of normal values, with 0, -0, a subnormal and the largest finite value among them. */
    private static short[] bits(Random random, int n) {
        short[] b = new short[n];
        for (int i = 0; i < n; i++) {
            b[i] = (short) (Float.floatToRawIntBits((float) random.nextGaussian()) >>> 16);
        }
        short[] special = {0, (short) 0x8000, 1, 0x7f7f};
        for (int i = 0; i < special.length && i < n; i++) {
            b[(i * 7919) % n] = special[i];
        }
        return b;
    }

    private static float[] widened(short[] b) {
        float[] f = new float[b.length];
        for (int i = 0; i < b.length; i++) {
            f[i] = Float.intBitsToFloat((b[i] & 0xFFFF) << 16);
        }
        return f;
    }

    /** One chain of fused multiply-adds over k in order per output, then + bias: the CPU products' documented bits. */
    private static float[] chain(float[] x, float[] w, float[] bias, int m, int n, int k) {
        float[] y = new float[m * n];
        for (int r = 0; r < m; r++) {
            for (int j = 0; j < n; j++) {
                float a = 0f;
                for (int i = 0; i < k; i++) {
                    a = Math.fma(x[r * k + i], w[j * k + i], a);
                }
                y[r * n + j] = bias == null ? a : a + bias[j];
            }
        }
        return y;
    }

    @ParameterizedTest
    @MethodSource("backends")
    void linearEqualsTheFloatProductOnTheWidenedWeights(String name) {
        Random random = new Random(15);
        try (Backend be = open(name)) {
            for (int[] s : SHAPES) {
                int m = s[0], n = s[1], k = s[2];
                short[] b = bits(random, n * k);
                // the largest finite bfloat16 times an input would overflow: keep it, but as a weight of a zero input
                float[] x = TestData.randn(random, m, k);
                float[] w = widened(b);
                for (int i = 0; i < w.length; i++) {
                    if (Math.abs(w[i]) > 1e30f) {
                        for (int r = 0; r < m; r++) {
                            x[r * k + i % k] = 0f;
                        }
                    }
                }
                for (boolean withBias : new boolean[] {false, true}) {
                    float[] bias = withBias ? TestData.randn(random, n) : null;
                    Tensor xt = be.upload(x, m, k);
                    Tensor bt = bias == null ? null : be.upload(bias, n);
                    Tensor w16 = be.uploadBf16(b, n, k), w32 = be.upload(w, n, k);
                    String what = name + " linear m=" + m + " n=" + n + " k=" + k + (withBias ? " with bias" : "");
                    float[] got = be.download(be.linear(xt, w16, bt));
                    float[] f32 = be.download(be.linear(xt, w32, bt));
                    if (name.startsWith("cuda")) {
                        // the same GEMM on the widened scratch as on the float32 weight: the same bits
                        assertArrayEquals(f32, got, what + ": bfloat16 weight against the float32 one");
                    } else {
                        // VectorMatmul's chains on the widened tiles: exactly the documented per-output chain
                        assertArrayEquals(chain(x, w, bias, m, n, k), got, what + ": against the fma chain");
                        assertTrue(
                                TestData.relativeL2(f32, got) <= 1e-6,
                                what + ": against the float32 weight, relative L2 " + TestData.relativeL2(f32, got));
                    }
                    assertEquals(2L * n * k, w16.residentBytes(), what + ": bfloat16 bytes");
                    assertEquals(4L * n * k, w32.residentBytes(), what + ": float32 bytes");
                    assertArrayEquals(w, be.download(w16), what + ": download widens");
                }
            }
            // leading axes of x are kept
            short[] b = bits(random, 6 * 10);
            Tensor x = be.upload(TestData.randn(random, 2, 3, 10), 2, 3, 10);
            Tensor y = be.linear(x, be.uploadBf16(b, 6, 10), null);
            assertArrayEquals(new int[] {2, 3, 6}, y.shape());
            assertArrayEquals(be.download(be.linear(x, be.upload(widened(b), 6, 10), null)), be.download(y));
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void embeddingWidensTheRowsItGathers(String name) {
        Random random = new Random(16);
        try (Backend be = open(name)) {
            for (int c : new int[] {1, 33, 300}) { // odd widths: on the device, rows start mid-word
                int v = 50;
                short[] b = bits(random, v * c);
                int[] ids = {v - 1, 0, 17, 17, 3};
                float[] got = be.download(be.embedding(be.uploadBf16(b, v, c), ids));
                float[] want = be.download(be.embedding(be.upload(widened(b), v, c), ids));
                assertArrayEquals(want, got, name + " embedding C=" + c);
            }
            Tensor table = be.uploadBf16(bits(random, 12), 4, 3);
            assertThrows(IllegalArgumentException.class, () -> be.embedding(table, new int[] {4}));
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void otherOperationsRefuseABf16Weight(String name) {
        try (Backend be = open(name)) {
            Tensor w = be.uploadBf16(new short[6], 2, 3);
            Tensor f = be.upload(new float[6], 2, 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.add(w, f));
            assertTrue(e.getMessage().contains("bfloat16 weight"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> be.linear(w, f, null));
            assertThrows(IllegalArgumentException.class, () -> be.linearBackward(f, w));
            assertThrows(IllegalArgumentException.class, () -> be.uploadBf16(new short[5], 2, 3));
            assertThrows(IllegalArgumentException.class, () -> be.linear(be.upload(new float[4], 1, 4), w, null));
        }
    }

    @Test
    void theDeviceFreesTheWidenedScratchOfALinear() {
        try (CudaBackend be = new CudaBackend(new EmulatedDevice())) {
            Random random = new Random(17);
            Tensor w = be.uploadBf16(bits(random, 40 * 24), 40, 24);
            Tensor x = be.upload(TestData.randn(random, 5, 24), 5, 24);
            long before = be.memory().inUseBytes();
            Tensor y = be.linear(x, w, null);
            long after = be.memory().inUseBytes();
            assertEquals(
                    DeviceMemoryPool.rounded(4 * 5 * 40),
                    after - before,
                    "only the output [5, 40] stays; the 3,840-byte scratch went back to the pool");
            assertTrue(be.memory().cachedBytes() >= 4 * 40 * 24, "the scratch is cached for the next product");
            assertEquals(5 * 40, be.download(y).length);
        }
    }
}
