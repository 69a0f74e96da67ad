package ai.fluxbatch.kernel.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TestData;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The dense products through OpenBLAS ({@link DenseProducts#OPENBLAS}) and through the Vector API
 * ({@link DenseProducts#VECTOR_API}) on random data: each within the float error bound of a double reference
 * ({@code (k + 2) 2^-24 sum_i |x_i w_i|} per element, whatever the summation order) and within float rounding of each
 * other; the OpenBLAS path the same bits for 1 and 3 threads and from run to run (linear, its backward, a
 * convolution), also with concurrent callers of one backend. Shapes cover one block and several blocks in both directions ({@link BlasMatmul#grid}), odd sizes, bias and
 * none, and the convolution's strides, paddings and 1 x 1 kernels. Skipped where OpenBLAS cannot load here.
 */
class BlasMatmulTest {
    private static final double U = Math.ulp(1f) / 2;
    private static CpuBackend blas1, blas3, vector3;

    private final Random random = new Random(7);

    @BeforeAll
    static void open() {
        if (NativeBlas.available()) {
            blas1 = new CpuBackend(1, DenseProducts.OPENBLAS);
            blas3 = new CpuBackend(3, DenseProducts.OPENBLAS);
            vector3 = new CpuBackend(3, DenseProducts.VECTOR_API);
        }
    }

    @BeforeEach
    void needsOpenBlas() {
        Assumptions.assumeTrue(NativeBlas.available(), "OpenBLAS is " + NativeBlas.description());
    }

    @AfterAll
    static void close() {
        for (CpuBackend b : new CpuBackend[] {blas1, blas3, vector3}) {
            if (b != null) {
                b.close();
            }
        }
    }

    /** {m, n, k}: one block, blocks along n, along m, along both, odd sizes, a single row. */
    private static final int[][] SHAPES = {
        {5, 7, 3}, {33, 130, 70}, {64, 1030, 300}, {1030, 300, 100}, {600, 700, 300}, {1, 300, 257}
    };

    @Test
    void linearIsWithinTheFloatBoundOnBothPathsAndTheyAgree() {
        for (int[] s : SHAPES) {
            int m = s[0], n = s[1], k = s[2];
            for (boolean withBias : new boolean[] {true, false}) {
                float[] x = TestData.randn(random, m * k), w = TestData.randn(random, n * k);
                float[] b = withBias ? TestData.randn(random, n) : null;
                double[][] ref = linearReference(x, w, b, m, n, k);
                float[] viaBlas = linear(blas3, x, w, b, m, n, k);
                float[] viaVector = linear(vector3, x, w, b, m, n, k);
                String what = "linear " + m + "x" + n + "x" + k + (withBias ? " + bias" : "");
                assertWithinBound(ref, viaBlas, k, what + " (OpenBLAS)");
                assertWithinBound(ref, viaVector, k, what + " (Vector API)");
                assertTrue(
                        TestData.relativeL2(viaVector, viaBlas) < 1e-5,
                        what + ": paths differ by relative L2 " + TestData.relativeL2(viaVector, viaBlas));
            }
        }
    }

    @Test
    void linearBackwardIsWithinTheFloatBoundOnBothPaths() {
        for (int[] s : SHAPES) {
            int m = s[0], n = s[1], k = s[2];
            float[] dy = TestData.randn(random, m * n), w = TestData.randn(random, n * k);
            // dx [m, k] = dy [m, n] . w [n, k]: the linear reference with the weight transposed, inner length n
            float[] wT = new float[k * n];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < k; j++) {
                    wT[j * n + i] = w[i * k + j];
                }
            }
            double[][] ref = linearReference(dy, wT, null, m, k, n);
            for (CpuBackend backend : new CpuBackend[] {blas3, vector3}) {
                Tensor dx = backend.linearBackward(backend.upload(dy, m, n), backend.upload(w, n, k));
                assertArrayEquals(new int[] {m, k}, dx.shape());
                assertWithinBound(
                        ref,
                        backend.download(dx),
                        n,
                        "linearBackward " + m + "x" + n + "x" + k + " on " + backend.name());
            }
        }
    }

    @Test
    void convolutionIsWithinTheFloatBoundOnBothPaths() {
        // {batch, channels, height, width, out channels, kernel, stride, pad top, bottom, left, right}
        int[][] cases = {
            {2, 5, 9, 11, 7, 3, 1, 1, 1, 1, 1},
            {1, 8, 17, 16, 12, 3, 2, 0, 1, 0, 1},
            {2, 6, 8, 8, 9, 1, 1, 0, 0, 0, 0},
            {1, 40, 24, 20, 64, 3, 1, 1, 1, 1, 1}
        };
        for (int[] c : cases) {
            int b = c[0], ch = c[1], h = c[2], w = c[3], o = c[4], kk = c[5], stride = c[6];
            int pt = c[7], pb = c[8], pl = c[9], pr = c[10];
            float[] x = TestData.randn(random, b * ch * h * w), wt = TestData.randn(random, o * ch * kk * kk);
            float[] bias = TestData.randn(random, o);
            int ho = (h + pt + pb - kk) / stride + 1, wo = (w + pl + pr - kk) / stride + 1;
            double[][] ref = convReference(x, wt, bias, b, ch, h, w, o, kk, stride, pt, pl, ho, wo);
            for (CpuBackend backend : new CpuBackend[] {blas3, vector3}) {
                Tensor y = backend.conv2d(
                        backend.upload(x, b, ch, h, w),
                        backend.upload(wt, o, ch, kk, kk),
                        backend.upload(bias, o),
                        stride,
                        pt,
                        pb,
                        pl,
                        pr);
                assertArrayEquals(new int[] {b, o, ho, wo}, y.shape());
                assertWithinBound(
                        ref,
                        backend.download(y),
                        ch * kk * kk,
                        "conv2d " + java.util.Arrays.toString(c) + " on " + backend.name());
            }
        }
    }

    @Test
    void sameBitsForOneAndThreeThreadsAndFromRunToRun() {
        int[][] shapes = {{600, 700, 300}, {1030, 300, 100}, {64, 1030, 300}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            BlasMatmul.Grid g = BlasMatmul.grid(m, n, k);
            assertTrue(g.mBlocks(m) * g.nBlocks(n) > 1, "the shape " + m + "x" + n + "x" + k + " is one block");
            float[] x = TestData.randn(random, m * k), w = TestData.randn(random, n * k), b = TestData.randn(random, n);
            float[] one = linear(blas1, x, w, b, m, n, k);
            float[] three = linear(blas3, x, w, b, m, n, k);
            float[] again = linear(blas3, x, w, b, m, n, k);
            try (CpuBackend fresh = new CpuBackend(2, DenseProducts.OPENBLAS)) {
                assertArrayEquals(one, linear(fresh, x, w, b, m, n, k), "2 threads, a new backend");
            }
            assertArrayEquals(one, three, "1 vs 3 threads at " + m + "x" + n + "x" + k);
            assertArrayEquals(three, again, "run to run at " + m + "x" + n + "x" + k);
            float[] dy = TestData.randn(random, m * n);
            assertArrayEquals(
                    blas1.download(blas1.linearBackward(blas1.upload(dy, m, n), blas1.upload(w, n, k))),
                    blas3.download(blas3.linearBackward(blas3.upload(dy, m, n), blas3.upload(w, n, k))),
                    "linearBackward, 1 vs 3 threads");
        }
        float[] image = TestData.randn(random, 2 * 24 * 40 * 40), kernel = TestData.randn(random, 32 * 24 * 9);
        float[][] conv = new float[2][];
        for (int i = 0; i < 2; i++) {
            CpuBackend b = i == 0 ? blas1 : blas3;
            conv[i] = b.download(
                    b.conv2d(b.upload(image, 2, 24, 40, 40), b.upload(kernel, 32, 24, 3, 3), null, 1, 1, 1, 1, 1));
        }
        assertArrayEquals(conv[0], conv[1], "conv2d, 1 vs 3 threads");
    }

    @Test
    void gridCoversTheOutputInAtMost32BlocksOfWholeTiles() {
        int[][] shapes = {{1, 1, 1}, {1024, 3072, 3072}, {1024, 12288, 3072}, {1056, 384, 128}, {7, 100000, 64}};
        for (int[] s : shapes) {
            int m = s[0], n = s[1], k = s[2];
            BlasMatmul.Grid g = BlasMatmul.grid(m, n, k);
            String what = m + "x" + n + "x" + k + " -> " + g;
            assertTrue(g.rows() >= 1 && g.rows() <= m && g.cols() >= 1 && g.cols() <= n, what);
            assertTrue(g.rows() == m || g.rows() % 16 == 0, what);
            assertTrue(g.cols() == n || g.cols() % 16 == 0, what);
            assertTrue((long) g.mBlocks(m) * g.nBlocks(n) <= 32, what);
        }
        assertEquals(new BlasMatmul.Grid(1, 1), BlasMatmul.grid(1, 1, 1));
        assertFalse(BlasMatmul.grid(1024, 3072, 3072).nBlocks(3072) == 1, "FLUX's product splits its columns");
    }

    @Test
    void theShapeRuleSendsOnlyLargeInputGradientsToOpenBlas() {
        DenseRule byShape = new DenseRule(false), forced = new DenseRule(true);
        assertTrue(byShape.linearBackward(1024, 3072, 3072), "FLUX's input gradient");
        assertTrue(byShape.linearBackward(512, 768, 768), "the smallest through OpenBLAS");
        assertFalse(byShape.linearBackward(511, 3072, 3072), "fewer rows");
        assertFalse(byShape.linearBackward(1024, 767, 3072), "a shorter inner length");
        assertFalse(byShape.linearBackward(1024, 3072, 767), "fewer output columns");
        assertFalse(byShape.linear(4096, 15360, 3072), "linear keeps the Vector API");
        assertFalse(byShape.conv(), "convolutions keep the Vector API");
        assertTrue(forced.linear(1, 1, 1) && forced.linearBackward(1, 1, 1) && forced.conv(), "forced: everything");
    }

    @Test
    void concurrentCallersOfOneBackendGetTheirOwnResults() throws Exception {
        int[][] shapes = {{300, 500, 200}, {64, 1030, 300}, {1, 300, 257}, {700, 260, 90}};
        List<float[][]> inputs = new ArrayList<>();
        List<float[]> serial = new ArrayList<>();
        for (int[] s : shapes) {
            float[] x = TestData.randn(random, s[0] * s[2]), w = TestData.randn(random, s[1] * s[2]);
            float[] b = TestData.randn(random, s[1]);
            inputs.add(new float[][] {x, w, b});
            serial.add(linear(blas3, x, w, b, s[0], s[1], s[2]));
        }
        ExecutorService callers = Executors.newFixedThreadPool(shapes.length);
        try {
            for (int round = 0; round < 3; round++) {
                List<Future<float[]>> results = new ArrayList<>();
                for (int i = 0; i < shapes.length; i++) {
                    int[] s = shapes[i];
                    float[][] in = inputs.get(i);
                    results.add(callers.submit(() -> linear(blas3, in[0], in[1], in[2], s[0], s[1], s[2])));
                }
                for (int i = 0; i < shapes.length; i++) {
                    assertArrayEquals(serial.get(i), results.get(i).get(), "caller " + i + ", round " + round);
                }
            }
        } finally {
            callers.shutdown();
        }
    }

    private static float[] linear(Backend backend, float[] x, float[] w, float[] b, int m, int n, int k) {
        Tensor y = backend.linear(
                backend.upload(x, m, k), backend.upload(w, n, k), b == null ? null : backend.upload(b, n));
        return backend.download(y);
    }

    /** {exact value, sum of |terms| including the bias} per output of {@code x [m, k] . w[n, k]^T + b}, in double. */
    private static double[][] linearReference(float[] x, float[] w, float[] b, int m, int n, int k) {
        double[] exact = new double[m * n], magnitude = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = b == null ? 0 : b[j], a = b == null ? 0 : Math.abs(b[j]);
                for (int t = 0; t < k; t++) {
                    double p = (double) x[i * k + t] * w[j * k + t];
                    s += p;
                    a += Math.abs(p);
                }
                exact[i * n + j] = s;
                magnitude[i * n + j] = a;
            }
        }
        return new double[][] {exact, magnitude};
    }

    private static double[][] convReference(
            float[] x,
            float[] wt,
            float[] bias,
            int b,
            int c,
            int h,
            int w,
            int o,
            int kk,
            int stride,
            int padTop,
            int padLeft,
            int ho,
            int wo) {
        double[] exact = new double[b * o * ho * wo], magnitude = new double[exact.length];
        for (int bi = 0; bi < b; bi++) {
            for (int oc = 0; oc < o; oc++) {
                for (int oy = 0; oy < ho; oy++) {
                    for (int ox = 0; ox < wo; ox++) {
                        double s = bias[oc], a = Math.abs(bias[oc]);
                        for (int ci = 0; ci < c; ci++) {
                            for (int dy = 0; dy < kk; dy++) {
                                for (int dx = 0; dx < kk; dx++) {
                                    int iy = oy * stride - padTop + dy, ix = ox * stride - padLeft + dx;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
                                        continue;
                                    }
                                    double p = (double) x[((bi * c + ci) * h + iy) * w + ix]
                                            * wt[((oc * c + ci) * kk + dy) * kk + dx];
                                    s += p;
                                    a += Math.abs(p);
                                }
                            }
                        }
                        int at = ((bi * o + oc) * ho + oy) * wo + ox;
                        exact[at] = s;
                        magnitude[at] = a;
                    }
                }
            }
        }
        return new double[][] {exact, magnitude};
    }

    /** Every output within {@code (k + 2) u} times its sum of |terms| of the exact value. */
    private static void assertWithinBound(double[][] ref, float[] got, int k, String what) {
        assertEquals(ref[0].length, got.length, what + ": length");
        for (int i = 0; i < got.length; i++) {
            double bound = (k + 2) * U * ref[1][i];
            double err = Math.abs(got[i] - ref[0][i]);
            if (!(err <= bound)) {
                throw new AssertionError(what + ": output " + i + " is " + got[i] + ", exact " + ref[0][i] + ", error "
                        + err + " > bound " + bound);
            }
        }
    }
}
