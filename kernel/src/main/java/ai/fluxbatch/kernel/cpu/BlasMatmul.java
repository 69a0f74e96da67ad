package ai.fluxbatch.kernel.cpu;

import static org.bytedeco.openblas.global.openblas.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas.CblasTrans;
import static org.bytedeco.openblas.global.openblas.cblas_sgemm;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import org.bytedeco.javacpp.FloatPointer;

/**
 * The CPU backend's dense products through OpenBLAS's {@code cblas_sgemm} ({@link NativeBlas}): {@code out[m, n] =
 * a[m, k] . b + bias[n]} with {@code b} a Linear weight {@code [n, k]} (used transposed) or a plain {@code [k, n]}.
 *
 * <p>The operands are copied into native buffers ({@code FloatPointer.put}, split over the backend's threads where
 * they are large), the output is cut into blocks of rows and columns that depend on the shape only ({@link #grid}),
 * and each block is one single-threaded sgemm on one of the backend's threads, its result copied back with the bias
 * added. OpenBLAS's bits depend on the partition of the product (its tile edges), so a partition fixed by the shape
 * makes the result the same bits whatever the thread count, and run after run. The copies cost about 5 % at M = 1024, K = 3072
 * (the weight is copied on every call: a second, native copy of every weight would double the memory of a
 * full-precision FLUX).
 *
 * <p>The native buffers belong to the backend: a pool of scratch sets, each grown to the largest call it served and
 * reused, one set per concurrent caller (and per task of a convolution), all freed by {@link #close}.
 */
final class BlasMatmul implements AutoCloseable {
    /** About the work of one block: small enough that a call at the miniature's sizes gives every thread some. */
    private static final long BLOCK_FLOPS = 1L << 24;
    /**
     * At most this many blocks per product. Each block repacks its share of both operands: at M = 1024, K = 3072 one
     * thread loses about 5 % with blocks of 1024 x 512 or 512 x 768, 7 % with 512 x 512, 8-14 % with 256-wide ones
     * against one call.
     */
    private static final int MAX_BLOCKS = 32;
    /** Blocks are at least this many rows and columns (or the whole side where it is shorter)... */
    private static final int MIN_SIDE = 512;
    /** ... or this many where that leaves fewer than {@link #FEW_BLOCKS} blocks for a product worth more. */
    private static final int SMALL_SIDE = 128;
    /** A product worth this many blocks or more gets at least this many. */
    private static final int FEW_BLOCKS = 4;
    /** Block sides are multiples of this: whole register tiles of the sgemm kernels. */
    private static final int ALIGN = 16;
    /** Floats per piece of a copy into native memory that is split over threads. */
    private static final int COPY_FLOATS = 1 << 18;

    private final ParallelFor parallel;
    private final Deque<Scratch> idle = new ArrayDeque<>();
    private boolean closed;

    BlasMatmul(ParallelFor parallel) {
        if (!NativeBlas.available()) {
            throw new IllegalStateException("OpenBLAS is not available: " + NativeBlas.description());
        }
        this.parallel = parallel;
    }

    /** Rows and columns per block of an {@code [m, n]} output with inner length {@code k}: a function of the shape. */
    record Grid(int rows, int cols) {
        int mBlocks(int m) {
            return ceil(m, rows);
        }

        int nBlocks(int n) {
            return ceil(n, cols);
        }
    }

    /**
     * About {@link #BLOCK_FLOPS} of work per block, at most {@link #MAX_BLOCKS} blocks, sides of at least
     * {@link #MIN_SIDE} (of {@link #SMALL_SIDE} for a small product that would otherwise get fewer than
     * {@link #FEW_BLOCKS}): the columns (rows of a Linear weight) are split first, then the rows.
     */
    static Grid grid(int m, int n, int k) {
        long flops = 2L * m * n * Math.max(1, k);
        int blocks = (int) Math.max(1, Math.min(MAX_BLOCKS, flops / BLOCK_FLOPS));
        int[] parts = parts(m, n, blocks, MIN_SIDE);
        if (parts[0] * parts[1] < Math.min(blocks, FEW_BLOCKS)) {
            parts = parts(m, n, blocks, SMALL_SIDE);
        }
        int rows = Math.min(m, roundUp(ceil(m, parts[0]), ALIGN));
        int cols = Math.min(n, roundUp(ceil(n, parts[1]), ALIGN));
        return new Grid(Math.max(1, rows), Math.max(1, cols));
    }

