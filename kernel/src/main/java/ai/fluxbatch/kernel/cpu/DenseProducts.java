package ai.fluxbatch.kernel.cpu;

import java.util.Locale;

/**
 * Which code runs the CPU backend's dense products: {@code linear}, {@code linearBackward} and the convolutions'
 * im2col products. Both give results within float rounding of each other, each the same bits whatever the thread
 * count. {@link #configured()} reads the choice of {@code -Dfluxbatch.blas} (or {@code FLUXBATCH_BLAS}).
 */
public enum DenseProducts {
    /**
     * OpenBLAS's sgemm at the shapes where it measured faster than the Vector API ({@link DenseRule}), when it loaded
     * and its kernels use vectors at least as wide as the Vector API's; the Vector API everywhere else.
     */
    FASTEST,
    /** The Vector API kernels only. */
    VECTOR_API,
    /** OpenBLAS for every dense product, whatever the shape (tests, benchmarks); fails where it cannot load. */
    OPENBLAS;

    /**
     * The choice of {@code -Dfluxbatch.blas} (or the environment variable {@code FLUXBATCH_BLAS}): {@code off} (or
     * false, 0, none) {@link #VECTOR_API}, {@code always} {@link #OPENBLAS}, unset or anything else {@link #FASTEST}.
     */
    public static DenseProducts configured() {
        String value = System.getProperty("fluxbatch.blas", System.getenv("FLUXBATCH_BLAS"));
        if (value == null) {
            return FASTEST;
        }
        String v = value.toLowerCase(Locale.ROOT);
        if (v.matches("off|false|0|none")) {
            return VECTOR_API;
        }
        return v.equals("always") ? OPENBLAS : FASTEST;
    }
}
