package ai.fluxbatch.model.quant;

import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/** Dense Cholesky factorization in double, in Java: GPTQ's fallback where OpenBLAS cannot load ({@link GptqAlgebra}). */
final class Cholesky {
    private static final int PARALLEL_FROM = 256;

    private Cholesky() {}

    /** {@code body} for every index in [from, to), on all cores when the work is large enough to pay for it. */
    private static void rows(int from, int to, IntConsumer body) {
        IntStream range = IntStream.range(from, to);
        (to - from >= PARALLEL_FROM ? range.parallel() : range).forEach(body);
    }

    /** The lower factor {@code L} of {@code a = L L^T} ({@code n x n}, row-major); fails if {@code a} is not positive definite. */
    static double[] lower(double[] a, int n) {
        double[] l = new double[n * n];
        for (int j = 0; j < n; j++) {
            double d = a[j * n + j];
            for (int k = 0; k < j; k++) {
                d -= l[j * n + k] * l[j * n + k];
            }
            if (!(d > 0)) {
                throw new ArithmeticException("matrix is not positive definite at column " + j);
            }
            double ljj = Math.sqrt(d);
            l[j * n + j] = ljj;
            int col = j;
            rows(j + 1, n, i -> {
                double v = a[i * n + col];
                for (int k = 0; k < col; k++) {
                    v -= l[i * n + k] * l[col * n + k];
                }
                l[i * n + col] = v / ljj;
            });
        }
        return l;
    }
}
