package ai.fluxbatch.kernel.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.TestData;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The GPU bit-plane layout against the Hugging Face BitNet packing . */
class GpuTernaryLayoutTest {
    private final Random random = new Random(8);

    static byte[] randomCodes(Random random, int out, int in) {
        byte[] codes = new byte[out * in];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (random.nextInt(3) - 1);
        }
        return codes;
    }

    @ParameterizedTest
    @CsvSource({"1,1", "1,32", "5,7", "3,33", "4,64", "7,31", "17,100", "64,64", "130,257", "6,1000"})
    void roundTripsAndKeepsEveryCode(int out, int in) {
        byte[] codes = randomCodes(random, out, in);
        byte[] packed = TestData.hfPack(codes, out, in);
        int[] w = GpuTernaryLayout.fromHfPacked(packed, out, in);
        int kw = (in + 31) / 32;
        assertEquals(2L * out * kw, w.length);
        assertEquals(4L * w.length, GpuTernaryLayout.bytes(out, in));
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < in; k++) {
                assertEquals(codes[o * in + k], GpuTernaryLayout.code(w, in, o, k), "W[" + o + ", " + k + "]");
                int bit = 1 << (k % 32), i = 2 * (o * kw + k / 32);
                assertEquals(codes[o * in + k] == 1, (w[i] & bit) != 0, "plus bit of W[" + o + ", " + k + "]");
                assertEquals(codes[o * in + k] == -1, (w[i + 1] & bit) != 0, "minus bit of W[" + o + ", " + k + "]");
            }
            for (int k = in; k < 32 * kw; k++) { // padding inputs: code 0
                assertEquals(0, GpuTernaryLayout.code(w, in, o, k), "padding W[" + o + ", " + k + "]");
            }
        }
        assertArrayEquals(packed, GpuTernaryLayout.toHfPacked(w, out, in));
    }

    @Test
    void rejectsInvalidBitsInRealRowsOnly() {
        int out = 5, in = 3; // rows = 2: packed row 1 holds rows 1, 3 and the padding rows 5, 7
        byte[] packed = TestData.hfPack(new byte[out * in], out, in);
        packed[in + 2] |= (byte) (3 << 2); // field 1 of packed row 1 = row 3
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> GpuTernaryLayout.fromHfPacked(packed, out, in));
        assertTrue(e.getMessage().contains("row 3, column 2"), e.getMessage());

        byte[] padded = TestData.hfPack(new byte[out * in], out, in);
        padded[in + 1] |= (byte) (3 << 4); // field 2 of packed row 1 = row 5: padding
        int[] w = GpuTernaryLayout.fromHfPacked(padded, out, in);
        assertArrayEquals(new int[w.length], w);
    }

    @Test
    void rejectsWrongLengths() {
        assertThrows(IllegalArgumentException.class, () -> GpuTernaryLayout.fromHfPacked(new byte[5], 5, 3));
        assertThrows(IllegalArgumentException.class, () -> GpuTernaryLayout.fromHfPacked(new byte[0], 0, 3));
        assertThrows(IllegalArgumentException.class, () -> GpuTernaryLayout.toHfPacked(new int[3], 1, 1));
        assertThrows(IllegalArgumentException.class, () -> GpuTernaryLayout.toHfPacked(new int[] {1, 1}, 1, 1));
    }
}
