package ai.fluxbatch.kernel.cpu;

/**
 * Sums over the rows of {@code [G, R, C]} (per group, per column) for the parameter gradients of the backward
 * operations, in one fixed order: the rows of a group in blocks of {@link #BLOCK}, each block summed in row order,
 * then the blocks' partial sums added in block order. The block size is a constant, so a sum gives the same bits for
 * any number of threads; the blocks are what runs in parallel.
 */
final class RowSums {
    static final int BLOCK = 64;

    private RowSums() {}

    /**
     * {@code out[g, c] = sum over r of a[g, r, c] * b[g, r, c]} (or of {@code a[g, r, c]} alone when {@code b} is
     * null) for {@code a, b [groups, rows, cols]}; returns {@code [groups, cols]}.
     */
    static float[] sum(ParallelFor parallel, float[] a, float[] b, int groups, int rows, int cols) {
        int blocks = Math.max(1, (rows + BLOCK - 1) / BLOCK);
        float[] partial = new float[groups * blocks * cols];
        parallel.run(groups * blocks, Math.max(1, 16384 / Math.max(1, BLOCK * cols)), (from, to) -> {
            for (int t = from; t < to; t++) {
                int g = t / blocks, r0 = (t % blocks) * BLOCK, r1 = Math.min(rows, r0 + BLOCK);
                for (int r = r0; r < r1; r++) {
                    int o = (g * rows + r) * cols;
                    if (b == null) {
                        VectorMath.addTo(a, o, partial, t * cols, cols);
                    } else {
                        VectorMath.mulAddTo(a, o, b, o, partial, t * cols, cols);
                    }
                }
            }
        });
        float[] out = new float[groups * cols];
        for (int g = 0; g < groups; g++) {
            for (int blk = 0; blk < blocks; blk++) {
                VectorMath.addTo(partial, (g * blocks + blk) * cols, out, g * cols, cols);
            }
        }
        return out;
    }
}
