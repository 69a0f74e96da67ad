package ai.fluxbatch.model.vae;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class ImageQuantizerTest {

    @Test
    void clampsScalesTruncatesAndInterleaves() {
        // [1, 3, 1, 2]: R = (-2, 1), G = (0, 0.999), B = (-1, 0.5)
        float[] image = {
            -2f, 1f, 0f, 0.999f, -1f, 0.5f,
        };
        byte[] rgb = ImageQuantizer.toRgbU8(image, 1, 1, 2);
        int[] unsigned = new int[rgb.length];
        for (int i = 0; i < rgb.length; i++) {
            unsigned[i] = rgb[i] & 0xff;
        }
        // pixel 0: (0, 127, 0); pixel 1: (255, 254, 191)
        assertArrayEquals(new int[] {0, 127, 0, 255, 254, 191}, unsigned);
    }

    @Test
    void nanBecomesZeroAndSizesAreChecked() {
        byte[] rgb = ImageQuantizer.toRgbU8(new float[] {Float.NaN, 5f, -5f}, 1, 1, 1);
        assertArrayEquals(new byte[] {0, (byte) 255, 0}, rgb);
        assertThrows(IllegalArgumentException.class, () -> ImageQuantizer.toRgbU8(new float[5], 1, 1, 2));
    }
}
