package ai.fluxbatch.model.quant;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.cpu.CpuBackend;
import java.util.Arrays;

/**
 * {@link GptqAlgebra} in Java, where OpenBLAS cannot load: the Cholesky factorization scalar in double
 * ({@link Cholesky}), the products on the CPU backend's Vector API kernels.
 */
final class JavaGptqAlgebra implements GptqAlgebra {
    private final int out, n;
    private final CpuBackend cpu = new CpuBackend();
    private final float[] acc;
    private float[] r;

    JavaGptqAlgebra(int out, int n) {
        this.out = out;
        this.n = n;
        this.acc = new float[out * n];
    }

    @Override
    public String description() {
        return "Java";
    }

    /** {@code J H J = L L^T} ({@code J} reverses the order), so {@code H = R R^T} with {@code R = J L J}. */
    @Override
    public void factor(Rows h) {
        double[] reversed = new double[n * n], row = new double[n];
        for (int i = 0; i < n; i++) {
            h.row(n - 1 - i, row);
            for (int j = 0; j < n; j++) {
                reversed[i * n + j] = row[n - 1 - j];
            }
        }
        double[] l = Cholesky.lower(reversed, n);
        r = new float[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                r[i * n + j] = (float) l[(n - 1 - i) * n + (n - 1 - j)];
            }
        }
    }

    @Override
    public float[] diagonalBlock(int k1, int k2) {
        int nb = k2 - k1;
        float[] b = new float[nb * nb];
        for (int i = 0; i < nb; i++) {
            System.arraycopy(r, (k1 + i) * n + k1, b, i * nb, nb);
        }
        return b;
    }

    @Override
    public float[] timesFactor(float[] x) {
        float[] rt = new float[n * n]; // R^T: the product's weight rows are R's columns
        for (int i = 0; i < n; i++) {
            for (int j = i; j < n; j++) {
                rt[j * n + i] = r[i * n + j];
            }
        }
        try (Tensor xt = cpu.upload(x, out, n);
                Tensor w = cpu.upload(rt, n, n);
                Tensor y = cpu.linear(xt, w, null)) {
            return cpu.download(y);
        }
    }

    @Override
    public void clear() {
        Arrays.fill(acc, 0);
    }

    @Override
    public float[] accumulated(int k1, int k2) {
        int nb = k2 - k1;
        float[] a = new float[out * nb];
        for (int o = 0; o < out; o++) {
            System.arraycopy(acc, o * n + k1, a, o * nb, nb);
        }
        return a;
    }

    @Override
    public void spread(float[] d, int k1, int k2) {
        int nb = k2 - k1, rest = n - k2;
        if (rest == 0) {
            return;
        }
        float[] block = new float[rest * nb]; // R[k1:k2, k2:] transposed: the product's weight [rest, nb]
        for (int j = 0; j < nb; j++) {
            for (int c = 0; c < rest; c++) {
                block[c * nb + j] = r[(k1 + j) * n + k2 + c];
            }
        }
        float[] update;
        try (Tensor e = cpu.upload(d, out, nb);
                Tensor b = cpu.upload(block, rest, nb);
                Tensor p = cpu.linear(e, b, null)) {
            update = cpu.download(p);
        }
        for (int o = 0; o < out; o++) {
            for (int c = 0; c < rest; c++) {
                acc[o * n + k2 + c] += update[o * rest + c];
            }
        }
    }

    @Override
    public void close() {
        cpu.close();
    }
}
