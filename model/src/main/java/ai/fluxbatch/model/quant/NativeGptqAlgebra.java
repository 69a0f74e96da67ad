package ai.fluxbatch.model.quant;

import static org.bytedeco.openblas.global.openblas.CblasLower;
import static org.bytedeco.openblas.global.openblas.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas.CblasNonUnit;
import static org.bytedeco.openblas.global.openblas.CblasRight;
import static org.bytedeco.openblas.global.openblas.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas.LAPACKE_dpotrf;
import static org.bytedeco.openblas.global.openblas.LAPACK_COL_MAJOR;
import static org.bytedeco.openblas.global.openblas.cblas_sgemm;
import static org.bytedeco.openblas.global.openblas.cblas_strmm;

import ai.fluxbatch.kernel.cpu.NativeBlas;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.stream.IntStream;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * {@link GptqAlgebra} on OpenBLAS: the factorization is LAPACK's {@code dpotrf} in double, the block updates
 * {@code sgemm} and the product with the factor {@code strmm}, all on native memory (the float[] overloads would copy
 * whole arrays through JNI on every call); Java arrays go in and out through {@link FloatBuffer} views.
 *
 * <p>Natively everything is kept in reversed order ({@code J} reverses it): {@code J H J = L L^T} is an ordinary
 * Cholesky factorization and {@code R = J L J}, so {@code L} serves as it is, and only the Java side of each call
 * reverses (a block, a row). One native allocation of {@code max(8 n^2, 4 (n^2 + out (n + block)))} bytes holds
 * everything: the double matrix while it is factored, then {@code L} in float over its first half, the accumulator
 * and one block of errors. Fresh memory is slow to touch on some virtual machines (4 KiB page faults), so a layer takes
 * no more of it than that.
 */
final class NativeGptqAlgebra implements GptqAlgebra {
    private static final int ROWS_PER_TASK = 64;

    private final int out, n, block;
    private final FloatPointer memory;
    /** Views into {@link #memory}, not owners: closing one would free it. */
    private final FloatPointer l, acc, d;

    private final FloatBuffer lView, accView, dView;

    /** {@code block}: the most columns {@link #spread} is given at once. */
    NativeGptqAlgebra(int out, int n, int block) {
        long nn = (long) n * n;
        if (2 * nn > Integer.MAX_VALUE || (long) out * n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("layer " + out + " x " + n + " is too large for one buffer view");
        }
        this.out = out;
        this.n = n;
        this.block = block;
        long floats = Math.max(2 * nn, nn + (long) out * (n + block));
        try {
            this.memory = new FloatPointer(floats);
        } catch (OutOfMemoryError e) {
            OutOfMemoryError named = new OutOfMemoryError(String.format(
                    "gptq on a %d x %d layer needs %.2f GiB of native memory, over JavaCPP's limit"
                            + " (-Dorg.bytedeco.javacpp.maxBytes, by default -Xmx): %s",
                    out, n, floats * 4.0 / (1L << 30), e.getMessage()));
            named.initCause(e);
            throw named;
        }
        this.l = memory.getPointer(0);
        this.acc = memory.getPointer(nn);
        this.d = memory.getPointer(nn + (long) out * n);
        this.lView = l.limit(nn).asBuffer();
        this.accView = acc.limit((long) out * n).asBuffer();
        this.dView = d.limit((long) out * block).asBuffer();
    }

    @Override
    public String description() {
        return NativeBlas.description();
    }

