package ai.fluxbatch.kernel.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The gradients of softmax attention without bias or mask over {@code [B, L, H, D]}, the probabilities recomputed
 * from q and k (nothing of the forward is kept). Per (batch, head) the inputs are gathered twice: as rows
 * {@code [L, D]} and transposed {@code [D, Lp]} with L padded with zeros to a whole number of vectors, so every
 * product runs along L in vector lanes.
 *
 * <p>Pass 1, query rows in parallel (four at a time, one register tile): a row's scores {@code s = q k^T * scale} and
 * {@code dP = dOut v^T}, its softmax {@code P}, the row term {@code rowsum(P dP)}, {@code dS = P (dP - term) * scale}
 * and {@code dq = dS k}; the row's maximum, inverse sum and term are kept. Pass 2, key rows in parallel: the column
 * {@code P[:, j]} and {@code dS[:, j]} recomputed with the same operations in the same order (so the same bits as in
 * pass 1), then {@code dv = P^T dOut} and {@code dk = dS^T q}. Each score is one chain of fused multiply-adds over
 * the head's features in order; each gradient element one vector dot product over L, lanes summed by
 * {@link VectorMath#sumLanes}: no result depends on the tiling or the thread count.
 */
final class CpuAttentionBackward {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int V = S.length();
    /** Rows per register tile. */
    private static final int R = 4;

    private CpuAttentionBackward() {}

    /** {@code {dq, dk, dv}}, each {@code [B, L, H, D]} like the inputs. */
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
        if (l == 0 || d == 0) {
            return new float[][] {dq, dk, dv};
        }
        int lp = (l + V - 1) / V * V;
        int tiles = (l + R - 1) / R;
        int grain = Math.max(1, 65536 / (R * lp * d));
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                Head x = new Head(q, k, v, dOut, bi, hi, l, lp, h, d);
                parallel.run(tiles, grain, (from, to) -> {
                    float[][] p = new float[R][lp], ds = new float[R][lp];
                    float[] dots = new float[R];
                    for (int t = from; t < to; t++) {
                        queryTile(x, t * R, scale, p, ds, dots);
                    }
                });
                parallel.run(tiles, grain, (from, to) -> {
                    float[][] p = new float[R][lp], ds = new float[R][lp];
                    float[] dots = new float[R];
                    for (int t = from; t < to; t++) {
                        keyTile(x, t * R, scale, p, ds, dots);
                    }
                });
                x.scatter(dq, dk, dv, bi, hi, h);
            }
        }
        return new float[][] {dq, dk, dv};
    }

    /** One (batch, head): its inputs as rows and transposed, the per-query-row softmax terms, its gradients. */
    private static final class Head {
        final int l, lp, d;
        /** Rows {@code [L, D]}. */
        final float[] q, k, v, o;
        /** Transposed {@code [D, Lp]}, zero past L. */
        final float[] qT, kT, vT, oT;
        /** Per query row, zero past L. */
        final float[] rowMax, rowInv, rowTerm;

        final float[] dq, dk, dv;

        Head(float[] q, float[] k, float[] v, float[] dOut, int bi, int hi, int l, int lp, int h, int d) {
            this.l = l;
            this.lp = lp;
            this.d = d;
            int base = (bi * l * h + hi) * d, stride = h * d;
            this.q = rows(q, base, stride, l, d);
            this.k = rows(k, base, stride, l, d);
            this.v = rows(v, base, stride, l, d);
            this.o = rows(dOut, base, stride, l, d);
            this.qT = transposed(this.q, l, lp, d);
            this.kT = transposed(this.k, l, lp, d);
            this.vT = transposed(this.v, l, lp, d);
            this.oT = transposed(this.o, l, lp, d);
            this.rowMax = new float[lp];
            this.rowInv = new float[lp];
            this.rowTerm = new float[lp];
            this.dq = new float[l * d];
            this.dk = new float[l * d];
            this.dv = new float[l * d];
        }

        private static float[] rows(float[] x, int base, int stride, int l, int d) {
            float[] r = new float[l * d];
            for (int j = 0; j < l; j++) {
                System.arraycopy(x, base + j * stride, r, j * d, d);
            }
            return r;
        }

        private static float[] transposed(float[] rows, int l, int lp, int d) {
            float[] t = new float[d * lp];
            for (int j = 0; j < l; j++) {
                for (int e = 0; e < d; e++) {
                    t[e * lp + j] = rows[j * d + e];
                }
            }
            return t;
        }

        void scatter(float[] dqAll, float[] dkAll, float[] dvAll, int bi, int hi, int h) {
            int base = (bi * l * h + hi) * d, stride = h * d;
            for (int j = 0; j < l; j++) {
                System.arraycopy(dq, j * d, dqAll, base + j * stride, d);
                System.arraycopy(dk, j * d, dkAll, base + j * stride, d);
                System.arraycopy(dv, j * d, dvAll, base + j * stride, d);
            }
        }
    }

    /** Pass 1 for query rows {@code i0 .. i0 + 3} (a row past L repeats the last one and is not stored). */
    private static void queryTile(Head x, int i0, float scale, float[][] p, float[][] ds, float[] dots) {
        int l = x.l, lp = x.lp, d = x.d;
        int rows = Math.min(R, l - i0);
        int q0 = i0 * d, q1 = Math.min(i0 + 1, l - 1) * d, q2 = Math.min(i0 + 2, l - 1) * d;
        int q3 = Math.min(i0 + 3, l - 1) * d;
        for (int jb = 0; jb < lp; jb += V) {
            scores4(x.q, x.o, q0, q1, q2, q3, x.kT, x.vT, jb, lp, d, scale, p, ds);
        }
        for (int r = 0; r < rows; r++) {
            float[] pr = p[r], dsr = ds[r];
            float max = max(pr, l);
            float inv = 1f / VectorMath.expShifted(pr, l, max);
            for (int j = l; j < lp; j++) {
                pr[j] = 0f;
            }
            FloatVector invV = FloatVector.broadcast(S, inv);
            for (int j = 0; j < lp; j += V) {
                FloatVector.fromArray(S, pr, j).mul(invV).intoArray(pr, j);
            }
            float term = VectorMatmul.dot(pr, 0, dsr, 0, lp);
            for (int j = 0; j < lp; j += V) {
                FloatVector pv = FloatVector.fromArray(S, pr, j);
                pv.mul(FloatVector.fromArray(S, dsr, j).sub(term)).mul(scale).intoArray(dsr, j);
            }
            x.rowMax[i0 + r] = max;
            x.rowInv[i0 + r] = inv;
            x.rowTerm[i0 + r] = term;
        }
        float[] a1 = ds[Math.min(1, rows - 1)], a2 = ds[Math.min(2, rows - 1)], a3 = ds[Math.min(3, rows - 1)];
        for (int e = 0; e < d; e++) {
            dot4(ds[0], a1, a2, a3, x.kT, e * lp, lp, dots);
            for (int r = 0; r < rows; r++) {
                x.dq[(i0 + r) * d + e] = dots[r];
            }
        }
    }

    /**
     * Pass 2 for key rows {@code j0 .. j0 + 3}: the columns {@code P[:, j]} and {@code dS[:, j]} into {@code p} and
     * {@code ds}, then {@code dv[j] = P[:, j] . dOut} and {@code dk[j] = dS[:, j] . q}.
     */
    private static void keyTile(Head x, int j0, float scale, float[][] p, float[][] ds, float[] dots) {
        int l = x.l, lp = x.lp, d = x.d;
        int rows = Math.min(R, l - j0);
        int k0 = j0 * d, k1 = Math.min(j0 + 1, l - 1) * d, k2 = Math.min(j0 + 2, l - 1) * d;
        int k3 = Math.min(j0 + 3, l - 1) * d;
        for (int ib = 0; ib < lp; ib += V) {
            scores4(x.k, x.v, k0, k1, k2, k3, x.qT, x.oT, ib, lp, d, scale, p, ds);
            FloatVector max = FloatVector.fromArray(S, x.rowMax, ib), inv = FloatVector.fromArray(S, x.rowInv, ib);
            FloatVector term = FloatVector.fromArray(S, x.rowTerm, ib);
            for (int r = 0; r < R; r++) {
                // the operations of pass 1: exp(s - max) (VectorMath.expShifted), * inv, then P (dP - term) scale
                FloatVector pv = VectorMath.exp(
                                FloatVector.fromArray(S, p[r], ib).sub(max))
                        .mul(inv);
                pv.intoArray(p[r], ib);
                pv.mul(FloatVector.fromArray(S, ds[r], ib).sub(term)).mul(scale).intoArray(ds[r], ib);
            }
        }
        for (int e = 0; e < d; e++) {
            dot4(p[0], p[1], p[2], p[3], x.oT, e * lp, lp, dots);
            for (int r = 0; r < rows; r++) {
                x.dv[(j0 + r) * d + e] = dots[r];
            }
            dot4(ds[0], ds[1], ds[2], ds[3], x.qT, e * lp, lp, dots);
            for (int r = 0; r < rows; r++) {
                x.dk[(j0 + r) * d + e] = dots[r];
            }
        }
    }

    /**
     * For four rows {@code a[a_r ..]} (and {@code b[a_r ..]}) of {@code [L, D]} and lanes {@code c .. c + V} of the
     * transposed {@code aT, bT [D, Lp]}: {@code sOut[r][c..] = (a_r . aT[:, c..]) * scale} and {@code dOut[r][c..] =
     * b_r . bT[:, c..]}, each a chain of fused multiply-adds over the features in order. In pass 1 a, b are q, dOut and
     * aT, bT are k, v; in pass 2 the other way round, which gives the same products: fma is symmetric.
     */
    private static void scores4(
            float[] a,
            float[] b,
            int a0,
            int a1,
            int a2,
            int a3,
            float[] aT,
            float[] bT,
            int c,
            int lp,
            int d,
            float scale,
            float[][] sOut,
            float[][] dOut) {
        FloatVector s0 = FloatVector.zero(S), s1 = FloatVector.zero(S), s2 = FloatVector.zero(S);
        FloatVector s3 = FloatVector.zero(S), t0 = FloatVector.zero(S), t1 = FloatVector.zero(S);
        FloatVector t2 = FloatVector.zero(S), t3 = FloatVector.zero(S);
        for (int e = 0, off = c; e < d; e++, off += lp) {
            FloatVector kv = FloatVector.fromArray(S, aT, off);
            FloatVector vv = FloatVector.fromArray(S, bT, off);
            s0 = FloatVector.broadcast(S, a[a0 + e]).fma(kv, s0);
            s1 = FloatVector.broadcast(S, a[a1 + e]).fma(kv, s1);
            s2 = FloatVector.broadcast(S, a[a2 + e]).fma(kv, s2);
            s3 = FloatVector.broadcast(S, a[a3 + e]).fma(kv, s3);
            t0 = FloatVector.broadcast(S, b[a0 + e]).fma(vv, t0);
            t1 = FloatVector.broadcast(S, b[a1 + e]).fma(vv, t1);
            t2 = FloatVector.broadcast(S, b[a2 + e]).fma(vv, t2);
            t3 = FloatVector.broadcast(S, b[a3 + e]).fma(vv, t3);
        }
        s0.mul(scale).intoArray(sOut[0], c);
        s1.mul(scale).intoArray(sOut[1], c);
        s2.mul(scale).intoArray(sOut[2], c);
        s3.mul(scale).intoArray(sOut[3], c);
        t0.intoArray(dOut[0], c);
        t1.intoArray(dOut[1], c);
        t2.intoArray(dOut[2], c);
        t3.intoArray(dOut[3], c);
    }

    /** {@code out[r] = a_r[0 .. len) . b[bo ..]} for four rows, {@code len} a multiple of the vector length. */
    private static void dot4(float[] a0, float[] a1, float[] a2, float[] a3, float[] b, int bo, int len, float[] out) {
        FloatVector c0 = FloatVector.zero(S), c1 = FloatVector.zero(S), c2 = FloatVector.zero(S);
        FloatVector c3 = FloatVector.zero(S);
        for (int i = 0; i < len; i += V) {
            FloatVector bv = FloatVector.fromArray(S, b, bo + i);
            c0 = FloatVector.fromArray(S, a0, i).fma(bv, c0);
            c1 = FloatVector.fromArray(S, a1, i).fma(bv, c1);
            c2 = FloatVector.fromArray(S, a2, i).fma(bv, c2);
            c3 = FloatVector.fromArray(S, a3, i).fma(bv, c3);
        }
        out[0] = VectorMath.sumLanes(c0);
        out[1] = VectorMath.sumLanes(c1);
        out[2] = VectorMath.sumLanes(c2);
        out[3] = VectorMath.sumLanes(c3);
    }

    /** The largest of {@code a[0 .. len)}. */
    private static float max(float[] a, int len) {
        FloatVector m = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += V) {
            m = m.max(FloatVector.fromArray(S, a, i));
        }
        float r = m.reduceLanes(VectorOperators.MAX);
        for (; i < len; i++) {
            r = Math.max(r, a[i]);
        }
        return r;
    }
}
