package ai.fluxbatch.model.calib;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Statistics are a mergeable value: any grouping and order of partial results gives the same statistics. */
class LayerStatsTest {
    private static final int IN = 7;

    @Test
    void mergingInAnyGroupingGivesTheStatisticsOfAllRows() {
        Random r = new Random(3);
        float[][] parts = new float[4][];
        LayerStats[] partial = new LayerStats[4];
        int[] rows = {5, 1, 9, 3};
        for (int p = 0; p < 4; p++) {
            parts[p] = new float[rows[p] * IN];
            for (int i = 0; i < parts[p].length; i++) {
                parts[p][i] = (float) (r.nextGaussian() * (1 + i % IN) + 0.5);
            }
            partial[p] = statsOf(parts[p], rows[p]);
        }
        LayerStats leftFold =
                partial[0].copy().merge(partial[1]).merge(partial[2]).merge(partial[3]);
        LayerStats tree =
                partial[0].copy().merge(partial[1]).merge(partial[2].copy().merge(partial[3]));
        LayerStats reversed =
                partial[3].copy().merge(partial[2]).merge(partial[1]).merge(partial[0]);
        float[] all = new float[18 * IN];
        int at = 0;
        for (float[] part : parts) {
            System.arraycopy(part, 0, all, at, part.length);
            at += part.length;
        }
        LayerStats whole = statsOf(all, 18);
        for (LayerStats s : new LayerStats[] {leftFold, tree, reversed}) {
            assertEquals(18, s.tokens());
            assertArrayEquals(whole.absMax(), s.absMax());
            assertArrayEquals(whole.sum(), s.sum(), 1e-9);
            assertArrayEquals(whole.sumSq(), s.sumSq(), 1e-9);
            assertArrayEquals(whole.gram(), s.gram(), 1e-4f);
        }
        for (int i = 0; i < IN; i++) {
            double direct = 0;
            for (int row = 0; row < 18; row++) {
                direct += (double) all[row * IN + i] * all[row * IN + i];
            }
            assertEquals(direct, whole.sumSq()[i], 1e-9 * direct);
            assertEquals(direct, whole.gram()[i * IN + i], 1e-5 * direct);
        }
    }

    @Test
    void refusesToMergeDifferentShapesOrGramAndNoGram() {
        LayerStats a = new LayerStats(3, true);
        assertThrows(IllegalArgumentException.class, () -> a.merge(new LayerStats(4, true)));
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> a.merge(new LayerStats(3, false)));
        assertTrue(e.getMessage().contains("Gram"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> a.addRows(new float[5], 2));
    }

    @Test
    void calibrationStatsMergeKeepsLayersOnlyOneSideHasAndNeverSharesArrays() {
        CalibrationStats a = new CalibrationStats();
        a.layer("x", 2, false).addRows(new float[] {1, 2}, 1);
        CalibrationStats b = new CalibrationStats();
        b.layer("y", 2, false).addRows(new float[] {3, 4}, 1);
        a.merge(b);
        assertEquals(2, a.layers().size());
        a.get("y").addRows(new float[] {1, 1}, 1);
        assertEquals(1, b.get("y").tokens(), "merge copied y, so adding to a leaves b alone");
        assertEquals(3, a.tokens());
    }

    private static LayerStats statsOf(float[] x, int rows) {
        return LayerStatsFixtures.of(x, rows, IN);
    }
}
