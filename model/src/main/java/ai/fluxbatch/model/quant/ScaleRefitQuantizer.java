package ai.fluxbatch.model.quant;

import ai.fluxbatch.model.calib.LayerStats;

/**
 * absmean's codes, kept; each output channel's scale refit by least squares under the input covariance
 * ({@code s = q^T C w / q^T C q}; the Gram matrix when recorded, else its diagonal), and the mean error moved into the
 * bias.
 */
public final class ScaleRefitQuantizer implements LayerQuantizer {
    public static final String METHOD = "refit";

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
        return false;
    }

    @Override
    public Result quantize(float[] w, int out, int in, LayerStats stats, boolean hasBias) {
        AbsmeanQuantizer.Result base = AbsmeanQuantizer.quantize(w, out, in);
        ActivationCovariance cov = ActivationCovariance.of(stats, hasBias);
        float[] scale = new float[out];
        float[] shift = hasBias ? new float[out] : null;
        double[] row = new double[in], q = new double[in];
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                row[i] = w[o * in + i];
                q[i] = base.codes()[o * in + i];
            }
            double s = cov.refitScale(row, q, base.scale()[o]);
            scale[o] = (float) s;
            if (shift != null) {
                shift[o] = (float) cov.biasShift(row, q, scale[o]);
            }
        }
        return new Result(base.codes(), scale, shift);
    }
}
