package ai.fluxbatch.kernel.cpu;

import jdk.incubator.vector.FloatVector;

/**
 * Where the CPU backend's dense products go through OpenBLAS ({@link BlasMatmul}) rather than the Vector API: a rule
 * on the product's shape alone, so a given call always takes the same path (and gives the same bits).
 *
 * <p>The rule, from one thread's CPU time of both paths called alternately on an AMD EPYC (Zen 5, AVX-512; OpenBLAS
 * 0.3.31's COOPERLAKE kernels; bench/results/cpu-matmul-vm*.txt): an output of at least {@link #MIN_ROWS} rows and
 * {@link #MIN_COLS} columns with an inner length of at least {@link #MIN_INNER}, the products of FLUX.1 at 512 x 512
 * and larger images (K = 3072 or 12288, N = 3072 to 15360), where OpenBLAS was 3-6 % faster for {@code linear} and
 * 13 % for {@code linearBackward} (its sgemm alone about 10 % faster than the Vector API, less the copies in and out
 * and the fixed partition). At M = 512 and below, at N = K = 1024 and at every shape of the flux-shapes-dev miniature
 * (K = 48 to 640) the Vector API was as fast or faster (by 5-25 %), and so for the autoencoders' 3 x 3 convolutions at
 * 32 to 512 channels (by 8-20 %, also with larger im2col tiles). M = 1 is memory bound: the copy of the weight into
 * native memory costs more than the Vector API's whole product (OpenBLAS 2-3x slower from 1,536 x 1,536 weights up;
 * faster only for weights of 100,000 floats or fewer, products of a few microseconds). Where OpenBLAS's kernels are
 * narrower than the Vector API's vectors (its 256-bit HASWELL kernels against 512-bit vectors, e.g. with
 * {@code OPENBLAS_CORETYPE=Haswell}) it was slower at every shape, so then every product stays on the Vector API.
 */
final class DenseRule {
    static final int MIN_ROWS = 1024;
    static final int MIN_COLS = 2048;
    static final int MIN_INNER = 768;

    private final boolean everywhere;

    private DenseRule(boolean everywhere) {
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

    /** An output {@code [rows, cols]} with inner length {@code inner} through OpenBLAS. */
    private boolean product(int rows, int cols, int inner) {
        return everywhere || (rows >= MIN_ROWS && cols >= MIN_COLS && inner >= MIN_INNER);
    }

    /** {@code x [m, k] . weight[n, k]^T}. */
    boolean linear(int m, int n, int k) {
        return product(m, n, k);
    }

    /** {@code dy [m, n] . weight [n, k]}: an output {@code [m, k]} with inner length n. */
    boolean linearBackward(int m, int n, int k) {
        return product(m, k, n);
    }

    /** The convolution's tile products {@code weight [o, k] . patches [k, positions]}: only where forced. */
    boolean conv() {
        return everywhere;
    }

    @Override
    public String toString() {
        return everywhere ? "for every dense product" : "from " + MIN_ROWS + " x " + MIN_COLS + " x " + MIN_INNER;
    }
}
