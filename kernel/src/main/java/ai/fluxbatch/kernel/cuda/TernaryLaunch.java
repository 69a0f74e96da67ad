package ai.fluxbatch.kernel.cuda;

/**
 * The launch of the ternary matmul of {@code ternary_matmul.cu} for {@code y [M, N] = x [M, K] . codes^T * scale +
 * bias}, codes in {@link GpuTernaryLayout}: which kernel and its geometry. Both kernels take the arguments
 * {@code (const float* x, const uint32_t* w, const float* scale, const float* bias, float* y, int M, int N, int K)}
 * (bias may be null) and use only static shared memory, so the launch passes {@link #dynamicSharedBytes()} = 0.
 * K is any positive number: the layout pads each row's codes to a multiple of 32 inputs with code 0 and the kernels
 * read no x past K, so x needs no padding.
 *
 * <ul>
 *   <li>{@link #SMALL_M_KERNEL} for M up to {@link #SMALL_M_MAX}: one warp per output row, {@link #SMALL_M_WARPS}
 *   warps a block, grid {@code (ceil(N / 8), 1)}.</li>
 *   <li>{@link #TILED_KERNEL} above: 64 x 64 output tiles, 256 threads with 4 x 4 outputs each, grid
 *   {@code (ceil(N / 64), ceil(M / 64))}, {@link #TILED_SHARED_BYTES} of shared memory.</li>
 * </ul>
 *
 * <p>The reverse mode's input gradient {@code dx [M, K] = (dy [M, N] * scale) . codes} has its own kernel,
 * {@link #INPUT_GRAD_KERNEL} {@code (const float* dy, const uint32_t* w, const float* scale, float* dx, int M, int N,
 * int K)}, for M below {@link #DENSE_FROM_M} (above, the backend decodes the codes and runs one GEMM): 8 warps, lane
 * l being input {@code 32 c + l} of chunk {@code c = blockIdx.x}, warp w summing its eighth of the outputs for
 * {@link #INPUT_GRAD_ROWS} rows of dy, the partials added in warp order; grid {@link #inputGrad(int, int)}.
 */
public final class TernaryLaunch {
    public static final String SMALL_M_KERNEL = "ternary_matmul_small_m";
    public static final String TILED_KERNEL = "ternary_matmul_tiled";
    /** The largest M the small-M kernel handles (its per-thread accumulators); FB_SMALL_M_MAX in the .cu. */
    public static final int SMALL_M_MAX = 16;

    public static final int SMALL_M_WARPS = 8;
    public static final int TILE_M = 64;
    public static final int TILE_N = 64;
    public static final int TILE_K = GpuTernaryLayout.CHUNK;
    public static final int TILED_THREADS = 256;
    /** {@code float xs[64][33]} and {@code float ws[32][64]}. */
    public static final int TILED_SHARED_BYTES = 4 * (TILE_M * (TILE_K + 1) + TILE_K * TILE_N);
    /** Shared memory a block may use without opting in: 48 KiB. */
    public static final int SHARED_LIMIT = 48 * 1024;
    /** CUDA's limit on gridDim.y. */
    public static final int MAX_GRID_Y = 65535;
    /**
     * From this many rows of x on, the backend multiplies by decoding the codes into a float scratch weight and
     * running one cuBLAS GEMM (tensor cores with bf16 GEMM precision), then the same epilogue: the product is
     * compute-bound there and the tiled kernel's FP32 FMAs lose to a tuned GEMM, while below it the 2-bit weights'
     * 16x fewer bytes win. A first guess, to be tuned on a GPU with bench/gpu (model CudaBenchmark).
     */
    public static final int DENSE_FROM_M = 256;
    /** The most rows of x one launch takes; the backend splits larger x. */
    public static final int MAX_ROWS_PER_LAUNCH = MAX_GRID_Y * TILE_M;

    public static final String INPUT_GRAD_KERNEL = "ternary_matmul_input_grad";
    /** Rows of dy one block of {@link #INPUT_GRAD_KERNEL} takes (its per-thread accumulators); FB_IG_ROWS. */
    public static final int INPUT_GRAD_ROWS = 16;
    /** Warps of an {@link #INPUT_GRAD_KERNEL} block, each summing one eighth of the outputs; FB_IG_WARPS. */
    public static final int INPUT_GRAD_WARPS = 8;
    /** {@code float part[8][16][32]}. */
    public static final int INPUT_GRAD_SHARED_BYTES = 4 * INPUT_GRAD_WARPS * INPUT_GRAD_ROWS * 32;

