package ai.fluxbatch.model.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.calib.LayerStats;
import ai.fluxbatch.model.calib.LayerStatsFixtures;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The calibrated methods against absmean on a layer whose inputs are correlated and off-centre, as transformer
 * activations are: the output error on those inputs, not the weight error, is what they minimize.
 */
class CalibratedQuantizersTest {
    private static final int OUT = 24, IN = 32, ROWS = 4000;

    @Test
    void refitBeatsAbsmeanAndGptqBeatsRefitOnTheOutputError() {
        Random r = new Random(11);
        float[] w = new float[OUT * IN];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * 0.05);
        }
        float[] x = correlatedInputs(r);
        LayerStats stats = LayerStatsFixtures.of(x, ROWS, IN);
        float[] bias = new float[OUT];

        double absmean = outputError(w, bias, QuantizeMethods.byName("absmean").quantize(w, OUT, IN, null, true), x);
        LayerQuantizer.Result refit = new ScaleRefitQuantizer().quantize(w, OUT, IN, stats, true);
        LayerQuantizer.Result gptq = new TernaryGptqQuantizer().quantize(w, OUT, IN, stats, true);
        double refitError = outputError(w, bias, refit, x), gptqError = outputError(w, bias, gptq, x);
        System.out.printf("output relative L2: absmean %.4f, refit %.4f, gptq %.4f%n", absmean, refitError, gptqError);
        assertTrue(refitError < absmean, "refit " + refitError + " vs absmean " + absmean);
        assertTrue(gptqError < 0.8 * refitError, "gptq " + gptqError + " vs refit " + refitError);
        for (byte c : gptq.codes()) {
            assertTrue(c >= -1 && c <= 1, "code " + c);
        }
        assertEquals(0, meanOutputError(w, bias, gptq, x), 1e-4, "the bias shift removes the mean error");
    }

    @Test
    void withoutABiasNothingIsShiftedAndAZeroRowStaysZero() {
        float[] w = new float[2 * IN];
        for (int i = IN; i < 2 * IN; i++) {
            w[i] = (i % 3) - 1;
        }
        float[] x = correlatedInputs(new Random(5));
        LayerQuantizer.Result q =
                new TernaryGptqQuantizer().quantize(w, 2, IN, LayerStatsFixtures.of(x, ROWS, IN), false);
        assertEquals(null, q.biasShift());
        assertEquals(0f, q.scale()[0]);
        for (int i = 0; i < IN; i++) {
            assertEquals(0, q.codes()[i]);
            assertEquals(w[IN + i], q.codes()[IN + i] * q.scale()[1], 1e-5, "an exactly ternary row is kept exactly");
        }
    }

    /** Inputs {@code x = A z + m}: a few strong shared directions, per-channel offsets. */
    private static float[] correlatedInputs(Random r) {
        double[] a = new double[IN * 4];
        for (int i = 0; i < a.length; i++) {
            a[i] = r.nextGaussian();
        }
        float[] x = new float[ROWS * IN];
        for (int row = 0; row < ROWS; row++) {
            double[] z = {r.nextGaussian() * 3, r.nextGaussian() * 2, r.nextGaussian(), r.nextGaussian()};
            for (int i = 0; i < IN; i++) {
                double v = 0.2 * r.nextGaussian() + (i % 5) * 0.3;
                for (int k = 0; k < 4; k++) {
                    v += a[i * 4 + k] * z[k];
                }
                x[row * IN + i] = (float) v;
            }
        }
        return x;
    }

    private static double outputError(float[] w, float[] bias, LayerQuantizer.Result q, float[] x) {
        double num = 0, den = 0;
        for (int row = 0; row < ROWS; row++) {
            for (int o = 0; o < OUT; o++) {
                double exact = bias[o], approx = bias[o] + (q.biasShift() == null ? 0 : q.biasShift()[o]);
                for (int i = 0; i < IN; i++) {
                    exact += w[o * IN + i] * x[row * IN + i];
                    approx += q.scale()[o] * q.codes()[o * IN + i] * x[row * IN + i];
                }
                num += (approx - exact) * (approx - exact);
                den += exact * exact;
            }
        }
        return Math.sqrt(num / den);
    }

    private static double meanOutputError(float[] w, float[] bias, LayerQuantizer.Result q, float[] x) {
        double total = 0;
        for (int row = 0; row < ROWS; row++) {
            for (int i = 0; i < IN; i++) {
                total += (q.scale()[0] * q.codes()[i] - w[i]) * x[row * IN + i];
            }
        }
        return total / ROWS + q.biasShift()[0];
    }
}
