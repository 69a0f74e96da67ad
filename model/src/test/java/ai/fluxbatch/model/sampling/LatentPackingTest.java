package ai.fluxbatch.model.sampling;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class LatentPackingTest {
    @Test
    void packPutsEach2x2PatchInOneTokenChannelMajor() {
        int c = 2, h = 4, w = 6;
        float[] latent = new float[c * h * w];
        for (int i = 0; i < latent.length; i++) {
            latent[i] = i;
        }
        float[] tokens = LatentPacking.pack(latent, c, h, w);
        // token (row 1, col 2) = index 1 * 3 + 2 = 5; feature (channel 1, dy 1, dx 0) = 1 * 4 + 2 = 6
        assertEquals(latent[(1 * h + 3) * w + 4], tokens[5 * 8 + 6]);
        assertArrayEquals(latent, LatentPacking.unpack(tokens, c, h, w));
    }

    @Test
    void imageIdsAreRowAndColumn() {
        assertArrayEquals(new float[] {0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1}, LatentPacking.imageIds(4, 4));
    }
}
