package ai.fluxbatch.model;

/** Finding NaN and infinite values: weights, statistics and latents must hold none. */
public final class FiniteValues {
    private FiniteValues() {}

    /** The index of the first NaN or infinite value in {@code values[from, to)}, or -1 if there is none. */
    public static int firstNonFinite(float[] values, int from, int to) {
        for (int i = from; i < to; i++) {
            if (!Float.isFinite(values[i])) {
                return i;
            }
        }
        return -1;
    }

    public static int firstNonFinite(float[] values) {
        return firstNonFinite(values, 0, values.length);
    }

    /** The index of the first NaN or infinite value in {@code values}, or -1 if there is none. */
    public static int firstNonFinite(double[] values) {
        for (int i = 0; i < values.length; i++) {
            if (!Double.isFinite(values[i])) {
                return i;
            }
        }
        return -1;
    }
}
