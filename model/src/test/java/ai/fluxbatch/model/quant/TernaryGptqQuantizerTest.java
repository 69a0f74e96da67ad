package ai.fluxbatch.model.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.fluxbatch.kernel.cpu.NativeBlas;
import ai.fluxbatch.model.calib.LayerStats;
import ai.fluxbatch.model.calib.LayerStatsFixtures;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The quantizer, on OpenBLAS and in Java, against GPTQ as it is usually written, in double and column by column:
 * {@code H^-1 = U^T U} by a Cholesky factorization of the explicit inverse, each channel's error {@code e = (w_k - s
 * q_k) / U_kk} subtracted as {@code e U[k, k+1:]} from the channels after it, and the refit's quadratic forms taken
 * with the covariance itself. The quantizer gets the same numbers another way (the factor of {@code H} instead of its
 * inverse, float block updates, the forms from the recurrence's own sums), so it may differ at rounding boundaries
 * only.
 */
class TernaryGptqQuantizerTest {
    private static final int OUT = 48, IN = 300, ROWS = 3000;

    @ParameterizedTest(name = "native {0}")
    @ValueSource(booleans = {true, false})
    void matchesTheColumnByColumnRecurrenceInDouble(boolean nativeBlas) {
        assumeTrue(!nativeBlas || NativeBlas.available(), "OpenBLAS: " + NativeBlas.description());
        Random r = new Random(21);
        float[] w = new float[OUT * IN];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * 0.05);
        }
        Arrays.fill(w, 5 * IN, 6 * IN, 0f); // a zero row keeps scale 0
        LayerStats stats = LayerStatsFixtures.of(inputs(r), ROWS, IN);

        LayerQuantizer.Result got = new TernaryGptqQuantizer().quantize(w, OUT, IN, stats, true, nativeBlas);
        LayerQuantizer.Result want = textbook(w, stats);

        int differ = 0, rowsDiffering = 0;
        double worstScale = 0, worstShift = 0;
        for (int o = 0; o < OUT; o++) {
            int before = differ;
            for (int i = o * IN; i < (o + 1) * IN; i++) {
                differ += got.codes()[i] != want.codes()[i] ? 1 : 0;
            }
            if (differ > before) {
                rowsDiffering++;
                continue;
            }
            worstScale = Math.max(worstScale, relative(got.scale()[o], want.scale()[o]));
            double shift = want.biasShift()[o];
            worstShift = Math.max(worstShift, Math.abs(got.biasShift()[o] - shift) / (1 + Math.abs(shift)));
        }
        System.out.printf(
                "gptq (native %s) vs the recurrence in double: %d of %d codes differ, in %d rows; on the other rows"
                        + " scales within %.1e (relative), bias shifts within %.1e (relative to 1 + |shift|)%n",
                nativeBlas, differ, OUT * IN, rowsDiffering, worstScale, worstShift);
        assertTrue(differ <= OUT * IN / 1000, differ + " codes differ");
        assertTrue(rowsDiffering <= 1, rowsDiffering + " rows differ");
        assertTrue(worstScale < 1e-5, "scales differ by " + worstScale);
        assertTrue(worstShift < 1e-5, "bias shifts differ by " + worstShift);
        assertEquals(0f, got.scale()[5], "the zero row");
    }

    @ParameterizedTest(name = "native {0}")
    @ValueSource(booleans = {true, false})
    void twoRunsGiveTheSameBits(boolean nativeBlas) {
        assumeTrue(!nativeBlas || NativeBlas.available(), "OpenBLAS: " + NativeBlas.description());
        Random r = new Random(5);
        int out = 300; // rows enough for both cores, and the block products split between OpenBLAS threads
        float[] w = new float[out * IN];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * 0.05);
        }
        LayerStats stats = LayerStatsFixtures.of(inputs(r), ROWS, IN);
        LayerQuantizer.Result a = new TernaryGptqQuantizer().quantize(w, out, IN, stats, true, nativeBlas);
        LayerQuantizer.Result b = new TernaryGptqQuantizer().quantize(w, out, IN, stats, true, nativeBlas);
        assertArrayEquals(a.codes(), b.codes(), "codes");
        assertArrayEquals(a.scale(), b.scale(), "scales, bit for bit");
        assertArrayEquals(a.biasShift(), b.biasShift(), "bias shifts, bit for bit");
    }

    /** Inputs with channel scales spread over two orders of magnitude, shared directions and offsets. */
    private static float[] inputs(Random r) {
        double[] a = new double[IN * 6], scale = new double[IN];
        for (int i = 0; i < IN; i++) {
            scale[i] = Math.exp(r.nextGaussian() * 1.2);
        }
        for (int i = 0; i < a.length; i++) {
            a[i] = r.nextGaussian();
        }
        float[] x = new float[ROWS * IN];
        for (int row = 0; row < ROWS; row++) {
            double[] z = new double[6];
            for (int k = 0; k < 6; k++) {
                z[k] = r.nextGaussian() * (6 - k);
            }
            for (int i = 0; i < IN; i++) {
                double v = r.nextGaussian() + (i % 7) * 0.4;
                for (int k = 0; k < 6; k++) {
                    v += a[i * 6 + k] * z[k] * 0.3;
                }
                x[row * IN + i] = (float) (v * scale[i]);
            }
        }
        return x;
    }

    /** Ternary GPTQ as documented on {@link TernaryGptqQuantizer}, in double, one column at a time. */
    private static LayerQuantizer.Result textbook(float[] w, LayerStats stats) {
        ActivationCovariance cov = ActivationCovariance.of(stats, true);
        int[] order = IntStream.range(0, IN)
                .boxed()
                .sorted(Comparator.comparingDouble((Integer i) -> -cov.diag[i]))
                .mapToInt(Integer::intValue)
                .toArray();
        double meanDiag = Arrays.stream(cov.diag).sum() / IN;
        double[] h = new double[IN * IN];
        for (int a = 0; a < IN; a++) {
            for (int b = 0; b < IN; b++) {
                h[a * IN + b] = cov.at(order[a], order[b]);
            }
            h[a * IN + a] = Math.max(h[a * IN + a], 0) + 0.01 * meanDiag;
        }
        double[] li = lowerInverse(Cholesky.lower(h, IN));
        double[] hInverse = new double[IN * IN]; // L^-T L^-1
        for (int a = 0; a < IN; a++) {
            for (int b = 0; b < IN; b++) {
                double v = 0;
                for (int k = Math.max(a, b); k < IN; k++) {
                    v += li[k * IN + a] * li[k * IN + b];
                }
                hInverse[a * IN + b] = v;
            }
        }
        double[] m = Cholesky.lower(hInverse, IN); // H^-1 = M M^T, so U = M^T

        double[] scale = new double[OUT], bestScale = new double[OUT], bestError = new double[OUT];
        Arrays.fill(bestError, Double.POSITIVE_INFINITY);
        byte[] best = new byte[OUT * IN];
        double[] weight = Arrays.stream(cov.diag).map(v -> Math.max(v, 0)).toArray();
        for (int o = 0; o < OUT; o++) {
            scale[o] = TernaryGptqQuantizer.searchScale(w, o, IN, weight);
        }
        for (int pass = 0; pass < 2; pass++) {
            for (int o = 0; o < OUT; o++) {
                double s = scale[o];
                double[] work = new double[IN], q = new double[IN], row = new double[IN];
                for (int k = 0; k < IN; k++) {
                    work[k] = w[o * IN + order[k]];
                    row[k] = w[o * IN + k];
                }
                for (int k = 0; k < IN; k++) {
                    int code = s > 0 ? (int) Math.max(-1, Math.min(1, Math.rint(work[k] / s))) : 0;
                    q[order[k]] = code;
                    double e = (work[k] - s * code) / m[k * IN + k];
                    for (int j = k + 1; j < IN; j++) {
                        work[j] -= e * m[j * IN + k];
                    }
                }
                double qcq = cov.form(q, q), qcw = cov.form(q, row), wcw = cov.form(row, row);
                double refit = qcq > 0 && qcw > 0 ? qcw / qcq : s;
                double error = wcw - 2 * refit * qcw + refit * refit * qcq;
                if (s > 0 && error < bestError[o]) {
                    bestError[o] = error;
                    bestScale[o] = refit;
                    for (int i = 0; i < IN; i++) {
                        best[o * IN + i] = (byte) q[i];
                    }
                }
                scale[o] = refit;
            }
        }
        float[] outScale = new float[OUT], shift = new float[OUT];
        for (int o = 0; o < OUT; o++) {
            double[] row = new double[IN], q = new double[IN];
            for (int i = 0; i < IN; i++) {
                row[i] = w[o * IN + i];
                q[i] = best[o * IN + i];
            }
            outScale[o] = (float) bestScale[o];
            shift[o] = (float) cov.biasShift(row, q, outScale[o]);
        }
        return new LayerQuantizer.Result(best, outScale, shift);
    }

    /** {@code L^-1} by forward substitution, column by column. */
    private static double[] lowerInverse(double[] l) {
        double[] li = new double[IN * IN];
        for (int j = 0; j < IN; j++) {
            li[j * IN + j] = 1 / l[j * IN + j];
            for (int i = j + 1; i < IN; i++) {
                double v = 0;
                for (int k = j; k < i; k++) {
                    v -= l[i * IN + k] * li[k * IN + j];
                }
                li[i * IN + j] = v / l[i * IN + i];
            }
        }
        return li;
    }

    private static double relative(double a, double b) {
        return Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
    }
}
