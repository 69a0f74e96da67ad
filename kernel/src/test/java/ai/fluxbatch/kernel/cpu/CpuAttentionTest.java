package ai.fluxbatch.kernel.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.TestData;
import java.util.Random;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The forward attention kernel's key tiles (running maximum and sum) against a double reference: key tiles forced to
 * one and two vectors, so sequences span many tiles, with and without bias and causal mask, odd lengths and head
 * sizes (the padded tails of both); then the same bits for 1 and 3 threads and on a repeated call.
 */
class CpuAttentionTest {
    private static final int LANES = FloatVector.SPECIES_PREFERRED.length();
    private static final ParallelFor ONE = new ParallelFor(1), THREE = new ParallelFor(3);
    private final Random random = new Random(11);

    @AfterAll
    static void close() {
        ONE.shutdown();
        THREE.shutdown();
    }

    /** Softmax attention in double, {@code [B, L, H, D]}, bias {@code [H, L, L]} or null. */
    private static double[] reference(
            float[] q, float[] k, float[] v, int b, int l, int h, int d, float scale, float[] bias, boolean causal) {
        double[] out = new double[q.length];
        int c = h * d;
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
                        p[j] = s * scale + (bias == null ? 0 : bias[(hi * l + i) * l + j]);
                        max = Math.max(max, p[j]);
                    }
                    for (int j = 0; j < keys; j++) {
                        p[j] = Math.exp(p[j] - max);
                        sum += p[j];
                    }
                    for (int j = 0; j < keys; j++) {
                        for (int e = 0; e < d; e++) {
                            out[(bi * l + i) * c + hi * d + e] += p[j] / sum * v[(bi * l + j) * c + hi * d + e];
                        }
                    }
                }
            }
        }
        return out;
    }

    private static void assertClose(String what, double[] want, float[] got) {
        assertEquals(want.length, got.length, what + ": length");
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            worst = Math.max(worst, Math.abs(want[i] - got[i]) / (1 + Math.abs(want[i])));
        }
        assertTrue(worst <= 1e-5, what + ": max relative error " + worst);
    }

    /**
     * Shapes {B, L, H, D}: one query row, fewer rows than a register tile, several query blocks, odd D, and heads of
     * 70 and 100 features (with 16 lanes: the value products of four, two and one vectors of features).
     */
    @Test
    void keyTilesMatchTheReference() {
        int[][] shapes = {
            {1, 1, 1, 1}, {2, 3, 2, 5}, {1, 37, 3, 12}, {2, 70, 2, 24}, {1, 101, 1, 40}, {2, 21, 1, 70}, {1, 45, 2, 100}
        };
        for (int[] s : shapes) {
            int b = s[0], l = s[1], h = s[2], d = s[3], c = h * d;
            float[] q = TestData.randn(random, b * l * c), k = TestData.randn(random, b * l * c);
            float[] v = TestData.randn(random, b * l * c), bias = TestData.randn(random, h * l * l);
            for (int tile : new int[] {LANES, 2 * LANES, CpuAttention.keyTile(l, d)}) {
                for (boolean causal : new boolean[] {false, true}) {
                    for (float[] bi : new float[][] {null, bias}) {
                        float scale = bi == null ? (float) (1 / Math.sqrt(d)) : 0.37f;
                        String what = "B, L, H, D = " + java.util.Arrays.toString(s) + ", tile " + tile + ", causal "
                                + causal + ", bias " + (bi != null);
                        assertClose(
                                what,
                                reference(q, k, v, b, l, h, d, scale, bi, causal),
                                CpuAttention.attend(THREE, q, k, v, b, l, h, d, scale, bi, causal, tile));
                    }
                }
            }
        }
    }

    /** Scores far apart across tiles: a later tile's maximum is far above an earlier one's, so rescaling matters. */
    @Test
    void aLaterTilesLargerMaximumRescalesTheEarlierOnes() {
        int l = 5 * LANES + 3, d = 7;
        float[] q = TestData.randn(random, l * d), k = TestData.randn(random, l * d), v = TestData.randn(random, l * d);
        for (int j = 0; j < l; j++) {
            for (int e = 0; e < d; e++) {
                k[j * d + e] *= 1 + 6f * j / l;
            }
        }
        assertClose(
                "growing keys",
                reference(q, k, v, 1, l, 1, d, 1f, null, false),
                CpuAttention.attend(ONE, q, k, v, 1, l, 1, d, 1f, null, false, LANES));
    }

    @Test
    void sameBitsForOneAndThreeThreadsAndOnARepeatedCall() {
        int b = 2, l = 130, h = 3, d = 20, c = h * d;
        float[] q = TestData.randn(random, b * l * c), k = TestData.randn(random, b * l * c);
        float[] v = TestData.randn(random, b * l * c), bias = TestData.randn(random, h * l * l);
        for (int tile : new int[] {LANES, CpuAttention.keyTile(l, d)}) {
            for (boolean causal : new boolean[] {false, true}) {
                for (float[] bi : new float[][] {null, bias}) {
                    String what = "tile " + tile + ", causal " + causal + ", bias " + (bi != null);
                    float[] one = CpuAttention.attend(ONE, q, k, v, b, l, h, d, 0.2f, bi, causal, tile);
                    assertArrayEquals(
                            one, CpuAttention.attend(THREE, q, k, v, b, l, h, d, 0.2f, bi, causal, tile), what);
                    assertArrayEquals(
                            one, CpuAttention.attend(THREE, q, k, v, b, l, h, d, 0.2f, bi, causal, tile), what);
                }
            }
        }
    }

    @Test
    void keyTilesAreWholeVectorsAndCoverLongSequencesEvenly() {
        for (int[] ld : new int[][] {{1, 1}, {77, 8}, {528, 32}, {4608, 128}, {16384, 512}}) {
            int tile = CpuAttention.keyTile(ld[0], ld[1]);
            assertEquals(0, tile % LANES, "tile " + tile + " for L, D = " + ld[0] + ", " + ld[1]);
            int tiles = (ld[0] + tile - 1) / tile;
            assertTrue(tiles * tile - ld[0] < tiles * LANES, "tile " + tile + " for L = " + ld[0]);
        }
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> CpuAttention.attend(
                        ONE, new float[1], new float[1], new float[1], 1, 1, 1, 1, 1f, null, false, 3));
        assertTrue(e.getMessage().contains("key tile 3"), e.getMessage());
    }
}
