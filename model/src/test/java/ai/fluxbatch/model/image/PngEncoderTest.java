package ai.fluxbatch.model.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.pipeline.RgbImage;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class PngEncoderTest {
    @Test
    void roundTripsPixelsAndLatin1AndUnicodeText() {
        byte[] rgb = new byte[7 * 5 * 3];
        new Random(3).nextBytes(rgb);
        Map<String, String> text = new LinkedHashMap<>();
        text.put("prompt", "café crème");
        text.put("parameters", "東京タワー at night\nSteps: 4, Seed: 42");
        byte[] png = PngEncoder.encode(new RgbImage(7, 5, rgb), text);
        PngDecoder.Decoded d = PngDecoder.decode(png);
        assertEquals(7, d.image().width());
        assertEquals(5, d.image().height());
        assertArrayEquals(rgb, d.image().rgb());
        assertEquals(text, d.text());
        String raw = new String(png, java.nio.charset.StandardCharsets.ISO_8859_1);
        assertTrue(raw.contains("tEXtprompt") && raw.contains("iTXtparameters"), "Latin-1 in tEXt, other text in iTXt");
    }

    @Test
    void truncatedOrCorruptFilesAreDetected() {
        byte[] png = PngEncoder.encode(new RgbImage(2, 2, new byte[12]), Map.of());
        assertThrows(IllegalArgumentException.class, () -> PngDecoder.decode(Arrays.copyOf(png, png.length - 5)));
        byte[] flipped = png.clone();
        flipped[40] ^= 1;
        assertThrows(IllegalArgumentException.class, () -> PngDecoder.decode(flipped));
    }
}
