package ai.fluxbatch.model.quant;

import ai.fluxbatch.kernel.cpu.NativeBlas;

/**
 * The dense linear algebra of GPTQ on one layer of {@code out x n}, with the rows already in quantization order: the
 * upper factor {@code R} of the damped covariance {@code H = R R^T}, products with it, and an accumulator {@code A [out,
 * n]} that the lazy block updates add to ({@code A[:, k2:] += D R[k1:k2, k2:]}). On OpenBLAS ({@link NativeBlas}) in
 * native memory, else in Java; both are deterministic for a fixed thread count. The owner closes it.
 */
interface GptqAlgebra extends AutoCloseable {
    /**
     * Row {@code i} of the symmetric matrix to factor, written into {@code row} (length {@code n}); may be asked for
     * several rows at once from different threads.
     */
    @FunctionalInterface
    interface Rows {
        void row(int i, double[] row);
    }

    /**
     * On OpenBLAS when {@code nativeBlas} (it must be available), else in Java; {@code block}: the most columns
     * {@link #spread} is given at once.
     */
    static GptqAlgebra open(int out, int n, int block, boolean nativeBlas) {
        if (nativeBlas && !NativeBlas.available()) {
            throw new IllegalStateException("OpenBLAS is not available: " + NativeBlas.description());
        }
        return nativeBlas ? new NativeGptqAlgebra(out, n, block) : new JavaGptqAlgebra(out, n);
    }

    /** What runs it: "OpenBLAS ..." or "Java". */
    String description();

    /**
     * Factors the symmetric {@code H [n, n]} (in double) into the upper triangular {@code R} with {@code H = R R^T},
     * kept in float for the products below; fails with {@link ArithmeticException} if {@code H} is not positive
     * definite.
     */
    void factor(Rows h);

    /** {@code R[k1:k2, k1:k2]}, row-major {@code [k2 - k1, k2 - k1]}. */
    float[] diagonalBlock(int k1, int k2);

    /** {@code x R} for {@code x [out, n]} row-major. */
    float[] timesFactor(float[] x);

    /** Sets the accumulator {@code A} to zero. */
    void clear();

    /** {@code A[:, k1:k2]}, row-major {@code [out, k2 - k1]}. */
    float[] accumulated(int k1, int k2);

    /** {@code A[:, k2:] += d R[k1:k2, k2:]} for {@code d [out, k2 - k1]} row-major. */
    void spread(float[] d, int k1, int k2);

    @Override
    void close();
}
