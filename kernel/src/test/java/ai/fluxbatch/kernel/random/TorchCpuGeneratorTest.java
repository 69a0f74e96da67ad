package ai.fluxbatch.kernel.random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** The generator's stream and the paths of torch's CPU normal kernel; the golden noise itself is checked in model. */
class TorchCpuGeneratorTest {

    private static long u32(int bits) {
        return Integer.toUnsignedLong(bits);
    }

    @Test
    void defaultSeedGivesTheStandardMt19937Stream() {
        TorchCpuGenerator g = new TorchCpuGenerator(5489);
        long[] first = {3499211612L, 581869302L, 3890346734L, 3586334585L, 545404204L};
        for (long expected : first) {
            assertEquals(expected, u32(g.random()));
        }
        for (int i = first.length; i < 9999; i++) {
            g.random();
        }
        assertEquals(4123659995L, u32(g.random()), "the 10000th output that the C++ standard requires");
    }

    @Test
    void random64PutsTheFirstDrawInTheHighHalf() {
        TorchCpuGenerator g = new TorchCpuGenerator(5489);
        assertEquals(3499211612L << 32 | 581869302L, g.random64());
    }

    @Test
    void seedKeepsOnlyTheLow32BitsAndManualSeedRestarts() {
        int[] a = draws(new TorchCpuGenerator(42), 700); // past one state regeneration (624)
        assertArrayEquals(a, draws(new TorchCpuGenerator(42 + (1L << 32)), 700));
        assertArrayEquals(a, draws(new TorchCpuGenerator(42 | Long.MIN_VALUE), 700));
        TorchCpuGenerator g = new TorchCpuGenerator(7);
        g.randnFloat(5);
        g.manualSeed(42);
        assertEquals(42, g.initialSeed());
        assertArrayEquals(a, draws(g, 700));
        assertNotEquals(a[0], new TorchCpuGenerator(43).random());
    }

    @Test
    void fewerThan16ValuesAreTheDoubleBoxMullerPairs() {
        // the serial path: at::normal_distribution<double>, which caches r*sin for the next value
        TorchCpuGenerator bits = new TorchCpuGenerator(3);
        TorchCpuGenerator g = new TorchCpuGenerator(3);
        float[] out = g.randnFloat(3);
        double[] pair = boxMuller(bits);
        assertEquals((float) pair[0], out[0]);
        assertEquals((float) pair[1], out[1]);
        assertEquals((float) boxMuller(bits)[0], out[2]);
        // the cached sine survives into the next call, as on a torch generator
        assertEquals((float) boxMuller(new TorchCpuGenerator(3), 2)[1], g.randnFloat(1)[0]);
        // bf16: the same doubles, rounded double -> float -> bf16
        short[] b = new TorchCpuGenerator(3).randnBFloat16(2);
        assertEquals(Bf16.bits((float) pair[0]), b[0]);
        assertEquals(Bf16.bits((float) pair[1]), b[1]);
    }

    @Test
    void smallRandnMatchesTorchsPrintedValues() {
        // torch.manual_seed(s); torch.randn(2, 3), as torch prints it (4 decimals): the serial double path
        assertArrayEquals(
                new float[] {1.5410f, -0.2934f, -2.1788f, 0.5684f, -1.0845f, -1.3986f},
                new TorchCpuGenerator(0).randnFloat(6),
                5e-5f);
        assertArrayEquals(
                new float[] {0.3367f, 0.1288f, 0.2345f, 0.2303f, -1.1229f, -0.1863f},
                new TorchCpuGenerator(42).randnFloat(6),
                5e-5f);
    }

    @Test
    void aRaggedTailRedrawsAndRetransformsTheLast16() {
        // n = 37: blocks [0,16) and [16,32) from uniforms 0..36, then [21,37) again from 16 fresh uniforms 37..52
        TorchCpuGenerator g = new TorchCpuGenerator(11);
        float[] f = g.randnFloat(37);
        assertArrayEquals(Arrays.copyOf(new TorchCpuGenerator(11).randnFloat(32), 21), Arrays.copyOf(f, 21));
        assertArrayEquals(skip(11, 37).randnFloat(16), Arrays.copyOfRange(f, 21, 37));
        assertEquals(skip(11, 53).random(), g.random(), "37 + 16 uniforms drawn");

        TorchCpuGenerator h = new TorchCpuGenerator(11);
        short[] b = h.randnBFloat16(37);
        assertArrayEquals(Arrays.copyOf(new TorchCpuGenerator(11).randnBFloat16(32), 21), Arrays.copyOf(b, 21));
        assertArrayEquals(skip(11, 37).randnBFloat16(16), Arrays.copyOfRange(b, 21, 37));
        assertEquals(skip(11, 53).random(), h.random());
    }

