package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.calib.LayerStats;

/**
 * The quadratic form calibrated methods minimize: the error of a row {@code d = w - s q} costs {@code d^T C d}, with
 * {@code C} the covariance of the layer's inputs (the Gram matrix, or its diagonal alone, centered by the mean). The
 * mean's share of the error, {@code d . mean}, is what the bias shift removes, so centering loses nothing.
 */
final class ActivationCovariance {
    final int in;
    final double[] c;
    final double[] mean;
    private final boolean diagonal;

    private ActivationCovariance(int in, double[] c, double[] mean, boolean diagonal) {
        this.in = in;
        this.c = c;
        this.mean = mean;
        this.diagonal = diagonal;
    }

    static ActivationCovariance of(LayerStats stats, boolean centered) {
        int in = stats.inFeatures();
        double[] c = stats.secondMoment();
        double[] mean = stats.mean();
        if (centered) {
            boolean full = stats.hasGram();
            for (int i = 0; i < in; i++) {
                if (full) {
                    for (int j = 0; j < in; j++) {
                        c[i * in + j] -= mean[i] * mean[j];
                    }
                } else {
                    c[i * in + i] -= mean[i] * mean[i];
                }
            }
        }
        return new ActivationCovariance(in, c, mean, !stats.hasGram());
    }

    /** {@code a^T C b} for rows {@code a} and {@code b} of length {@code in} at the given offsets. */
    double form(double[] a, double[] b) {
        double total = 0;
        if (diagonal) {
            for (int i = 0; i < in; i++) {
                total += a[i] * c[i * in + i] * b[i];
            }
            return total;
        }
        for (int i = 0; i < in; i++) {
            if (a[i] == 0) {
                continue;
            }
            double row = 0;
            for (int j = 0; j < in; j++) {
                row += c[i * in + j] * b[j];
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
