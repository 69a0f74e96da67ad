package ai.fluxbatch.model.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.fluxbatch.kernel.cpu.NativeBlas;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Both linear algebra paths of GPTQ (OpenBLAS, and the Java fallback) against products computed here in double: the
 * factor, the product with it, and the lazy block updates over three blocks, the last one short.
 */
class GptqAlgebraTest {
    private static final int N = 300, OUT = 20, BLOCK = 128;

    @ParameterizedTest(name = "native {0}")
    @ValueSource(booleans = {true, false})
    void factorProductAndBlockUpdatesMatchDoublePrecision(boolean nativeBlas) {
        assumeTrue(!nativeBlas || NativeBlas.available(), "OpenBLAS: " + NativeBlas.description());
        Random rnd = new Random(3);
        double[] h = spd(rnd);
        try (GptqAlgebra a = GptqAlgebra.open(OUT, N, BLOCK, nativeBlas)) {
            a.factor((i, row) -> System.arraycopy(h, i * N, row, 0, N));
            float[] r = a.diagonalBlock(0, N);
            double scale = 0;
            for (double v : h) {
                scale = Math.max(scale, Math.abs(v));
            }
            for (int i = 0; i < N; i++) {
                for (int j = 0; j < N; j++) {
                    if (j < i) {
                        assertEquals(0f, r[i * N + j], "R is upper triangular at " + i + "," + j);
                    }
                    double rrt = 0;
                    for (int k = 0; k < N; k++) {
                        rrt += r[i * N + k] * (double) r[j * N + k];
                    }
                    assertEquals(h[i * N + j], rrt, 1e-6 * scale, "R R^T at " + i + "," + j);
                }
            }
            float[] sub = a.diagonalBlock(128, 256);
            for (int i = 0; i < 128; i++) {
                for (int j = 0; j < 128; j++) {
                    assertEquals(r[(128 + i) * N + 128 + j], sub[i * 128 + j], "diagonal block at " + i + "," + j);
                }
            }

            float[] x = gaussian(rnd, OUT * N);
            assertClose(product(x, 0, N, r, 0, N), a.timesFactor(x), "x R");

            a.clear();
            float[] d1 = gaussian(rnd, OUT * BLOCK), d2 = gaussian(rnd, OUT * BLOCK);
            a.spread(d1, 0, 128);
            a.spread(d2, 128, 256);
            assertClose(product(d1, 0, 128, r, 128, 256), a.accumulated(128, 256), "A[:, 128:256]");
            double[] want = product(d1, 0, 128, r, 256, N), second = product(d2, 128, 256, r, 256, N);
            for (int i = 0; i < want.length; i++) {
                want[i] += second[i];
            }
            assertClose(want, a.accumulated(256, N), "A[:, 256:]");
            a.spread(gaussian(rnd, OUT * (N - 256)), 256, N); // the last block reaches nothing
            assertClose(want, a.accumulated(256, N), "A[:, 256:] after the last block");
            a.clear();
            for (float v : a.accumulated(0, N)) {
                assertEquals(0f, v, "cleared");
            }
        }
    }

    @Test
    void bothPathsFactorToTheSameFloats() {
        assumeTrue(NativeBlas.available(), "OpenBLAS: " + NativeBlas.description());
        double[] h = spd(new Random(8));
        float[] got, want;
        try (GptqAlgebra a = GptqAlgebra.open(OUT, N, BLOCK, true)) {
            a.factor((i, row) -> System.arraycopy(h, i * N, row, 0, N));
            got = a.diagonalBlock(0, N);
        }
        try (GptqAlgebra a = GptqAlgebra.open(OUT, N, BLOCK, false)) {
            a.factor((i, row) -> System.arraycopy(h, i * N, row, 0, N));
            want = a.diagonalBlock(0, N);
        }
        for (int i = 0; i < got.length; i++) {
            assertEquals(want[i], got[i], 1e-6 * Math.abs(want[i]) + 1e-12, "R at " + i);
        }
    }

    @ParameterizedTest(name = "native {0}")
    @ValueSource(booleans = {true, false})
    void aMatrixThatIsNotPositiveDefiniteIsRefused(boolean nativeBlas) {
        assumeTrue(!nativeBlas || NativeBlas.available(), "OpenBLAS: " + NativeBlas.description());
        double[] h = {1, 2, 2, 1};
        try (GptqAlgebra a = GptqAlgebra.open(1, 2, BLOCK, nativeBlas)) {
            assertThrows(ArithmeticException.class, () -> a.factor((i, row) -> System.arraycopy(h, i * 2, row, 0, 2)));
        }
    }

    /** {@code B B^T / N + I}: positive definite, correlated, with a spread of scales. */
    private static double[] spd(Random rnd) {
        double[] b = new double[N * N];
        for (int i = 0; i < b.length; i++) {
            b[i] = rnd.nextGaussian() * (1 + (i / N) % 7);
        }
        double[] h = new double[N * N];
        for (int i = 0; i < N; i++) {
            for (int j = 0; j < N; j++) {
                double v = i == j ? 1 : 0;
                for (int k = 0; k < N; k++) {
                    v += b[i * N + k] * b[j * N + k] / N;
                }
                h[i * N + j] = v;
            }
        }
        return h;
    }

    /** {@code x [OUT, k2 - k1] R[k1:k2, c1:c2]} in double, {@code x} row-major. */
    private static double[] product(float[] x, int k1, int k2, float[] r, int c1, int c2) {
        int nb = k2 - k1, cols = c2 - c1;
        double[] p = new double[OUT * cols];
        for (int o = 0; o < OUT; o++) {
            for (int c = 0; c < cols; c++) {
                double v = 0;
                for (int j = 0; j < nb; j++) {
                    v += x[o * nb + j] * (double) r[(k1 + j) * N + c1 + c];
                }
                p[o * cols + c] = v;
            }
        }
        return p;
    }

    private static void assertClose(double[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what + ": length");
        double num = 0, den = 0;
        for (int i = 0; i < want.length; i++) {
            num += (got[i] - want[i]) * (got[i] - want[i]);
            den += want[i] * want[i];
        }
        double rel = Math.sqrt(num / den);
        assertEquals(0, rel, 1e-6, what + ": relative L2 error");
    }

    private static float[] gaussian(Random rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return v;
    }
}
