package ai.fluxbatch.model.vae;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;

/**
 * Decoded images to 8-bit RGB as the reference saves them: clamp to [-1, 1], {@code 127.5 * (x + 1)}, truncate to
 * an unsigned byte, channels last.
 */
public final class ImageQuantizer {
    private ImageQuantizer() {}

    /**
     * {@code image [b, 3, h, w]} (planar, as the decoder returns it) to bytes {@code [b, h, w, 3]} (interleaved
     * RGB, row by row); read each as {@code byte & 0xff}. NaN becomes 0.
     */
    public static byte[] toRgbU8(float[] image, int b, int h, int w) {
        long expected = 3L * b * h * w;
        if (b < 0 || h < 0 || w < 0 || image.length != expected) {
            throw new IllegalArgumentException("image has " + image.length + " values, expected [" + b + ", 3, " + h
                    + ", " + w + "] = " + expected);
        }
        int plane = h * w;
        byte[] out = new byte[image.length];
        for (int bi = 0; bi < b; bi++) {
            for (int c = 0; c < 3; c++) {
                int src = (bi * 3 + c) * plane;
                int dst = bi * 3 * plane + c;
                for (int p = 0; p < plane; p++) {
                    out[dst + 3 * p] = quantize(image[src + p]);
                }
            }
        }
        return out;
    }

    /** Downloads {@code image [B, 3, H, W]} and converts it with {@link #toRgbU8(float[], int, int, int)}. */
    public static byte[] toRgbU8(Backend backend, Tensor image) {
        int[] s = image.shape();
        if (s.length != 4 || s[1] != 3) {
            throw new IllegalArgumentException(
                    "image has shape " + java.util.Arrays.toString(s) + ", expected [B, 3, H, W]");
        }
        return toRgbU8(backend.download(image), s[0], s[2], s[3]);
    }

    static byte quantize(float x) {
        float clamped = Math.max(-1f, Math.min(1f, x));
        return (byte) (int) (127.5f * (clamped + 1f));
    }
}
