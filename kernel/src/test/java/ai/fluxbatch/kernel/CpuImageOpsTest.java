package ai.fluxbatch.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The image kernels (conv2d, groupNorm, upsampling, transposition) against plain scalar Java. */
class CpuImageOpsTest {
    private static final CpuBackend CPU = new CpuBackend(3);
    private final Random random = new Random(11);

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

    /** Direct convolution in double, exactly as PyTorch's Conv2d with explicit zero padding defines it. */
    private static double[] convScalar(
            float[] x,
            float[] w,
            float[] bias,
            int b,
            int c,
            int h,
            int wd,
            int o,
            int kh,
            int kw,
            int stride,
            int pt,
            int pb,
            int pl,
            int pr) {
        int ho = (h + pt + pb - kh) / stride + 1, wo = (wd + pl + pr - kw) / stride + 1;
        double[] out = new double[b * o * ho * wo];
        for (int bi = 0; bi < b; bi++) {
            for (int oc = 0; oc < o; oc++) {
                for (int oy = 0; oy < ho; oy++) {
                    for (int ox = 0; ox < wo; ox++) {
                        double s = bias == null ? 0 : bias[oc];
                        for (int ci = 0; ci < c; ci++) {
                            for (int dy = 0; dy < kh; dy++) {
                                for (int dx = 0; dx < kw; dx++) {
                                    int iy = oy * stride - pt + dy, ix = ox * stride - pl + dx;
                                    if (iy >= 0 && iy < h && ix >= 0 && ix < wd) {
                                        s += (double) x[((bi * c + ci) * h + iy) * wd + ix]
                                                * w[((oc * c + ci) * kh + dy) * kw + dx];
                                    }
                                }
                            }
                        }
                        out[((bi * o + oc) * ho + oy) * wo + ox] = s;
                    }
                }
            }
        }
        return out;
    }

    @ParameterizedTest
    @CsvSource({
        // b, c, h, w, o, kh, kw, stride, padTop, padBottom, padLeft, padRight
        "2, 5, 7, 9, 11, 1, 1, 1, 0, 0, 0, 0", // 1 x 1, odd sizes (the direct kernel)
        "1, 6, 33, 17, 7, 1, 1, 1, 0, 0, 0, 0", // 1 x 1 over more than one chunk of positions
        "3, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0",
        "2, 3, 8, 12, 5, 3, 3, 1, 1, 1, 1, 1", // the VAE's 3 x 3 'same' convolution
        "1, 4, 9, 7, 6, 3, 3, 2, 0, 1, 0, 1", // the VAE's downsample: pad right/bottom by 1, stride 2
        "2, 3, 10, 8, 4, 3, 3, 2, 0, 1, 0, 1",
        "1, 2, 5, 3, 3, 2, 3, 1, 2, 0, 1, 3", // asymmetric kernel and padding
        "1, 3, 6, 5, 2, 1, 1, 2, 0, 0, 0, 0", // 1 x 1 with stride 2 (through im2col)
        "1, 2, 3, 3, 2, 1, 1, 1, 1, 0, 0, 1", // 1 x 1 with padding
        "2, 7, 11, 13, 9, 5, 5, 3, 2, 1, 2, 0",
        "1, 512, 32, 31, 5, 3, 3, 1, 1, 1, 1, 1", // K = 4608: one product column tile of positions a band, 16 bands
        "1, 512, 2, 1, 3, 1, 3, 1, 0, 0, 0, 40" // a band starting inside the last input row's right padding
    })
    void conv2dMatchesScalar(
            int b, int c, int h, int w, int o, int kh, int kw, int stride, int pt, int pb, int pl, int pr) {
        float[] x = randn(b * c * h * w), wt = randn(o * c * kh * kw), bias = randn(o);
        int ho = (h + pt + pb - kh) / stride + 1, wo = (w + pl + pr - kw) / stride + 1;
        double tol = 1e-5 * Math.sqrt(c * kh * kw);
        Tensor out = CPU.conv2d(
                CPU.upload(x, b, c, h, w), CPU.upload(wt, o, c, kh, kw), CPU.upload(bias, o), stride, pt, pb, pl, pr);
        assertArrayEquals(new int[] {b, o, ho, wo}, out.shape());
        assertClose(convScalar(x, wt, bias, b, c, h, w, o, kh, kw, stride, pt, pb, pl, pr), CPU.download(out), tol);
        Tensor noBias =
                CPU.conv2d(CPU.upload(x, b, c, h, w), CPU.upload(wt, o, c, kh, kw), null, stride, pt, pb, pl, pr);
        assertClose(convScalar(x, wt, null, b, c, h, w, o, kh, kw, stride, pt, pb, pl, pr), CPU.download(noBias), tol);
    }

    @Test
    void conv2dSymmetricPaddingShorthand() {
        float[] x = randn(2 * 3 * 6 * 7), wt = randn(4 * 3 * 9), bias = randn(4);
        Tensor out = CPU.conv2d(CPU.upload(x, 2, 3, 6, 7), CPU.upload(wt, 4, 3, 3, 3), CPU.upload(bias, 4), 1, 1);
        assertArrayEquals(new int[] {2, 4, 6, 7}, out.shape());
        assertClose(convScalar(x, wt, bias, 2, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, 1), CPU.download(out), 1e-4);
    }

