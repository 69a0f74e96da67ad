package ai.fluxbatch.kernel.cpu;

import static ai.fluxbatch.kernel.cpu.TernaryMatmul.KB;
import static ai.fluxbatch.kernel.cpu.TernaryMatmul.M_STEP;
import static ai.fluxbatch.kernel.cpu.TernaryMatmul.NW;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code out[m, n] = x[m, :] . w[n, :] + bias[n]} with both operands row-major along K, as PyTorch stores Linear
 * weights. Every output is one chain of fused multiply-adds {@code acc = fma(x[m, k], w[n, k], acc)} for k = 0, 1, 2,
 * ... from 0, then {@code + bias[n]} (no lane sum): the same bits whatever the number of rows of x, the tiling or the
 * thread count. Two paths compute that chain:
 *
 * <ul>
 *   <li>More than one row of x: {@link TernaryMatmul#tile6x4}, each output column in its own lane. A task takes
 *       {@link TernaryMatmul#NW} output columns and a band of rows of x (at most {@link #MAX_ROWS}, fewer where the
 *       threads need more tasks); per block of {@link TernaryMatmul#KB} inputs it copies {@code w[n0 .. n0 + NW, k0 ..
 *       k0 + KB)} transposed into a float buffer ([KB][NW], 32 KiB with 16 lanes, stays in L1), then runs the 6 x 4
 *       register tile (24 accumulators) over it for every six rows of the band, the accumulators parked in a per-task
 *       buffer between blocks. The copy is paid once per block and task, shared by all the band's rows; no whole copy
 *       of the weight is made.
 *   <li>One row (M = 1, memory bound): eight scalar chains at a time straight from the rows of w, which a copy would
 *       cost more than the multiply-adds themselves.
 * </ul>
 *
 * <p>Both paths read the weight through a {@link Weight}: the float32 array here, or a bfloat16 one widened as it is
 * read ({@link Bf16Matmul}), which gives the bits of this product on the float32 array of the widened values.
 */
final class VectorMatmul {
    private static final VectorSpecies<Float> PREFERRED = FloatVector.SPECIES_PREFERRED;
    /** Rows of x the tile takes at a time: band heights are a multiple, so only a matrix's last group repeats rows. */
    private static final int TILE_ROWS = 6;
    /** At most this many rows of x per task: its accumulators, [rows][NW] floats, stay within 256 KiB (L2). */
    private static final int MAX_ROWS = 1024;

    private VectorMatmul() {}

    /** How the two paths read a weight {@code [n, k]}, row-major along k. */
    interface Weight {
        /**
         * {@code wbuf[kk][j] = w[n0 + j, k0 + kk]} for {@code kk < kn}, {@code j < cols}; 0 for {@code cols <= j < NW}.
         */
        void transposeBlock(int k, int n0, int cols, int k0, int kn, float[] wbuf);

        /** The one-row path: {@code out[j] = x . w[j, :] + bias[j]} for {@code j0 <= j < j1}, one chain per output. */
        void direct(float[] x, int k, int j0, int j1, float[] bias, float[] out);
    }

    /** A float32 weight as it is. */
    private record FloatWeight(float[] w) implements Weight {
        @Override
        public void transposeBlock(int k, int n0, int cols, int k0, int kn, float[] wbuf) {
            VectorMatmul.transposeBlock(w, k, n0, cols, k0, kn, wbuf);
        }

        @Override
        public void direct(float[] x, int k, int j0, int j1, float[] bias, float[] out) {
            VectorMatmul.direct(x, w, k, j0, j1, bias, out);
        }
    }

    static void matmul(ParallelFor parallel, float[] x, float[] w, float[] bias, float[] out, int m, int n, int k) {
        matmul(parallel, x, new FloatWeight(w), bias, out, m, n, k);
    }

    static void matmul(ParallelFor parallel, float[] x, Weight w, float[] bias, float[] out, int m, int n, int k) {
        if (m == 0 || n == 0) {
            return;
        }
        int nTiles = ceil(n, NW);
        if (m == 1) {
            int grain = (int) Math.max(1, 1_000_000 / (2L * NW * Math.max(1, k)));
            parallel.run(nTiles, grain, (from, to) -> w.direct(x, k, from * NW, Math.min(n, to * NW), bias, out));
            return;
        }
        // Bands as tall as allowed (each band copies all of w once), but enough tasks for every thread.
        int bands = Math.max(ceil(m, MAX_ROWS), Math.min(ceil(m, M_STEP), ceil(parallel.threads() * 2, nTiles)));
        int height = Math.min(m, roundUp(ceil(m, bands), TILE_ROWS));
        int mTasks = ceil(m, height);
        int grain = (int) Math.max(1, 2_000_000 / (2L * height * NW * Math.max(1, k)));
        parallel.run(nTiles * mTasks, grain, (from, to) -> {
            float[] wbuf = new float[KB * NW], acc = new float[height * NW];
            for (int t = from; t < to; t++) {
                int n0 = (t % nTiles) * NW, m0 = (t / nTiles) * height;
                band(x, w, bias, out, n, k, m0, Math.min(m, m0 + height), n0, Math.min(NW, n - n0), wbuf, acc);
            }
        });
    }