    private final String kernel;
    private final int gridX;
    private final int gridY;
    private final int blockX;
    private final int sharedBytes;

    private TernaryLaunch(String kernel, int gridX, int gridY, int blockX, int sharedBytes) {
        this.kernel = kernel;
        this.gridX = gridX;
        this.gridY = gridY;
        this.blockX = blockX;
        this.sharedBytes = sharedBytes;
    }

    /**
     * The launch for M rows of x, N outputs, K inputs.
     *
     * @throws IllegalArgumentException if a dimension is not positive (a caller skips an empty x itself) or M exceeds
     *                                  what one launch covers ({@code 65535 * 64} rows)
     */
    public static TernaryLaunch plan(int m, int n, int k) {
        if (m < 1 || n < 1 || k < 1) {
            throw new IllegalArgumentException(
                    "ternary matmul: M = " + m + ", N = " + n + ", K = " + k + " must all be positive");
        }
        if (m <= SMALL_M_MAX) {
            return new TernaryLaunch(SMALL_M_KERNEL, ceilDiv(n, SMALL_M_WARPS), 1, 32 * SMALL_M_WARPS, 0);
        }
        int gy = ceilDiv(m, TILE_M);
        if (gy > MAX_GRID_Y) {
            throw new IllegalArgumentException("ternary matmul: M = " + m + " rows exceed one launch's "
                    + (long) MAX_GRID_Y * TILE_M + "; split x");
        }
        return new TernaryLaunch(TILED_KERNEL, ceilDiv(n, TILE_N), gy, TILED_THREADS, TILED_SHARED_BYTES);
    }

    /**
     * The launch of {@link #INPUT_GRAD_KERNEL} for M rows of dy and K inputs: grid {@code (ceil(K / 32),
     * ceil(M / 16))}, 256 threads, static shared memory only.
     *
     * @throws IllegalArgumentException if a dimension is not positive or M exceeds one launch's
     *                                  {@code 65535 * 16} rows
     */
    public static LaunchGeometry inputGrad(int m, int k) {
        if (m < 1 || k < 1) {
            throw new IllegalArgumentException(
                    "ternary input gradient: M = " + m + ", K = " + k + " must both be positive");
        }
        int gy = ceilDiv(m, INPUT_GRAD_ROWS);
        if (gy > MAX_GRID_Y) {
            throw new IllegalArgumentException("ternary input gradient: M = " + m + " rows exceed one launch's "
                    + (long) MAX_GRID_Y * INPUT_GRAD_ROWS + "; split dy");
        }
        return new LaunchGeometry(GpuTernaryLayout.chunks(k), gy, 1, 32 * INPUT_GRAD_WARPS, 1, 1, 0);
    }

    /** The launch as {@link Device#launch} takes it. */
    public LaunchGeometry geometry() {
        return new LaunchGeometry(gridX, gridY, 1, blockX, 1, 1, dynamicSharedBytes());
    }

    private static int ceilDiv(int a, int b) {
        return (int) (((long) a + b - 1) / b);
    }

    public String kernel() {
        return kernel;
    }

    public int gridX() {
        return gridX;
    }

    public int gridY() {
        return gridY;
    }

    public int gridZ() {
        return 1;
    }

    public int blockX() {
        return blockX;
    }

    public int blockY() {
        return 1;
    }

    public int blockZ() {
        return 1;
    }

    /** Static shared memory the kernel declares, per block (for planning occupancy; not passed at launch). */
    public int sharedBytes() {
        return sharedBytes;
    }

    /** The sharedMemBytes argument of {@code cuLaunchKernel}: 0, both kernels use static shared memory only. */
    public int dynamicSharedBytes() {
        return 0;
    }

    @Override
    public String toString() {
        return kernel + "<<<(" + gridX + ", " + gridY + "), " + blockX + ", static smem " + sharedBytes + ">>>";
    }
}
