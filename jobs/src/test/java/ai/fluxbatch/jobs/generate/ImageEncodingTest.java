package ai.fluxbatch.jobs.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.jobs.prompts.PromptRow;
import ai.fluxbatch.model.image.PngDecoder;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.RgbImage;
import java.io.IOException;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class ImageEncodingTest {
    /** A smooth picture (JPEG keeps it close) of an odd size, so width and height cannot be swapped unnoticed. */
    private static RgbImage gradient(int width, int height) {
        byte[] rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int i = (y * width + x) * 3;
                rgb[i] = (byte) (x * 255 / width);
                rgb[i + 1] = (byte) (y * 255 / height);
                rgb[i + 2] = (byte) 128;
            }
        }
        return new RgbImage(width, height, rgb);
    }

    private static Map<String, String> metadata(String prompt, long seed) {
        ImageTask task = ImageTask.of(new PromptRow(3, "prompts.txt", 3, prompt, Map.of(), null, null), 0, seed);
        return PngMetadata.of(task, new GenerationParams(32, 48, 4, 3.5f), 256, "flux-tiny-dev", "dev");
    }

    @Test
    void jpegCarriesEveryParameterAndDecodesToItsSize() throws IOException {
        // newlines (the parameters line), non-Latin text and a colon in the prompt: each must come back as it went in
        Map<String, String> meta = metadata("a café: 東京の夜景, \"quoted\"", 1234567890123L);
        byte[] jpeg = ImageEncoding.encode(gradient(48, 32), meta, ImageFormat.JPEG, 90);
        assertEquals(0xff, jpeg[0] & 0xff);
        assertEquals(0xd8, jpeg[1] & 0xff, "a JPEG starts with SOI");
        ImageEncoding.Jpeg read = ImageEncoding.readJpeg(jpeg);
        assertEquals(48, read.width());
        assertEquals(32, read.height());
        assertEquals(meta, read.comments());
        assertEquals(
                java.util.List.copyOf(meta.keySet()),
                java.util.List.copyOf(read.comments().keySet()),
                "in order");
        assertTrue(meta.get("parameters").contains("\nSteps: 4"), meta.get("parameters"));
    }

    @Test
    void qualityChangesTheBytesAndIsChecked() throws IOException {
        RgbImage noise = new RgbImage(32, 32, randomBytes(32 * 32 * 3));
        Map<String, String> meta = metadata("noise", 1);
        byte[] low = ImageEncoding.encode(noise, meta, ImageFormat.JPEG, 10);
        byte[] high = ImageEncoding.encode(noise, meta, ImageFormat.JPEG, 100);
        assertTrue(low.length < high.length, low.length + " vs " + high.length);
        assertEquals(meta, ImageEncoding.readJpeg(low).comments());
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class, () -> ImageEncoding.encode(noise, meta, ImageFormat.JPEG, 0));
        assertTrue(e.getMessage().contains("expected 1 to 100"), e.getMessage());
    }

    @Test
    void aJpegCutShortIsNotReadAsComplete() throws IOException {
        byte[] jpeg = ImageEncoding.encode(gradient(48, 32), metadata("cut", 1), ImageFormat.JPEG, 95);
        ImageEncoding.readJpeg(jpeg);
        assertThrows(IOException.class, () -> ImageEncoding.readJpeg(Arrays.copyOf(jpeg, jpeg.length - 40)));
        assertThrows(IOException.class, () -> ImageEncoding.readJpeg(new byte[] {1, 2, 3}));
    }

    @Test
    void pngIsWhatItWas() {
        RgbImage image = gradient(48, 32);
        Map<String, String> meta = metadata("a red circle", 7);
        byte[] png = ImageEncoding.encode(image, meta, ImageFormat.PNG, 95);
        PngDecoder.Decoded decoded = PngDecoder.decode(png);
        assertArrayEquals(image.rgb(), decoded.image().rgb());
        assertEquals(meta, decoded.text());
    }

    @Test
    void formatsNameTheirFiles() {
        assertEquals("images/ab.jpg", ImageFormat.JPEG.path("images/ab.png"));
        assertEquals("images/ab.png", ImageFormat.PNG.path("images/ab.png"));
        assertEquals(ImageFormat.JPEG, ImageFormat.parse("JPEG"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ImageFormat.parse("gif"));
        assertEquals("--image-format is 'gif', expected png or jpeg", e.getMessage());
    }

    private static byte[] randomBytes(int n) {
        byte[] b = new byte[n];
        new Random(42).nextBytes(b);
        return b;
    }
}
