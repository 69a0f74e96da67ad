package ai.fluxbatch.model.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

class TernaryPackingTest {
    @Test
    void quarterBlocksAlongDim0() {
        // 5 rows -> 2 packed rows; row o sits in packed row o % 2 at bits 2 * (o / 2); rows 5..7 are padding (code 0)
        byte[] codes = {-1, 0, 1, 1, 0, 0, -1, 1, 1, -1};
        byte[] packed = TernaryPacking.pack(codes, 5, 2);
        assertEquals(4, packed.length);
        // packed[0][0] holds column 0 of rows 0, 2, 4 and padding row 6: codes -1, 0, 1, 0 -> 0 | 1<<2 | 2<<4 | 1<<6
        assertEquals((byte) (0 | 1 << 2 | 2 << 4 | 1 << 6), packed[0]);
        assertArrayEquals(codes, TernaryPacking.unpack(packed, 5, 2));
    }

    @Test
    void roundTripsRandomShapes() {
        Random r = new Random(5);
        for (int[] s : new int[][] {{1, 1}, {3, 7}, {4, 4}, {17, 33}, {64, 5}}) {
            byte[] codes = new byte[s[0] * s[1]];
            for (int i = 0; i < codes.length; i++) {
                codes[i] = (byte) (r.nextInt(3) - 1);
            }
            assertArrayEquals(codes, TernaryPacking.unpack(TernaryPacking.pack(codes, s[0], s[1]), s[0], s[1]));
        }
    }

    @Test
    void absmeanZeroRowGetsScaleZeroAndCodesZero() {
        AbsmeanQuantizer.Result q = AbsmeanQuantizer.quantize(new float[] {0, 0, 0, 2, -0.5f, 0.2f}, 2, 3);
        assertArrayEquals(new float[] {0f, (float) (2.7 / 3)}, q.scale());
        assertArrayEquals(new byte[] {0, 0, 0, 1, -1, 0}, q.codes());
    }
}