    /** {row parts, column parts}: up to {@code blocks} in all, columns first, no side below {@code side}. */
    private static int[] parts(int m, int n, int blocks, int side) {
        int nParts = Math.min(blocks, Math.max(1, n / side));
        int mParts = Math.max(1, Math.min(blocks / nParts, m / side));
        return new int[] {mParts, nParts};
    }

    /**
     * {@code out[m, n] = a[m, k] . b + bias[n]} ({@code bias} may be null), with {@code b} read as {@code [n, k]} and
     * transposed when {@code bTransposed} (a Linear weight), else as {@code [k, n]}; {@code out} is overwritten.
     */
    void multiply(float[] a, float[] b, boolean bTransposed, float[] bias, float[] out, int m, int n, int k) {
        if (m == 0 || n == 0) {
            return;
        }
        if (k == 0) {
            for (int r = 0; r < m; r++) {
                if (bias == null) {
                    Arrays.fill(out, r * n, (r + 1) * n, 0f);
                } else {
                    System.arraycopy(bias, 0, out, r * n, n);
                }
            }
            return;
        }
        Scratch s = take();
        try {
            FloatPointer pa = s.a((long) m * k), pb = s.b((long) n * k), pc = s.c((long) m * n);
            Grid g = grid(m, n, k);
            int mBlocks = g.mBlocks(m), nBlocks = g.nBlocks(n);
            Block block = new Block(pa, pb, pc, bTransposed, bias, out, m, n, k, g);
            put(pa, a, m * k);
            long flopsPerBlock = 2L * g.rows() * g.cols() * k;
            if (bTransposed && nBlocks >= parallel.threads()) {
                // a task per column block copies its rows of the weight itself, then runs the block's row bands
                // while they are in cache; the blocks and their bits are the same either way
                long flopsPerTask = flopsPerBlock * mBlocks;
                parallel.run(nBlocks, (int) Math.max(1, BLOCK_FLOPS / Math.max(1, flopsPerTask)), (from, to) -> {
                    float[] tmp = new float[g.rows() * g.cols()];
                    for (int j = from; j < to; j++) {
                        int n0 = j * g.cols(), cols = Math.min(g.cols(), n - n0);
                        pb.getPointer((long) n0 * k).put(b, n0 * k, cols * k);
                        for (int i = 0; i < mBlocks; i++) {
                            block.run(i, j, tmp);
                        }
                    }
                });
                return;
            }
            put(pb, b, n * k);
            parallel.run(mBlocks * nBlocks, (int) Math.max(1, BLOCK_FLOPS / Math.max(1, flopsPerBlock)), (from, to) -> {
                float[] tmp = nBlocks > 1 ? new float[g.rows() * g.cols()] : null;
                for (int t = from; t < to; t++) {
                    block.run(t / nBlocks, t % nBlocks, tmp);
                }
            });
        } finally {
            give(s);
        }
    }

    /** One product's operands in native memory and its partition: {@link #run} computes one block. */
    private record Block(
            FloatPointer pa,
            FloatPointer pb,
            FloatPointer pc,
            boolean bTransposed,
            float[] bias,
            float[] out,
            int m,
            int n,
            int k,
            Grid g) {
        /**
         * Block {@code (i, j)}: one single-threaded sgemm into its own contiguous {@code [rows, cols]} inside its
         * band of rows of {@code pc}, then into {@code out} with the bias ({@code tmp} holds a block where the output
         * has more than one column block).
         */
        void run(int i, int j, float[] tmp) {
            int m0 = i * g.rows(), n0 = j * g.cols();
            int rows = Math.min(g.rows(), m - m0), cols = Math.min(g.cols(), n - n0);
            long c0 = (long) m0 * n + (long) rows * n0;
            cblas_sgemm(
                    CblasRowMajor,
                    CblasNoTrans,
                    bTransposed ? CblasTrans : CblasNoTrans,
                    rows,
                    cols,
                    k,
                    1f,
                    pa.getPointer((long) m0 * k),
                    k,
                    pb.getPointer(bTransposed ? (long) n0 * k : n0),
                    bTransposed ? k : n,
                    0f,
                    pc.getPointer(c0),
                    cols);
            if (cols == n) {
                pc.getPointer(c0).get(out, m0 * n, rows * n);
                if (bias != null) {
                    for (int r = 0; r < rows; r++) {
                        epilogue(out, (m0 + r) * n, bias, out, (m0 + r) * n, 0, n);
                    }
                }
            } else {
                pc.getPointer(c0).get(tmp, 0, rows * cols);
                for (int r = 0; r < rows; r++) {
                    epilogue(tmp, r * cols, bias, out, (m0 + r) * n + n0, n0, cols);
                }
            }
        }
    }

