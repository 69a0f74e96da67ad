package ai.fluxbatch.kernel.cpu;

import jdk.incubator.vector.FloatVector;

/**
 * Where the CPU backend's dense products go through OpenBLAS ({@link BlasMatmul}) rather than the Vector API: a rule
 * on the product's shape alone, so a given call always takes the same path (and gives the same bits).
 *
 * <p>The rule, from both paths timed alternately in one JVM on an AMD EPYC (Zen 5, 2 cores, AVX-512; OpenBLAS 0.3.31's
 * COOPERLAKE kernels, 512-bit like the Vector API's vectors here; bench/results/cpu-matmul-vm*.txt): only
 * {@code linearBackward} ({@code dy [m, n] . W [n, k]}) with an output of at least {@link #MIN_ROWS} x
 * {@link #MIN_COLS} and an inner length of at least {@link #MIN_INNER}, where OpenBLAS was 1-17 % faster with one
 * thread (4-17 % at FLUX's 1024 x 3072 x 3072, 1024 x 3072 x 12288 and 1024 x 12288 x 3072) and 8-25 % with two.
 * {@code linear} stays on the Vector API: at FLUX's shapes OpenBLAS's sgemm alone is about 8 % faster than the Vector
 * API's tile kernel, which the copies in and out of native memory and the fixed partition take back (0.96-1.02x with
 * one thread, 0.91-1.00x with two), and at the flux-shapes-dev miniature's shapes (K = 48 to 640) and below
 * M = 1024 the Vector API was faster by 5-25 %; keeping it also keeps a row's bits independent of the batch around it.
 * The autoencoders' 3 x 3 convolutions (32 to 512 channels) were 8-20 % faster on the Vector API, also with larger
 * im2col tiles; M = 1 is memory bound, the copy of the weight into native memory costing more than the Vector API's
 * whole product from 1,536 x 1,536 weights up. Where OpenBLAS's kernels are narrower than the Vector API's vectors
 * (its 256-bit HASWELL kernels against 512-bit vectors, as with {@code OPENBLAS_CORETYPE=Haswell}) it was 25-43 %
 * slower at every shape, so then every product stays on the Vector API.
 */
final class DenseRule {
    static final int MIN_ROWS = 512;
    static final int MIN_COLS = 768;
    static final int MIN_INNER = 768;

    private final boolean everywhere;

    /** {@code everywhere}: OpenBLAS for every product ({@link DenseProducts#OPENBLAS}), else by the shape rule. */
    DenseRule(boolean everywhere) {
        this.everywhere = everywhere;
    }

    /**
     * The rule for {@code products}, or null where the Vector API runs every product: {@link DenseProducts#VECTOR_API},
     * or {@link DenseProducts#FASTEST} where OpenBLAS did not load or its kernels are narrower than the Vector API's
     * vectors.
     *
     * @throws IllegalStateException for {@link DenseProducts#OPENBLAS} where OpenBLAS is not available
     */
    static DenseRule of(DenseProducts products) {
        return switch (products) {
            case VECTOR_API -> null;
            case OPENBLAS -> {
                if (!NativeBlas.available()) {
                    throw new IllegalStateException("dense products through OpenBLAS were asked for, but OpenBLAS is "
                            + NativeBlas.description());
                }
                yield new DenseRule(true);
            }
            case FASTEST -> NativeBlas.available() && wideEnough() ? new DenseRule(false) : null;
        };
    }

    /** OpenBLAS's kernels use vectors at least as wide as the Vector API's (or their width is unknown). */
    private static boolean wideEnough() {
        int bits = NativeBlas.vectorBits();
        return bits == 0 || bits >= FloatVector.SPECIES_PREFERRED.vectorBitSize();
    }

    /** {@code x [m, k] . weight[n, k]^T}: only where forced. */
    boolean linear(int m, int n, int k) {
        return everywhere;
    }

    /** {@code dy [m, n] . weight [n, k]}: an output {@code [m, k]} with inner length n. */
    boolean linearBackward(int m, int n, int k) {
        return everywhere || (m >= MIN_ROWS && k >= MIN_COLS && n >= MIN_INNER);
    }

    /** The convolution's tile products {@code weight [o, k] . patches [k, positions]}: only where forced. */
    boolean conv() {
        return everywhere;
    }

    @Override
    public String toString() {
        return everywhere
                ? "for every dense product"
                : "for linearBackward from " + MIN_ROWS + " x " + MIN_COLS + " x " + MIN_INNER;
    }
}
