package ai.fluxbatch.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;

/** Random inputs and the closeness check the kernel tests share. */
public final class TestData {
    private TestData() {}

    public static float[] randn(Random random, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) random.nextGaussian();
        }
        return a;
    }

    /** Standard normal values filling {@code shape}. */
    public static float[] randn(Random random, int... shape) {
        return randn(random, Math.toIntExact(Shapes.numel(shape)));
    }

    /** {@code ||got - want|| / ||want||}, accumulated in double. */
    public static double relativeL2(float[] want, float[] got) {
        double num = 0, den = 0;
        for (int i = 0; i < want.length; i++) {
            double d = (double) want[i] - got[i];
            num += d * d;
            den += (double) want[i] * want[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-30));
    }

    /** Largest error relative to {@code 1 + |expected|} at most {@code tol}. */
    static void assertClose(double[] expected, float[] actual, double tol) {
        assertEquals(expected.length, actual.length, "length");
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            worst = Math.max(worst, Math.abs(expected[i] - actual[i]) / (1 + Math.abs(expected[i])));
        }
        assertTrue(worst <= tol, "max relative error " + worst + " > " + tol);
    }

    /** Codes [out, in] in {-1, 0, 1} to (ceil(out/4), in) bytes: bits 2i..2i+1 of [r][k] = code + 1 of row i*rows+r. */
    public static byte[] hfPack(byte[] codes, int out, int in) {
        int rows = (out + 3) / 4;
        byte[] packed = new byte[rows * in];
        for (int o = 0; o < 4 * rows; o++) {
            int r = o % rows, shift = 2 * (o / rows);
            for (int k = 0; k < in; k++) {
                int field = o < out ? codes[o * in + k] + 1 : 1; // padding rows: code 0
                packed[r * in + k] |= (byte) (field << shift);
            }
        }
        return packed;
    }
}
