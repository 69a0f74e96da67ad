package ai.fluxbatch.model.quant;

/** Dense Cholesky factorization and the inverse it gives, in double (no Java library does this in place). */
final class Cholesky {
    private Cholesky() {
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
            for (int i = j + 1; i < n; i++) {
                double v = a[i * n + j];
                for (int k = 0; k < j; k++) {
                    v -= l[i * n + k] * l[j * n + k];
                }
                l[i * n + j] = v / ljj;
            }
        }
        return l;
    }

    /** {@code a^-1} from its lower Cholesky factor: {@code L^-T L^-1}. */
    static double[] inverse(double[] l, int n) {
        double[] li = new double[n * n];
        for (int j = 0; j < n; j++) {
            li[j * n + j] = 1 / l[j * n + j];
            for (int i = j + 1; i < n; i++) {
                double v = 0;
                for (int k = j; k < i; k++) {
                    v -= l[i * n + k] * li[k * n + j];
                }
                li[i * n + j] = v / l[i * n + i];
            }
        }
        double[] inv = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double v = 0;
                for (int k = i; k < n; k++) {
                    v += li[k * n + i] * li[k * n + j];
                }
                inv[i * n + j] = v;
                inv[j * n + i] = v;
            }
        }
        return inv;
    }
}
