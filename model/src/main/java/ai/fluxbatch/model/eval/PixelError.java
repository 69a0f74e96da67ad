package ai.fluxbatch.model.eval;

import java.util.ArrayList;
import java.util.List;

/**
 * PSNR of 8-bit images against reference images (peak 255): over all pixels of all images together, and per image.
 * Identical images have infinite PSNR.
 */
public final class PixelError {
    private static final double PEAK = 255;

    private double squaredError;
    private long values;
    private final List<Double> perImage = new ArrayList<>();

    /** Adds {@code images} images laid out one after another in both arrays ({@code [b, h, w, 3]} bytes). */
    public void add(byte[] actual, byte[] expected, int images) {
        if (actual.length != expected.length || images <= 0 || actual.length % images != 0) {
            throw new IllegalArgumentException("candidate pixels " + actual.length + ", reference " + expected.length
                    + ", " + images + " images: expected the same whole number of values per image");
        }
        int size = actual.length / images;
        for (int i = 0; i < images; i++) {
            double sse = 0;
            for (int k = i * size; k < (i + 1) * size; k++) {
                int d = (actual[k] & 0xff) - (expected[k] & 0xff);
                sse += (double) d * d;
            }
            squaredError += sse;
            values += size;
            perImage.add(psnr(sse, size));
        }
    }

    public double psnr() {
        return psnr(squaredError, values);
    }

    /** The mean of the per-image PSNRs (infinite if any image is identical to its reference). */
    public double meanImagePsnr() {
        return perImage.stream().mapToDouble(Double::doubleValue).average().orElse(Double.NaN);
    }

    public double[] imagePsnrs() {
        return perImage.stream().mapToDouble(Double::doubleValue).toArray();
    }

    static double psnr(double squaredError, long values) {
        if (values == 0) {
            return Double.NaN;
        }
        return squaredError == 0 ? Double.POSITIVE_INFINITY : 10 * Math.log10(PEAK * PEAK / (squaredError / values));
    }
}
