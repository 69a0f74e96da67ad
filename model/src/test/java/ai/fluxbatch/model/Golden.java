package ai.fluxbatch.model;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the golden data lives: ../shared/golden beside the checkout (surefire passes it as fluxbatch.golden). */
public final class Golden {
    private Golden() {}

    public static Path dir() {
        String prop = System.getProperty("fluxbatch.golden");
        Path p = prop != null ? Path.of(prop) : Path.of("../../shared/golden");
        if (!Files.isDirectory(p)) {
            throw new IllegalStateException("golden data not found at " + p.toAbsolutePath()
                    + ": the tests need ../shared/golden beside the checkout");
        }
        return p;
    }

    public static Path path(String first, String... more) {
        return dir().resolve(Path.of(first, more));
    }

    /**
     * A golden case file of {@code model}: the {@code -diffusers} copies hold the same weights as their original
     * snapshot, so they share its cases ({@code flux-tiny-dev-diffusers} reads {@code cases/flux-tiny-dev/}).
     */
    public static Path casePath(String model, String file) {
        return path("cases", model.replaceFirst("-diffusers$", ""), file);
    }

    /** Relative L2 error {@code ||a - b|| / ||b||}, accumulated in double. */
    public static double relL2(float[] actual, float[] expected) {
        if (actual.length != expected.length) {
            throw new AssertionError("length " + actual.length + " vs expected " + expected.length);
        }
        double num = 0, den = 0;
        for (int i = 0; i < actual.length; i++) {
            double d = (double) actual[i] - expected[i];
            num += d * d;
            den += (double) expected[i] * expected[i];
        }
        return Math.sqrt(num / den);
    }

    /** 8-bit pixels as the golden README asks: within 1 of the reference at 99 % of values or more, never off by 4. */
    public static void assertPixelsClose(String what, java.nio.ByteBuffer expected, byte[] actual) {
        org.junit.jupiter.api.Assertions.assertEquals(expected.remaining(), actual.length, what + " pixel count");
        int within1 = 0, worst = 0;
        for (int i = 0; i < actual.length; i++) {
            int d = Math.abs((expected.get(i) & 0xff) - (actual[i] & 0xff));
            worst = Math.max(worst, d);
            if (d <= 1) {
                within1++;
            }
        }
        System.out.printf("%s rgb_u8: %d of %d values within 1, worst %d%n", what, within1, actual.length, worst);
        org.junit.jupiter.api.Assertions.assertTrue(
                within1 >= 0.99 * actual.length, what + ": only " + within1 + " of " + actual.length + " within 1");
        org.junit.jupiter.api.Assertions.assertTrue(worst <= 3, what + ": a value is off by " + worst);
    }
}
