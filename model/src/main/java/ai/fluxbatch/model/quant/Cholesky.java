package ai.fluxbatch.model.quant;

import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/** Dense Cholesky factorization and triangular inverse in double (small enough not to need a linear algebra library). */
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

    /** {@code L^-1} of a lower triangular {@code L}, itself lower triangular. */
    static double[] lowerInverse(double[] l, int n) {
        double[] li = new double[n * n];
        rows(
                0,
                n,
                j -> { // column j of L^-1 by forward substitution; columns are independent
                    double[] x =
                            new double[n]; // the column, contiguous: reading it down li's column strides through memory
                    x[j] = 1 / l[j * n + j];
                    for (int i = j + 1; i < n; i++) {
                        double v = 0;
                        for (int k = j; k < i; k++) {
                            v -= l[i * n + k] * x[k];
                        }
                        x[i] = v / l[i * n + i];
                    }
                    for (int i = j; i < n; i++) {
                        li[i * n + j] = x[i];
                    }
                });
        return li;
    }
}
