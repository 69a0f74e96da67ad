package ai.fluxbatch.kernel.cpu;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Softmax attention over {@code [B, L, H, D]}, optionally with a bias {@code [H, L, L]} added to the scores and a
 * causal mask, blocked over key tiles with a running maximum and sum (flash-style): the full score matrix is never
 * formed, only the scores of four query rows against one key tile.
 *
 * <p>Per (batch, head) the keys are gathered transposed {@code [D, Lp]} and the values as rows {@code [L, Dp]}, L and D
 * padded with zeros to whole vectors, so scores run along the keys in vector lanes and the weighted sum of values
 * along the features. Work items are (batch, head, block of query rows); within one, for each key tile in order and
 * each register tile of four query rows: the scores (one chain of fused multiply-adds over the head's features in
 * order, times the scale, plus the bias), the row's new maximum {@code m'} over the keys so far, the row's
 * accumulator and sum rescaled by {@code exp(m - m')}, {@code p = exp(s - m')} as in {@link VectorMath#expShifted}
 * (vector lanes and scalar tail the same polynomial), and {@code acc += p_j v_j} one key after another; at the end
 * {@code out = acc * (1 / sum)}. The key tiles depend on L and D only, so every output element is computed by the same
 * operations in the same order whatever the thread count. Heads are gathered and attended in groups of at most
 * {@link #GROUP_FLOATS} floats of copies, so the copies of a large call stay a bounded extra memory.
 */
final class CpuAttention {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int V = S.length();
    /** Query rows per register tile. */
    private static final int R = 4;
    /** Query rows per work item, a multiple of {@link #R}: they share each key tile while it is in cache. */
    private static final int BLOCK = 32;
    /** Keys per tile at most, times the padded head size: the tile's keys and values stay in the core's L2 cache. */
    private static final int TILE_FLOATS = 1 << 16;
    /** Floats of gathered keys and values held at once: heads are gathered and attended in groups of this size. */
    private static final int GROUP_FLOATS = 1 << 22;

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
        return attend(parallel, q, k, v, b, l, h, d, scale, bias, causal, keyTile(l, d));
    }

    /**
     * The keys per tile for a head of {@code d} features: as many as {@link #TILE_FLOATS} allows, the tiles of one
     * sequence of {@code l} keys made about equal, a multiple of the vector length.
     */
    static int keyTile(int l, int d) {
        int most = Math.max(V, TILE_FLOATS / roundUp(Math.max(1, d), V) / V * V);
        int tiles = Math.max(1, (l + most - 1) / most);
        return roundUp((l + tiles - 1) / tiles, V);
    }

    /** {@link #attend} with the keys per tile given ({@code tile} a positive multiple of the vector length). */
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
            boolean causal,
            int tile) {
        if (tile < V || tile % V != 0) {
            throw new IllegalArgumentException(
                    "attention: key tile " + tile + " is not a positive multiple of the vector length " + V);
        }
        float[] out = new float[b * l * h * d];
        if (b == 0 || l == 0 || h == 0 || d == 0) {
            return out;
        }
        Shape x = new Shape(l, roundUp(l, V), h, d, roundUp(d, V), tile, scale, causal);
        int heads = b * h;
        int group = Math.max(1, Math.min(heads, GROUP_FLOATS / (x.lp() * x.dp() * 2)));
        int blocks = (l + BLOCK - 1) / BLOCK;
        int grain = Math.max(1, (1 << 20) / (BLOCK * x.lp() * x.dp()));
        for (int first = 0; first < heads; first += group) {
            int g0 = first, count = Math.min(group, heads - first);
            Head[] gathered = new Head[count];
            parallel.run(count, 1, (from, to) -> {
                for (int g = from; g < to; g++) {
                    gathered[g] = new Head(k, v, (g0 + g) / h, (g0 + g) % h, x);
                }
            });
            parallel.run(count * blocks, grain, (from, to) -> {
                Work w = new Work(x);
                for (int item = from; item < to; item++) {
                    int g = item / blocks, hd = g0 + g;
                    block(x, gathered[g], q, bias, out, hd / h, hd % h, item % blocks * BLOCK, w);
                }
            });
        }
        return out;
    }

    private static int roundUp(int n, int m) {
        return (n + m - 1) / m * m;
    }

    /** One call's sizes (L and D, both also padded to whole vectors, the keys per tile), scale and mask. */
    private record Shape(int l, int lp, int h, int d, int dp, int tile, float scale, boolean causal) {}

    /** One (batch, head)'s keys transposed {@code [D, Lp]} and values as rows {@code [L, Dp]}, zero in the padding. */
    private record Head(float[] kT, float[] v) {
        Head(float[] k, float[] v, int bi, int hi, Shape x) {
            this(new float[x.d() * x.lp()], new float[x.l() * x.dp()]);
            int l = x.l(), lp = x.lp(), d = x.d(), dp = x.dp(), stride = x.h() * d, base = (bi * l * x.h() + hi) * d;
            for (int j = 0; j < l; j++) {
                int row = base + j * stride;
                for (int e = 0; e < d; e++) {
                    kT[e * lp + j] = k[row + e];
                }
                System.arraycopy(v, row, this.v, j * dp, d);
            }
        }
    }

    /** A thread's buffers: one register tile's scores, and per query row of a block its accumulator, max and sum. */
    private static final class Work {
        final float[] s, acc, max, sum;
        final float[] rescale = new float[R];
        final int[] keys = new int[R];

        Work(Shape x) {
            s = new float[R * x.tile()];
            acc = new float[BLOCK * x.dp()];
            max = new float[BLOCK];
            sum = new float[BLOCK];
        }
    }

    /** Query rows {@code i0 .. i0 + BLOCK} (fewer at the end) of one (batch, head), into {@code out}. */
    private static void block(
            Shape x, Head head, float[] q, float[] bias, float[] out, int bi, int hi, int i0, Work w) {
        int l = x.l(), d = x.d(), dp = x.dp(), tile = x.tile(), stride = x.h() * d;
        int rows = Math.min(BLOCK, l - i0);
        int qBase = (bi * l * x.h() + hi) * d;
        Arrays.fill(w.max, Float.NEGATIVE_INFINITY);
        Arrays.fill(w.sum, 0f);
        Arrays.fill(w.acc, 0f);
        int keyEnd = x.causal() ? i0 + rows : l;
        for (int j0 = 0; j0 < keyEnd; j0 += tile) {
            int inTile = Math.min(tile, l - j0);
            for (int t = 0; t < rows; t += R) {
                int i = i0 + t, real = Math.min(R, rows - t), most = 0;
                for (int r = 0; r < R; r++) {
                    int limit = r >= real ? 0 : x.causal() ? i + r + 1 : l;
                    w.keys[r] = Math.max(0, Math.min(inTile, limit - j0));
                    most = Math.max(most, w.keys[r]);
                }
                if (most == 0) {
                    continue;
                }
                int last = i + real - 1;
                scores(
                        q,
                        qBase + i * stride,
                        qBase + Math.min(i + 1, last) * stride,
                        qBase + Math.min(i + 2, last) * stride,
                        qBase + Math.min(i + 3, last) * stride,
                        head.kT(),
                        x.lp(),
                        d,
                        j0,
                        roundUp(most, V),
                        x.scale(),
                        w.s,
                        tile);
                for (int r = 0; r < R; r++) {
                    softmaxStep(w, r, t + r, most, bias, (hi * l + i + r) * l + j0, tile);
                }
                int a = t * dp;
                float[] c = w.rescale;
                int f = 0;
                for (; f + 4 * V <= dp; f += 4 * V) {
                    values4(w.s, tile, most, head.v(), j0 * dp + f, dp, w.acc, a + f, c);
                }
                for (; f + 2 * V <= dp; f += 2 * V) {
                    values2(w.s, tile, most, head.v(), j0 * dp + f, dp, w.acc, a + f, c);
                }
                for (; f < dp; f += V) {
                    values1(w.s, tile, most, head.v(), j0 * dp + f, dp, w.acc, a + f, c);
                }
            }
        }
        for (int r = 0; r < rows; r++) {
            float inv = 1f / w.sum[r];
            int o = qBase + (i0 + r) * stride, a = r * dp;
            for (int e = 0; e < d; e++) {
                out[o + e] = w.acc[a + e] * inv;
            }
        }
    }

    /**
     * The online softmax for register row {@code r} (block row {@code row}) over its first {@code keys[r]} scores in
     * this tile: bias added, new maximum, probabilities in place, the rescale factor of the row's old accumulator and
     * sum; scores past {@code keys[r]} up to {@code most} become 0. A row with no keys here (or a masked one) keeps
     * its state (factor 1) and contributes nothing.
     */
    private static void softmaxStep(Work w, int r, int row, int most, float[] bias, int biasOff, int tile) {
        int n = w.keys[r], so = r * tile;
        float[] s = w.s;
        if (n > 0 && bias != null) {
            VectorMath.addRow(s, so, bias, biasOff, s, so, n);
        }
        float old = w.max[row];
        float max = n == 0 ? old : Math.max(old, max(s, so, n));
        if (max == Float.NEGATIVE_INFINITY) {
            n = 0;
        }
        Arrays.fill(s, so + n, so + most, 0f);
        if (n == 0) {
            w.rescale[r] = 1f;
            return;
        }
        float c = old == Float.NEGATIVE_INFINITY ? 0f : VectorMath.exp(old - max);
        float tileSum = VectorMath.expShifted(s, so, n, max);
        w.rescale[r] = c;
        w.max[row] = max;
        w.sum[row] = w.sum[row] * c + tileSum;
    }

    /**
     * For four rows {@code q[q_r .. q_r + d)} and keys {@code j0 .. j0 + len} ({@code len} a multiple of the vector
     * length): {@code s[r * tile + j] = (q_r . kT[:, j0 + j]) * scale}, each a chain of fused multiply-adds over the
     * features in order; two vectors of keys at a time, then one.
     */
    private static void scores(
            float[] q,
            int q0,
            int q1,
            int q2,
            int q3,
            float[] kT,
            int lp,
            int d,
            int j0,
            int len,
            float scale,
            float[] s,
            int tile) {
        int j = 0;
        for (; j + 2 * V <= len; j += 2 * V) {
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S);
            FloatVector a3 = FloatVector.zero(S), b0 = FloatVector.zero(S), b1 = FloatVector.zero(S);
            FloatVector b2 = FloatVector.zero(S), b3 = FloatVector.zero(S);
            for (int e = 0, off = j0 + j; e < d; e++, off += lp) {
                FloatVector ka = FloatVector.fromArray(S, kT, off);
                FloatVector kb = FloatVector.fromArray(S, kT, off + V);
                FloatVector x0 = FloatVector.broadcast(S, q[q0 + e]);
                FloatVector x1 = FloatVector.broadcast(S, q[q1 + e]);
                FloatVector x2 = FloatVector.broadcast(S, q[q2 + e]);
                FloatVector x3 = FloatVector.broadcast(S, q[q3 + e]);
                a0 = x0.fma(ka, a0);
                b0 = x0.fma(kb, b0);
                a1 = x1.fma(ka, a1);
                b1 = x1.fma(kb, b1);
                a2 = x2.fma(ka, a2);
                b2 = x2.fma(kb, b2);
                a3 = x3.fma(ka, a3);
                b3 = x3.fma(kb, b3);
            }
            a0.mul(scale).intoArray(s, j);
            b0.mul(scale).intoArray(s, j + V);
            a1.mul(scale).intoArray(s, tile + j);
            b1.mul(scale).intoArray(s, tile + j + V);
            a2.mul(scale).intoArray(s, 2 * tile + j);
            b2.mul(scale).intoArray(s, 2 * tile + j + V);
            a3.mul(scale).intoArray(s, 3 * tile + j);
            b3.mul(scale).intoArray(s, 3 * tile + j + V);
        }
        if (j < len) {
            FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S);
            FloatVector a3 = FloatVector.zero(S);
            for (int e = 0, off = j0 + j; e < d; e++, off += lp) {
                FloatVector ka = FloatVector.fromArray(S, kT, off);
                a0 = FloatVector.broadcast(S, q[q0 + e]).fma(ka, a0);
                a1 = FloatVector.broadcast(S, q[q1 + e]).fma(ka, a1);
                a2 = FloatVector.broadcast(S, q[q2 + e]).fma(ka, a2);
                a3 = FloatVector.broadcast(S, q[q3 + e]).fma(ka, a3);
            }
            a0.mul(scale).intoArray(s, j);
            a1.mul(scale).intoArray(s, tile + j);
            a2.mul(scale).intoArray(s, 2 * tile + j);
            a3.mul(scale).intoArray(s, 3 * tile + j);
        }
    }

    /**
     * Features {@code f .. f + 2V} of four accumulator rows ({@code acc[a + r * dp ..]}): each first rescaled by
     * {@code c[r]}, then {@code += p[r * tile + j] * v[vo + j * dp ..]} for keys {@code j < keys} in
     * order.
     */
    private static void values2(
            float[] p, int tile, int keys, float[] v, int vo, int dp, float[] acc, int a, float[] c) {
        int r1 = a + dp, r2 = a + 2 * dp, r3 = a + 3 * dp;
        FloatVector a0 = FloatVector.fromArray(S, acc, a).mul(c[0]);
        FloatVector b0 = FloatVector.fromArray(S, acc, a + V).mul(c[0]);
        FloatVector a1 = FloatVector.fromArray(S, acc, r1).mul(c[1]);
        FloatVector b1 = FloatVector.fromArray(S, acc, r1 + V).mul(c[1]);
        FloatVector a2 = FloatVector.fromArray(S, acc, r2).mul(c[2]);
        FloatVector b2 = FloatVector.fromArray(S, acc, r2 + V).mul(c[2]);
        FloatVector a3 = FloatVector.fromArray(S, acc, r3).mul(c[3]);
        FloatVector b3 = FloatVector.fromArray(S, acc, r3 + V).mul(c[3]);
        for (int j = 0, off = vo; j < keys; j++, off += dp) {
            FloatVector va = FloatVector.fromArray(S, v, off);
            FloatVector vb = FloatVector.fromArray(S, v, off + V);
            FloatVector p0 = FloatVector.broadcast(S, p[j]);
            FloatVector p1 = FloatVector.broadcast(S, p[tile + j]);
            FloatVector p2 = FloatVector.broadcast(S, p[2 * tile + j]);
            FloatVector p3 = FloatVector.broadcast(S, p[3 * tile + j]);
            a0 = va.fma(p0, a0);
            b0 = vb.fma(p0, b0);
            a1 = va.fma(p1, a1);
            b1 = vb.fma(p1, b1);
            a2 = va.fma(p2, a2);
            b2 = vb.fma(p2, b2);
            a3 = va.fma(p3, a3);
            b3 = vb.fma(p3, b3);
        }
        a0.intoArray(acc, a);
        b0.intoArray(acc, a + V);
        a1.intoArray(acc, r1);
        b1.intoArray(acc, r1 + V);
        a2.intoArray(acc, r2);
        b2.intoArray(acc, r2 + V);
        a3.intoArray(acc, r3);
        b3.intoArray(acc, r3 + V);
    }

    /** {@link #values2} for four vectors of features. */
    private static void values4(
            float[] p, int tile, int keys, float[] v, int vo, int dp, float[] acc, int a, float[] c) {
        int r1 = a + dp, r2 = a + 2 * dp, r3 = a + 3 * dp;
        FloatVector a0 = FloatVector.fromArray(S, acc, a).mul(c[0]);
        FloatVector b0 = FloatVector.fromArray(S, acc, a + V).mul(c[0]);
        FloatVector c0 = FloatVector.fromArray(S, acc, a + 2 * V).mul(c[0]);
        FloatVector d0 = FloatVector.fromArray(S, acc, a + 3 * V).mul(c[0]);
        FloatVector a1 = FloatVector.fromArray(S, acc, r1).mul(c[1]);
        FloatVector b1 = FloatVector.fromArray(S, acc, r1 + V).mul(c[1]);
        FloatVector c1 = FloatVector.fromArray(S, acc, r1 + 2 * V).mul(c[1]);
        FloatVector d1 = FloatVector.fromArray(S, acc, r1 + 3 * V).mul(c[1]);
        FloatVector a2 = FloatVector.fromArray(S, acc, r2).mul(c[2]);
        FloatVector b2 = FloatVector.fromArray(S, acc, r2 + V).mul(c[2]);
        FloatVector c2 = FloatVector.fromArray(S, acc, r2 + 2 * V).mul(c[2]);
        FloatVector d2 = FloatVector.fromArray(S, acc, r2 + 3 * V).mul(c[2]);
        FloatVector a3 = FloatVector.fromArray(S, acc, r3).mul(c[3]);
        FloatVector b3 = FloatVector.fromArray(S, acc, r3 + V).mul(c[3]);
        FloatVector c3 = FloatVector.fromArray(S, acc, r3 + 2 * V).mul(c[3]);
        FloatVector d3 = FloatVector.fromArray(S, acc, r3 + 3 * V).mul(c[3]);
        for (int j = 0, off = vo; j < keys; j++, off += dp) {
            FloatVector va = FloatVector.fromArray(S, v, off);
            FloatVector vb = FloatVector.fromArray(S, v, off + V);
            FloatVector vc = FloatVector.fromArray(S, v, off + 2 * V);
            FloatVector vd = FloatVector.fromArray(S, v, off + 3 * V);
            FloatVector p0 = FloatVector.broadcast(S, p[j]);
            a0 = va.fma(p0, a0);
            b0 = vb.fma(p0, b0);
            c0 = vc.fma(p0, c0);
            d0 = vd.fma(p0, d0);
            FloatVector p1 = FloatVector.broadcast(S, p[tile + j]);
            a1 = va.fma(p1, a1);
            b1 = vb.fma(p1, b1);
            c1 = vc.fma(p1, c1);
            d1 = vd.fma(p1, d1);
            FloatVector p2 = FloatVector.broadcast(S, p[2 * tile + j]);
            a2 = va.fma(p2, a2);
            b2 = vb.fma(p2, b2);
            c2 = vc.fma(p2, c2);
            d2 = vd.fma(p2, d2);
            FloatVector p3 = FloatVector.broadcast(S, p[3 * tile + j]);
            a3 = va.fma(p3, a3);
            b3 = vb.fma(p3, b3);
            c3 = vc.fma(p3, c3);
            d3 = vd.fma(p3, d3);
        }
        a0.intoArray(acc, a);
        b0.intoArray(acc, a + V);
        c0.intoArray(acc, a + 2 * V);
        d0.intoArray(acc, a + 3 * V);
        a1.intoArray(acc, r1);
        b1.intoArray(acc, r1 + V);
        c1.intoArray(acc, r1 + 2 * V);
        d1.intoArray(acc, r1 + 3 * V);
        a2.intoArray(acc, r2);
        b2.intoArray(acc, r2 + V);
        c2.intoArray(acc, r2 + 2 * V);
        d2.intoArray(acc, r2 + 3 * V);
        a3.intoArray(acc, r3);
        b3.intoArray(acc, r3 + V);
        c3.intoArray(acc, r3 + 2 * V);
        d3.intoArray(acc, r3 + 3 * V);
    }

    /** {@link #values2} for one vector of features. */
    private static void values1(
            float[] p, int tile, int keys, float[] v, int vo, int dp, float[] acc, int a, float[] c) {
        int r1 = a + dp, r2 = a + 2 * dp, r3 = a + 3 * dp;
        FloatVector a0 = FloatVector.fromArray(S, acc, a).mul(c[0]);
        FloatVector a1 = FloatVector.fromArray(S, acc, r1).mul(c[1]);
        FloatVector a2 = FloatVector.fromArray(S, acc, r2).mul(c[2]);
        FloatVector a3 = FloatVector.fromArray(S, acc, r3).mul(c[3]);
        for (int j = 0, off = vo; j < keys; j++, off += dp) {
            FloatVector va = FloatVector.fromArray(S, v, off);
            a0 = va.fma(FloatVector.broadcast(S, p[j]), a0);
            a1 = va.fma(FloatVector.broadcast(S, p[tile + j]), a1);
            a2 = va.fma(FloatVector.broadcast(S, p[2 * tile + j]), a2);
            a3 = va.fma(FloatVector.broadcast(S, p[3 * tile + j]), a3);
        }
        a0.intoArray(acc, a);
        a1.intoArray(acc, r1);
        a2.intoArray(acc, r2);
        a3.intoArray(acc, r3);
    }

    /** The largest of {@code a[off .. off + n)}. */
    private static float max(float[] a, int off, int n) {
        FloatVector m = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        int j = 0;
        for (int bound = S.loopBound(n); j < bound; j += V) {
            m = m.max(FloatVector.fromArray(S, a, off + j));
        }
        float r = m.reduceLanes(VectorOperators.MAX);
        for (; j < n; j++) {
            r = Math.max(r, a[off + j]);
        }
        return r;
    }
}
