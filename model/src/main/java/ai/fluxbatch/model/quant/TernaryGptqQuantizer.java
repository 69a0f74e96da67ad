package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.calib.LayerStats;
import java.util.stream.IntStream;

/**
 * GPTQ projected onto the ternary grid: input channels are quantized one at a time (largest variance first), each to
 * {@code s * {-1, 0, 1}} with its row's scale, and the error is spread over the channels not yet quantized through the
 * inverse covariance's Cholesky factor. Scales start from a per-row search and are refit by least squares once the
 * codes are fixed; a second pass reruns GPTQ with the refit scales and keeps whichever row error is lower. The mean
 * error goes into the bias.
 */
public final class TernaryGptqQuantizer implements LayerQuantizer {
    public static final String METHOD = "gptq";

    private static final double DAMP = 0.01;
    private static final int PASSES = 2;
    private static final int ROWS_PER_TASK = 16;

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
        ActivationCovariance cov = ActivationCovariance.of(stats, hasBias);
        int[] order = byDecreasingVariance(cov);
        double[] u = inverseFactor(cov, order);
        byte[] codes = new byte[out * in];
        float[] scale = new float[out];
        float[] shift = hasBias ? new float[out] : null;
        IntStream.range(0, (out + ROWS_PER_TASK - 1) / ROWS_PER_TASK).parallel().forEach(task -> {
            double[] row = new double[in], q = new double[in], best = new double[in], work = new double[in];
            for (int o = task * ROWS_PER_TASK; o < Math.min(out, (task + 1) * ROWS_PER_TASK); o++) {
                for (int i = 0; i < in; i++) {
                    row[i] = w[o * in + i];
                }
                double s = searchScale(row, cov);
                double bestError = Double.POSITIVE_INFINITY, bestScale = 0;
                for (int pass = 0; pass < PASSES && s > 0; pass++) {
                    project(row, s, u, order, work, q);
                    s = cov.refitScale(row, q, s);
                    double e = rowError(row, q, s, cov, work);
                    if (e < bestError) {
                        bestError = e;
                        bestScale = s;
                        System.arraycopy(q, 0, best, 0, in);
                    }
                }
                scale[o] = (float) bestScale;
                for (int i = 0; i < in; i++) {
                    codes[o * in + i] = (byte) best[i];
                }
                if (shift != null) {
                    shift[o] = (float) cov.biasShift(row, best, scale[o]);
                }
                java.util.Arrays.fill(best, 0);
            }
        });
        return new Result(codes, scale, shift);
    }

    private static int[] byDecreasingVariance(ActivationCovariance cov) {
        int n = cov.in;
        return IntStream.range(0, n).boxed()
                .sorted((a, b) -> Double.compare(cov.c[b * n + b], cov.c[a * n + a]))
                .mapToInt(Integer::intValue).toArray();
    }

    /** The upper factor {@code U} of {@code H^-1 = U^T U} for the damped covariance {@code H} in quantization order. */
    private static double[] inverseFactor(ActivationCovariance cov, int[] order) {
        int n = cov.in;
        double meanDiag = 0;
        for (int i = 0; i < n; i++) {
            meanDiag += cov.c[i * n + i];
        }
        meanDiag = meanDiag > 0 ? meanDiag / n : 1;
        double[] h = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                h[i * n + j] = cov.c[order[i] * n + order[j]];
            }
            h[i * n + i] = Math.max(h[i * n + i], 0) + DAMP * meanDiag;
        }
        double[] lowerOfInverse = Cholesky.lower(Cholesky.inverse(Cholesky.lower(h, n), n), n);
        double[] upper = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                upper[i * n + j] = lowerOfInverse[j * n + i];
            }
        }
        return upper;
    }

    /** GPTQ's column loop for one row at scale {@code s}: codes into {@code q}. */
    private static void project(double[] row, double s, double[] u, int[] order, double[] work, double[] q) {
        int n = row.length;
        for (int k = 0; k < n; k++) {
            work[k] = row[order[k]];
        }
        for (int k = 0; k < n; k++) {
            double code = Math.max(-1, Math.min(1, Math.rint(work[k] / s)));
            q[order[k]] = code;
            double err = (work[k] - s * code) / u[k * n + k];
            for (int j = k + 1; j < n; j++) {
                work[j] -= err * u[k * n + j];
            }
        }
    }

    /** The per-row scale minimizing the error of rounding alone under the covariance's diagonal (0.3 to 2 x absmean). */
    private static double searchScale(double[] row, ActivationCovariance cov) {
        int n = row.length;
        double absMean = 0;
        for (double v : row) {
            absMean += Math.abs(v);
        }
        absMean /= n;
        if (absMean == 0) {
            return 0;
        }
        double best = absMean, bestError = Double.POSITIVE_INFINITY;
        for (int k = 6; k <= 40; k++) {
            double s = absMean * k / 20.0, e = 0;
            for (int i = 0; i < n; i++) {
                double d = row[i] - s * Math.max(-1, Math.min(1, Math.rint(row[i] / s)));
                e += d * d * Math.max(cov.c[i * n + i], 0);
            }
            if (e < bestError) {
                bestError = e;
                best = s;
            }
        }
        return best;
    }

    private static double rowError(double[] row, double[] q, double s, ActivationCovariance cov, double[] work) {
        for (int i = 0; i < row.length; i++) {
            work[i] = row[i] - s * q[i];
        }
        return cov.form(work, work);
    }
}
