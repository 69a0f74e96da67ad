package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class TernaryLaunchTest {

    @ParameterizedTest
    @CsvSource({
        "1,1,1",
        "1,3072,3072",
        "4,12288,3072",
        "16,3072,12288",
        "17,3072,3072",
        "64,64,64",
        "65,65,33",
        "4096,3072,3072",
        "4608,15360,3072",
        "8192,21504,3072",
        "100000,7,5"
    })
    void coversEveryOutputAndRow(int m, int n, int k) {
        TernaryLaunch l = TernaryLaunch.plan(m, n, k);
        assertEquals(1, l.gridZ());
        assertEquals(1, l.blockY());
        assertEquals(1, l.blockZ());
        assertEquals(0, l.dynamicSharedBytes());
        assertTrue(l.sharedBytes() <= TernaryLaunch.SHARED_LIMIT, l.toString());
        assertTrue(l.blockX() <= 1024 && l.blockX() % 32 == 0, l.toString());
        assertTrue(l.gridY() <= TernaryLaunch.MAX_GRID_Y, l.toString());
        if (m <= TernaryLaunch.SMALL_M_MAX) {
            assertEquals(TernaryLaunch.SMALL_M_KERNEL, l.kernel());
            int warps = l.blockX() / 32;
            assertEquals(1, l.gridY());
            assertTrue((long) l.gridX() * warps >= n && (long) (l.gridX() - 1) * warps < n, l.toString());
        } else {
            assertEquals(TernaryLaunch.TILED_KERNEL, l.kernel());
            assertEquals(TernaryLaunch.TILED_THREADS, l.blockX());
            assertEquals(16640, l.sharedBytes()); // ptxas -v reports 16640 bytes smem for ternary_matmul_tiled
            assertTrue(
                    (long) l.gridX() * TernaryLaunch.TILE_N >= n && (long) (l.gridX() - 1) * TernaryLaunch.TILE_N < n,
                    l.toString());
            assertTrue(
                    (long) l.gridY() * TernaryLaunch.TILE_M >= m && (long) (l.gridY() - 1) * TernaryLaunch.TILE_M < m,
                    l.toString());
            // 256 threads x 4 x 4 outputs = the 64 x 64 tile
            assertEquals(TernaryLaunch.TILE_M * TernaryLaunch.TILE_N, l.blockX() * 16);
        }
    }

    @Test
    void smallMKernelUpToSixteenRows() {
        for (int m = 1; m <= 16; m++) {
            assertEquals(
                    TernaryLaunch.SMALL_M_KERNEL,
                    TernaryLaunch.plan(m, 100, 100).kernel());
        }
        assertEquals(
                TernaryLaunch.TILED_KERNEL, TernaryLaunch.plan(17, 100, 100).kernel());
    }

    @Test
    void rejectsEmptyAndOversizedLaunches() {
        assertThrows(IllegalArgumentException.class, () -> TernaryLaunch.plan(0, 1, 1));
        assertThrows(IllegalArgumentException.class, () -> TernaryLaunch.plan(1, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> TernaryLaunch.plan(1, 1, 0));
        TernaryLaunch.plan(65535 * 64, 1, 1);
        assertThrows(IllegalArgumentException.class, () -> TernaryLaunch.plan(65535 * 64 + 1, 1, 1));
    }
}
