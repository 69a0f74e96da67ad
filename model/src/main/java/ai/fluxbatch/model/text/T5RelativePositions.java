package ai.fluxbatch.model.text;

/**
 * T5's bidirectional relative position buckets: half the buckets for keys after the query, exact buckets for
 * distances below a quarter of the buckets, logarithmic ones up to {@code maxDistance}, the last bucket beyond.
 */
final class T5RelativePositions {
    private T5RelativePositions() {}

    static int bucket(int relative, int buckets, int maxDistance) {
        int half = buckets / 2;
        int bucket = relative > 0 ? half : 0;
        int distance = Math.abs(relative);
        int maxExact = half / 2;
        if (distance < maxExact) {
            return bucket + distance;
        }
        // float32 as the reference computes it: the truncation to an integer is sensitive to rounding (StrictMath:
        // the same bits in every JIT tier and JVM)
        float scaled = (float) StrictMath.log((float) distance / maxExact)
                / (float) StrictMath.log((double) maxDistance / maxExact)
                * (half - maxExact);
        return bucket + Math.min(maxExact + (int) scaled, half - 1);
    }

    /** The additive attention bias {@code [H, L, L]} from the bucket table {@code [buckets, H]}. */
    static float[] bias(float[] table, int heads, int length, int buckets, int maxDistance) {
        float[] out = new float[heads * length * length];
        for (int i = 0; i < length; i++) {
            for (int j = 0; j < length; j++) {
                int b = bucket(j - i, buckets, maxDistance);
                for (int h = 0; h < heads; h++) {
                    out[(h * length + i) * length + j] = table[b * heads + h];
                }
            }
        }
        return out;
    }
}