    @Test
    void conv2dRejectsBadShapes() {
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> CPU.conv2d(
                        CPU.upload(new float[2 * 3 * 4 * 4], 2, 3, 4, 4),
                        CPU.upload(new float[5 * 2 * 9], 5, 2, 3, 3),
                        null,
                        1,
                        1));
        assertTrue(e.getMessage().contains("input channels of weight is 2, expected 3"), e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> CPU.conv2d(
                        CPU.upload(new float[2 * 2], 1, 1, 2, 2), CPU.upload(new float[9], 1, 1, 3, 3), null, 1, 0));
        assertTrue(e.getMessage().contains("does not fit"), e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class,
                () -> CPU.conv2d(
                        CPU.upload(new float[16], 1, 1, 4, 4),
                        CPU.upload(new float[9], 1, 1, 3, 3),
                        CPU.upload(new float[2], 2),
                        1,
                        1));
        assertTrue(e.getMessage().contains("bias length is 2, expected 1"), e.getMessage());
    }

    @ParameterizedTest
    @CsvSource({
        "2, 6, 5, 3, 3",
        "1, 32, 7, 9, 32",
        "3, 8, 1, 1, 2",
        "1, 64, 33, 35, 32",
        "2, 5, 3, 1, 1",
        "1, 4, 300, 301, 2"
    })
    void groupNormMatchesScalar(int b, int c, int h, int w, int groups) {
        int spatial = h * w;
        float[] x = randn(b * c * spatial), weight = randn(c), bias = randn(c);
        for (int i = 0; i < x.length; i++) {
            x[i] = x[i] * 3 + 1.5f;
        }
        double[] expected = new double[x.length];
        int per = c / groups;
        for (int bi = 0; bi < b; bi++) {
            for (int g = 0; g < groups; g++) {
                int off = (bi * c + g * per) * spatial, len = per * spatial;
                double mean = 0, var = 0;
                for (int i = 0; i < len; i++) {
                    mean += x[off + i];
                }
                mean /= len;
                for (int i = 0; i < len; i++) {
                    var += (x[off + i] - mean) * (x[off + i] - mean);
                }
                var /= len;
                for (int i = 0; i < len; i++) {
                    int ch = g * per + i / spatial;
                    expected[off + i] = (x[off + i] - mean) / Math.sqrt(var + 1e-6) * weight[ch] + bias[ch];
                }
            }
        }
        Tensor out =
                CPU.groupNorm(CPU.upload(x, b, c, h, w), groups, CPU.upload(weight, c), CPU.upload(bias, c), 1e-6f);
        assertArrayEquals(new int[] {b, c, h, w}, out.shape());
        assertClose(expected, CPU.download(out), 1e-5);
    }

    @Test
    void groupNormRejectsIndivisibleChannels() {
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> CPU.groupNorm(
                        CPU.upload(new float[6], 1, 6, 1, 1),
                        4,
                        CPU.upload(new float[6], 6),
                        CPU.upload(new float[6], 6),
                        1e-6f));
        assertTrue(e.getMessage().contains("6 channels do not split into 4 groups"), e.getMessage());
    }

    @ParameterizedTest
    @CsvSource({"1, 1, 1, 1", "2, 3, 5, 7", "1, 4, 16, 33"})
    void upsampleRepeatsEachValueTwoByTwo(int b, int c, int h, int w) {
        float[] x = randn(b * c * h * w);
        Tensor out = CPU.upsampleNearest2x(CPU.upload(x, b, c, h, w));
        assertArrayEquals(new int[] {b, c, 2 * h, 2 * w}, out.shape());
        float[] got = CPU.download(out);
        for (int p = 0; p < b * c; p++) {
            for (int y = 0; y < 2 * h; y++) {
                for (int xx = 0; xx < 2 * w; xx++) {
                    assertEquals(x[(p * h + y / 2) * w + xx / 2], got[(p * 2 * h + y) * 2 * w + xx]);
                }
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"1, 1, 1", "3, 37, 45", "2, 64, 33", "1, 24, 64", "5, 1, 7"})
    void transposeLast2SwapsAxes(int batch, int m, int n) {
        float[] x = randn(batch * m * n);
        Tensor out = CPU.transposeLast2(CPU.upload(x, batch, m, n));
        assertArrayEquals(new int[] {batch, n, m}, out.shape());
        float[] got = CPU.download(out);
        for (int bi = 0; bi < batch; bi++) {
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    assertEquals(x[(bi * m + i) * n + j], got[(bi * n + j) * m + i]);
                }
            }
        }
        assertArrayEquals(x, CPU.download(CPU.transposeLast2(out)));
        Tensor rank4 = CPU.transposeLast2(CPU.upload(x, 1, batch, m, n));
        assertArrayEquals(new int[] {1, batch, n, m}, rank4.shape());
        assertArrayEquals(got, CPU.download(rank4));
    }
}
