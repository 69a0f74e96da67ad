package ai.fluxbatch.model.sampling;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.Golden;
import ai.fluxbatch.model.safetensors.SafetensorsFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** LatentNoise against torch 1.13's randn on a seeded CPU generator (golden cases/noise.safetensors, e2e noise). */
class LatentNoiseGoldenTest {

    @ParameterizedTest
    @CsvSource({
        "0,64,64",
        "0,48,80",
        "0,1024,1024",
        "42,64,64",
        "42,48,80",
        "42,1024,1024",
        "1234567,64,64",
        "1234567,48,80",
        "1234567,1024,1024"
    })
    void matchesTorchRandn(long seed, int height, int width) {
        String name = "seed" + seed + "_h" + height + "_w" + width;
        try (SafetensorsFile golden = SafetensorsFile.open(Golden.path("cases", "noise.safetensors"))) {
            long[] shape = golden.info(name + "_bf16").shape();
            assertArrayEquals(shape, golden.info(name + "_f32").shape(), name);
            assertArrayEquals(
                    shape,
                    Arrays.stream(LatentNoise.shape(height, width))
                            .asLongStream()
                            .toArray(),
                    name);

            short[] expectedBits = bf16Bits(golden, name + "_bf16");
            short[] actualBits = bits(LatentNoise.bf16(seed, height, width));
            int same = 0;
            for (int i = 0; i < expectedBits.length; i++) {
                same += expectedBits[i] == actualBits[i] ? 1 : 0;
            }
            float[] expected = golden.floats(name + "_f32");
            float[] actual = LatentNoise.f32(seed, height, width);
            double err = Golden.relL2(actual, expected);
            int exact = 0;
            for (int i = 0; i < expected.length; i++) {
                exact += Float.floatToRawIntBits(actual[i]) == Float.floatToRawIntBits(expected[i]) ? 1 : 0;
            }
            System.out.printf(
                    "noise %s: bf16 bit-exact %d/%d; f32 relL2 %.3e, bit-exact %d/%d%n",
                    name, same, expectedBits.length, err, exact, expected.length);
            assertEquals(expectedBits.length, same, name + ": bf16 values differing from torch");
            assertTrue(err < 1e-6, name + ": f32 relative L2 " + err);
        }
    }

    @ParameterizedTest
    @CsvSource({"e2e-1,42,64,64", "e2e-2,7,48,80"})
    void matchesEndToEndCaseNoise(String file, long seed, int height, int width) {
        try (SafetensorsFile golden =
                SafetensorsFile.open(Golden.path("cases", "flux-tiny-dev", file + ".safetensors"))) {
            var meta = golden.metadata();
            assertEquals(String.valueOf(seed), meta.get("seed"));
            assertEquals(String.valueOf(height), meta.get("height"));
            assertEquals(String.valueOf(width), meta.get("width"));
            assertArrayEquals(
                    golden.info("noise").shape(),
                    Arrays.stream(LatentNoise.shape(height, width))
                            .asLongStream()
                            .toArray());
            assertArrayEquals(bf16Bits(golden, "noise"), bits(LatentNoise.bf16(seed, height, width)), file);
        }
    }

    @Test
    void shapeRoundsUpToWholePatches() {
        assertArrayEquals(new int[] {1, 16, 2, 8}, LatentNoise.shape(1, 49));
        assertArrayEquals(new int[] {1, 16, 128, 128}, LatentNoise.shape(1024, 1024));
        assertThrows(IllegalArgumentException.class, () -> LatentNoise.shape(0, 64));
    }

    @Test
    void onlyTheLow32BitsOfTheSeedMatter() {
        assertArrayEquals(LatentNoise.bf16(42, 48, 80), LatentNoise.bf16(42 + (1L << 32), 48, 80));
        assertArrayEquals(LatentNoise.f32(7, 64, 64), LatentNoise.f32(7 | Long.MIN_VALUE, 64, 64));
    }

    private static short[] bf16Bits(SafetensorsFile file, String name) {
        long n = Arrays.stream(file.info(name).shape()).reduce(1, Math::multiplyExact);
        ByteBuffer b = file.bytes(name, 0, Math.toIntExact(2 * n)).order(ByteOrder.LITTLE_ENDIAN);
        short[] out = new short[(int) n];
        for (int i = 0; i < out.length; i++) {
            out[i] = b.getShort(2 * i);
        }
        return out;
    }

    /** The bf16 patterns of values that are exactly bf16 (LatentNoise.bf16 widens without rounding). */
    private static short[] bits(float[] widened) {
        short[] out = new short[widened.length];
        for (int i = 0; i < out.length; i++) {
            int b = Float.floatToRawIntBits(widened[i]);
            assertEquals(0, b & 0xFFFF, "not a bf16 value at " + i);
            out[i] = (short) (b >>> 16);
        }
        return out;
    }
}
