package ai.fluxbatch.kernel.cpu;

import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code out[m, o] = (x[m, :] . codes[o, :]) * scale[o] + bias[o]} for a {@link CpuTernaryTensor}.
 *
 * <p>The weights are columns of a vector: one int vector of the packed layout, shifted, is the weight of 16 output
 * rows for one input {@code k}, so each output row accumulates in its own lane, {@code acc = fma(x[m, k], w[o, k],
 * acc)} for k = 0, 1, 2, ... in order. With w in {-1, 0, +1} that is {@code acc + x}, {@code acc - x} or
 * {@code acc}, rounded once: every path below performs exactly that sequence, so a row's result is the same bits
 * whatever the number of rows of x, the tiling or the thread count. Scale and bias come in the epilogue.
 *
 * <p>Up to {@link #DIRECT_MAX_ROWS} rows of x (M = 1 is the memory-bound case): the 2-bit weights stream once, 64
 * rows' codes as one sequential run, and are decoded in registers (shift, shift, convert) right before their FMAs,
 * one decode shared by up to four rows of x; no float copy of the weights is made. More rows (compute bound): a
 * task takes 64 output rows and up to 256 rows of x; per block of 128 inputs it decodes the 64 x 128 weights once
 * into a per-thread float buffer (32 KiB, stays in L1) and runs a 6 x 4 register tile of FMAs (24 accumulators)
 * over it for every six rows of x, the accumulators parked in a per-thread buffer between blocks.
 *
 * <p>Every kernel loop is a single flat loop over k: with a loop nested inside (per 16-input block, then per input)
 * C2 of JDK 17 no longer keeps the vector accumulators in registers but boxes them on every iteration, ten times
 * slower. The codes are therefore reloaded for each input (an L1 hit) rather than carried across the inner loop.
 */
final class TernaryMatmul {
    /** At most 16 lanes, so a 16-row panel is a whole number of vectors. */
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED.length() <= CpuTernaryTensor.PANEL
            ? FloatVector.SPECIES_PREFERRED
            : FloatVector.SPECIES_512;

    static final VectorSpecies<Integer> I = S.withLanes(int.class);
    static final int L = S.length();
    /** Vectors per 16-row panel. */
    private static final int VP = CpuTernaryTensor.PANEL / L;
    /** Ints from one chunk of a panel to the next. */
    private static final int STRIDE = CpuTernaryTensor.GROUP;
    /** Vector columns (groups of L output rows) per tile: the register tile's width. */
    private static final int NV = 4;

    static final int NW = NV * L;
    /** Up to this many rows of x the weights are decoded in registers; above, into the per-thread buffer. */
    static final int DIRECT_MAX_ROWS = 8;

    static final int KB = 128;
    static final int M_STEP = 256;
    private static final int[] SHIFTS = new int[CpuTernaryTensor.PANEL * L];
    private static final ThreadLocal<float[][]> SCRATCH =
            ThreadLocal.withInitial(() -> new float[][] {new float[KB * NW], new float[M_STEP * NW]});

    static {
        for (int i = 0; i < SHIFTS.length; i++) {
            SHIFTS[i] = 2 * (i / L);
        }
    }

    private TernaryMatmul() {}

    static void matmul(ParallelFor parallel, float[] x, CpuTernaryTensor w, float[] bias, float[] out, int m) {
        int n = w.out, k = w.in;
        int nvAll = w.panels * VP;
        int nTiles = (nvAll + NV - 1) / NV;
        if (m == 0) {
            return;
        }
        if (m <= DIRECT_MAX_ROWS) {
            long work = 2L * m * NW * k;
            int grain = (int) Math.max(1, 1_000_000 / work);
            parallel.run(nTiles, grain, (from, to) -> {
                float[] tile = SCRATCH.get()[1];
                for (int t = from; t < to; t++) {
                    int v0 = t * NV, nv = Math.min(NV, nvAll - v0);
                    int r = 0;
                    for (; r + 1 < m; r += 4) {
                        direct4(x, w, k, r, Math.min(4, m - r), v0, nv, tile);
                        epilogue(tile, Math.min(4, m - r), w.scale, bias, out, n, r, v0, nv);
                    }
                    if (r < m) {
                        direct1(x, w, k, r, v0, nv, tile);
                        epilogue(tile, 1, w.scale, bias, out, n, r, v0, nv);
                    }
                }
            });
            return;
        }
        int mTiles = (m + M_STEP - 1) / M_STEP;
        parallel.run(nTiles * mTiles, 1, (from, to) -> {
            float[][] scratch = SCRATCH.get();
            for (int t = from; t < to; t++) {
                int v0 = (t % nTiles) * NV, m0 = (t / nTiles) * M_STEP;
                decoded(
                        x,
                        w,
                        bias,
                        out,
                        n,
                        k,
                        m0,
                        Math.min(m, m0 + M_STEP),
                        v0,
                        Math.min(NV, nvAll - v0),
                        scratch[0],
                        scratch[1]);
            }
        });
    }

    /**
     * Offset in {@code codes} of chunk 0 of vector column {@code v} (output rows {@code v*L .. v*L+L-1}); chunk
     * {@code kc} is {@code kc * STRIDE} further.
     */
    private static int codeBase(CpuTernaryTensor w, int v) {
        return w.index(v * L, 0);
    }

    /** The weights of input {@code 16 kc + c} of 16 rows (or L of them) from their block {@code q} of chunk kc. */
    private static FloatVector decode(IntVector q, IntVector shift) {
        return (FloatVector) q.lanewise(VectorOperators.LSHL, shift)
                .lanewise(VectorOperators.ASHR, 30)
                .convert(VectorOperators.I2F, 0);
    }

    /** {@code 2c} in every lane: a per-lane shift count (one instruction) rather than a scalar one (two). */
    private static IntVector shift(int c) {
        return IntVector.fromArray(I, SHIFTS, c * L);
    }

    /** One row of x against {@code nv} (at most 4) vector columns from {@code v0}, weights decoded in registers. */
    private static void direct1(float[] x, CpuTernaryTensor w, int k, int row, int v0, int nv, float[] tile) {
        int[] codes = w.codes;
        int b0 = codeBase(w, v0), b1 = codeBase(w, v0 + Math.min(1, nv - 1));
        int b2 = codeBase(w, v0 + Math.min(2, nv - 1)), b3 = codeBase(w, v0 + Math.min(3, nv - 1));
        int xo = row * k;
        FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S);
        FloatVector a3 = FloatVector.zero(S);
        for (int kk = 0; kk < k; kk++) {
            int q = (kk >> 4) * STRIDE;
            IntVector sc = shift(kk & 15);
            FloatVector xv = FloatVector.broadcast(S, x[xo + kk]);
            a0 = xv.fma(decode(IntVector.fromArray(I, codes, b0 + q), sc), a0);
            a1 = xv.fma(decode(IntVector.fromArray(I, codes, b1 + q), sc), a1);
            a2 = xv.fma(decode(IntVector.fromArray(I, codes, b2 + q), sc), a2);
            a3 = xv.fma(decode(IntVector.fromArray(I, codes, b3 + q), sc), a3);
        }
        a0.intoArray(tile, 0);
        a1.intoArray(tile, L);
        a2.intoArray(tile, 2 * L);
        a3.intoArray(tile, 3 * L);
    }

    /**
     * {@code rows} (2 to 4) rows of x from {@code row} against {@code nv} vector columns; a missing row or column
     * repeats the last one and is not stored. One decode serves four rows.
     */
    private static void direct4(float[] x, CpuTernaryTensor w, int k, int row, int rows, int v0, int nv, float[] tile) {
        int[] codes = w.codes;
        int b0 = codeBase(w, v0), b1 = codeBase(w, v0 + Math.min(1, nv - 1));
        int b2 = codeBase(w, v0 + Math.min(2, nv - 1)), b3 = codeBase(w, v0 + Math.min(3, nv - 1));
        int x0 = row * k, x1 = (row + Math.min(1, rows - 1)) * k;
        int x2 = (row + Math.min(2, rows - 1)) * k, x3 = (row + Math.min(3, rows - 1)) * k;
        FloatVector a00 = FloatVector.zero(S), a01 = FloatVector.zero(S), a02 = FloatVector.zero(S);
        FloatVector a03 = FloatVector.zero(S), a10 = FloatVector.zero(S), a11 = FloatVector.zero(S);
        FloatVector a12 = FloatVector.zero(S), a13 = FloatVector.zero(S), a20 = FloatVector.zero(S);
        FloatVector a21 = FloatVector.zero(S), a22 = FloatVector.zero(S), a23 = FloatVector.zero(S);
        FloatVector a30 = FloatVector.zero(S), a31 = FloatVector.zero(S), a32 = FloatVector.zero(S);
        FloatVector a33 = FloatVector.zero(S);
        for (int kk = 0; kk < k; kk++) {
            int q = (kk >> 4) * STRIDE;
            IntVector sc = shift(kk & 15);
            FloatVector w0 = decode(IntVector.fromArray(I, codes, b0 + q), sc);
            FloatVector w1 = decode(IntVector.fromArray(I, codes, b1 + q), sc);
            FloatVector w2 = decode(IntVector.fromArray(I, codes, b2 + q), sc);
            FloatVector w3 = decode(IntVector.fromArray(I, codes, b3 + q), sc);
            FloatVector xv = FloatVector.broadcast(S, x[x0 + kk]);
            a00 = xv.fma(w0, a00);
            a01 = xv.fma(w1, a01);
            a02 = xv.fma(w2, a02);
            a03 = xv.fma(w3, a03);
            xv = FloatVector.broadcast(S, x[x1 + kk]);
            a10 = xv.fma(w0, a10);
            a11 = xv.fma(w1, a11);
            a12 = xv.fma(w2, a12);
            a13 = xv.fma(w3, a13);
            xv = FloatVector.broadcast(S, x[x2 + kk]);
            a20 = xv.fma(w0, a20);
            a21 = xv.fma(w1, a21);
            a22 = xv.fma(w2, a22);
            a23 = xv.fma(w3, a23);
            xv = FloatVector.broadcast(S, x[x3 + kk]);
            a30 = xv.fma(w0, a30);
            a31 = xv.fma(w1, a31);
            a32 = xv.fma(w2, a32);
            a33 = xv.fma(w3, a33);
        }
        a00.intoArray(tile, 0);
        a01.intoArray(tile, L);
        a02.intoArray(tile, 2 * L);
        a03.intoArray(tile, 3 * L);
        a10.intoArray(tile, NW);
        a11.intoArray(tile, NW + L);
        a12.intoArray(tile, NW + 2 * L);
        a13.intoArray(tile, NW + 3 * L);
        a20.intoArray(tile, 2 * NW);
        a21.intoArray(tile, 2 * NW + L);
        a22.intoArray(tile, 2 * NW + 2 * L);
        a23.intoArray(tile, 2 * NW + 3 * L);
        a30.intoArray(tile, 3 * NW);
        a31.intoArray(tile, 3 * NW + L);
        a32.intoArray(tile, 3 * NW + 2 * L);
        a33.intoArray(tile, 3 * NW + 3 * L);
    }

    /**
     * The epilogue: {@code out[m0 + r, j] = tile[r, j - 16 v0...] * scale[j] + bias[j]} for {@code rows} rows of the
     * accumulator tile ([rows][NW] floats) and its first {@code nv} vector columns; rows past n are dropped.
     */
    private static void epilogue(
            float[] tile, int rows, float[] scale, float[] bias, float[] out, int n, int m0, int v0, int nv) {
        int j0 = v0 * L, j1 = Math.min(n, (v0 + nv) * L);
        for (int r = 0; r < rows; r++) {
            int to = r * NW - j0, oo = (m0 + r) * n;
            int j = j0;
            for (; j + L <= j1; j += L) {
                FloatVector y = FloatVector.fromArray(S, tile, to + j).mul(FloatVector.fromArray(S, scale, j));
                if (bias != null) {
                    y = y.add(FloatVector.fromArray(S, bias, j));
                }
                y.intoArray(out, oo + j);
            }
            for (; j < j1; j++) {
                out[oo + j] = bias == null ? tile[to + j] * scale[j] : tile[to + j] * scale[j] + bias[j];
            }
        }
    }

    /**
     * Rows {@code [m0, m1)} (at most {@link #M_STEP}) of x against vector columns {@code [v0, v0 + nv)}: per block
     * of {@link #KB} inputs, decode the weights into {@code wbuf} ([KB][NW] floats), then 6 x 4 register tiles over
     * them with the accumulators kept in {@code acc} ([rows][NW] floats) between blocks. A short last group of rows
     * repeats its last row (which then stores equal values twice); columns past {@code nv} compute on stale buffer
     * values and are never stored.
     */
    private static void decoded(
            float[] x,
            CpuTernaryTensor w,
            float[] bias,
            float[] out,
            int n,
            int k,
            int m0,
            int m1,
            int v0,
            int nv,
            float[] wbuf,
            float[] acc) {
        int rows = m1 - m0;
        Arrays.fill(acc, 0, rows * NW, 0f);
        int[] codes = w.codes;
        for (int kb0 = 0; kb0 < k; kb0 += KB) {
            int kn = Math.min(KB, k - kb0);
            for (int i = 0; i < nv; i++) {
                int base = codeBase(w, v0 + i) + (kb0 >> 4) * STRIDE;
                for (int kk = 0, o = i * L; kk < kn; kk++, o += NW) {
                    decode(IntVector.fromArray(I, codes, base + (kk >> 4) * STRIDE), shift(kk & 15))
                            .intoArray(wbuf, o);
                }
            }
            tileRows(x, m0 * k + kb0, k, rows, kn, wbuf, acc);
        }
        epilogue(acc, rows, w.scale, bias, out, n, m0, v0, nv);
    }

    /**
     * {@link #tile6x4} over {@code rows} rows of x (row r at {@code xo + r * stride}), six at a time, the last group
     * repeating its final row; row r accumulates into {@code acc[r * NW ..]}.
     */
    static void tileRows(float[] x, int xo, int stride, int rows, int kn, float[] wbuf, float[] acc) {
        for (int r = 0; r < rows; r += 6) {
            int r1 = Math.min(r + 1, rows - 1), r2 = Math.min(r + 2, rows - 1), r3 = Math.min(r + 3, rows - 1);
            int r4 = Math.min(r + 4, rows - 1), r5 = Math.min(r + 5, rows - 1);
            tile6x4(
                    x,
                    xo + r * stride,
                    xo + r1 * stride,
                    xo + r2 * stride,
                    xo + r3 * stride,
                    xo + r4 * stride,
                    xo + r5 * stride,
                    kn,
                    wbuf,
                    acc,
                    r * NW,
                    r1 * NW,
                    r2 * NW,
                    r3 * NW,
                    r4 * NW,
                    r5 * NW);
        }
    }

    /**
     * Six rows of x (offsets at the block's first input) times the decoded block: {@code acc[c_r + i*L ..] +=} over
     * the block's {@code kn} inputs in order. Rows may repeat (a short last group); a repeated row stores equal values.
     */
    static void tile6x4(
            float[] x,
            int x0,
            int x1,
            int x2,
            int x3,
            int x4,
            int x5,
            int kn,
            float[] wbuf,
            float[] acc,
            int c0,
            int c1,
            int c2,
            int c3,
            int c4,
            int c5) {
        FloatVector a00 = FloatVector.fromArray(S, acc, c0);
        FloatVector a01 = FloatVector.fromArray(S, acc, c0 + L);
        FloatVector a02 = FloatVector.fromArray(S, acc, c0 + 2 * L);
        FloatVector a03 = FloatVector.fromArray(S, acc, c0 + 3 * L);
        FloatVector a10 = FloatVector.fromArray(S, acc, c1);
        FloatVector a11 = FloatVector.fromArray(S, acc, c1 + L);
        FloatVector a12 = FloatVector.fromArray(S, acc, c1 + 2 * L);
        FloatVector a13 = FloatVector.fromArray(S, acc, c1 + 3 * L);
        FloatVector a20 = FloatVector.fromArray(S, acc, c2);
        FloatVector a21 = FloatVector.fromArray(S, acc, c2 + L);
        FloatVector a22 = FloatVector.fromArray(S, acc, c2 + 2 * L);
        FloatVector a23 = FloatVector.fromArray(S, acc, c2 + 3 * L);
        FloatVector a30 = FloatVector.fromArray(S, acc, c3);
        FloatVector a31 = FloatVector.fromArray(S, acc, c3 + L);
        FloatVector a32 = FloatVector.fromArray(S, acc, c3 + 2 * L);
        FloatVector a33 = FloatVector.fromArray(S, acc, c3 + 3 * L);
        FloatVector a40 = FloatVector.fromArray(S, acc, c4);
        FloatVector a41 = FloatVector.fromArray(S, acc, c4 + L);
        FloatVector a42 = FloatVector.fromArray(S, acc, c4 + 2 * L);
        FloatVector a43 = FloatVector.fromArray(S, acc, c4 + 3 * L);
        FloatVector a50 = FloatVector.fromArray(S, acc, c5);
        FloatVector a51 = FloatVector.fromArray(S, acc, c5 + L);
        FloatVector a52 = FloatVector.fromArray(S, acc, c5 + 2 * L);
        FloatVector a53 = FloatVector.fromArray(S, acc, c5 + 3 * L);
        for (int kk = 0, wo = 0; kk < kn; kk++, wo += NW) {
            FloatVector w0 = FloatVector.fromArray(S, wbuf, wo), w1 = FloatVector.fromArray(S, wbuf, wo + L);
            FloatVector w2 = FloatVector.fromArray(S, wbuf, wo + 2 * L);
            FloatVector w3 = FloatVector.fromArray(S, wbuf, wo + 3 * L);
            FloatVector xv = FloatVector.broadcast(S, x[x0 + kk]);
            a00 = xv.fma(w0, a00);
            a01 = xv.fma(w1, a01);
            a02 = xv.fma(w2, a02);
            a03 = xv.fma(w3, a03);
            xv = FloatVector.broadcast(S, x[x1 + kk]);
            a10 = xv.fma(w0, a10);
            a11 = xv.fma(w1, a11);
            a12 = xv.fma(w2, a12);
            a13 = xv.fma(w3, a13);
            xv = FloatVector.broadcast(S, x[x2 + kk]);
            a20 = xv.fma(w0, a20);
            a21 = xv.fma(w1, a21);
            a22 = xv.fma(w2, a22);
            a23 = xv.fma(w3, a23);
            xv = FloatVector.broadcast(S, x[x3 + kk]);
            a30 = xv.fma(w0, a30);
            a31 = xv.fma(w1, a31);
            a32 = xv.fma(w2, a32);
            a33 = xv.fma(w3, a33);
            xv = FloatVector.broadcast(S, x[x4 + kk]);
            a40 = xv.fma(w0, a40);
            a41 = xv.fma(w1, a41);
            a42 = xv.fma(w2, a42);
            a43 = xv.fma(w3, a43);
            xv = FloatVector.broadcast(S, x[x5 + kk]);
            a50 = xv.fma(w0, a50);
            a51 = xv.fma(w1, a51);
            a52 = xv.fma(w2, a52);
            a53 = xv.fma(w3, a53);
        }
        a00.intoArray(acc, c0);
        a01.intoArray(acc, c0 + L);
        a02.intoArray(acc, c0 + 2 * L);
        a03.intoArray(acc, c0 + 3 * L);
        a10.intoArray(acc, c1);
        a11.intoArray(acc, c1 + L);
        a12.intoArray(acc, c1 + 2 * L);
        a13.intoArray(acc, c1 + 3 * L);
        a20.intoArray(acc, c2);
        a21.intoArray(acc, c2 + L);
        a22.intoArray(acc, c2 + 2 * L);
        a23.intoArray(acc, c2 + 3 * L);
        a30.intoArray(acc, c3);
        a31.intoArray(acc, c3 + L);
        a32.intoArray(acc, c3 + 2 * L);
        a33.intoArray(acc, c3 + 3 * L);
        a40.intoArray(acc, c4);
        a41.intoArray(acc, c4 + L);
        a42.intoArray(acc, c4 + 2 * L);
        a43.intoArray(acc, c4 + 3 * L);
        a50.intoArray(acc, c5);
        a51.intoArray(acc, c5 + L);
        a52.intoArray(acc, c5 + 2 * L);
        a53.intoArray(acc, c5 + 3 * L);
    }
}