    @Test
    void sixteenOrMoreValuesAreTheBlockedBoxMuller() {
        // pair (j, j + 8) of a block: r cos and r sin of the uniforms k/2^24 drawn at j and j + 8
        float[] f = new TorchCpuGenerator(5).randnFloat(16);
        int[] u = draws(new TorchCpuGenerator(5), 16);
        for (int j = 0; j < 8; j++) {
            double u1 = 1 - (u[j] & 0xFFFFFF) * 0x1p-24;
            double u2 = (u[j + 8] & 0xFFFFFF) * 0x1p-24;
            double r = Math.sqrt(-2 * Math.log(u1));
            assertEquals(r * Math.cos(2 * Math.PI * u2), f[j], 1e-6 * Math.max(1, r));
            assertEquals(r * Math.sin(2 * Math.PI * u2), f[j + 8], 1e-6 * Math.max(1, r));
        }
        // bf16 draws its uniforms with an 8-bit mask, so its values are a coarser, different set
        short[] b = new TorchCpuGenerator(5).randnBFloat16(16);
        for (int j = 0; j < 8; j++) {
            double u1 = 1 - (u[j] & 0xFF) / 256.0;
            double u2 = (u[j + 8] & 0xFF) / 256.0;
            double r = Math.sqrt(-2 * Math.log(u1));
            assertEquals(r * Math.cos(2 * Math.PI * u2), widen(b[j]), 0.04 * Math.max(1, r));
            assertEquals(r * Math.sin(2 * Math.PI * u2), widen(b[j + 8]), 0.04 * Math.max(1, r));
        }
    }

    @Test
    void emptyIsEmptyAndNegativeIsAnError() {
        assertEquals(0, new TorchCpuGenerator(1).randnFloat(0).length);
        assertThrows(IllegalArgumentException.class, () -> new TorchCpuGenerator(1).randnBFloat16(-1));
    }

    @Test
    void bf16RoundingIsToNearestEven() {
        assertEquals((short) 0x3F80, Bf16.bits(Float.intBitsToFloat(0x3F808000))); // tie, even stays
        assertEquals((short) 0x3F82, Bf16.bits(Float.intBitsToFloat(0x3F818000))); // tie, odd goes up
        assertEquals((short) 0x3F81, Bf16.bits(Float.intBitsToFloat(0x3F808001)));
        assertEquals((short) 0xBF80, Bf16.bits(Float.intBitsToFloat(0xBF807FFF)));
    }

    private static TorchCpuGenerator skip(long seed, int draws) {
        TorchCpuGenerator g = new TorchCpuGenerator(seed);
        for (int i = 0; i < draws; i++) {
            g.random();
        }
        return g;
    }

    private static float widen(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    private static int[] draws(TorchCpuGenerator g, int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = g.random();
        }
        return out;
    }

    private static double[] boxMuller(TorchCpuGenerator g) {
        return boxMuller(g, 1);
    }

    /** The k-th (1-based) pair (r cos, r sin) of at::normal_distribution<double>, written out independently. */
    private static double[] boxMuller(TorchCpuGenerator g, int k) {
        double[] pair = null;
        for (int i = 0; i < k; i++) {
            double u1 = (g.random64() & (1L << 53) - 1) * 0x1p-53; // the low 53 bits
            double u2 = (g.random64() & (1L << 53) - 1) * 0x1p-53;
            double r = StrictMath.sqrt(-2 * StrictMath.log(1 - u2));
            pair = new double[] {r * StrictMath.cos(2 * Math.PI * u1), r * StrictMath.sin(2 * Math.PI * u1)};
        }
        return pair;
    }
}
