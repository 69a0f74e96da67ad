package ai.fluxbatch.kernel.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** Row-wise normalizations and element-wise activations over float arrays, vectorized with scalar tails. */
final class VectorMath {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final float SQRT_2_OVER_PI = (float) Math.sqrt(2.0 / Math.PI);

    private VectorMath() {
    }

    static float sum(float[] a, int off, int len) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            acc = acc.add(FloatVector.fromArray(S, a, off + i));
        }
        float s = acc.reduceLanes(VectorOperators.ADD);
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
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < len; i++) {
            float d = a[off + i] - center;
            s += d * d;
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

    static float geluScalar(float v) {
        return 0.5f * v * (1f + (float) Math.tanh(SQRT_2_OVER_PI * (v + 0.044715f * v * v * v)));
    }

    /** {@code x * sigmoid(1.702 x)}. */
    static void quickGelu(float[] x, float[] out, int from, int to) {
        int i = from;
        for (int bound = from + S.loopBound(to - from); i < bound; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            v.div(exp(v.mul(-1.702f)).add(1f)).intoArray(out, i);
        }
        for (; i < to; i++) {
            out[i] = x[i] / (1f + (float) Math.exp(-1.702f * x[i]));
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
            FloatVector.fromArray(S, x, off + i).fma(FloatVector.fromArray(S, w, i), FloatVector.fromArray(S, b, i))
                    .intoArray(x, off + i);
        }
        for (; i < len; i++) {
            x[off + i] = x[off + i] * w[i] + b[i];
        }
    }

    static void silu(float[] x, float[] out, int from, int to) {
        int i = from;
        for (int bound = from + S.loopBound(to - from); i < bound; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            v.div(exp(v.neg()).add(1f)).intoArray(out, i);
        }
        for (; i < to; i++) {
            out[i] = x[i] / (1f + (float) Math.exp(-x[i]));
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
            FloatVector.fromArray(S, x, xo + i).fma(s, FloatVector.fromArray(S, shift, so + i)).intoArray(out, xo + i);
        }
        for (; i < len; i++) {
            out[xo + i] = x[xo + i] * (1f + scale[so + i]) + shift[so + i];
        }
    }

    /** {@code out[i] = x[xo+i] + gate[go+i] * y[xo+i]} for one row. */
    static void gatedAddRow(float[] x, float[] gate, int go, float[] y, int xo, int len, float[] out) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector.fromArray(S, y, xo + i).fma(FloatVector.fromArray(S, gate, go + i),
                    FloatVector.fromArray(S, x, xo + i)).intoArray(out, xo + i);
        }
        for (; i < len; i++) {
            out[xo + i] = x[xo + i] + gate[go + i] * y[xo + i];
        }
    }

    /**
     * e^x to about 2 ulp from add, multiply and bit operations only. The Vector API's own EXP runs a different
     * implementation before and after JIT compilation (its fallback and the SVML intrinsic), so the same seed could
     * give a different image in a cold JVM; these basic operations round identically in both.
     */
    static FloatVector exp(FloatVector x) {
        x = x.max(-87.3f).min(88.7f);
        FloatVector n = x.fma(FloatVector.broadcast(S, 1.44269504f), FloatVector.broadcast(S, 12582912f))
                .sub(12582912f); // round to nearest integer: 1.5 * 2^23 pushes the fraction out
        FloatVector r = n.fma(FloatVector.broadcast(S, -0.693359375f), x);
        r = n.fma(FloatVector.broadcast(S, 2.12194440e-4f), r);
        FloatVector p = FloatVector.broadcast(S, 1.9875691500e-4f);
        p = p.fma(r, FloatVector.broadcast(S, 1.3981999507e-3f));
        p = p.fma(r, FloatVector.broadcast(S, 8.3334519073e-3f));
        p = p.fma(r, FloatVector.broadcast(S, 4.1665795894e-2f));
        p = p.fma(r, FloatVector.broadcast(S, 1.6666665459e-1f));
        p = p.fma(r, FloatVector.broadcast(S, 5.0000001201e-1f));
        p = p.fma(r.mul(r), r).add(1f);
        IntVector bits = ((IntVector) n.convert(VectorOperators.F2I, 0)).add(127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    /** tanh(x) = 1 - 2 / (e^{2x} + 1), deterministic like {@link #exp}. */
    static FloatVector tanh(FloatVector x) {
        return FloatVector.broadcast(S, 1f).sub(FloatVector.broadcast(S, 2f).div(exp(x.add(x)).add(1f)));
    }

    /** {@code a[i] = exp(a[i] - shift)} for {@code i < len}, in place; returns their sum. */
    static float expShifted(float[] a, int len, float shift) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector e = exp(FloatVector.fromArray(S, a, i).sub(shift));
            e.intoArray(a, i);
            acc = acc.add(e);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < len; i++) {
            a[i] = (float) Math.exp(a[i] - shift);
            sum += a[i];
        }
        return sum;
    }

    /** {@code acc[ao + i] += p * v[vo + i]}. */
    static void axpy(float p, float[] v, int vo, float[] acc, int ao, int len) {
        int i = 0;
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            FloatVector.fromArray(S, v, vo + i).fma(FloatVector.broadcast(S, p), FloatVector.fromArray(S, acc, ao + i))
                    .intoArray(acc, ao + i);
        }
        for (; i < len; i++) {
            acc[ao + i] += p * v[vo + i];
        }
    }
}
