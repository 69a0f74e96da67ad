package ai.fluxbatch.kernel.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Row-wise normalizations and element-wise activations over float arrays, vectorized with scalar tails.
 *
 * <p>Every result is independent of the JIT tier and of how a loop is split into chunks: sums across lanes use one
 * fixed tree ({@link #sumLanes}) instead of {@code reduceLanes(ADD)}, whose order the Vector API leaves open (its C2
 * intrinsic and its Java fallback may differ); exp and tanh are polynomials of exactly rounded operations, and the
 * scalar tails repeat the vector path's operations, so an element gives the same value in either.
 */
final class VectorMath {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final float SQRT_2_OVER_PI = (float) Math.sqrt(2.0 / Math.PI);

    private VectorMath() {}

    /** Butterfly shuffles for {@link #sumLanes}: lane i with lane i ^ h, for h = L/2 ... 1 (null where L <= h). */
    private static final VectorShuffle<Float> XOR8 = butterfly(8), XOR4 = butterfly(4), XOR2 = butterfly(2);

    private static final VectorShuffle<Float> XOR1 = butterfly(1);

    private static VectorShuffle<Float> butterfly(int h) {
        return S.length() > h ? VectorShuffle.fromOp(S, i -> i ^ h) : null;
    }

    /**
     * The sum of the lanes of {@code v} in one fixed pairwise order (lane i + lane i + L/2, then + L/4, ...), the same
     * in the interpreter, C1 and C2, unlike {@code reduceLanes(ADD)}: only lane-wise adds and exact shuffles, which C2
     * compiles to a few permute-and-add instructions. Unrolled (no loop over shuffles), so C2 inlines it into the
     * kernels and keeps the vector in registers.
     */
    static float sumLanes(FloatVector v) {
        if (S.length() > 16) {
            return sumWideLanes(v);
        }
        if (XOR8 != null) {
            v = v.add(v.rearrange(XOR8));
        }
        if (XOR4 != null) {
            v = v.add(v.rearrange(XOR4));
        }
        if (XOR2 != null) {
            v = v.add(v.rearrange(XOR2));
        }
        return v.add(v.rearrange(XOR1)).lane(0);
    }

    /** {@link #sumLanes} for vectors of more than 16 floats (ARM SVE): the same order, through an array. */
    private static float sumWideLanes(FloatVector v) {
        float[] lanes = v.toArray();
        for (int half = lanes.length / 2; half >= 1; half /= 2) {
            for (int i = 0; i < half; i++) {
                lanes[i] += lanes[i + half];
            }
        }
        return lanes[0];
    }

    static float sum(float[] a, int off, int len) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            acc = acc.add(FloatVector.fromArray(S, a, off + i));
        }
        float s = sumLanes(acc);
        for (; i < len; i++) {
            s += a[off + i];
        }
        return s;
    }

    static float sumOfSquares(float[] a, int off, int len, float center) {
        FloatVector acc = FloatVector.zero(S);
        FloatVector c = FloatVector.broadcast(S, center);
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector d = FloatVector.fromArray(S, a, off + i).sub(c);
            acc = d.fma(d, acc);
        }
        float s = sumLanes(acc);
        for (; i < len; i++) {
            float d = a[off + i] - center;
            s = Math.fma(d, d, s);
        }
        return s;
    }

    /** {@code out = (x - center) * factor [* scale]} over one row; scale may be null. */
    static void scaleRow(float[] x, int off, int len, float center, float factor, float[] scale, float[] out) {
        FloatVector c = FloatVector.broadcast(S, center);
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, off + i).sub(c).mul(factor);
            if (scale != null) {
                v = v.mul(FloatVector.fromArray(S, scale, i));
            }
            v.intoArray(out, off + i);
        }
        for (; i < len; i++) {
            float v = (x[off + i] - center) * factor;
            out[off + i] = scale == null ? v : v * scale[i];
        }
    }

    static void layerNormRow(float[] x, int off, int len, float eps, float[] out) {
        float mean = sum(x, off, len) / len;
        float var = sumOfSquares(x, off, len, mean) / len;
        scaleRow(x, off, len, mean, (float) (1.0 / Math.sqrt(var + eps)), null, out);
    }

    static void rmsNormRow(float[] x, int off, int len, float[] scale, float eps, float[] out) {
        float ms = sumOfSquares(x, off, len, 0f) / len;
        scaleRow(x, off, len, 0f, (float) (1.0 / Math.sqrt(ms + eps)), scale, out);
    }

    static void gelu(float[] x, float[] out, int from, int to) {
        int i = from;
        for (int bound = from + S.loopBound(to - from); i < bound; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            FloatVector inner = v.mul(v).mul(v).mul(0.044715f).add(v).mul(SQRT_2_OVER_PI);
            v.mul(0.5f).mul(tanh(inner).add(1f)).intoArray(out, i);
        }
        for (; i < to; i++) {
            out[i] = geluScalar(x[i]);
        }
    }

    /** The tanh approximation of GELU, rounded operation by operation as {@link #gelu}'s vector path. */
    static float geluScalar(float v) {
        float inner = (v * v * v * 0.044715f + v) * SQRT_2_OVER_PI;
        return v * 0.5f * (tanh(inner) + 1f);
    }

    /** {@code x * sigmoid(1.702 x)}. */
    static void quickGelu(float[] x, float[] out, int from, int to) {
        int i = from;
        for (int bound = from + S.loopBound(to - from); i < bound; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            v.div(exp(v.mul(-1.702f)).add(1f)).intoArray(out, i);
        }
        for (; i < to; i++) {
            out[i] = x[i] / (exp(x[i] * -1.702f) + 1f);
        }
    }

    static void mul(float[] a, float[] b, float[] out, int from, int to) {
        int i = from;
        for (int bound = from + S.loopBound(to - from); i < bound; i += S.length()) {
            FloatVector.fromArray(S, a, i).mul(FloatVector.fromArray(S, b, i)).intoArray(out, i);
        }
        for (; i < to; i++) {
            out[i] = a[i] * b[i];
        }
    }

    /** {@code x[off + i] = x[off + i] * w[i] + b[i]} in place. */
    static void affineRow(float[] x, int off, int len, float[] w, float[] b) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector.fromArray(S, x, off + i)
                    .fma(FloatVector.fromArray(S, w, i), FloatVector.fromArray(S, b, i))
                    .intoArray(x, off + i);
        }
        for (; i < len; i++) {
            x[off + i] = Math.fma(x[off + i], w[i], b[i]);
        }
    }

    static void silu(float[] x, float[] out, int from, int to) {
        int i = from;
        for (int bound = from + S.loopBound(to - from); i < bound; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            v.div(exp(v.neg()).add(1f)).intoArray(out, i);
        }
        for (; i < to; i++) {
            out[i] = x[i] / (exp(-x[i]) + 1f);
        }
    }

    static void add(float[] a, float[] b, float[] out, int from, int to) {
        int i = from;
        for (int bound = from + S.loopBound(to - from); i < bound; i += S.length()) {
            FloatVector.fromArray(S, a, i).add(FloatVector.fromArray(S, b, i)).intoArray(out, i);
        }
        for (; i < to; i++) {
            out[i] = a[i] + b[i];
        }
    }

    /** {@code out[i] = x[xo+i] * (1 + scale[so+i]) + shift[so+i]} for one row. */
    static void modulateRow(float[] x, int xo, float[] shift, float[] scale, int so, int len, float[] out) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector s = FloatVector.fromArray(S, scale, so + i).add(1f);
            FloatVector.fromArray(S, x, xo + i)
                    .fma(s, FloatVector.fromArray(S, shift, so + i))
                    .intoArray(out, xo + i);
        }
        for (; i < len; i++) {
            out[xo + i] = Math.fma(x[xo + i], scale[so + i] + 1f, shift[so + i]);
        }
    }

    /** {@code out[i] = x[xo+i] + gate[go+i] * y[xo+i]} for one row. */
    static void gatedAddRow(float[] x, float[] gate, int go, float[] y, int xo, int len, float[] out) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector.fromArray(S, y, xo + i)
                    .fma(FloatVector.fromArray(S, gate, go + i), FloatVector.fromArray(S, x, xo + i))
                    .intoArray(out, xo + i);
        }
        for (; i < len; i++) {
            out[xo + i] = Math.fma(y[xo + i], gate[go + i], x[xo + i]);
        }
    }

    /** {@code sum((a[i] - center) * b[i])} over one row of both, fused multiply-adds in lane order. */
    static float centeredDot(float[] a, float[] b, int off, int len, float center) {
        FloatVector acc = FloatVector.zero(S);
        FloatVector c = FloatVector.broadcast(S, center);
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            acc = FloatVector.fromArray(S, a, off + i).sub(c).fma(FloatVector.fromArray(S, b, off + i), acc);
        }
        float s = sumLanes(acc);
        for (; i < len; i++) {
            s = Math.fma(a[off + i] - center, b[off + i], s);
        }
        return s;
    }

    /**
     * The gradient of {@link #layerNormRow} (no affine parameters) for one row: with {@code xhat = (x - mean) * rstd},
     * {@code dx = rstd * (dy - mean(dy) - xhat * mean(dy * xhat))}, mean and rstd recomputed as the forward does.
     */
    static void layerNormBackwardRow(float[] x, float[] dy, int off, int len, float eps, float[] out) {
        float mean = sum(x, off, len) / len;
        float var = sumOfSquares(x, off, len, mean) / len;
        float rstd = (float) (1.0 / Math.sqrt(var + eps));
        float dyMean = sum(dy, off, len) / len;
        // xhat * mean(dy * xhat) = (x - mean) * rstd^2 * sum(dy * (x - mean)) / len
        float coef = rstd * rstd * centeredDot(x, dy, off, len, mean) / len;
        FloatVector c = FloatVector.broadcast(S, mean);
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector g = FloatVector.fromArray(S, dy, off + i).sub(dyMean);
            FloatVector.fromArray(S, x, off + i)
                    .sub(c)
                    .fma(FloatVector.broadcast(S, -coef), g)
                    .mul(rstd)
                    .intoArray(out, off + i);
        }
        for (; i < len; i++) {
            out[off + i] = Math.fma(x[off + i] - mean, -coef, dy[off + i] - dyMean) * rstd;
        }
    }

    /**
     * The gradient of {@link #rmsNormRow} with respect to x for one row ({@code scale} frozen): with {@code g = dy *
     * scale} and {@code r = 1 / sqrt(mean(x^2) + eps)}, {@code dx = r * (g - x * r^2 * mean(g * x))}.
     */
    static void rmsNormBackwardRow(float[] x, float[] dy, int off, int len, float[] scale, float eps, float[] out) {
        float r = (float) (1.0 / Math.sqrt(sumOfSquares(x, off, len, 0f) / len + eps));
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector g = FloatVector.fromArray(S, dy, off + i).mul(FloatVector.fromArray(S, scale, i));
            acc = g.fma(FloatVector.fromArray(S, x, off + i), acc);
        }
        float gx = sumLanes(acc);
        for (; i < len; i++) {
            gx = Math.fma(dy[off + i] * scale[i], x[off + i], gx);
        }
        float coef = r * r * gx / len;
        i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector g = FloatVector.fromArray(S, dy, off + i).mul(FloatVector.fromArray(S, scale, i));
            FloatVector.fromArray(S, x, off + i)
                    .fma(FloatVector.broadcast(S, -coef), g)
                    .mul(r)
                    .intoArray(out, off + i);
        }
        for (; i < len; i++) {
            out[off + i] = Math.fma(x[off + i], -coef, dy[off + i] * scale[i]) * r;
        }
    }

    /**
     * {@code out = dy * gelu'(x)} for the tanh approximation: with {@code t = tanh(inner)} as in {@link #gelu},
     * {@code gelu' = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)}.
     */
    static void geluBackward(float[] x, float[] dy, float[] out, int from, int to) {
        int i = from;
        for (int bound = from + S.loopBound(to - from); i < bound; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            FloatVector v2 = v.mul(v);
            FloatVector t = tanh(v2.mul(v).mul(0.044715f).add(v).mul(SQRT_2_OVER_PI));
            FloatVector dInner = v2.mul(3 * 0.044715f).add(1f).mul(SQRT_2_OVER_PI);
            FloatVector slope =
                    FloatVector.broadcast(S, 1f).sub(t.mul(t)).mul(dInner).mul(v);
            t.add(1f).add(slope).mul(0.5f).mul(FloatVector.fromArray(S, dy, i)).intoArray(out, i);
        }
        for (; i < to; i++) {
            float v = x[i], v2 = v * v;
            float t = tanh((v2 * v * 0.044715f + v) * SQRT_2_OVER_PI);
            float dInner = (v2 * (3 * 0.044715f) + 1f) * SQRT_2_OVER_PI;
            float slope = (1f - t * t) * dInner * v;
            out[i] = (t + 1f + slope) * 0.5f * dy[i];
        }
    }

    /** {@code out = dy * silu'(x)}: with {@code s = sigmoid(x)}, {@code silu' = s (1 + x (1 - s))}. */
    static void siluBackward(float[] x, float[] dy, float[] out, int from, int to) {
        int i = from;
        for (int bound = from + S.loopBound(to - from); i < bound; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            FloatVector s = FloatVector.broadcast(S, 1f).div(exp(v.neg()).add(1f));
            FloatVector.broadcast(S, 1f)
                    .sub(s)
                    .mul(v)
                    .add(1f)
                    .mul(s)
                    .mul(FloatVector.fromArray(S, dy, i))
                    .intoArray(out, i);
        }
        for (; i < to; i++) {
            float s = 1f / (exp(-x[i]) + 1f);
            out[i] = ((1f - s) * x[i] + 1f) * s * dy[i];
        }
    }

    /** {@code out[oo + i] = a[ao + i] + b[bo + i]} for one row ({@code out} may be {@code a}). */
    static void addRow(float[] a, int ao, float[] b, int bo, float[] out, int oo, int len) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector.fromArray(S, a, ao + i)
                    .add(FloatVector.fromArray(S, b, bo + i))
                    .intoArray(out, oo + i);
        }
        for (; i < len; i++) {
            out[oo + i] = a[ao + i] + b[bo + i];
        }
    }

    /** {@code out[oo + i] = a[ao + i] * b[bo + i]} for one row. */
    static void mulRow(float[] a, int ao, float[] b, int bo, float[] out, int oo, int len) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector.fromArray(S, a, ao + i)
                    .mul(FloatVector.fromArray(S, b, bo + i))
                    .intoArray(out, oo + i);
        }
        for (; i < len; i++) {
            out[oo + i] = a[ao + i] * b[bo + i];
        }
    }

    /** {@code out[oo + i] = a[ao + i] * (1 + b[bo + i])} for one row. */
    static void mulOnePlusRow(float[] a, int ao, float[] b, int bo, float[] out, int oo, int len) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector.fromArray(S, a, ao + i)
                    .mul(FloatVector.fromArray(S, b, bo + i).add(1f))
                    .intoArray(out, oo + i);
        }
        for (; i < len; i++) {
            out[oo + i] = a[ao + i] * (b[bo + i] + 1f);
        }
    }

    /** {@code acc[co + i] += a[ao + i]} for one row. */
    static void addTo(float[] a, int ao, float[] acc, int co, int len) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector.fromArray(S, acc, co + i)
                    .add(FloatVector.fromArray(S, a, ao + i))
                    .intoArray(acc, co + i);
        }
        for (; i < len; i++) {
            acc[co + i] += a[ao + i];
        }
    }

    /** {@code acc[co + i] = fma(a[ao + i], b[bo + i], acc[co + i])} for one row. */
    static void mulAddTo(float[] a, int ao, float[] b, int bo, float[] acc, int co, int len) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector.fromArray(S, a, ao + i)
                    .fma(FloatVector.fromArray(S, b, bo + i), FloatVector.fromArray(S, acc, co + i))
                    .intoArray(acc, co + i);
        }
        for (; i < len; i++) {
            acc[co + i] = Math.fma(a[ao + i], b[bo + i], acc[co + i]);
        }
    }

    /**
     * e^x to about 2 ulp from add, multiply and bit operations only. The Vector API's own EXP runs a different
     * implementation before and after JIT compilation (its fallback and the SVML intrinsic), so the same seed could
     * give a different image in a cold JVM; these basic operations round identically in both.
     */
    static FloatVector exp(FloatVector x) {
        x = x.max(-87.3f).min(88.7f);
        // round to nearest integer: 1.5 * 2^23 pushes the fraction out, leaving n in the low mantissa bits of t
        FloatVector t = x.fma(FloatVector.broadcast(S, 1.44269504f), FloatVector.broadcast(S, 12582912f));
        FloatVector n = t.sub(12582912f);
        FloatVector r = n.fma(FloatVector.broadcast(S, -0.693359375f), x);
        r = n.fma(FloatVector.broadcast(S, 2.12194440e-4f), r);
        FloatVector p = FloatVector.broadcast(S, 1.9875691500e-4f);
        p = p.fma(r, FloatVector.broadcast(S, 1.3981999507e-3f));
        p = p.fma(r, FloatVector.broadcast(S, 8.3334519073e-3f));
        p = p.fma(r, FloatVector.broadcast(S, 4.1665795894e-2f));
        p = p.fma(r, FloatVector.broadcast(S, 1.6666665459e-1f));
        p = p.fma(r, FloatVector.broadcast(S, 5.0000001201e-1f));
        p = p.fma(r.mul(r), r).add(1f);
        // 2^n as float bits: (n + 127) << 23, with n read from t's bits (0x4B400000 + n) instead of an F2I
        // conversion, which C2 on Java 17 does not compile for every vector size (same integers, far faster)
        IntVector bits = t.reinterpretAsInts().sub(0x4B400000 - 127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    /** tanh(x) = 1 - 2 / (e^{2x} + 1), deterministic like {@link #exp}. */
    static FloatVector tanh(FloatVector x) {
        return FloatVector.broadcast(S, 1f)
                .sub(FloatVector.broadcast(S, 2f).div(exp(x.add(x)).add(1f)));
    }

    /** One lane of {@link #exp(FloatVector)}, bit for bit: the same operations in the same order. */
    static float exp(float x) {
        x = Math.min(Math.max(x, -87.3f), 88.7f);
        float n = Math.fma(x, 1.44269504f, 12582912f) - 12582912f;
        float r = Math.fma(n, -0.693359375f, x);
        r = Math.fma(n, 2.12194440e-4f, r);
        float p = 1.9875691500e-4f;
        p = Math.fma(p, r, 1.3981999507e-3f);
        p = Math.fma(p, r, 8.3334519073e-3f);
        p = Math.fma(p, r, 4.1665795894e-2f);
        p = Math.fma(p, r, 1.6666665459e-1f);
        p = Math.fma(p, r, 5.0000001201e-1f);
        p = Math.fma(p, r * r, r) + 1f;
        return p * Float.intBitsToFloat(((int) n + 127) << 23);
    }

    /** One lane of {@link #tanh(FloatVector)}, bit for bit. */
    static float tanh(float x) {
        return 1f - 2f / (exp(x + x) + 1f);
    }

    /** {@code a[i] = exp(a[i] - shift)} for {@code i < len}, in place; returns their sum. */
    static float expShifted(float[] a, int len, float shift) {
        return expShifted(a, 0, len, shift);
    }

    /**
     * {@code a[from + i] = exp(a[from + i] - shift)} for {@code i < len}, in place; returns their sum, in the same order
     * as for a run starting at index 0.
     */
    static float expShifted(float[] a, int from, int len, float shift) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector e = exp(FloatVector.fromArray(S, a, from + i).sub(shift));
            e.intoArray(a, from + i);
            acc = acc.add(e);
        }
        float sum = sumLanes(acc);
        for (; i < len; i++) {
            a[from + i] = exp(a[from + i] - shift);
            sum += a[from + i];
        }
        return sum;
    }

    /** {@code acc[ao + i] += p * v[vo + i]}. */
    static void axpy(float p, float[] v, int vo, float[] acc, int ao, int len) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector.fromArray(S, v, vo + i)
                    .fma(FloatVector.broadcast(S, p), FloatVector.fromArray(S, acc, ao + i))
                    .intoArray(acc, ao + i);
        }
        for (; i < len; i++) {
            acc[ao + i] = Math.fma(v[vo + i], p, acc[ao + i]);
        }
    }
}
