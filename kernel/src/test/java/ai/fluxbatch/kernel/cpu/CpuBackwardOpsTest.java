package ai.fluxbatch.kernel.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Backend.AttentionGrads;
import ai.fluxbatch.kernel.Backend.GatedAddGrads;
import ai.fluxbatch.kernel.Backend.ModulateGrads;
import ai.fluxbatch.kernel.Backend.TernaryLinearGrads;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TestData;
import java.util.Arrays;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The CPU backend's reverse-mode operations against central differences: for each operation a scalar loss
 * {@code sum(w * op(inputs))} with fixed random weights w, evaluated in double by a reference of the forward formula
 * written here (itself checked against the backend's forward), differentiated numerically input by input and compared
 * with the backend's float gradient. Sizes cover batches above 1, several heads, odd lengths and the scalar tails of
 * the vector loops (lengths that are not multiples of 16). Then the same bits for 1 and 3 threads, the ternary
 * scale's special cases and the argument checks.
 */
class CpuBackwardOpsTest {
    private static final CpuBackend ONE = new CpuBackend(1);
    private static final CpuBackend THREE = new CpuBackend(3);
    /** Central-difference step: truncation error about H^2, rounding about 1e-16 / H, both far below the tolerance. */
    private static final double H = 1e-5;
    /** Relative L2 distance allowed between the float gradient and the numerical one. */
    private static final double TOL = 1e-4;

    private final Random random = new Random(42);

    @AfterAll
    static void close() {
        ONE.close();
        THREE.close();
    }

    // ---- numerical differentiation

    /** Central differences of {@code loss} with respect to every element of {@code inputs[which]}. */
    private static double[] numericGradient(Function<double[][], Double> loss, double[][] inputs, int which) {
        double[] x = inputs[which];
        double[] g = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double keep = x[i];
            x[i] = keep + H;
            double up = loss.apply(inputs);
            x[i] = keep - H;
            double down = loss.apply(inputs);
            x[i] = keep;
            g[i] = (up - down) / (2 * H);
        }
        return g;
    }

    /** {@code sum(w * y)}. */
    private static double weighted(double[] w, double[] y) {
        assertEquals(w.length, y.length, "loss weights");
        double s = 0;
        for (int i = 0; i < y.length; i++) {
            s += w[i] * y[i];
        }
        return s;
    }

    private static double relativeL2(double[] want, float[] got) {
        assertEquals(want.length, got.length, "length");
        double num = 0, den = 0;
        for (int i = 0; i < want.length; i++) {
            double d = want[i] - got[i];
            num += d * d;
            den += want[i] * want[i];
        }
        assertTrue(den > 0, "the reference is all zeros: the check would prove nothing");
        return Math.sqrt(num / den);
    }

    private static void assertGradient(String what, double[] want, Tensor got) {
        double err = relativeL2(want, ONE.download(got));
        assertTrue(err <= TOL, what + ": relative L2 error " + err + " > " + TOL);
    }

    /** The backend's forward agrees with the double reference, so the numerical gradient is that of the op. */
    private static void assertForward(String what, double[] reference, Tensor got) {
        double err = relativeL2(reference, ONE.download(got));
        assertTrue(err <= 1e-5, what + " forward vs its double reference: relative L2 error " + err);
    }

    private float[] randn(int... shape) {
        return TestData.randn(random, shape);
    }

    private static double[] d(float[] a) {
        double[] r = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            r[i] = a[i];
        }
        return r;
    }

    private byte[] randomCodes(int out, int in) {
        byte[] codes = new byte[out * in];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (random.nextInt(3) - 1);
        }
        return codes;
    }

    // ---- double references of the forward formulas

    private static double[] linearRef(double[] x, double[] w, int m, int n, int k) {
        double[] y = new double[m * n];
        for (int r = 0; r < m; r++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int i = 0; i < k; i++) {
                    s += x[r * k + i] * w[j * k + i];
                }
                y[r * n + j] = s;
            }
        }
        return y;
    }

    private static double[] ternaryRef(
            double[] x, byte[] codes, double[] scale, double[] bias, int m, int out, int in) {
        double[] y = new double[m * out];
        for (int r = 0; r < m; r++) {
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int k = 0; k < in; k++) {
                    s += x[r * in + k] * codes[o * in + k];
                }
                y[r * out + o] = s * scale[o] + bias[o];
            }
        }
        return y;
    }

    private static double[] layerNormRef(double[] x, int c, double eps) {
        double[] y = new double[x.length];
        for (int r = 0; r < x.length / c; r++) {
            double mean = 0, var = 0;
            for (int i = 0; i < c; i++) {
                mean += x[r * c + i];
            }
            mean /= c;
            for (int i = 0; i < c; i++) {
                var += (x[r * c + i] - mean) * (x[r * c + i] - mean);
            }
            double rstd = 1 / Math.sqrt(var / c + eps);
            for (int i = 0; i < c; i++) {
                y[r * c + i] = (x[r * c + i] - mean) * rstd;
            }
        }
        return y;
    }

    private static double[] rmsNormRef(double[] x, double[] scale, int c, double eps) {
        double[] y = new double[x.length];
        for (int r = 0; r < x.length / c; r++) {
            double ms = 0;
            for (int i = 0; i < c; i++) {
                ms += x[r * c + i] * x[r * c + i];
            }
            double inv = 1 / Math.sqrt(ms / c + eps);
            for (int i = 0; i < c; i++) {
                y[r * c + i] = x[r * c + i] * inv * scale[i];
            }
        }
        return y;
    }

    private static double[] geluRef(double[] x) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double v = x[i];
            y[i] = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
        }
        return y;
    }

    private static double[] siluRef(double[] x) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] / (1 + Math.exp(-x[i]));
        }
        return y;
    }

    private static double[] modulateRef(double[] x, double[] shift, double[] scale, int l, int c) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            int bc = (i / (l * c)) * c + i % c;
            y[i] = (1 + scale[bc]) * x[i] + shift[bc];
        }
        return y;
    }

    private static double[] gatedAddRef(double[] x, double[] gate, double[] y, int l, int c) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] + gate[(i / (l * c)) * c + i % c] * y[i];
        }
        return out;
    }

    /** {@code x [rows, H, D]}, {@code pe [rows, D/2, 2, 2]}. */
    private static double[] ropeRef(double[] x, double[] pe, int h, int d) {
        double[] y = new double[x.length];
        for (int row = 0; row < x.length / (h * d); row++) {
            for (int hi = 0; hi < h; hi++) {
                for (int i = 0; i < d / 2; i++) {
                    int xo = (row * h + hi) * d + 2 * i, p = (row * (d / 2) + i) * 4;
                    y[xo] = pe[p] * x[xo] + pe[p + 1] * x[xo + 1];
                    y[xo + 1] = pe[p + 2] * x[xo] + pe[p + 3] * x[xo + 1];
                }
            }
        }
        return y;
    }

    private static double[] attentionRef(double[] q, double[] k, double[] v, int b, int l, int h, int d, double scale) {
        double[] out = new double[q.length];
        double[] p = new double[l];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                for (int i = 0; i < l; i++) {
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < l; j++) {
                        double s = 0;
                        for (int e = 0; e < d; e++) {
                            s += q[((bi * l + i) * h + hi) * d + e] * k[((bi * l + j) * h + hi) * d + e];
                        }
                        p[j] = s * scale;
                        max = Math.max(max, p[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < l; j++) {
                        p[j] = Math.exp(p[j] - max);
                        sum += p[j];
                    }
                    for (int j = 0; j < l; j++) {
                        for (int e = 0; e < d; e++) {
                            out[((bi * l + i) * h + hi) * d + e] += p[j] / sum * v[((bi * l + j) * h + hi) * d + e];
                        }
                    }
                }
            }
        }
        return out;
    }

    // ---- gradients against central differences

    @Test
    void linearBackwardMatchesCentralDifferences() {
        int b = 2, l = 7, n = 37, k = 45;
        float[] x = randn(b, l, k), w = randn(n, k), lw = randn(b, l, n);
        assertForward(
                "linear",
                linearRef(d(x), d(w), b * l, n, k),
                ONE.linear(ONE.upload(x, b, l, k), ONE.upload(w, n, k), null));
        double[] want = numericGradient(
                in -> weighted(d(lw), linearRef(in[0], in[1], b * l, n, k)), new double[][] {d(x), d(w)}, 0);
        Tensor got = ONE.linearBackward(ONE.upload(lw, b, l, n), ONE.upload(w, n, k));
        assertArrayEquals(new int[] {b, l, k}, got.shape());
        assertGradient("linearBackward", want, got);
    }

    @Test
    void ternaryLinearBackwardMatchesCentralDifferencesWithAZeroScaleChannel() {
        int b = 2, l = 7, out = 37, in = 70; // 70 inputs: a second tile of columns, chunks past the last one
        byte[] codes = randomCodes(out, in);
        float[] x = randn(b, l, in), scale = randn(out), bias = randn(out), lw = randn(b, l, out);
        scale[3] = 0f;
        Tensor wt = ONE.uploadTernary(TestData.hfPack(codes, out, in), out, in, scale);
        assertForward(
                "ternaryLinear",
                ternaryRef(d(x), codes, d(scale), d(bias), b * l, out, in),
                ONE.ternaryLinear(ONE.upload(x, b, l, in), wt, ONE.upload(bias, out)));
        Function<double[][], Double> loss = v -> weighted(d(lw), ternaryRef(v[0], codes, v[1], v[2], b * l, out, in));
        double[][] at = {d(x), d(scale), d(bias)};
        TernaryLinearGrads g = ONE.ternaryLinearBackward(ONE.upload(x, b, l, in), wt, ONE.upload(lw, b, l, out), true);
        assertArrayEquals(new int[] {b, l, in}, g.input().shape());
        assertArrayEquals(new int[] {out}, g.scale().shape());
        assertArrayEquals(new int[] {out}, g.bias().shape());
        assertGradient("ternary input", numericGradient(loss, at, 0), g.input());
        double[] wantScale = numericGradient(loss, at, 1);
        assertGradient("ternary scale", wantScale, g.scale());
        assertGradient("ternary bias", numericGradient(loss, at, 2), g.bias());
        // the zero channel still gets its gradient sum(dy * x . codes^T), not a 0 or NaN from dividing by the scale
        float zeroChannel = ONE.download(g.scale())[3];
        assertTrue(Math.abs(wantScale[3]) > 1e-3, "the test's zero channel has a vanishing gradient " + wantScale[3]);
        assertEquals(wantScale[3], zeroChannel, 1e-4 * (1 + Math.abs(wantScale[3])), "scale gradient of channel 3");

        TernaryLinearGrads noInput =
                ONE.ternaryLinearBackward(ONE.upload(x, b, l, in), wt, ONE.upload(lw, b, l, out), false);
        assertNull(noInput.input());
        assertArrayEquals(ONE.download(g.scale()), ONE.download(noInput.scale()));
        assertArrayEquals(ONE.download(g.bias()), ONE.download(noInput.bias()));
    }

    /**
     * Beyond the sizes central differences can afford: more rows than one row tile (256), more output channels than
     * one block (128) and an input width past a whole number of column tiles, against the gradient formulas in double.
     */
    @Test
    void ternaryLinearBackwardMatchesTheDoubleFormulasOnLargerShapes() {
        int m = 300, out = 150, in = 83;
        byte[] codes = randomCodes(out, in);
        float[] x = randn(m, in), scale = randn(out), dy = randn(m, out);
        Tensor wt = THREE.uploadTernary(TestData.hfPack(codes, out, in), out, in, scale);
        TernaryLinearGrads g = THREE.ternaryLinearBackward(THREE.upload(x, m, in), wt, THREE.upload(dy, m, out), true);
        double[] dx = new double[m * in], ds = new double[out], db = new double[out];
        for (int r = 0; r < m; r++) {
            for (int o = 0; o < out; o++) {
                double z = 0;
                for (int k = 0; k < in; k++) {
                    z += (double) x[r * in + k] * codes[o * in + k];
                    dx[r * in + k] += (double) dy[r * out + o] * scale[o] * codes[o * in + k];
                }
                ds[o] += dy[r * out + o] * z;
                db[o] += dy[r * out + o];
            }
        }
        assertGradient("input", dx, g.input());
        assertGradient("scale", ds, g.scale());
        assertGradient("bias", db, g.bias());
    }

    @Test
    void allZeroScalesStillGiveScaleGradientsAndAZeroInputGradient() {
        int m = 9, out = 21, in = 35;
        byte[] codes = randomCodes(out, in);
        float[] x = randn(m, in), dy = randn(m, out);
        Tensor wt = ONE.uploadTernary(TestData.hfPack(codes, out, in), out, in, new float[out]);
        TernaryLinearGrads g = ONE.ternaryLinearBackward(ONE.upload(x, m, in), wt, ONE.upload(dy, m, out), true);
        assertArrayEquals(new float[m * in], ONE.download(g.input()));
        double[] ds = new double[out];
        for (int r = 0; r < m; r++) {
            for (int o = 0; o < out; o++) {
                double z = 0;
                for (int k = 0; k < in; k++) {
                    z += (double) x[r * in + k] * codes[o * in + k];
                }
                ds[o] += dy[r * out + o] * z;
            }
        }
        assertGradient("scale", ds, g.scale());
    }

    @Test
    void layerNormBackwardMatchesCentralDifferences() {
        int b = 2, l = 5, c = 37;
        float eps = 1e-6f;
        float[] x = randn(b, l, c), lw = randn(b, l, c);
        for (int i = 0; i < c; i++) {
            x[i] = x[i] * 3f + 2f; // one row off centre and wider
        }
        assertForward("layerNorm", layerNormRef(d(x), c, eps), ONE.layerNorm(ONE.upload(x, b, l, c), eps));
        double[] want = numericGradient(in -> weighted(d(lw), layerNormRef(in[0], c, eps)), new double[][] {d(x)}, 0);
        assertGradient(
                "layerNormBackward", want, ONE.layerNormBackward(ONE.upload(x, b, l, c), ONE.upload(lw, b, l, c), eps));
    }

    @Test
    void rmsNormBackwardMatchesCentralDifferences() {
        int b = 2, l = 5, c = 37;
        float eps = 1e-6f;
        float[] x = randn(b, l, c), s = randn(c), lw = randn(b, l, c);
        assertForward(
                "rmsNorm", rmsNormRef(d(x), d(s), c, eps), ONE.rmsNorm(ONE.upload(x, b, l, c), ONE.upload(s, c), eps));
        double[] want =
                numericGradient(in -> weighted(d(lw), rmsNormRef(in[0], d(s), c, eps)), new double[][] {d(x)}, 0);
        assertGradient(
                "rmsNormBackward",
                want,
                ONE.rmsNormBackward(ONE.upload(x, b, l, c), ONE.upload(s, c), ONE.upload(lw, b, l, c), eps));
    }

    @Test
    void geluAndSiluBackwardMatchCentralDifferences() {
        float[] x = randn(3, 37), lw = randn(3, 37);
        for (int i = 0; i < x.length; i += 5) {
            x[i] *= 4f; // the flat ends too
        }
        Tensor xt = ONE.upload(x, 3, 37), lt = ONE.upload(lw, 3, 37);
        assertForward("gelu", geluRef(d(x)), ONE.gelu(xt));
        assertGradient(
                "geluBackward",
                numericGradient(in -> weighted(d(lw), geluRef(in[0])), new double[][] {d(x)}, 0),
                ONE.geluBackward(xt, lt));
        assertForward("silu", siluRef(d(x)), ONE.silu(xt));
        assertGradient(
                "siluBackward",
                numericGradient(in -> weighted(d(lw), siluRef(in[0])), new double[][] {d(x)}, 0),
                ONE.siluBackward(xt, lt));
    }

    @Test
    void modulateBackwardMatchesCentralDifferences() {
        int b = 2, l = 7, c = 37;
        float[] x = randn(b, l, c), shift = randn(b, c), scale = randn(b, c), lw = randn(b, l, c);
        assertForward(
                "modulate",
                modulateRef(d(x), d(shift), d(scale), l, c),
                ONE.modulate(ONE.upload(x, b, l, c), ONE.upload(shift, b, c), ONE.upload(scale, b, c)));
        Function<double[][], Double> loss = in -> weighted(d(lw), modulateRef(in[0], in[1], in[2], l, c));
        double[][] at = {d(x), d(shift), d(scale)};
        ModulateGrads g =
                ONE.modulateBackward(ONE.upload(x, b, l, c), ONE.upload(scale, b, c), ONE.upload(lw, b, l, c));
        assertArrayEquals(new int[] {b, c}, g.shift().shape());
        assertGradient("modulate input", numericGradient(loss, at, 0), g.input());
        assertGradient("modulate shift", numericGradient(loss, at, 1), g.shift());
        assertGradient("modulate scale", numericGradient(loss, at, 2), g.scale());
    }

    @Test
    void gatedAddBackwardMatchesCentralDifferences() {
        int b = 2, l = 7, c = 37;
        float[] x = randn(b, l, c), gate = randn(b, c), y = randn(b, l, c), lw = randn(b, l, c);
        assertForward(
                "gatedAdd",
                gatedAddRef(d(x), d(gate), d(y), l, c),
                ONE.gatedAdd(ONE.upload(x, b, l, c), ONE.upload(gate, b, c), ONE.upload(y, b, l, c)));
        Function<double[][], Double> loss = in -> weighted(d(lw), gatedAddRef(in[0], in[1], in[2], l, c));
        double[][] at = {d(x), d(gate), d(y)};
        GatedAddGrads g = ONE.gatedAddBackward(ONE.upload(gate, b, c), ONE.upload(y, b, l, c), ONE.upload(lw, b, l, c));
        // the gradient of x is dy itself, which the contract leaves to the caller
        assertGradient("gatedAdd x (dy)", numericGradient(loss, at, 0), ONE.upload(lw, b, l, c));
        assertGradient("gatedAdd gate", numericGradient(loss, at, 1), g.gate());
        assertGradient("gatedAdd update", numericGradient(loss, at, 2), g.update());
    }

    @Test
    void ropeBackwardMatchesCentralDifferences() {
        int b = 2, l = 5, h = 3, hd = 20;
        float[] x = randn(b, l, h, hd), pe = randn(b, l, hd / 2, 2, 2), lw = randn(b, l, h, hd);
        assertForward(
                "rope",
                ropeRef(d(x), d(pe), h, hd),
                ONE.rope(ONE.upload(x, b, l, h, hd), ONE.upload(pe, b, l, hd / 2, 2, 2)));
        double[] want = numericGradient(in -> weighted(d(lw), ropeRef(in[0], d(pe), h, hd)), new double[][] {d(x)}, 0);
        assertGradient(
                "ropeBackward",
                want,
                ONE.ropeBackward(ONE.upload(lw, b, l, h, hd), ONE.upload(pe, b, l, hd / 2, 2, 2)));
    }

    @Test
    void attentionBackwardMatchesCentralDifferences() {
        int b = 2, l = 19, h = 3, hd = 20, c = h * hd;
        float[] q = randn(b, l, c), k = randn(b, l, c), v = randn(b, l, c), lw = randn(b, l, c);
        for (float scale : new float[] {(float) (1 / Math.sqrt(hd)), 0.6f}) {
            assertForward(
                    "attention",
                    attentionRef(d(q), d(k), d(v), b, l, h, hd, scale),
                    ONE.attention(
                            ONE.upload(q, b, l, c),
                            ONE.upload(k, b, l, c),
                            ONE.upload(v, b, l, c),
                            h,
                            scale,
                            null,
                            false));
            Function<double[][], Double> loss =
                    in -> weighted(d(lw), attentionRef(in[0], in[1], in[2], b, l, h, hd, scale));
            double[][] at = {d(q), d(k), d(v)};
            AttentionGrads g = ONE.attentionBackward(
                    ONE.upload(q, b, l, c),
                    ONE.upload(k, b, l, c),
                    ONE.upload(v, b, l, c),
                    ONE.upload(lw, b, l, c),
                    h,
                    scale);
            assertGradient("attention query, scale " + scale, numericGradient(loss, at, 0), g.query());
            assertGradient("attention key, scale " + scale, numericGradient(loss, at, 1), g.key());
            assertGradient("attention value, scale " + scale, numericGradient(loss, at, 2), g.value());
        }
    }

    // ---- determinism

    /** Runs one backward op on a backend: uploads are made on that backend. */
    private interface Op {
        Tensor[] run(Backend backend);
    }

    private static void assertSameBits(String what, Op op) {
        Tensor[] one = op.run(ONE), three = op.run(THREE);
        assertEquals(one.length, three.length);
        for (int i = 0; i < one.length; i++) {
            assertArrayEquals(ONE.download(one[i]), THREE.download(three[i]), what + ", result " + i);
        }
    }

    @Test
    void everyBackwardOpGivesTheSameBitsForOneAndThreeThreads() {
        int b = 2, l = 130, c = 128, h = 4, out = 200;
        float[] x = randn(b, l, c), y = randn(b, l, c), dy = randn(b, l, c), dyOut = randn(b, l, out);
        float[] w = randn(out, c), s = randn(c), bc = randn(b, c), pe = randn(b, l, c / h / 2, 2, 2);
        float[] q = randn(b, l, c), k = randn(b, l, c), v = randn(b, l, c);
        byte[] packed = TestData.hfPack(randomCodes(out, c), out, c);
        float[] scale = randn(out);
        assertSameBits("linearBackward", be ->
                new Tensor[] {be.linearBackward(be.upload(dyOut, b, l, out), be.upload(w, out, c))});
        assertSameBits("ternaryLinearBackward", be -> {
            TernaryLinearGrads g = be.ternaryLinearBackward(
                    be.upload(x, b, l, c), be.uploadTernary(packed, out, c, scale), be.upload(dyOut, b, l, out), true);
            return new Tensor[] {g.input(), g.scale(), g.bias()};
        });
        assertSameBits("layerNormBackward", be ->
                new Tensor[] {be.layerNormBackward(be.upload(x, b, l, c), be.upload(dy, b, l, c), 1e-6f)});
        assertSameBits(
                "rmsNormBackward", be -> new Tensor[] {
                    be.rmsNormBackward(be.upload(x, b, l, c), be.upload(s, c), be.upload(dy, b, l, c), 1e-6f)
                });
        assertSameBits("geluBackward", be ->
                new Tensor[] {be.geluBackward(be.upload(x, b, l, c), be.upload(dy, b, l, c))});
        assertSameBits("siluBackward", be ->
                new Tensor[] {be.siluBackward(be.upload(x, b, l, c), be.upload(dy, b, l, c))});
        assertSameBits("modulateBackward", be -> {
            ModulateGrads g = be.modulateBackward(be.upload(x, b, l, c), be.upload(bc, b, c), be.upload(dy, b, l, c));
            return new Tensor[] {g.input(), g.shift(), g.scale()};
        });
        assertSameBits("gatedAddBackward", be -> {
            GatedAddGrads g = be.gatedAddBackward(be.upload(bc, b, c), be.upload(y, b, l, c), be.upload(dy, b, l, c));
            return new Tensor[] {g.gate(), g.update()};
        });
        assertSameBits("ropeBackward", be ->
                new Tensor[] {be.ropeBackward(be.upload(dy, b, l, h, c / h), be.upload(pe, b, l, c / h / 2, 2, 2))});
        assertSameBits("attentionBackward", be -> {
            AttentionGrads g = be.attentionBackward(
                    be.upload(q, b, l, c),
                    be.upload(k, b, l, c),
                    be.upload(v, b, l, c),
                    be.upload(dy, b, l, c),
                    h,
                    0.17f);
            return new Tensor[] {g.query(), g.key(), g.value()};
        });
    }

    // ---- withTernaryScale

    @Test
    void withTernaryScaleSharesTheCodesAndLeavesTheOriginalUnchanged() {
        int m = 5, out = 37, in = 45;
        byte[] codes = randomCodes(out, in);
        float[] x = randn(m, in), scale = randn(out), other = randn(out), zeros = new float[out];
        Tensor w = THREE.uploadTernary(TestData.hfPack(codes, out, in), out, in, scale);
        Tensor xt = THREE.upload(x, m, in), bias = THREE.upload(zeros, out);
        float[] before = THREE.download(THREE.ternaryLinear(xt, w, null));

        float[] passed = other.clone();
        Tensor w2 = THREE.withTernaryScale(w, passed);
        Arrays.fill(passed, 100f); // the new tensor keeps its own copy
        assertArrayEquals(new int[] {out, in}, w2.shape());
        assertSame(((CpuTernaryTensor) w).codes, ((CpuTernaryTensor) w2).codes, "codes are shared, not copied");
        double err = relativeL2(
                ternaryRef(d(x), codes, d(other), d(zeros), m, out, in),
                THREE.download(THREE.ternaryLinear(xt, w2, bias)));
        assertTrue(err < 1e-6, "forward with the new scale: relative L2 error " + err);
        assertArrayEquals(before, THREE.download(THREE.ternaryLinear(xt, w, null)), "the original weight changed");
    }

    // ---- argument checks

    private static void assertRejects(String expected, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(expected), "message \"" + e.getMessage() + "\" lacks \"" + expected + "\"");
    }

    @Test
    void rejectsMismatchedArgumentsNamingTheOperation() {
        Tensor x = ONE.upload(randn(2, 3, 8), 2, 3, 8);
        Tensor w = ONE.uploadTernary(TestData.hfPack(randomCodes(5, 8), 5, 8), 5, 8, randn(5));
        assertRejects(
                "linearBackward: features of dy is 8, expected 5",
                () -> ONE.linearBackward(x, ONE.upload(randn(5, 8), 5, 8)));
        assertRejects(
                "ternaryLinearBackward: weight must be a ternary tensor",
                () -> ONE.ternaryLinearBackward(x, x, x, true));
        assertRejects("ternaryLinearBackward dy", () -> ONE.ternaryLinearBackward(x, w, x, true));
        assertRejects("scale has 4 values, expected 5", () -> ONE.withTernaryScale(w, new float[4]));
        assertRejects("scale[2] is NaN", () -> ONE.withTernaryScale(w, new float[] {0, 1, Float.NaN, 2, 3}));
        assertRejects("withTernaryScale: weight must be a ternary tensor", () -> ONE.withTernaryScale(x, new float[5]));
        assertRejects("layerNormBackward dy", () -> ONE.layerNormBackward(x, ONE.upload(randn(6, 8), 6, 8), 1e-6f));
        assertRejects("rmsNormBackward: scale length", () -> ONE.rmsNormBackward(x, ONE.upload(randn(7), 7), x, 1e-6f));
        assertRejects("geluBackward dy", () -> ONE.geluBackward(x, ONE.upload(randn(6, 8), 6, 8)));
        assertRejects("modulateBackward", () -> ONE.modulateBackward(x, ONE.upload(randn(3, 8), 3, 8), x));
        assertRejects(
                "gatedAddBackward dy",
                () -> ONE.gatedAddBackward(ONE.upload(randn(2, 8), 2, 8), x, ONE.upload(randn(2, 3, 7), 2, 3, 7)));
        assertRejects(
                "ropeBackward pe",
                () -> ONE.ropeBackward(
                        ONE.upload(randn(2, 3, 2, 4), 2, 3, 2, 4), ONE.upload(randn(2, 3, 3, 2, 2), 2, 3, 3, 2, 2)));
        assertRejects(
                "attentionBackward: 8 features do not split into 3 heads",
                () -> ONE.attentionBackward(x, x, x, x, 3, 1f));
        assertRejects(
                "attentionBackward dOut",
                () -> ONE.attentionBackward(x, x, x, ONE.upload(randn(2, 4, 8), 2, 4, 8), 2, 1f));
    }
}
