package ai.fluxbatch.kernel.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code out[m, n] = x[m, :] . w[n, :] + bias[n]} with both operands row-major along K, as PyTorch stores Linear
 * weights. A 4 x 2 register tile (eight accumulators) reuses each loaded vector of x twice and of w four times;
 * threads split the output into tiles of W rows so a tile of W stays in cache while x streams past it. Each output
 * is one dot product in a fixed order (lanes by {@link VectorMath#sumLanes}), whichever tile or path computes it.
 */
final class VectorMatmul {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int W_ROWS_PER_TASK = 32;

    private VectorMatmul() {}

    static void matmul(ParallelFor parallel, float[] x, float[] w, float[] bias, float[] out, int m, int n, int k) {
        int nTiles = (n + W_ROWS_PER_TASK - 1) / W_ROWS_PER_TASK;
        int mTiles = Math.max(1, Math.min(m / 64, parallel.threads() * 4 / Math.max(1, nTiles)));
        int mStep = (m + mTiles - 1) / mTiles;
        long flopsPerTile = 2L * k * W_ROWS_PER_TASK * mStep;
        int grain = (int) Math.max(1, 2_000_000 / Math.max(1, flopsPerTile));
        parallel.run(nTiles * mTiles, grain, (from, to) -> {
            for (int t = from; t < to; t++) {
                int n0 = (t % nTiles) * W_ROWS_PER_TASK;
                int m0 = (t / nTiles) * mStep;
                tile(x, w, bias, out, m0, Math.min(m, m0 + mStep), n0, Math.min(n, n0 + W_ROWS_PER_TASK), n, k);
            }
        });
    }

    private static void tile(
            float[] x, float[] w, float[] bias, float[] out, int m0, int m1, int n0, int n1, int n, int k) {
        int m = m0;
        for (; m + 4 <= m1; m += 4) {
            int j = n0;
            for (; j + 2 <= n1; j += 2) {
                block4x2(x, w, bias, out, m, j, n, k);
            }
            for (; j < n1; j++) {
                for (int r = 0; r < 4; r++) {
                    out[(m + r) * n + j] = dot(x, (m + r) * k, w, j * k, k) + (bias == null ? 0f : bias[j]);
                }
            }
        }
        for (; m < m1; m++) {
            for (int j = n0; j < n1; j++) {
                out[m * n + j] = dot(x, m * k, w, j * k, k) + (bias == null ? 0f : bias[j]);
            }
        }
    }

    private static void block4x2(float[] x, float[] w, float[] bias, float[] out, int m, int j, int n, int k) {
        int x0 = m * k, x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
        int w0 = j * k, w1 = w0 + k;
        FloatVector a00 = FloatVector.zero(S), a01 = FloatVector.zero(S);
        FloatVector a10 = FloatVector.zero(S), a11 = FloatVector.zero(S);
        FloatVector a20 = FloatVector.zero(S), a21 = FloatVector.zero(S);
        FloatVector a30 = FloatVector.zero(S), a31 = FloatVector.zero(S);
        int i = 0;
        int bound = S.loopBound(k);
        for (; i < bound; i += S.length()) {
            FloatVector b0 = FloatVector.fromArray(S, w, w0 + i);
            FloatVector b1 = FloatVector.fromArray(S, w, w1 + i);
            FloatVector v = FloatVector.fromArray(S, x, x0 + i);
            a00 = v.fma(b0, a00);
            a01 = v.fma(b1, a01);
            v = FloatVector.fromArray(S, x, x1 + i);
            a10 = v.fma(b0, a10);
            a11 = v.fma(b1, a11);
            v = FloatVector.fromArray(S, x, x2 + i);
            a20 = v.fma(b0, a20);
            a21 = v.fma(b1, a21);
            v = FloatVector.fromArray(S, x, x3 + i);
            a30 = v.fma(b0, a30);
            a31 = v.fma(b1, a31);
        }
        float s00 = VectorMath.sumLanes(a00), s01 = VectorMath.sumLanes(a01);
        float s10 = VectorMath.sumLanes(a10), s11 = VectorMath.sumLanes(a11);
        float s20 = VectorMath.sumLanes(a20), s21 = VectorMath.sumLanes(a21);
        float s30 = VectorMath.sumLanes(a30), s31 = VectorMath.sumLanes(a31);
        for (; i < k; i++) {
            float b0 = w[w0 + i], b1 = w[w1 + i];
            s00 += x[x0 + i] * b0;
            s01 += x[x0 + i] * b1;
            s10 += x[x1 + i] * b0;
            s11 += x[x1 + i] * b1;
            s20 += x[x2 + i] * b0;
            s21 += x[x2 + i] * b1;
            s30 += x[x3 + i] * b0;
            s31 += x[x3 + i] * b1;
        }
        float c0 = bias == null ? 0f : bias[j], c1 = bias == null ? 0f : bias[j + 1];
        out[m * n + j] = s00 + c0;
        out[m * n + j + 1] = s01 + c1;
        out[(m + 1) * n + j] = s10 + c0;
        out[(m + 1) * n + j + 1] = s11 + c1;
        out[(m + 2) * n + j] = s20 + c0;
        out[(m + 2) * n + j + 1] = s21 + c1;
        out[(m + 3) * n + j] = s30 + c0;
        out[(m + 3) * n + j + 1] = s31 + c1;
    }

    /** {@code a[ao ..] . b[bo ..]} over {@code k}. */
    static float dot(float[] a, int ao, float[] b, int bo, int k) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        int bound = S.loopBound(k);
        for (; i < bound; i += S.length()) {
            acc = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), acc);
        }
        float s = VectorMath.sumLanes(acc);
        for (; i < k; i++) {
            s += a[ao + i] * b[bo + i];
        }
        return s;
    }
}