    /**
     * {@code out[j] = x . w[j, :] + bias[j]} for one row x and {@code j0 <= j < j1}: the tile's chain of fused
     * multiply-adds over k in order, eight outputs at a time in scalar registers (eight independent chains hide the
     * FMA latency), the weights read once and in order.
     */
    private static void direct(float[] x, float[] w, int k, int j0, int j1, float[] bias, float[] out) {
        int j = j0;
        for (; j + 8 <= j1; j += 8) {
            int w0 = j * k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k, w4 = w3 + k, w5 = w4 + k, w6 = w5 + k, w7 = w6 + k;
            float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f, a4 = 0f, a5 = 0f, a6 = 0f, a7 = 0f;
            for (int i = 0; i < k; i++) {
                float v = x[i];
                a0 = Math.fma(v, w[w0 + i], a0);
                a1 = Math.fma(v, w[w1 + i], a1);
                a2 = Math.fma(v, w[w2 + i], a2);
                a3 = Math.fma(v, w[w3 + i], a3);
                a4 = Math.fma(v, w[w4 + i], a4);
                a5 = Math.fma(v, w[w5 + i], a5);
                a6 = Math.fma(v, w[w6 + i], a6);
                a7 = Math.fma(v, w[w7 + i], a7);
            }
            store(out, bias, j, a0);
            store(out, bias, j + 1, a1);
            store(out, bias, j + 2, a2);
            store(out, bias, j + 3, a3);
            store(out, bias, j + 4, a4);
            store(out, bias, j + 5, a5);
            store(out, bias, j + 6, a6);
            store(out, bias, j + 7, a7);
        }
        for (; j < j1; j++) {
            float a = 0f;
            for (int i = 0, wo = j * k; i < k; i++) {
                a = Math.fma(x[i], w[wo + i], a);
            }
            store(out, bias, j, a);
        }
    }

    /** As the epilogue: the sum alone without a bias (so -0 stays -0), else one rounded add. */
    static void store(float[] out, float[] bias, int j, float sum) {
        out[j] = bias == null ? sum : sum + bias[j];
    }

    private static int ceil(int a, int b) {
        return (a + b - 1) / b;
    }

    private static int roundUp(int a, int multiple) {
        return (a + multiple - 1) / multiple * multiple;
    }

    /**
     * Rows {@code [m0, m1)} of x against output columns {@code [n0, n0 + cols)}: per block of KB inputs the transposed
     * weights into {@code wbuf}, then the 6 x 4 tiles. A short last group of rows repeats its last row (which then
     * stores equal values twice); columns past {@code cols} compute on zeros and are not stored.
     */
    private static void band(
            float[] x,
            Weight w,
            float[] bias,
            float[] out,
            int n,
            int k,
            int m0,
            int m1,
            int n0,
            int cols,
            float[] wbuf,
            float[] acc) {
        int rows = m1 - m0;
        Arrays.fill(acc, 0, rows * NW, 0f);
        for (int kb0 = 0; kb0 < k; kb0 += KB) {
            int kn = Math.min(KB, k - kb0);
            w.transposeBlock(k, n0, cols, kb0, kn, wbuf);
            TernaryMatmul.tileRows(x, m0 * k + kb0, k, rows, kn, wbuf, acc);
        }
        epilogue(acc, rows, bias, out, n, m0, n0, cols);
    }

    /**
     * {@code wbuf[kk][j] = w[n0 + j, k0 + kk]} for {@code kk < kn}, {@code j < cols}; 0 for {@code cols <= j < NW}.
     */
    private static void transposeBlock(float[] w, int k, int n0, int cols, int k0, int kn, float[] wbuf) {
        int j = 0;
        for (; j + 4 <= cols; j += 4) { // four rows at a time, stores side by side: 1.6x faster than one row at a time
            int s0 = (n0 + j) * k + k0, s1 = s0 + k, s2 = s1 + k, s3 = s2 + k;
            for (int kk = 0, o = j; kk < kn; kk++, o += NW) {
                wbuf[o] = w[s0 + kk];
                wbuf[o + 1] = w[s1 + kk];
                wbuf[o + 2] = w[s2 + kk];
                wbuf[o + 3] = w[s3 + kk];
            }
        }
        for (; j < cols; j++) {
            int src = (n0 + j) * k + k0;
            for (int kk = 0, o = j; kk < kn; kk++, o += NW) {
                wbuf[o] = w[src + kk];
            }
        }
        zeroPad(cols, kn, wbuf);
    }

    /** Zeros in columns {@code cols .. NW - 1} of the first {@code kn} rows of {@code wbuf}. */
    static void zeroPad(int cols, int kn, float[] wbuf) {
        if (cols < NW) {
            for (int kk = 0; kk < kn; kk++) {
                Arrays.fill(wbuf, kk * NW + cols, (kk + 1) * NW, 0f);
            }
        }
    }

    /** {@code out[m0 + r, n0 + j] = acc[r][j] + bias[n0 + j]} for {@code r < rows}, {@code j < cols}. */
    private static void epilogue(float[] acc, int rows, float[] bias, float[] out, int n, int m0, int n0, int cols) {
        for (int r = 0; r < rows; r++) {
            int ao = r * NW, oo = (m0 + r) * n + n0;
            if (bias == null) {
                System.arraycopy(acc, ao, out, oo, cols);
                continue;
            }
            VectorMath.addRow(acc, ao, bias, n0, out, oo, cols);
        }
    }

    /** {@code a[ao ..] . b[bo ..]} over {@code k}. */
    static float dot(float[] a, int ao, float[] b, int bo, int k) {
        FloatVector acc = FloatVector.zero(PREFERRED);
        int i = 0;
        int bound = PREFERRED.loopBound(k);
        for (; i < bound; i += PREFERRED.length()) {
            acc = FloatVector.fromArray(PREFERRED, a, ao + i).fma(FloatVector.fromArray(PREFERRED, b, bo + i), acc);
        }
        float s = VectorMath.sumLanes(acc);
        for (; i < k; i++) {
            s += a[ao + i] * b[bo + i];
        }
        return s;
    }
}
