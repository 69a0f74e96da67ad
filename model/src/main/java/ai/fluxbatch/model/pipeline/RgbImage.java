package ai.fluxbatch.model.pipeline;

/** An 8-bit RGB picture, rows top to bottom, pixels interleaved {@code r, g, b}. */
public record RgbImage(int width, int height, byte[] rgb) {
    public RgbImage {
        if (rgb.length != width * height * 3) {
            throw new IllegalArgumentException("RGB data of " + rgb.length + " bytes for " + width + " x " + height);
        }
    }
}
