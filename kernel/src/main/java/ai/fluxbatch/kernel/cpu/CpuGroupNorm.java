package ai.fluxbatch.kernel.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * GroupNorm over {@code [B, C, spatial]}: one task per (sample, group), whose channels lie in one contiguous run.
 * Mean and variance add float vector sums of short chunks in double, so a group of millions of values (4 channels
 * x 1024 x 1024 in the FLUX VAE) keeps float32 accuracy; then each channel is one pass of
 * {@code (x - mean) * (rstd * weight) + bias}.
 */
final class CpuGroupNorm {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int CHUNK = 4096;

    private CpuGroupNorm() {}

    static float[] apply(
            ParallelFor parallel,
            float[] x,
            int b,
            int c,
            int spatial,
            int groups,
            float[] weight,
            float[] bias,
            float eps) {
        float[] out = new float[x.length];
        int perGroup = c / groups;
        long groupLen = (long) perGroup * spatial;
        int grain = (int) Math.max(1, 65536 / Math.max(1, groupLen));
        parallel.run(b * groups, grain, (from, to) -> {
            for (int t = from; t < to; t++) {
                int bi = t / groups, g = t % groups;
                int off = (bi * c + g * perGroup) * spatial;
                int len = perGroup * spatial;
                double mean = 0;
                for (int i = 0; i < len; i += CHUNK) {
                    mean += VectorMath.sum(x, off + i, Math.min(CHUNK, len - i));
                }
                mean /= len;
                double var = 0;
                for (int i = 0; i < len; i += CHUNK) {
                    var += VectorMath.sumOfSquares(x, off + i, Math.min(CHUNK, len - i), (float) mean);
                }
                var /= len;
                double rstd = 1.0 / Math.sqrt(var + eps);
                for (int ch = 0; ch < perGroup; ch++) {
                    int channel = g * perGroup + ch;
                    scaleShift(
                            x,
                            out,
                            off + ch * spatial,
                            spatial,
                            (float) mean,
                            (float) (rstd * weight[channel]),
                            bias[channel]);
                }
            }
        });
        return out;
    }

    /** {@code out[i] = (x[i] - mean) * a + d} over {@code [off, off + len)}. */
    private static void scaleShift(float[] x, float[] out, int off, int len, float mean, float a, float d) {
        FloatVector av = FloatVector.broadcast(S, a), dv = FloatVector.broadcast(S, d);
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector.fromArray(S, x, off + i).sub(mean).fma(av, dv).intoArray(out, off + i);
        }
        for (; i < len; i++) {
            out[off + i] = Math.fma(x[off + i] - mean, a, d);
        }
    }
}
