package ai.fluxbatch.model.quant;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import ai.fluxbatch.model.calib.LayerStats;
import java.util.stream.IntStream;

/**
 * GPTQ projected onto the ternary grid: input channels are quantized one at a time (largest variance first), each to
 * {@code s * {-1, 0, 1}} with its row's scale, and the error is spread over the channels not yet quantized through the
 * inverse covariance's Cholesky factor. Scales start from a per-row search and are refit by least squares once the
 * codes are fixed; a second pass reruns GPTQ with the refit scales and keeps, row by row, whichever error is lower.
 * The mean error goes into the bias.
 *
 * <p>All rows go through GPTQ together, {@value #BLOCK} channels at a time: within a block the updates are applied
 * column by column, and the block's accumulated error reaches the channels after it in one matrix product on the CPU
 * backend, as GPTQ's "lazy batch" updates do; the per-row quadratic forms are matrix products too.
 */
public final class TernaryGptqQuantizer implements LayerQuantizer {
    public static final String METHOD = "gptq";

    private static final double DAMP = 0.01;
    private static final int PASSES = 2;
    private static final int BLOCK = 128;

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
        if (!stats.hasGram()) {
            throw new IllegalArgumentException(
                    METHOD + " needs the Gram matrix of the layer's inputs (calibrate --gram)");
        }
        ActivationCovariance cov = ActivationCovariance.of(stats, hasBias);
        int[] order = byDecreasingVariance(cov);
        float[] u = inverseFactor(cov, order);
        float[] c = new float[in * in];
        for (int i = 0; i < c.length; i++) {
            c[i] = (float) cov.c[i];
        }
        double[] scale = new double[out];
        IntStream.range(0, out).parallel().forEach(o -> scale[o] = searchScale(w, o, in, cov));
        byte[] best = new byte[out * in];
        double[] bestScale = new double[out];
        double[] bestError = new double[out];
        java.util.Arrays.fill(bestError, Double.POSITIVE_INFINITY);
        try (CpuBackend cpu = new CpuBackend()) {
            float[] cw = times(cpu, w, out, in, c);
            for (int pass = 0; pass < PASSES; pass++) {
                byte[] codes = project(cpu, w, out, in, scale, u, order);
                float[] q = new float[out * in];
                for (int i = 0; i < q.length; i++) {
                    q[i] = codes[i];
                }
                float[] cq = times(cpu, q, out, in, c);
                for (int o = 0; o < out; o++) {
                    double qcw = 0, qcq = 0, wcw = 0;
                    for (int i = o * in; i < (o + 1) * in; i++) {
                        qcw += q[i] * (double) cw[i];
                        qcq += q[i] * (double) cq[i];
                        wcw += w[i] * (double) cw[i];
                    }
                    double s = qcq > 0 && qcw > 0 ? qcw / qcq : scale[o];
                    double error = wcw - 2 * s * qcw + s * s * qcq;
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

    /** {@code x C} for {@code x [rows, in]} and a symmetric {@code C [in, in]}. */
    private static float[] times(CpuBackend cpu, float[] x, int rows, int in, float[] c) {
        try (Tensor xt = cpu.upload(x, rows, in);
                Tensor ct = cpu.upload(c, in, in);
                Tensor r = cpu.linear(xt, ct, null)) {
            return cpu.download(r);
        }
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
     * The upper factor {@code U} of {@code H^-1 = U^T U} for the damped covariance {@code H} in quantization order,
     * with one factorization: if {@code J H J = L L^T} ({@code J} reverses the order) then {@code H = R R^T} with
     * {@code R = J L J} upper triangular, and {@code U = R^-1 = J L^-1 J}.
     */
    private static float[] inverseFactor(ActivationCovariance cov, int[] order) {
        int n = cov.in;
        double meanDiag = 0;
        for (int i = 0; i < n; i++) {
            meanDiag += cov.diag[i];
        }
        meanDiag = meanDiag > 0 ? meanDiag / n : 1;
        double[] reversed = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                reversed[(n - 1 - i) * n + (n - 1 - j)] = cov.c[order[i] * n + order[j]];
            }
            int d = (n - 1 - i) * (n + 1);
            reversed[d] = Math.max(reversed[d], 0) + DAMP * meanDiag;
        }
        double[] li = Cholesky.lowerInverse(Cholesky.lower(reversed, n), n);
        float[] upper = new float[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                upper[i * n + j] = (float) li[(n - 1 - i) * n + (n - 1 - j)];
            }
        }
        return upper;
    }

    /** GPTQ over all rows at the given per-row scales: codes {@code [out, in]} in the original channel order. */
    private static byte[] project(CpuBackend cpu, float[] w, int out, int in, double[] scale, float[] u, int[] order) {
        float[] work = new float[out * in];
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < in; k++) {
                work[o * in + k] = w[o * in + order[k]];
            }
        }
        byte[] codes = new byte[out * in];
        for (int k1 = 0; k1 < in; k1 += BLOCK) {
            int k2 = Math.min(in, k1 + BLOCK), nb = k2 - k1, from = k1;
            float[] err = new float[out * nb];
            IntStream.range(0, out).parallel().forEach(o -> {
                double s = scale[o];
                for (int j = 0; j < nb; j++) {
                    int k = from + j;
                    float v = work[o * in + k];
                    int code = s > 0 ? (int) Math.max(-1, Math.min(1, Math.rint(v / s))) : 0;
                    codes[o * in + order[k]] = (byte) code;
                    float e = (float) ((v - s * code) / u[k * in + k]);
                    err[o * nb + j] = e;
                    for (int jj = j + 1; jj < nb; jj++) {
                        work[o * in + from + jj] -= e * u[k * in + from + jj];
                    }
                }
            });
            int rest = in - k2;
            if (rest > 0) {
                float[] block = new float[rest * nb]; // U[k1:k2, k2:] transposed: [rest, nb]
                for (int j = 0; j < nb; j++) {
                    for (int r = 0; r < rest; r++) {
                        block[r * nb + j] = u[(k1 + j) * in + k2 + r];
                    }
                }
                float[] update;
                try (Tensor e = cpu.upload(err, out, nb);
                        Tensor b = cpu.upload(block, rest, nb);
                        Tensor p = cpu.linear(e, b, null)) {
                    update = cpu.download(p);
                }
                for (int o = 0; o < out; o++) {
                    for (int r = 0; r < rest; r++) {
                        work[o * in + k2 + r] -= update[o * rest + r];
                    }
                }
            }
        }
        return codes;
    }

    /** The per-row scale minimizing the error of rounding alone under the covariance's diagonal (0.3 to 2 x absmean). */
    private static double searchScale(float[] w, int o, int in, ActivationCovariance cov) {
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
                double d = w[o * in + i] - s * Math.max(-1, Math.min(1, Math.rint(w[o * in + i] / s)));
                e += d * d * Math.max(cov.diag[i], 0);
            }
            if (e < bestError) {
                bestError = e;
                best = s;
            }
        }
        return best;
    }
}