    /**
     * {@code J H J} filled row by row (in parallel), factored by {@code dpotrf}, and the factor turned into float in
     * place. The row-major matrix is LAPACK's column-major transpose, so the upper factor {@code U^T U} it computes
     * there is {@code L} here, without the transposed copy LAPACKE's row-major entry point would make.
     */
    @Override
    public void factor(Rows h) {
        DoublePointer a = memory.getPointer(DoublePointer.class, 0); // a view, not an owner
        DoubleBuffer view = a.limit((long) n * n).asBuffer();
        IntStream.range(0, (n + ROWS_PER_TASK - 1) / ROWS_PER_TASK).parallel().forEach(t -> {
            DoubleBuffer mine = view.duplicate();
            double[] row = new double[n], reversed = new double[n];
            for (int i = t * ROWS_PER_TASK; i < Math.min(n, (t + 1) * ROWS_PER_TASK); i++) {
                h.row(n - 1 - i, row);
                for (int j = 0; j < n; j++) {
                    reversed[j] = row[n - 1 - j];
                }
                mine.put(i * n, reversed, 0, n);
            }
        });
        int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, (byte) 'U', n, a, n);
        if (info > 0) {
            throw new ArithmeticException("matrix is not positive definite at column " + (n - info));
        } else if (info < 0) {
            throw new IllegalArgumentException("dpotrf refused argument " + (-info) + " (NaN in the matrix?)");
        }
        // row i in float over bytes [4 n i, 4 n (i + 1)): only double rows up to i, all read already
        double[] row = new double[n];
        float[] lower = new float[n];
        for (int i = 0; i < n; i++) {
            view.get(i * n, row, 0, n);
            toFloat(row, i, lower);
            lView.put(i * n, lower, 0, n);
        }
    }

    /** Row {@code i} of {@code L} in float, zero right of the diagonal (where the factored matrix's upper half was). */
    private static void toFloat(double[] row, int i, float[] into) {
        for (int j = 0; j <= i; j++) {
            into[j] = (float) row[j];
        }
        java.util.Arrays.fill(into, i + 1, into.length, 0f);
    }

    /** {@code R[k1 + i, k1 + j] = L[n - 1 - k1 - i, n - 1 - k1 - j]}. */
    @Override
    public float[] diagonalBlock(int k1, int k2) {
        int nb = k2 - k1;
        float[] b = new float[nb * nb], row = new float[nb];
        for (int i = 0; i < nb; i++) {
            lView.get((n - 1 - k1 - i) * n + (n - k2), row, 0, nb); // L[n-1-k1-i, n-k2 .. n-k1)
            for (int j = i; j < nb; j++) {
                b[i * nb + j] = row[nb - 1 - j];
            }
        }
        return b;
    }

    /** {@code (x J) L J}, in the accumulator's memory, which {@link #clear} then resets. */
    @Override
    public float[] timesFactor(float[] x) {
        float[] row = new float[n];
        for (int o = 0; o < out; o++) {
            reverse(x, o * n, row, 0, n);
            accView.put(o * n, row, 0, n);
        }
        cblas_strmm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, out, n, 1f, l, n, acc, n);
        float[] y = new float[out * n];
        for (int o = 0; o < out; o++) {
            accView.get(o * n, row, 0, n);
            reverse(row, 0, y, o * n, n);
        }
        return y;
    }

    @Override
    public void clear() {
        Pointer.memset(acc, 0, (long) out * n * Float.BYTES);
    }

    /** {@code A[:, k] = A'[:, n - 1 - k]}, {@code A'} the accumulator in reversed order. */
    @Override
    public float[] accumulated(int k1, int k2) {
        int nb = k2 - k1;
        float[] a = new float[out * nb], row = new float[nb];
        for (int o = 0; o < out; o++) {
            accView.get(o * n + n - k2, row, 0, nb);
            reverse(row, 0, a, o * nb, nb);
        }
        return a;
    }

    /** {@code A'[:, :n-k2] += (D J) L[n-k2:n-k1, :n-k2]}: the same product in reversed order. */
    @Override
    public void spread(float[] dBlock, int k1, int k2) {
        int nb = k2 - k1, rest = n - k2;
        if (nb > block) {
            throw new IllegalArgumentException("block of " + nb + " columns, at most " + block);
        }
        if (rest == 0) {
            return;
        }
        float[] row = new float[nb];
        for (int o = 0; o < out; o++) {
            reverse(dBlock, o * nb, row, 0, nb);
            dView.put(o * nb, row, 0, nb);
        }
        FloatPointer lBlock = l.getPointer((long) rest * n); // a view: rows n-k2 .. n-k1 of L
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out, rest, nb, 1f, d, nb, lBlock, n, 1f, acc, n);
    }

    private static void reverse(float[] from, int fromOff, float[] to, int toOff, int len) {
        for (int j = 0; j < len; j++) {
            to[toOff + j] = from[fromOff + len - 1 - j];
        }
    }

    @Override
    public void close() {
        memory.close();
    }
}
