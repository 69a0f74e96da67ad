package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.calib.LayerStats;

/**
 * The quadratic form calibrated methods minimize: the error of a row {@code d = w - s q} costs {@code d^T C d}, with
 * {@code C} the covariance of the layer's inputs (the Gram matrix, or its diagonal alone, centered by the mean). The
 * mean's share of the error, {@code d . mean}, is what the bias shift removes, so centering loses nothing.
 */
final class ActivationCovariance {
    final int in;
    /** The diagonal of {@code C}. */
    final double[] diag;

    final double[] mean;
    /** The recorded Gram matrix {@code sum x x^T}, {@code in x in}; null when only the diagonal was recorded. */
    private final float[] gram;

    private final double tokens;
    private final boolean centered;

    private ActivationCovariance(int in, double[] diag, double[] mean, float[] gram, double tokens, boolean centered) {
        this.in = in;
        this.diag = diag;
        this.mean = mean;
        this.gram = gram;
        this.tokens = tokens;
        this.centered = centered;
    }

    /** {@code E[x x^T]}, less {@code E[x] E[x]^T} when {@code centered}; only its diagonal without a Gram matrix. */
    static ActivationCovariance of(LayerStats stats, boolean centered) {
        int in = stats.inFeatures();
        double n = Math.max(1, stats.tokens());
        double[] mean = stats.mean();
        double[] diag = new double[in];
        for (int i = 0; i < in; i++) {
            diag[i] = stats.sumSq()[i] / n - (centered ? mean[i] * mean[i] : 0);
        }
        float[] gram = stats.hasGram() ? stats.gram() : null;
        ActivationCovariance cov = new ActivationCovariance(in, diag, mean, gram, n, centered);
        if (gram != null) {
            for (int i = 0; i < in; i++) {
                diag[i] = cov.at(i, i);
            }
        }
        return cov;
    }

    /**
     * {@code C[i, j]}, computed from the Gram matrix when asked: a double copy of {@code C} would take twice the
     * recorded float matrix's memory (1.2 GB at 12,288 inputs).
     */
    double at(int i, int j) {
        return gram[i * in + j] / tokens - (centered ? mean[i] * mean[j] : 0);
    }

    /** {@code a^T C b} for rows {@code a} and {@code b} of length {@code in}. */
    double form(double[] a, double[] b) {
        double total = 0;
        if (gram == null) {
            for (int i = 0; i < in; i++) {
                total += a[i] * diag[i] * b[i];
            }
            return total;
        }
        for (int i = 0; i < in; i++) {
            if (a[i] == 0) {
                continue;
            }
            double row = 0;
            for (int j = 0; j < in; j++) {
                row += at(i, j) * b[j];
            }
            total += a[i] * row;
        }
        return total;
    }

    /** The least-squares scale of codes {@code q} for row {@code w}: {@code q^T C w / q^T C q}, or {@code fallback}. */
    double refitScale(double[] w, double[] q, double fallback) {
        double den = form(q, q);
        if (!(den > 0)) {
            return fallback;
        }
        double s = form(q, w) / den;
        return s > 0 ? s : fallback;
    }

    /** The bias shift that removes the mean error of the quantized row: {@code (w - s q) . mean}. */
    double biasShift(double[] w, double[] q, double s) {
        double total = 0;
        for (int i = 0; i < in; i++) {
            total += (w[i] - s * q[i]) * mean[i];
        }
        return total;
    }
}
