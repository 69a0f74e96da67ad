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

    /**
     * The gradients of {@link #attend} without bias or mask, {@code {dq, dk, dv}} each {@code [B, L, H, D]}. Per
     * (batch, head), pass 1 runs over query rows in parallel: it recomputes the row's scores and softmax exactly as
     * the forward does, {@code dP = dOut v^T}, the row term {@code rowsum(P dP)} and {@code dq = scale * sum over j of
     * dS[j] k[j]}, and keeps the row's maximum, inverse sum and row term. Pass 2 runs over key rows in parallel: it
     * recomputes {@code P[i, j]} from those (the same bits as pass 1) and accumulates {@code dv[j]} and {@code dk[j]}
     * over query rows in order, so no sum depends on the thread count.
     */
    static float[][] backward(
            ParallelFor parallel,
            float[] q,
            float[] k,
            float[] v,
            float[] dOut,
            int b,
            int l,
            int h,
            int d,
            float scale) {
        float[] dq = new float[b * l * h * d], dk = new float[dq.length], dv = new float[dq.length];
        int rowStride = h * d;
        int grain = Math.max(1, 65536 / Math.max(1, l * d));
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                float[] qh = gather(q, bi, hi, l, rowStride, d);
                float[] kh = gather(k, bi, hi, l, rowStride, d);
                float[] vh = gather(v, bi, hi, l, rowStride, d);
                float[] oh = gather(dOut, bi, hi, l, rowStride, d);
                float[] dqh = new float[l * d], dkh = new float[l * d], dvh = new float[l * d];
                float[] rowMax = new float[l], rowInv = new float[l], rowTerm = new float[l];
                parallel.run(l, grain, (from, to) -> {
                    float[] p = new float[l], dp = new float[l];
                    for (int i = from; i < to; i++) {
                        int qo = i * d;
                        float max = Float.NEGATIVE_INFINITY;
                        for (int j = 0; j < l; j++) {
                            p[j] = VectorMatmul.dot(qh, qo, kh, j * d, d) * scale;
                            max = Math.max(max, p[j]);
                            dp[j] = VectorMatmul.dot(oh, qo, vh, j * d, d);
                        }
                        float inv = 1f / VectorMath.expShifted(p, l, max);
                        for (int j = 0; j < l; j++) {
                            p[j] *= inv;
                        }
                        float term = VectorMatmul.dot(p, 0, dp, 0, l);
                        for (int j = 0; j < l; j++) {
                            VectorMath.axpy(p[j] * (dp[j] - term) * scale, kh, j * d, dqh, qo, d);
                        }
                        rowMax[i] = max;
                        rowInv[i] = inv;
                        rowTerm[i] = term;
                    }
                });
                parallel.run(l, grain, (from, to) -> {
                    for (int j = from; j < to; j++) {
                        int ko = j * d;
                        for (int i = 0; i < l; i++) {
                            float s = VectorMatmul.dot(qh, i * d, kh, ko, d) * scale;
                            float pij = VectorMath.exp(s - rowMax[i]) * rowInv[i];
                            float dpij = VectorMatmul.dot(oh, i * d, vh, ko, d);
                            VectorMath.axpy(pij, oh, i * d, dvh, ko, d);
                            VectorMath.axpy(pij * (dpij - rowTerm[i]) * scale, qh, i * d, dkh, ko, d);
                        }
                    }
                });
                scatter(dqh, dq, bi, hi, l, rowStride, d);
                scatter(dkh, dk, bi, hi, l, rowStride, d);
                scatter(dvh, dv, bi, hi, l, rowStride, d);
            }
        }
        return new float[][] {dq, dk, dv};
    }

    private static void scatter(float[] block, float[] x, int bi, int hi, int l, int rowStride, int d) {
        int base = bi * l * rowStride + hi * d;
        for (int j = 0; j < l; j++) {
            System.arraycopy(block, j * d, x, base + j * rowStride, d);
        }
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
