package ai.fluxbatch.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.cpu.CpuBackend;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The CPU ternary matmul against the dequantized float matmul computed in double here, with the weights packed by a
 * small packer of the Hugging Face BitNet layout written for this test.
 */
class TernaryLinearTest {
    private static final CpuBackend ONE = new CpuBackend(1);
    private static final CpuBackend TWO = new CpuBackend(2);
    private static final CpuBackend THREE = new CpuBackend(3);
    private final Random random = new Random(11);

    @AfterAll
    static void close() {
        ONE.close();
        TWO.close();
        THREE.close();
    }

    private byte[] randomCodes(int out, int in) {
        byte[] codes = new byte[out * in];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (random.nextInt(3) - 1);
        }
        return codes;
    }

    private float[] randn(int n) {
        return TestData.randn(random, n);
    }

    private static void assertClose(double[] expected, float[] actual, double tol) {
        TestData.assertClose(expected, actual, tol);
    }

    private static double[] reference(float[] x, byte[] codes, float[] scale, float[] bias, int m, int out, int in) {
        double[] y = new double[m * out];
        for (int i = 0; i < m; i++) {
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int k = 0; k < in; k++) {
                    s += (double) x[i * in + k] * codes[o * in + k];
                }
                y[i * out + o] = s * scale[o] + (bias == null ? 0 : bias[o]);
            }
        }
        return y;
    }

    @ParameterizedTest
    @CsvSource({
        "1,1,1",
        "1,5,7",
        "1,16,16",
        "1,17,33",
        "1,64,64",
        "1,100,3072",
        "2,3,5",
        "3,17,33",
        "3,64,130",
        "4,31,65",
        "5,16,16",
        "8,33,48",
        "9,130,129",
        "17,20,100",
        "17,257,300",
        "64,64,64",
        "300,37,70",
        "300,70,257",
        "261,129,17"
    })
    void matchesDequantizedMatmul(int m, int out, int in) {
        byte[] codes = randomCodes(out, in);
        float[] scale = randn(out), bias = randn(out), x = randn(m * in);
        for (int i = 0; i < out; i++) {
            scale[i] = 0.01f + Math.abs(scale[i]) * (i % 3 == 0 ? -1 : 1);
        }
        Tensor w = THREE.uploadTernary(TestData.hfPack(codes, out, in), out, in, scale);
        assertArrayEquals(new int[] {out, in}, w.shape());

        Tensor y = THREE.ternaryLinear(THREE.upload(x, m, in), w, THREE.upload(bias, out));
        assertArrayEquals(new int[] {m, out}, y.shape());
        assertClose(reference(x, codes, scale, bias, m, out, in), THREE.download(y), 1e-5 * Math.sqrt(in));

        Tensor noBias = THREE.ternaryLinear(THREE.upload(x, m, in), w, null);
        assertClose(reference(x, codes, scale, null, m, out, in), THREE.download(noBias), 1e-5 * Math.sqrt(in));
    }

    @Test
    void keepsLeadingBatchDimensions() {
        int out = 19, in = 45;
        byte[] codes = randomCodes(out, in);
        float[] scale = randn(out), bias = randn(out), x = randn(2 * 5 * in);
        Tensor w = THREE.uploadTernary(TestData.hfPack(codes, out, in), out, in, scale);
        Tensor y = THREE.ternaryLinear(THREE.upload(x, 2, 5, in), w, THREE.upload(bias, out));
        assertArrayEquals(new int[] {2, 5, out}, y.shape());
        assertClose(reference(x, codes, scale, bias, 10, out, in), THREE.download(y), 1e-4);
        Tensor z = THREE.ternaryLinear(THREE.upload(Arrays.copyOf(x, 3 * in), 3, 1, in), w, null);
        assertArrayEquals(new int[] {3, 1, out}, z.shape());
        assertClose(reference(x, codes, scale, null, 3, out, in), THREE.download(z), 1e-4);
    }

    @Test
    void sameBitsForAnyThreadCountAndBatchSize() {
        for (int[] s : new int[][] {{1, 70, 257}, {3, 70, 257}, {17, 70, 257}, {300, 70, 257}, {300, 200, 1000}}) {
            int m = s[0], out = s[1], in = s[2];
            byte[] packed = TestData.hfPack(randomCodes(out, in), out, in);
            float[] scale = randn(out), bias = randn(out), x = randn(m * in);
            float[] one = ONE.download(ONE.ternaryLinear(
                    ONE.upload(x, m, in), ONE.uploadTernary(packed, out, in, scale), ONE.upload(bias, out)));
            float[] two = TWO.download(TWO.ternaryLinear(
                    TWO.upload(x, m, in), TWO.uploadTernary(packed, out, in, scale), TWO.upload(bias, out)));
            assertArrayEquals(one, two, "1 vs 2 threads at " + Arrays.toString(s));
            // every row gives the bits it gives alone, whichever kernel path its batch size takes
            Tensor w = TWO.uploadTernary(packed, out, in, scale);
            for (int row : new int[] {0, m / 2, m - 1}) {
                float[] alone = TWO.download(TWO.ternaryLinear(
                        TWO.upload(Arrays.copyOfRange(x, row * in, (row + 1) * in), 1, in), w, TWO.upload(bias, out)));
                assertArrayEquals(
                        alone,
                        Arrays.copyOfRange(one, row * out, (row + 1) * out),
                        "row " + row + " of " + Arrays.toString(s));
            }
        }
    }

    /**
     * The documented arithmetic: each output sums {@code +x} / {@code -x} in input order in float, then
     * {@code * scale + bias}; the same bits before and after JIT compilation (the first call runs cold).
     */
    @Test
    void sumsInInputOrderLikeAScalarLoopColdAndCompiled() {
        int out = 50, in = 300;
        byte[] codes = randomCodes(out, in);
        float[] scale = randn(out), bias = randn(out);
        Tensor w = TWO.uploadTernary(TestData.hfPack(codes, out, in), out, in, scale);
        for (int m : new int[] {1, 5, 40}) {
            float[] x = randn(m * in);
            float[] expected = new float[m * out];
            for (int i = 0; i < m; i++) {
                for (int o = 0; o < out; o++) {
                    float s = 0f;
                    for (int k = 0; k < in; k++) {
                        int c = codes[o * in + k];
                        s = c == 1 ? s + x[i * in + k] : c == -1 ? s - x[i * in + k] : s;
                    }
                    expected[i * out + o] = s * scale[o] + bias[o];
                }
            }
            Tensor xt = TWO.upload(x, m, in), bt = TWO.upload(bias, out);
            for (int rep = 0; rep < 300; rep++) {
                float[] y = TWO.download(TWO.ternaryLinear(xt, w, bt));
                if (rep == 0 || rep == 299) {
                    assertArrayEquals(expected, y, "M = " + m + ", call " + rep);
                }
            }
        }
    }

    @Test
    void rejectsBadPacking() {
        int out = 6, in = 5; // ceil(6/4) = 2 packed rows
        byte[] packed = TestData.hfPack(randomCodes(out, in), out, in);
        float[] scale = randn(out);

        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> ONE.uploadTernary(Arrays.copyOf(packed, packed.length - 1), out, in, scale));
        assertTrue(
                e.getMessage().contains("9 bytes, expected") && e.getMessage().contains("= 10"), e.getMessage());

        byte[] bad = packed.clone();
        bad[1 * in + 3] |= (byte) (3 << 4); // field i = 2 of packed row 1: row 2 * 2 + 1 = 5, column 3
        e = assertThrows(IllegalArgumentException.class, () -> ONE.uploadTernary(bad, out, in, scale));
        assertTrue(e.getMessage().contains("row 5, column 3"), e.getMessage());
        assertTrue(e.getMessage().contains("invalid"), e.getMessage());

        byte[] paddingOnly = packed.clone();
        paddingOnly[1 * in + 2] |= (byte) (3 << 6); // row 3 * 2 + 1 = 7 >= 6: padding, any bits accepted
        assertArrayEquals(
                new int[] {out, in},
                ONE.uploadTernary(paddingOnly, out, in, scale).shape());

        e = assertThrows(
                IllegalArgumentException.class,
                () -> ONE.uploadTernary(packed, out, in, Arrays.copyOf(scale, out - 1)));
        assertTrue(e.getMessage().contains("scale has 5 values, expected 6"), e.getMessage());
        float[] nan = scale.clone();
        nan[4] = Float.NaN;
        e = assertThrows(IllegalArgumentException.class, () -> ONE.uploadTernary(packed, out, in, nan));
        assertTrue(e.getMessage().contains("scale[4] is NaN"), e.getMessage());
        float[] inf = scale.clone();
        inf[0] = Float.NEGATIVE_INFINITY;
        e = assertThrows(IllegalArgumentException.class, () -> ONE.uploadTernary(packed, out, in, inf));
        assertTrue(e.getMessage().contains("scale[0] is -Infinity"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ONE.uploadTernary(new byte[0], 0, 5, new float[0]));
    }

    @Test
    void invalidCodeInFirstQuarterOfASmallWeightIsFound() {
        int out = 1, in = 3; // one packed row; fields 1..3 are padding
        byte[] packed = {0, (byte) 0b11111111, 2};
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> ONE.uploadTernary(packed, out, in, new float[] {1}));
        assertTrue(e.getMessage().contains("row 0, column 1"), e.getMessage());
        packed[1] = (byte) 0b11111110; // code +1 for row 0, junk in the padding
        float[] y = ONE.download(ONE.ternaryLinear(
                ONE.upload(new float[] {2, 3, 5}, 1, 3), ONE.uploadTernary(packed, out, in, new float[] {0.5f}), null));
        assertArrayEquals(new float[] {(-2 + 3 + 5) * 0.5f}, y);
    }

    @Test
    void residentBytesArePackedSize() {
        Tensor w = ONE.uploadTernary(TestData.hfPack(randomCodes(3072, 3072), 3072, 3072), 3072, 3072, randn(3072));
        assertEquals(3072L * 3072 / 4 + 4L * 3072, w.residentBytes());
        assertEquals(3072L * 3072, w.numel());
        // odd sizes pad to 64 rows and 16 inputs: 2 bits a padded weight plus a float per padded row
        Tensor odd = ONE.uploadTernary(TestData.hfPack(randomCodes(17, 33), 17, 33), 17, 33, randn(17));
        assertEquals(64L * 48 / 4 + 4L * 64, odd.residentBytes());
        assertEquals(4L * 6, ONE.upload(new float[6], 2, 3).residentBytes());
    }

    @Test
    void ternaryWeightIsOnlyForTernaryLinear() {
        Tensor w = ONE.uploadTernary(TestData.hfPack(randomCodes(4, 8), 4, 8), 4, 8, randn(4));
        Tensor x = ONE.upload(randn(16), 2, 8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ONE.linear(x, w, null));
        assertTrue(e.getMessage().contains("can only be used by ternaryLinear"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ONE.add(w, w));
        assertThrows(IllegalArgumentException.class, () -> ONE.download(w));
        assertThrows(IllegalArgumentException.class, () -> ONE.reshape(w, 32));
        assertThrows(IllegalArgumentException.class, () -> ONE.ternaryLinear(w, w, null));
        e = assertThrows(
                IllegalArgumentException.class, () -> ONE.ternaryLinear(x, ONE.upload(new float[32], 4, 8), null));
        assertTrue(e.getMessage().contains("weight must be a ternary tensor"), e.getMessage());
        e = assertThrows(
                IllegalArgumentException.class, () -> ONE.ternaryLinear(ONE.upload(new float[14], 2, 7), w, null));
        assertTrue(e.getMessage().contains("input features is 7, expected 8"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ONE.ternaryLinear(x, w, ONE.upload(new float[3], 3)));
        assertTrue(e.getMessage().contains("bias length is 3, expected 4"), e.getMessage());
    }
}
