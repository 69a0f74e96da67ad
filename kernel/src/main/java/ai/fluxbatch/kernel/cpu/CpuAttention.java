package ai.fluxbatch.kernel.cpu;

/**
 * Softmax attention over {@code [B, L, H, D]}: each (batch, head) gathers its keys and values into contiguous
 * {@code [L, D]} blocks once, then query rows run in parallel with a numerically stable softmax.
 */
final class CpuAttention {
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
        int rowStride = h * d;
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                float[] kh = gather(k, bi, hi, l, rowStride, d);
                float[] vh = gather(v, bi, hi, l, rowStride, d);
                int base = bi * l * rowStride + hi * d;
                int biasBase = hi * l * l;
                parallel.run(l, Math.max(1, 262144 / Math.max(1, l * d)), (from, to) -> {
                    float[] scores = new float[l];
                    for (int i = from; i < to; i++) {
                        int qo = base + i * rowStride;
                        int keys = causal ? i + 1 : l;
                        float max = Float.NEGATIVE_INFINITY;
                        for (int j = 0; j < keys; j++) {
                            float s = VectorMatmul.dot(q, qo, kh, j * d, d) * scale;
                            if (bias != null) {
                                s += bias[biasBase + i * l + j];
                            }
                            scores[j] = s;
                            max = Math.max(max, s);
                        }
                        float inv = 1f / VectorMath.expShifted(scores, keys, max);
                        for (int j = 0; j < keys; j++) {
                            VectorMath.axpy(scores[j] * inv, vh, j * d, out, qo, d);
                        }
                    }
                });
            }
        }
        return out;
    }

    private static float[] gather(float[] x, int bi, int hi, int l, int rowStride, int d) {
        float[] out = new float[l * d];
        int base = bi * l * rowStride + hi * d;
        for (int j = 0; j < l; j++) {
            System.arraycopy(x, base + j * rowStride, out, j * d, d);
        }
        return out;
    }
}
