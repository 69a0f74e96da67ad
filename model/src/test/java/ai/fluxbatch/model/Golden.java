package ai.fluxbatch.model;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the golden data lives: ../shared/golden beside the checkout (surefire passes it as fluxbatch.golden). */
public final class Golden {
    private Golden() {
    }

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
}
