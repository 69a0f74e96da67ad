package ai.fluxbatch.model.quant;

import ai.fluxbatch.kernel.cpu.NativeBlas;
import ai.fluxbatch.model.calib.LayerStats;
import java.util.stream.IntStream;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * GPTQ projected onto the ternary grid: input channels are quantized one at a time (largest variance first), each to
 * {@code s * {-1, 0, 1}} with its row's scale, and the error is spread over the channels not yet quantized through the
 * inverse covariance's Cholesky factor. Scales start from a per-row search and are refit by least squares once the
 * codes are fixed; a second pass reruns GPTQ with the refit scales and keeps, row by row, whichever error is lower.
 * The mean error goes into the bias.
 *
 * <p>All rows go through GPTQ together, {@value #BLOCK} channels at a time: within a block the updates are applied
 * column by column in Java, and the block's accumulated error reaches the channels after it in one matrix product, as
 * GPTQ's "lazy batch" updates do. The linear algebra ({@link GptqAlgebra}) runs on OpenBLAS when it loads: the
 * Cholesky factorization in double ({@code dpotrf}), the block updates ({@code sgemm}) and one product with the factor
 * ({@code strmm}) per layer; else in Java (the same steps, so the codes agree up to rounding). Both are deterministic
 * for a fixed thread count. No inverse is formed, and the refit's quadratic forms come from sums the recurrence makes
 * anyway instead of a product with the covariance per pass (see {@link #project}).
 */
public final class TernaryGptqQuantizer implements LayerQuantizer {
    public static final String METHOD = "gptq";

    private static final double DAMP = 0.01;
    private static final int PASSES = 2;
    private static final int BLOCK = 128;
    private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_PREFERRED;

    @Override
    public String name() {
        return METHOD;
    }

    @Override
    public boolean needsStatistics() {
        return true;
    }

    @Override
    public boolean needsGram() {
        return true;
    }

    @Override
    public Result quantize(float[] w, int out, int in, LayerStats stats, boolean hasBias) {
        return quantize(w, out, in, stats, hasBias, NativeBlas.available());
    }

    /** {@code nativeBlas}: the linear algebra on OpenBLAS (which must be available), else in Java. */
    Result quantize(float[] w, int out, int in, LayerStats stats, boolean hasBias, boolean nativeBlas) {
        if (!stats.hasGram()) {
            throw new IllegalArgumentException(
                    METHOD + " needs the Gram matrix of the layer's inputs (calibrate --gram)");
        }
        ActivationCovariance cov = ActivationCovariance.of(stats, hasBias);
        int[] order = byDecreasingVariance(cov);
        double meanDiag = 0;
        for (int i = 0; i < in; i++) {
            meanDiag += cov.diag[i];
        }
        double damp = DAMP * (meanDiag > 0 ? meanDiag / in : 1);
        double[] damping = new double[in]; // H - C on the diagonal, in quantization order
        for (int k = 0; k < in; k++) {
            double c = cov.diag[order[k]];
            damping[k] = (Math.max(c, 0) + damp) - c;
        }
        float[] wp = new float[out * in]; // the rows in quantization order
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < in; k++) {
                wp[o * in + k] = w[o * in + order[k]];
            }
        }
        double[] scale = new double[out], weight = new double[in];
        for (int i = 0; i < in; i++) {
            weight[i] = Math.max(cov.diag[i], 0);
        }
        IntStream.range(0, out).parallel().forEach(o -> scale[o] = searchScale(w, o, in, weight));
        byte[] best = new byte[out * in];
        double[] bestScale = new double[out];
        double[] bestError = new double[out];
        java.util.Arrays.fill(bestError, Double.POSITIVE_INFINITY);
        try (GptqAlgebra algebra = GptqAlgebra.open(out, in, BLOCK, nativeBlas)) {
            algebra.factor((i, row) -> {
                int oi = order[i];
                for (int j = 0; j < in; j++) {
                    row[j] = cov.at(oi, order[j]);
                }
                row[i] = Math.max(row[i], 0) + damp;
            });
            float[] y = algebra.timesFactor(wp);
            double[] wcw = new double[out];
            for (int o = 0; o < out; o++) {
                double wHw = 0, wDw = 0;
                for (int k = o * in; k < (o + 1) * in; k++) {
                    wHw += y[k] * (double) y[k];
                    wDw += damping[k - o * in] * wp[k] * (double) wp[k];
                }
                wcw[o] = wHw - wDw;
            }
            double[] qcq = new double[out], qcw = new double[out];
            for (int pass = 0; pass < PASSES; pass++) {
                byte[] codes = project(algebra, wp, y, out, in, scale, order, damping, qcq, qcw);
                for (int o = 0; o < out; o++) {
                    double s = qcq[o] > 0 && qcw[o] > 0 ? qcw[o] / qcq[o] : scale[o];
                    double error = wcw[o] - 2 * s * qcw[o] + s * s * qcq[o];
                    if (scale[o] > 0 && error < bestError[o]) {
                        bestError[o] = error;
                        bestScale[o] = s;
                        System.arraycopy(codes, o * in, best, o * in, in);
                    }
                    scale[o] = s;
                }
            }
        }
        float[] outScale = new float[out];
        float[] shift = hasBias ? new float[out] : null;
        double[] row = new double[in], q = new double[in];
        for (int o = 0; o < out; o++) {
            outScale[o] = (float) bestScale[o];
            if (shift != null) {
                for (int i = 0; i < in; i++) {
                    row[i] = w[o * in + i];
                    q[i] = best[o * in + i];
                }
                shift[o] = (float) cov.biasShift(row, q, outScale[o]);
            }
        }
        return new Result(best, outScale, shift);
    }

    private static int[] byDecreasingVariance(ActivationCovariance cov) {
        int n = cov.in;
        return IntStream.range(0, n)
                .boxed()
                .sorted((a, b) -> Double.compare(cov.diag[b], cov.diag[a]))
                .mapToInt(Integer::intValue)
                .toArray();
    }

    /**
     * GPTQ over all rows at the given per-row scales, {@code wp [out, n]} in quantization order: codes {@code [out,
     * n]} in the original channel order. With {@code H = R R^T} ({@code R} upper) the channel {@code k} is rounded at
     * {@code w_k + (sum_{j<k} d_j R_jk) / R_kk}, {@code d = w - s q} the error of the channels before it: the sums are
     * the accumulator, to which each block adds {@code D R[block, rest]} in one product (GPTQ's lazy batch updates,
     * the same recurrence as updating {@code w} through the rows of {@code R^-1}, without forming the inverse).
     *
     * <p>It also fills the quadratic forms of the codes under the undamped covariance {@code C = H - diag(damping)}
     * without a product per pass: {@code e = d R} is what the recurrence sums anyway, and {@code q R = (w R - e) / s}
     * with {@code y = w R}, so {@code q^T H q = |y - e|^2 / s^2} and {@code q^T H w = (y - e) . y / s}. Taking the
     * damping's share back off loses relative precision only where the damping outweighs {@code C} along {@code q}; on
     * synthetic layers with channel scales spread over two orders of magnitude the refit scales stayed within 2.5e-6 of
     * those from explicit products with {@code C} (bench/gptq.sh compares against a base commit).
     */
    private static byte[] project(
            GptqAlgebra algebra,
            float[] wp,
            float[] y,
            int out,
            int n,
            double[] scale,
            int[] order,
            double[] damping,
            double[] qcq,
            double[] qcw) {
        byte[] codes = new byte[out * n];
        double[] tt = new double[out], ty = new double[out], qdq = new double[out], qdw = new double[out];
        algebra.clear();
        for (int k1 = 0; k1 < n; k1 += BLOCK) {
            int k2 = Math.min(n, k1 + BLOCK), nb = k2 - k1, from = k1;
            float[] a = algebra.accumulated(k1, k2);
            float[] rb = algebra.diagonalBlock(k1, k2);
            float[] d = new float[out * nb];
            IntStream.range(0, out).parallel().forEach(o -> {
                double[] sums = {tt[o], ty[o], qdq[o], qdw[o]};
                blockRow(wp, y, o * n, from, nb, scale[o], a, rb, d, o * nb, damping, codes, order, o * n, sums);
                tt[o] = sums[0];
                ty[o] = sums[1];
                qdq[o] = sums[2];
                qdw[o] = sums[3];
            });
            algebra.spread(d, k1, k2);
        }
        for (int o = 0; o < out; o++) {
            double s = scale[o];
            boolean any = false;
            for (int i = o * n; i < (o + 1) * n && !any; i++) {
                any = codes[i] != 0;
            }
            // all-zero codes: exactly 0, not the rounding left in |y - e|^2
            qcq[o] = any ? tt[o] / (s * s) - qdq[o] : 0;
            qcw[o] = any ? ty[o] / s - qdw[o] : 0;
        }
        return codes;
    }

    /**
     * One row's channels {@code [from, from + nb)}: rounds each, writes its error to {@code d[dOff + j]}, adds it to
     * the block's later accumulators {@code a[dOff + j + 1 ...]} and to {@code sums}: {@code |y - e|^2}, {@code (y - e)
     * . y}, {@code q^T D q}, {@code q^T D w} (D: the damping).
     */
    private static void blockRow(
            float[] wp,
            float[] y,
            int rowOff,
            int from,
            int nb,
            double s,
            float[] a,
            float[] rb,
            float[] d,
            int dOff,
            double[] damping,
            byte[] codes,
            int[] order,
            int codeOff,
            double[] sums) {
        double sumTT = 0, sumTY = 0, sumQDQ = 0, sumQDW = 0;
        for (int j = 0; j < nb; j++) {
            int k = from + j;
            float rkk = rb[j * nb + j], acc = a[dOff + j];
            double wk = wp[rowOff + k], v = wk + acc / (double) rkk;
            int code = s > 0 ? (int) Math.max(-1, Math.min(1, Math.rint(v / s))) : 0;
            codes[codeOff + order[k]] = (byte) code;
            float dk = (float) (wk - s * code);
            d[dOff + j] = dk;
            double yk = y[rowOff + k], t = yk - (acc + dk * (double) rkk);
            sumTT += t * t;
            sumTY += t * yk;
            sumQDQ += damping[k] * code * code;
            sumQDW += damping[k] * code * wk;
            axpy(a, dOff + j + 1, dk, rb, j * nb + j + 1, nb - j - 1);
        }
        sums[0] += sumTT;
        sums[1] += sumTY;
        sums[2] += sumQDQ;
        sums[3] += sumQDW;
    }

    /**
     * {@code a[aOff + i] += x * b[bOff + i]} for {@code i < len}, in float: a product rounded, then a sum rounded (no
     * fused multiply-add), lane by lane as the scalar loop would, so the result is the same on every machine.
     */
    private static void axpy(float[] a, int aOff, float x, float[] b, int bOff, int len) {
        int i = 0;
        for (int bound = FLOATS.loopBound(len); i < bound; i += FLOATS.length()) {
            FloatVector va = FloatVector.fromArray(FLOATS, a, aOff + i);
            va.add(FloatVector.fromArray(FLOATS, b, bOff + i).mul(x)).intoArray(a, aOff + i);
        }
        for (; i < len; i++) {
            a[aOff + i] += x * b[bOff + i];
        }
    }

    /**
     * The per-row scale minimizing the error of rounding alone, weighted by {@code weight} (the covariance's diagonal,
     * negative entries as 0), over 0.3 to 2 x absmean. A channel rounds to 0 where {@code |w / s| <= 0.5}, else to
     * {@code sign(w)}: the same error, bit for bit, as clamping {@code rint(w / s)} to [-1, 1], in half the time.
     */
    static double searchScale(float[] w, int o, int in, double[] weight) {
        double absMean = 0;
        for (int i = 0; i < in; i++) {
            absMean += Math.abs(w[o * in + i]);
        }
        absMean /= in;
        if (absMean == 0) {
            return 0;
        }
        double best = absMean, bestError = Double.POSITIVE_INFINITY;
        for (int k = 6; k <= 40; k++) {
            double s = absMean * k / 20.0, e = 0;
            for (int i = 0; i < in; i++) {
                double v = w[o * in + i], d = v - Math.copySign(Math.abs(v / s) > 0.5 ? s : 0.0, v);
                e += d * d * weight[i];
            }
            if (e < bestError) {
                bestError = e;
                best = s;
            }
        }
        return best;
    }
}
