package ai.fluxbatch.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.kernel.cpu.DenseProducts;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Every CPU kernel against plain scalar Java (double accumulation) on random shapes, odd sizes included. */
class CpuBackendTest {
    private static final CpuBackend CPU = new CpuBackend(3);
    private final Random random = new Random(7);

    @AfterAll
    static void close() {
        CPU.close();
    }

    private float[] randn(int n) {
        return TestData.randn(random, n);
    }

    private static void assertClose(double[] expected, float[] actual, double tol) {
        TestData.assertClose(expected, actual, tol);
    }

    @ParameterizedTest
    @CsvSource({"1,1,1", "1,3072,7", "3,5,17", "4,2,8", "5,3,33", "7,9,64", "9,31,100", "130,67,129", "1,70,3"})
    void linearMatchesScalar(int m, int n, int k) {
        float[] x = randn(m * k), w = randn(n * k), b = randn(n);
        double[] expected = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = b[j];
                for (int q = 0; q < k; q++) {
                    s += (double) x[i * k + q] * w[j * k + q];
                }
                expected[i * n + j] = s;
            }
        }
        Tensor out = CPU.linear(CPU.upload(x, 1, m, k), CPU.upload(w, n, k), CPU.upload(b, n));
        assertArrayEquals(new int[] {1, m, n}, out.shape());
        assertClose(expected, CPU.download(out), 1e-5 * Math.sqrt(k));
        Tensor noBias = CPU.linear(CPU.upload(x, m, k), CPU.upload(w, n, k), null);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                expected[i * n + j] -= b[j];
            }
        }
        assertClose(expected, CPU.download(noBias), 1e-5 * Math.sqrt(k));
    }

    /**
     * The Vector API dense kernel's contract: every output is the chain {@code acc = fma(x[m, k], w[n, k], acc)} over k
     * in order from 0, plus the bias, bit for bit, whichever path computes it (one row alone, a few rows, bands of rows
     * past one task's height, inputs past one block, columns past one tile) and with one or three threads. So a row
     * gives the same bits alone or in any batch. (OpenBLAS's products, {@link DenseProducts#OPENBLAS}, sum in blocks
     * of its own: BlasMatmulTest checks them against their float error bound.)
     */
    @ParameterizedTest
    @CsvSource({"1,70,129", "2,9,5", "5,64,128", "7,65,300", "300,130,33", "1100,17,129"})
    void linearIsOneFusedChainPerOutputForAnyRowsAndThreads(int m, int n, int k) {
        float[] x = randn(m * k), w = randn(n * k), b = randn(n);
        float[] chain = new float[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                float acc = 0f;
                for (int q = 0; q < k; q++) {
                    acc = Math.fma(x[i * k + q], w[j * k + q], acc);
                }
                chain[i * n + j] = acc + b[j];
            }
        }
        try (CpuBackend one = new CpuBackend(1, DenseProducts.VECTOR_API);
                CpuBackend three = new CpuBackend(3, DenseProducts.VECTOR_API)) {
            for (CpuBackend be : new CpuBackend[] {one, three}) {
                Tensor wt = be.upload(w, n, k), bt = be.upload(b, n);
                float[] all = be.download(be.linear(be.upload(x, m, k), wt, bt));
                assertArrayEquals(chain, all, "all " + m + " rows");
                float[] row = new float[k];
                for (int i : new int[] {0, m / 2, m - 1}) {
                    System.arraycopy(x, i * k, row, 0, k);
                    float[] alone = be.download(be.linear(be.upload(row, 1, k), wt, bt));
                    assertArrayEquals(Arrays.copyOfRange(chain, i * n, i * n + n), alone, "row " + i + " alone");
                }
            }
        }
    }

    @Test
    void linearRejectsMismatchedShapes() {
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> CPU.linear(CPU.upload(new float[6], 2, 3), CPU.upload(new float[8], 2, 4), null));
        assertTrue(e.getMessage().contains("input features is 3, expected 4"), e.getMessage());
    }

    @ParameterizedTest
    @CsvSource({"1,1", "3,7", "5,64", "2,129", "11,3072"})
    void normsMatchScalar(int rows, int c) {
        float[] x = randn(rows * c), scale = randn(c);
        for (int i = 0; i < x.length; i++) {
            x[i] = x[i] * 3 + 1.5f;
        }
        double[] ln = new double[x.length], rms = new double[x.length];
        for (int r = 0; r < rows; r++) {
            double mean = 0, ms = 0;
            for (int i = 0; i < c; i++) {
                mean += x[r * c + i];
                ms += (double) x[r * c + i] * x[r * c + i];
            }
            mean /= c;
            double var = 0;
            for (int i = 0; i < c; i++) {
                var += (x[r * c + i] - mean) * (x[r * c + i] - mean);
            }
            var /= c;
            ms /= c;
            for (int i = 0; i < c; i++) {
                ln[r * c + i] = (x[r * c + i] - mean) / Math.sqrt(var + 1e-6);
                rms[r * c + i] = x[r * c + i] / Math.sqrt(ms + 1e-6) * scale[i];
            }
        }
        assertClose(ln, CPU.download(CPU.layerNorm(CPU.upload(x, rows, c), 1e-6f)), 1e-4);
        float[] bias = randn(c);
        double[] affine = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            affine[i] = ln[i] * scale[i % c] + bias[i % c];
        }
        assertClose(
                affine,
                CPU.download(CPU.layerNorm(CPU.upload(x, rows, c), CPU.upload(scale, c), CPU.upload(bias, c), 1e-6f)),
                1e-4);
        assertClose(rms, CPU.download(CPU.rmsNorm(CPU.upload(x, rows, c), CPU.upload(scale, c), 1e-6f)), 1e-5);
    }

    @ParameterizedTest
    @CsvSource({"1", "7", "33", "1000", "70001"})
    void activationsAndAddMatchScalar(int n) {
        float[] x = randn(n), y = randn(n);
        for (int i = 0; i < n; i++) {
            x[i] *= 4;
        }
        double[] gelu = new double[n], silu = new double[n], sum = new double[n], quick = new double[n];
        double[] product = new double[n];
        for (int i = 0; i < n; i++) {
            double v = x[i];
            gelu[i] = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
            silu[i] = v / (1 + Math.exp(-v));
            sum[i] = v + y[i];
            quick[i] = v / (1 + Math.exp(-1.702 * v));
            product[i] = v * y[i];
        }
        assertClose(quick, CPU.download(CPU.quickGelu(CPU.upload(x, n))), 1e-6);
        assertClose(product, CPU.download(CPU.mul(CPU.upload(x, n), CPU.upload(y, n))), 1e-6);
        assertClose(gelu, CPU.download(CPU.gelu(CPU.upload(x, n))), 1e-6);
        assertClose(silu, CPU.download(CPU.silu(CPU.upload(x, n))), 1e-6);
        assertClose(sum, CPU.download(CPU.add(CPU.upload(x, n), CPU.upload(y, n))), 1e-7);
    }

    @ParameterizedTest
    @CsvSource({"1,1,1", "2,3,5", "3,7,33"})
    void modulateAndGatedAddMatchScalar(int b, int l, int c) {
        float[] x = randn(b * l * c), y = randn(b * l * c), shift = randn(b * c), scale = randn(b * c);
        double[] mod = new double[x.length], gated = new double[x.length];
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < l; j++) {
                for (int q = 0; q < c; q++) {
                    int at = (i * l + j) * c + q;
                    mod[at] = (1.0 + scale[i * c + q]) * x[at] + shift[i * c + q];
                    gated[at] = x[at] + (double) scale[i * c + q] * y[at];
                }
            }
        }
        Tensor xt = CPU.upload(x, b, l, c);
        assertClose(mod, CPU.download(CPU.modulate(xt, CPU.upload(shift, b, c), CPU.upload(scale, b, c))), 1e-6);
        assertClose(gated, CPU.download(CPU.gatedAdd(xt, CPU.upload(scale, b, c), CPU.upload(y, b, l, c))), 1e-6);
    }

    @Test
    void slicingAndConcatenation() {
        float[] a = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        Tensor t = CPU.upload(a, 2, 2, 3);
        assertArrayEquals(new float[] {2, 3, 5, 6, 8, 9, 11, 12}, CPU.download(CPU.columns(t, 1, 2)));
        assertArrayEquals(new float[] {4, 5, 6, 10, 11, 12}, CPU.download(CPU.sliceRows(t, 1, 1)));
        Tensor u = CPU.upload(new float[] {-1, -1, -1, -2, -2, -2}, 2, 1, 3);
        assertArrayEquals(
                new float[] {-1, -1, -1, 1, 2, 3, 4, 5, 6, -2, -2, -2, 7, 8, 9, 10, 11, 12},
                CPU.download(CPU.concatRows(u, t)));
        Tensor w = CPU.upload(new float[] {-1, -2, -3, -4}, 2, 2, 1);
        assertArrayEquals(
                new float[] {1, 2, 3, -1, 4, 5, 6, -2, 7, 8, 9, -3, 10, 11, 12, -4},
                CPU.download(CPU.concatColumns(t, w)));
        assertArrayEquals(new int[] {4, 3}, CPU.reshape(t, 4, 3).shape());
        assertThrows(IllegalArgumentException.class, () -> CPU.columns(t, 2, 2));
        assertThrows(IllegalArgumentException.class, () -> CPU.sliceRows(t, 1, 2));
    }

    @ParameterizedTest
    @CsvSource({"1,1,1,2", "2,5,3,6", "1,9,2,16"})
    void ropeMatchesScalar(int b, int l, int h, int d) {
        float[] x = randn(b * l * h * d), pe = randn(b * l * d / 2 * 4);
        double[] expected = new double[x.length];
        for (int row = 0; row < b * l; row++) {
            for (int hi = 0; hi < h; hi++) {
                for (int i = 0; i < d / 2; i++) {
                    int xo = (row * h + hi) * d + 2 * i, po = (row * d / 2 + i) * 4;
                    expected[xo] = (double) pe[po] * x[xo] + (double) pe[po + 1] * x[xo + 1];
                    expected[xo + 1] = (double) pe[po + 2] * x[xo] + (double) pe[po + 3] * x[xo + 1];
                }
            }
        }
        Tensor out = CPU.rope(CPU.upload(x, b, l, h, d), CPU.upload(pe, b, l, d / 2, 2, 2));
        assertClose(expected, CPU.download(out), 1e-6);
    }

    @ParameterizedTest
    @CsvSource({"1,1,1,1", "2,5,3,7", "1,31,4,16", "2,70,2,24"})
    void attentionMatchesScalar(int b, int l, int h, int d) {
        int c = h * d;
        float[] q = randn(b * l * c), k = randn(b * l * c), v = randn(b * l * c);
        double[] expected = new double[q.length];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                for (int i = 0; i < l; i++) {
                    double[] p = new double[l];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int j = 0; j < l; j++) {
                        double s = 0;
                        for (int e = 0; e < d; e++) {
                            s += (double) q[(bi * l + i) * c + hi * d + e] * k[(bi * l + j) * c + hi * d + e];
                        }
                        p[j] = s / Math.sqrt(d);
                        max = Math.max(max, p[j]);
                    }
                    for (int j = 0; j < l; j++) {
                        p[j] = Math.exp(p[j] - max);
                        sum += p[j];
                    }
                    for (int e = 0; e < d; e++) {
                        double acc = 0;
                        for (int j = 0; j < l; j++) {
                            acc += p[j] / sum * v[(bi * l + j) * c + hi * d + e];
                        }
                        expected[(bi * l + i) * c + hi * d + e] = acc;
                    }
                }
            }
        }
        Tensor out = CPU.attention(CPU.upload(q, b, l, c), CPU.upload(k, b, l, c), CPU.upload(v, b, l, c), h);
        assertClose(expected, CPU.download(out), 1e-5);
    }

    /** Query rows run in bands on the threads: one thread and three give the same bits, masked and biased or not. */
    @Test
    void attentionGivesTheSameBitsForOneAndThreeThreads() {
        int b = 2, l = 150, h = 3, d = 20, c = h * d;
        float[] q = randn(b * l * c), k = randn(b * l * c), v = randn(b * l * c), bias = randn(h * l * l);
        try (CpuBackend one = new CpuBackend(1)) {
            for (boolean causal : new boolean[] {false, true}) {
                float[][] outs = new float[2][];
                CpuBackend[] backends = {one, CPU};
                for (int i = 0; i < 2; i++) {
                    CpuBackend be = backends[i];
                    outs[i] = be.download(be.attention(
                            be.upload(q, b, l, c),
                            be.upload(k, b, l, c),
                            be.upload(v, b, l, c),
                            h,
                            0.3f,
                            causal ? be.upload(bias, h, l, l) : null,
                            causal));
                }
                assertArrayEquals(outs[0], outs[1], "causal " + causal);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"1,1,1,1,false", "2,5,3,7,true", "1,33,4,12,true", "2,17,2,24,false", "1,150,2,20,true"})
    void attentionWithScaleBiasAndCausalMaskMatchesScalar(int b, int l, int h, int d, boolean causal) {
        int c = h * d;
        float scale = 0.37f;
        float[] q = randn(b * l * c), k = randn(b * l * c), v = randn(b * l * c), bias = randn(h * l * l);
        double[] expected = new double[q.length];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                for (int i = 0; i < l; i++) {
                    int keys = causal ? i + 1 : l;
                    double[] p = new double[keys];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int j = 0; j < keys; j++) {
                        double s = 0;
                        for (int e = 0; e < d; e++) {
                            s += (double) q[(bi * l + i) * c + hi * d + e] * k[(bi * l + j) * c + hi * d + e];
                        }
                        p[j] = s * scale + bias[(hi * l + i) * l + j];
                        max = Math.max(max, p[j]);
                    }
                    for (int j = 0; j < keys; j++) {
                        p[j] = Math.exp(p[j] - max);
                        sum += p[j];
                    }
                    for (int e = 0; e < d; e++) {
                        double acc = 0;
                        for (int j = 0; j < keys; j++) {
                            acc += p[j] / sum * v[(bi * l + j) * c + hi * d + e];
                        }
                        expected[(bi * l + i) * c + hi * d + e] = acc;
                    }
                }
            }
        }
        Tensor out = CPU.attention(
                CPU.upload(q, b, l, c),
                CPU.upload(k, b, l, c),
                CPU.upload(v, b, l, c),
                h,
                scale,
                CPU.upload(bias, h, l, l),
                causal);
        assertClose(expected, CPU.download(out), 1e-5);
    }

    @Test
    void embeddingGathersRowsAndRejectsIdsOutsideTheVocabulary() {
        Tensor table = CPU.upload(new float[] {0, 1, 10, 11, 20, 21}, 3, 2);
        assertArrayEquals(new float[] {20, 21, 0, 1, 20, 21}, CPU.download(CPU.embedding(table, new int[] {2, 0, 2})));
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> CPU.embedding(table, new int[] {1, 3}));
        assertTrue(e.getMessage().contains("token id 3 at position 1 is outside the vocabulary of 3"), e.getMessage());
    }

    @Test
    void rejectsForeignTensors() {
        Tensor foreign = () -> new int[] {1};
        assertThrows(IllegalArgumentException.class, () -> CPU.silu(foreign));
    }
}