    /**
     * Per task of a product that runs its own small sgemms (the convolution's tiles): {@code weight [o, k]} copied
     * once into native memory, then {@link Tiles#multiply} for each tile on the task's thread.
     */
    interface TileBody {
        void run(int from, int to, Tiles tiles);
    }

    /**
     * Runs {@code body} over {@code [0, count)} on the backend's threads, each task with its own {@link Tiles}: the
     * shared {@code weight [o, k]} in native memory and the task's own buffers for a tile's columns and result.
     */
    void tiles(float[] weight, int o, int k, int count, int grain, TileBody body) {
        Scratch shared = take();
        try {
            FloatPointer pw = shared.a((long) o * k);
            put(pw, weight, o * k);
            parallel.run(count, grain, (from, to) -> {
                Scratch own = take();
                try {
                    body.run(from, to, new Tiles(pw, o, k, own));
                } finally {
                    give(own);
                }
            });
        } finally {
            give(shared);
        }
    }

    /** One task's view for {@link #tiles}: the shared weight and its own native buffers. */
    static final class Tiles {
        private final FloatPointer weight;
        private final int o, k;
        private final Scratch scratch;

        private Tiles(FloatPointer weight, int o, int k, Scratch scratch) {
            this.weight = weight;
            this.o = o;
            this.k = k;
            this.scratch = scratch;
        }

        /** {@code out[o, count] = weight [o, k] . columns[k, count]} in one single-threaded sgemm. */
        void multiply(float[] columns, int count, float[] out) {
            FloatPointer pb = scratch.b((long) k * count), pc = scratch.c((long) o * count);
            pb.put(columns, 0, k * count);
            cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, o, count, k, 1f, weight, k, pb, count, 0f, pc, count);
            pc.get(out, 0, o * count);
        }
    }

    /** {@code dst[0 .. length) = src[0 .. length)}, in pieces on the backend's threads where it is large. */
    private void put(FloatPointer dst, float[] src, int length) {
        int pieces = ceil(length, COPY_FLOATS);
        if (pieces <= 1) {
            dst.put(src, 0, length);
            return;
        }
        parallel.run(pieces, 1, (from, to) -> {
            int start = from * COPY_FLOATS, end = (int) Math.min(length, (long) to * COPY_FLOATS);
            dst.getPointer(start).put(src, start, end - start);
        });
    }

    /** {@code out[oo + j] = c[co + j] + bias[b0 + j]} for {@code j < cols}; a plain copy without a bias. */
    private static void epilogue(float[] c, int co, float[] bias, float[] out, int oo, int b0, int cols) {
        if (bias == null) {
            if (c != out || co != oo) {
                System.arraycopy(c, co, out, oo, cols);
            }
            return;
        }
        VectorMath.addRow(c, co, bias, b0, out, oo, cols);
    }

    private synchronized Scratch take() {
        if (closed) {
            throw new IllegalStateException("the CPU backend is closed: its OpenBLAS buffers are freed");
        }
        Scratch s = idle.pollFirst();
        if (s == null) {
            s = new Scratch();
        }
        return s;
    }

    private synchronized void give(Scratch s) {
        if (closed) {
            s.close();
        } else {
            idle.addFirst(s);
        }
    }

    /** Frees the native buffers; those of a call still running are freed when it ends. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Scratch s : idle) {
            s.close();
        }
        idle.clear();
    }

    private static int ceil(int a, int b) {
        return (a + b - 1) / b;
    }

    private static int roundUp(int a, int multiple) {
        return ceil(a, multiple) * multiple;
    }

    /** Three native float buffers, each grown to the largest request and kept. Used by one thread at a time. */
    private static final class Scratch {
        private FloatPointer a, b, c;

        FloatPointer a(long floats) {
            return a = grown(a, floats);
        }

        FloatPointer b(long floats) {
            return b = grown(b, floats);
        }

        FloatPointer c(long floats) {
            return c = grown(c, floats);
        }

        private static FloatPointer grown(FloatPointer p, long floats) {
            if (p != null && p.capacity() >= floats) {
                return p;
            }
            if (p != null) {
                p.close();
            }
            return new FloatPointer(Math.max(1, floats));
        }

        void close() {
            for (FloatPointer p : new FloatPointer[] {a, b, c}) {
                if (p != null) {
                    p.close();
                }
            }
            a = b = c = null;
        }
    }
}
