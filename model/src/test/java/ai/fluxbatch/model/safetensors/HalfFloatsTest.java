package ai.fluxbatch.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class HalfFloatsTest {
    private static final int F16_INF = 0x7C00;
    private static final int BF16_INF = 0x7F80;

    /** Value of every non-negative finite pattern, indexed by bits, plus the value one step past the largest
     * (2^16, 2^128): IEEE rounding treats it as the next value, and rounding to it means infinity. */
    private static final double[] F16_VALUES = values(F16_INF, 0x1p16, b -> HalfFloats.f16ToFloat((short) b));

    private static final double[] BF16_VALUES = values(BF16_INF, 0x1p128, b -> HalfFloats.bf16ToFloat((short) b));

    private interface Decode {
        float apply(int bits);
    }

    private static double[] values(int inf, double overflow, Decode decode) {
        double[] v = new double[inf + 1];
        for (int b = 0; b < inf; b++) {
            v[b] = decode.apply(b);
        }
        v[inf] = overflow;
        return v;
    }

    /** Nearest representable value by plain search, ties to the even pattern. */
    private static int reference(float x, double[] values, int inf) {
        int sign = Float.floatToRawIntBits(x) < 0 ? 0x8000 : 0;
        double a = Math.abs((double) x);
        if (a >= values[inf]) {
            return sign | inf;
        }
        int lo = 0;
        int hi = inf; // invariant: values[lo] <= a < values[hi]
        while (hi - lo > 1) {
            int mid = (lo + hi) >>> 1;
            if (values[mid] <= a) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        double dLo = a - values[lo];
        double dHi = values[hi] - a;
        int pick = dLo < dHi ? lo : dHi < dLo ? hi : (lo % 2 == 0 ? lo : hi);
        return sign | pick;
    }

    private static boolean isF16NaN(int h) {
        return (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0;
    }

    private static boolean isBf16NaN(int h) {
        return (h & 0x7F80) == 0x7F80 && (h & 0x7F) != 0;
    }

    @Test
    void everyF16PatternRoundTrips() {
        for (int h = 0; h < 0x10000; h++) {
            float f = HalfFloats.f16ToFloat((short) h);
            int back = HalfFloats.floatToF16(f) & 0xFFFF;
            if (isF16NaN(h)) {
                assertTrue(Float.isNaN(f), () -> "f16 NaN pattern decoded to a number");
                assertTrue(isF16NaN(back), "f16 NaN pattern did not stay NaN: " + Integer.toHexString(back));
            } else {
                assertEquals(h, back, "f16 pattern 0x" + Integer.toHexString(h) + " = " + f);
            }
        }
    }

    @Test
    void everyBf16PatternRoundTrips() {
        for (int h = 0; h < 0x10000; h++) {
            float f = HalfFloats.bf16ToFloat((short) h);
            int back = HalfFloats.floatToBf16(f) & 0xFFFF;
            if (isBf16NaN(h)) {
                assertTrue(Float.isNaN(f));
                assertTrue(isBf16NaN(back), "bf16 NaN pattern did not stay NaN: " + Integer.toHexString(back));
            } else {
                assertEquals(h, back, "bf16 pattern 0x" + Integer.toHexString(h) + " = " + f);
            }
        }
    }

    @Test
    void everyF16PatternDecodesToItsDefinition() {
        for (int h = 0; h < 0x10000; h++) {
            int exp = (h >>> 10) & 0x1F;
            int mant = h & 0x3FF;
            double sign = (h & 0x8000) != 0 ? -1 : 1;
            float f = HalfFloats.f16ToFloat((short) h);
            if (exp == 0x1F) {
                assertEquals(mant == 0, Float.isInfinite(f), "pattern 0x" + Integer.toHexString(h));
                assertEquals(mant != 0, Float.isNaN(f), "pattern 0x" + Integer.toHexString(h));
                continue;
            }
            double expected = sign * (exp == 0 ? Math.scalb((double) mant, -24) : Math.scalb(1024.0 + mant, exp - 25));
            assertEquals(
                    Float.floatToIntBits((float) expected),
                    Float.floatToIntBits(f),
                    "pattern 0x" + Integer.toHexString(h));
        }
    }

    @Test
    void knownValues() {
        assertEquals(1.0f, HalfFloats.f16ToFloat((short) 0x3C00));
        assertEquals(65504.0f, HalfFloats.f16ToFloat((short) 0x7BFF));
        assertEquals(0x1p-24f, HalfFloats.f16ToFloat((short) 0x0001));
        assertEquals(Float.NEGATIVE_INFINITY, HalfFloats.f16ToFloat((short) 0xFC00));
        assertEquals(-0.0f, HalfFloats.f16ToFloat((short) 0x8000));
        assertEquals((short) 0x7C00, HalfFloats.floatToF16(65520f));
        assertEquals((short) 0x7BFF, HalfFloats.floatToF16(65519.996f));
        assertEquals((short) 0x0000, HalfFloats.floatToF16(0x1p-25f)); // tie between 0 and 2^-24: even is 0
        assertEquals((short) 0x0002, HalfFloats.floatToF16(0x1.8p-24f)); // tie between 1 and 2 (x 2^-24)
        assertEquals((short) 0x0400, HalfFloats.floatToF16(0x1.ffcp-15f)); // largest subnormal rounds up to normal
        assertEquals(1.0f, HalfFloats.bf16ToFloat((short) 0x3F80));
        assertEquals((short) 0x3F80, HalfFloats.floatToBf16(1.00390625f)); // tie: 1 + 2^-8, even is 1
        assertEquals((short) 0x3F82, HalfFloats.floatToBf16(1.01171875f)); // tie: 1 + 3 x 2^-8, even is 1 + 2^-6
        assertEquals((short) 0x7F80, HalfFloats.floatToBf16(Float.MAX_VALUE));
        assertEquals((short) 0xFF80, HalfFloats.floatToBf16(Float.NEGATIVE_INFINITY));
    }

    @Test
    void nanPayloadsStayNaN() {
        int[] nans = {0x7F800001, 0x7FC00000, 0xFF800001, 0x7FFFFFFF, 0x7F801000};
        for (int bits : nans) {
            float nan = Float.intBitsToFloat(bits);
            assertTrue(isBf16NaN(HalfFloats.floatToBf16(nan) & 0xFFFF), Integer.toHexString(bits));
            assertTrue(isF16NaN(HalfFloats.floatToF16(nan) & 0xFFFF), Integer.toHexString(bits));
        }
    }

    @Test
    void floatToF16MatchesReference() {
        checkAgainstReference(F16_VALUES, F16_INF, true);
    }

    @Test
    void floatToBf16MatchesReference() {
        checkAgainstReference(BF16_VALUES, BF16_INF, false);
    }

    private static void checkAgainstReference(double[] values, int inf, boolean f16) {
        SplittableRandom random = new SplittableRandom(42);
        for (int i = 0; i < 2_000_000; i++) {
            check(Float.intBitsToFloat(random.nextInt()), values, inf, f16);
            // also concentrate on the range where the format has normals and subnormals
            check((float) (random.nextDouble(-2, 2) * Math.scalb(1.0, random.nextInt(-30, 20))), values, inf, f16);
        }
        // every halfway point between neighbours (and past the largest value), and one float either side
        for (int b = 0; b < inf; b++) {
            double mid = (values[b] + values[b + 1]) / 2;
            float m = (float) mid;
            assertEquals(mid, m, "halfway point is not a float");
            for (float x : new float[] {m, Math.nextUp(m), Math.nextDown(m), -m, -Math.nextUp(m)}) {
                check(x, values, inf, f16);
            }
        }
    }

    private static void check(float x, double[] values, int inf, boolean f16) {
        if (Float.isNaN(x)) {
            return;
        }
        int expected = reference(x, values, inf);
        int actual = (f16 ? HalfFloats.floatToF16(x) : HalfFloats.floatToBf16(x)) & 0xFFFF;
        if (expected != actual) {
            assertEquals(
                    Integer.toHexString(expected),
                    Integer.toHexString(actual),
                    (f16 ? "f16" : "bf16") + " of " + x + " (float bits "
                            + Integer.toHexString(Float.floatToRawIntBits(x)) + ")");
        }
    }
}
