package ai.fluxbatch.kernel.cpu;

import static ai.fluxbatch.kernel.cpu.TernaryMatmul.I;
import static ai.fluxbatch.kernel.cpu.TernaryMatmul.KB;
import static ai.fluxbatch.kernel.cpu.TernaryMatmul.L;
import static ai.fluxbatch.kernel.cpu.TernaryMatmul.M_STEP;
import static ai.fluxbatch.kernel.cpu.TernaryMatmul.NW;
import static ai.fluxbatch.kernel.cpu.TernaryMatmul.S;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;

/**
 * {@code dx [m, k] = dy [m, n] . W [n, k]}: the input gradient of a linear layer, the product with the weight not
 * transposed, for a dense weight and for a {@link CpuTernaryTensor} ({@code W = scale[:, None] * codes}, read in its
 * packed layout). A task takes {@link TernaryMatmul#NW} columns of dx and up to {@link TernaryMatmul#M_STEP} rows of
 * dy; per block of {@link TernaryMatmul#KB} rows of W it loads {@code W[o0 .. o0 + KB, k0 .. k0 + NW)} into a float
 * buffer (a copy, or for ternary codes a decode: one int of the layout broadcast and shifted per lane is 16
 * consecutive inputs of one row), then runs {@link TernaryMatmul#tile6x4} over it with dy as the left operand. Every
 * {@code dx[m, k]} is one chain of fused multiply-adds over n in order, so the result does not depend on the tiling or
 * the thread count. No whole copy of the weight is made: the buffers are per task, 32 KiB and 64 KiB with 16 lanes.
 */
final class TransposedMatmul {
    /** {@code 2c} for input {@code c} of a 16-input chunk: the per-lane left shift that brings its code to the top. */
    private static final int[] LANE_SHIFTS = new int[CpuTernaryTensor.PANEL];

    static {
        for (int c = 0; c < LANE_SHIFTS.length; c++) {
            LANE_SHIFTS[c] = 2 * c;
        }
    }

    private TransposedMatmul() {}

    /** Loads {@code wbuf[kk][j] = W[o0 + kk, k0 + j]} for {@code kk < kn}, {@code j < NW}, 0 past W's columns. */
    private interface BlockLoader {
        void load(int o0, int kn, int k0, float[] wbuf);
    }

    /** {@code dx [m, w.in] = (dy [m, w.out] * scale) . codes}; {@code dx} is overwritten. */
    static void ternary(ParallelFor parallel, float[] dy, CpuTernaryTensor w, float[] dx, int m) {
        multiply(parallel, dy, m, w.out, w.in, (o0, kn, k0, wbuf) -> decodeColumns(w, o0, kn, k0, wbuf), dx);
    }

    /** {@code dx [m, k] = dy [m, n] . w [n, k]}; {@code dx} is overwritten. */
    static void dense(ParallelFor parallel, float[] dy, float[] w, int m, int n, int k, float[] dx) {
        multiply(
                parallel,
                dy,
                m,
                n,
                k,
                (o0, kn, k0, wbuf) -> {
                    int cols = Math.min(NW, k - k0);
                    for (int kk = 0; kk < kn; kk++) {
                        System.arraycopy(w, (o0 + kk) * k + k0, wbuf, kk * NW, cols);
                        Arrays.fill(wbuf, kk * NW + cols, (kk + 1) * NW, 0f);
                    }
                },
                dx);
    }

    private static void multiply(
            ParallelFor parallel, float[] dy, int m, int n, int k, BlockLoader loader, float[] dx) {
        if (m == 0 || k == 0) {
            return;
        }
        int kTiles = (k + NW - 1) / NW, mTiles = (m + M_STEP - 1) / M_STEP;
        parallel.run(kTiles * mTiles, 1, (from, to) -> {
            float[] wbuf = new float[Math.min(KB, n) * NW], acc = new float[Math.min(M_STEP, m) * NW];
            for (int t = from; t < to; t++) {
                int k0 = (t % kTiles) * NW, m0 = (t / kTiles) * M_STEP, rows = Math.min(M_STEP, m - m0);
                Arrays.fill(acc, 0, rows * NW, 0f);
                for (int o0 = 0; o0 < n; o0 += KB) {
                    int kn = Math.min(KB, n - o0);
                    loader.load(o0, kn, k0, wbuf);
                    int xo = m0 * n + o0;
                    TernaryMatmul.tileRows(dy, xo, n, rows, kn, wbuf, acc);
                }
                int cols = Math.min(NW, k - k0);
                for (int r = 0; r < rows; r++) {
                    System.arraycopy(acc, r * NW, dx, (m0 + r) * k + k0, cols);
                }
            }
        });
    }

    /**
     * {@code wbuf[kk][j] = scale[o0 + kk] * codes[o0 + kk, k0 + j]} for {@code kk < kn}, {@code j < NW}; inputs past
     * the last chunk are 0 (those inside it are 0 by the layout's padding).
     */
    private static void decodeColumns(CpuTernaryTensor w, int o0, int kn, int k0, float[] wbuf) {
        int[] codes = w.codes;
        for (int kk = 0; kk < kn; kk++) {
            int o = o0 + kk;
            FloatVector s = FloatVector.broadcast(S, w.scale[o]);
            for (int j = 0; j < NW; j += L) {
                int col = k0 + j, kc = col / CpuTernaryTensor.PANEL;
                FloatVector v = FloatVector.zero(S);
                if (kc < w.chunks) {
                    IntVector shift = IntVector.fromArray(I, LANE_SHIFTS, col % CpuTernaryTensor.PANEL);
                    v = ((FloatVector) IntVector.broadcast(I, codes[w.index(o, kc)])
                                    .lanewise(VectorOperators.LSHL, shift)
                                    .lanewise(VectorOperators.ASHR, 30)
                                    .convert(VectorOperators.I2F, 0))
                            .mul(s);
                }
                v.intoArray(wbuf, kk * NW + j);
            }
        }
    }
}
