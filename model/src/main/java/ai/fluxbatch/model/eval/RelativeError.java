package ai.fluxbatch.model.eval;

/**
 * A relative L2 error {@code ||actual - expected|| / ||expected||} accumulated over many arrays (prompts, batches) as
 * {@code sqrt(sum num) / sqrt(sum den)}, in double, so a large image weighs as much as its values and no more.
 */
public final class RelativeError {
    private double num;
    private double den;

    public void add(float[] actual, float[] expected) {
        if (actual.length != expected.length) {
            throw new IllegalArgumentException("candidate has " + actual.length + " values, the reference "
                    + expected.length + ": expected the same shape");
        }
        for (int i = 0; i < actual.length; i++) {
            double d = (double) actual[i] - expected[i];
            num += d * d;
            den += (double) expected[i] * expected[i];
        }
    }

    /** 0 when nothing differs (even against an all-zero reference), else the ratio (infinite for a zero reference). */
    public double value() {
        return num == 0 ? 0 : Math.sqrt(num) / Math.sqrt(den);
    }
}
