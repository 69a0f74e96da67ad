package ai.fluxbatch.kernel.cpu;

import java.util.Arrays;

/**
 * Softmax attention over {@code [B, L, H, D]}. Per (batch, head) the keys are gathered once transposed ({@code [D, L]})
 * and the values as rows ({@code [L, D]}); bands of {@link #BAND} query rows then run in parallel, each with two
 * products on {@link TransposedMatmul}'s register tile: the band's scores {@code q k^T} ({@code [band, L]}), the
 * numerically stable softmax of each row in place (scale, bias, causal mask, {@link VectorMath#expShifted}), and
 * {@code P v}. A score is one chain of fused multiply-adds over the head's features in order (as the backward
 * recomputes it), an output one chain over the keys in order (as a row-by-row {@code out += p v} would give): no
 * result depends on the banding or the thread count. Scratch per task: the band's scores, {@code BAND * L} floats.
 */
final class CpuAttention {
    /** Query rows per task: a whole number of the tile's 6-row groups but for the last. */
    static final int BAND = 64;

    private static final ParallelFor SERIAL = new ParallelFor(1);

    private CpuAttention() {}

    static float[] attend(
            ParallelFor parallel,
            float[] q,
            float[] k,
            float[] v,
            int b,
            int l,
            int h,
            int d,
            float scale,
            float[] bias,
            boolean causal) {
        float[] out = new float[b * l * h * d];
        if (l == 0) {
            return out;
        }
        int rowStride = h * d;
        int bands = (l + BAND - 1) / BAND;
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                int base = bi * l * rowStride + hi * d;
                float[] kT = new float[d * l], vh = new float[l * d];
                for (int j = 0; j < l; j++) {
                    System.arraycopy(v, base + j * rowStride, vh, j * d, d);
                    for (int e = 0; e < d; e++) {
                        kT[e * l + j] = k[base + j * rowStride + e];
                    }
                }
                int biasBase = hi * l * l;
                parallel.run(bands, 1, (from, to) -> {
                    float[] qb = new float[BAND * d], p = new float[BAND * l], ob = new float[BAND * d];
                    for (int t = from; t < to; t++) {
                        int i0 = t * BAND, rows = Math.min(BAND, l - i0);
                        for (int r = 0; r < rows; r++) {
                            System.arraycopy(q, base + (i0 + r) * rowStride, qb, r * d, d);
                        }
                        TransposedMatmul.dense(SERIAL, qb, kT, rows, d, l, p);
                        for (int r = 0; r < rows; r++) {
                            softmaxRow(p, r * l, l, causal ? i0 + r + 1 : l, scale, bias, biasBase + (i0 + r) * l);
                        }
                        TransposedMatmul.dense(SERIAL, p, vh, rows, l, d, ob);
                        for (int r = 0; r < rows; r++) {
                            System.arraycopy(ob, r * d, out, base + (i0 + r) * rowStride, d);
                        }
                    }
                });
            }
        }
        return out;
    }

    /**
     * Row {@code p[po .. po + l)} from raw scores to probabilities: the first {@code keys} become
     * {@code softmax(s * scale + bias)}, the rest (masked keys) 0.
     */
    private static void softmaxRow(float[] p, int po, int l, int keys, float scale, float[] bias, int bo) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < keys; j++) {
            float s = p[po + j] * scale;
            if (bias != null) {
                s += bias[bo + j];
            }
            p[po + j] = s;
            max = Math.max(max, s);
        }
        float inv = 1f / VectorMath.expShifted(p, po, keys, max);
        for (int j = 0; j < keys; j++) {
            p[po + j] *= inv;
        }
        Arrays.fill(p, po + keys, po + l, 0f);
    }
}
