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
 * <p>Few rows of x (memory bound): the 2-bit weights stream once and are decoded in registers (shift, shift,
 * convert) right before their FMAs, one decode shared by up to four rows of x. Many rows (compute bound): a task
 * takes 64 output rows and up to 256 rows of x; per block of 128 inputs it decodes the 64 x 128 weights once into
 * a per-thread float buffer (32 KiB, stays in L1) and runs a 4 x 4 register tile of FMAs over it for every four
 * rows of x, the accumulators parked in a per-thread buffer between blocks.
 */
final class TernaryMatmul {
    /** At most 16 lanes, so a 16-row panel is a whole number of vectors. */
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED.length() <= CpuTernaryTensor.PANEL
            ? FloatVector.SPECIES_PREFERRED : FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> I = S.withLanes(int.class);
    private static final int L = S.length();
    /** Vectors per 16-row panel. */
    private static final int VP = CpuTernaryTensor.PANEL / L;
    /** Vector columns (groups of L output rows) per tile: the register tile's width. */
    private static final int NV = 4;
    private static final int NW = NV * L;
    /** Up to this many rows of x the weights are decoded in registers; above, into the per-thread buffer. */
    static final int DIRECT_MAX_ROWS = 8;
    private static final int KB = 128;
    private static final int M_STEP = 256;
    private static final ThreadLocal<float[][]> SCRATCH =
            ThreadLocal.withInitial(() -> new float[][] {new float[KB * NW], new float[M_STEP * NW]});

    private TernaryMatmul() {
    }

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
                for (int t = from; t < to; t++) {
                    int v0 = t * NV, nv = Math.min(NV, nvAll - v0);
                    int r = 0;
                    for (; r + 1 < m; r += 4) {
                        direct4(x, w, bias, out, n, k, r, Math.min(4, m - r), v0, nv);
                    }
                    if (r < m) {
                        direct1(x, w, bias, out, n, k, r, v0, nv);
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
                decoded(x, w, bias, out, n, k, m0, Math.min(m, m0 + M_STEP), v0, Math.min(NV, nvAll - v0),
                        scratch[0], scratch[1]);
            }
        });
    }

    /** Offset in {@code codes} of chunk 0 of vector column {@code v} (output rows {@code v*L .. v*L+L-1}). */
    private static int codeBase(CpuTernaryTensor w, int v) {
        return ((v / VP) * w.chunks) * CpuTernaryTensor.PANEL + (v % VP) * L;
    }

    /** The weights of input {@code 16 kc + c} from a block already shifted left by {@code 2c}. */
    private static FloatVector decode(IntVector shifted) {
        return (FloatVector) shifted.lanewise(VectorOperators.ASHR, 30).convert(VectorOperators.I2F, 0);
    }

    /** One row of x against {@code nv} (at most 4) vector columns from {@code v0}, weights decoded in registers. */
    private static void direct1(float[] x, CpuTernaryTensor w, float[] bias, float[] out, int n, int k, int row,
                                int v0, int nv) {
        int[] codes = w.codes;
        int b0 = codeBase(w, v0), b1 = codeBase(w, v0 + Math.min(1, nv - 1));
        int b2 = codeBase(w, v0 + Math.min(2, nv - 1)), b3 = codeBase(w, v0 + Math.min(3, nv - 1));
        int xo = row * k;
        FloatVector a0 = FloatVector.zero(S), a1 = FloatVector.zero(S), a2 = FloatVector.zero(S);
        FloatVector a3 = FloatVector.zero(S);
        for (int kc = 0, k0 = 0; k0 < k; kc++, k0 += CpuTernaryTensor.PANEL) {
            int q = kc * CpuTernaryTensor.PANEL;
            IntVector q0 = IntVector.fromArray(I, codes, b0 + q), q1 = IntVector.fromArray(I, codes, b1 + q);
            IntVector q2 = IntVector.fromArray(I, codes, b2 + q), q3 = IntVector.fromArray(I, codes, b3 + q);
            int cn = Math.min(CpuTernaryTensor.PANEL, k - k0);
            for (int c = 0; c < cn; c++) {
                FloatVector xv = FloatVector.broadcast(S, x[xo + k0 + c]);
                a0 = xv.fma(decode(q0), a0);
                a1 = xv.fma(decode(q1), a1);
                a2 = xv.fma(decode(q2), a2);
                a3 = xv.fma(decode(q3), a3);
                q0 = q0.lanewise(VectorOperators.LSHL, 2);
                q1 = q1.lanewise(VectorOperators.LSHL, 2);
                q2 = q2.lanewise(VectorOperators.LSHL, 2);
                q3 = q3.lanewise(VectorOperators.LSHL, 2);
            }
        }
        int oo = row * n;
        store(a0, v0, w.scale, bias, out, oo, n);
        if (nv > 1) {
            store(a1, v0 + 1, w.scale, bias, out, oo, n);
        }
        if (nv > 2) {
            store(a2, v0 + 2, w.scale, bias, out, oo, n);
        }
        if (nv > 3) {
            store(a3, v0 + 3, w.scale, bias, out, oo, n);
        }
    }

    /**
     * {@code rows} (2 to 4) rows of x from {@code row} against {@code nv} vector columns; a missing row or column
     * repeats the last one and is not stored. One decode serves four rows.
     */
    private static void direct4(float[] x, CpuTernaryTensor w, float[] bias, float[] out, int n, int k, int row,
                                int rows, int v0, int nv) {
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
        for (int kc = 0, k0 = 0; k0 < k; kc++, k0 += CpuTernaryTensor.PANEL) {
            int q = kc * CpuTernaryTensor.PANEL;
            IntVector q0 = IntVector.fromArray(I, codes, b0 + q), q1 = IntVector.fromArray(I, codes, b1 + q);
            IntVector q2 = IntVector.fromArray(I, codes, b2 + q), q3 = IntVector.fromArray(I, codes, b3 + q);
            int cn = Math.min(CpuTernaryTensor.PANEL, k - k0);
            for (int c = 0; c < cn; c++) {
                FloatVector w0 = decode(q0), w1 = decode(q1), w2 = decode(q2), w3 = decode(q3);
                q0 = q0.lanewise(VectorOperators.LSHL, 2);
                q1 = q1.lanewise(VectorOperators.LSHL, 2);
                q2 = q2.lanewise(VectorOperators.LSHL, 2);
                q3 = q3.lanewise(VectorOperators.LSHL, 2);
                int kk = k0 + c;
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
        }
        storeRow(a00, a01, a02, a03, v0, nv, w.scale, bias, out, row * n, n);
        storeRow(a10, a11, a12, a13, v0, nv, w.scale, bias, out, (row + 1) * n, n);
        if (rows > 2) {
            storeRow(a20, a21, a22, a23, v0, nv, w.scale, bias, out, (row + 2) * n, n);
        }
        if (rows > 3) {
            storeRow(a30, a31, a32, a33, v0, nv, w.scale, bias, out, (row + 3) * n, n);
        }
    }

    private static void storeRow(FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3, int v0, int nv,
                                 float[] scale, float[] bias, float[] out, int oo, int n) {
        store(a0, v0, scale, bias, out, oo, n);
        if (nv > 1) {
            store(a1, v0 + 1, scale, bias, out, oo, n);
        }
        if (nv > 2) {
            store(a2, v0 + 2, scale, bias, out, oo, n);
        }
        if (nv > 3) {
            store(a3, v0 + 3, scale, bias, out, oo, n);
        }
    }

    /** The epilogue for vector column {@code v} of one output row: {@code acc * scale + bias}, rows past n dropped. */
    private static void store(FloatVector acc, int v, float[] scale, float[] bias, float[] out, int oo, int n) {
        int j0 = v * L;
        if (j0 + L <= n) {
            FloatVector r = acc.mul(FloatVector.fromArray(S, scale, j0));
            if (bias != null) {
                r = r.add(FloatVector.fromArray(S, bias, j0));
            }
            r.intoArray(out, oo + j0);
        } else {
            float[] a = acc.toArray();
            for (int j = j0; j < n; j++) {
                out[oo + j] = bias == null ? a[j - j0] * scale[j] : a[j - j0] * scale[j] + bias[j];
            }
        }
    }

    /**
     * Rows {@code [m0, m1)} (at most {@link #M_STEP}) of x against vector columns {@code [v0, v0 + nv)}: per block
     * of {@link #KB} inputs, decode the weights into {@code wbuf} ([KB][NW] floats), then 4 x 4 register tiles over
     * them with the accumulators kept in {@code acc} ([rows][NW] floats) between blocks.
     */
    private static void decoded(float[] x, CpuTernaryTensor w, float[] bias, float[] out, int n, int k, int m0,
                                int m1, int v0, int nv, float[] wbuf, float[] acc) {
        int rows = m1 - m0;
        Arrays.fill(acc, 0, rows * NW, 0f);
        int[] codes = w.codes;
        for (int kb0 = 0; kb0 < k; kb0 += KB) {
            int kn = Math.min(KB, k - kb0);
            for (int i = 0; i < nv; i++) {
                int base = codeBase(w, v0 + i) + (kb0 / CpuTernaryTensor.PANEL) * CpuTernaryTensor.PANEL;
                for (int k0 = 0; k0 < kn; k0 += CpuTernaryTensor.PANEL) {
                    IntVector q = IntVector.fromArray(I, codes, base + k0);
                    int cn = Math.min(CpuTernaryTensor.PANEL, kn - k0);
                    for (int c = 0, o = k0 * NW + i * L; c < cn; c++, o += NW) {
                        decode(q).intoArray(wbuf, o);
                        q = q.lanewise(VectorOperators.LSHL, 2);
                    }
                }
            }
            for (int r = 0; r < rows; r += 4) {
                int r1 = Math.min(r + 1, rows - 1), r2 = Math.min(r + 2, rows - 1), r3 = Math.min(r + 3, rows - 1);
                tile4x4(x, (m0 + r) * k + kb0, (m0 + r1) * k + kb0, (m0 + r2) * k + kb0, (m0 + r3) * k + kb0, kn,
                        wbuf, acc, r * NW, r1 * NW, r2 * NW, r3 * NW);
            }
        }
        float[] scale = w.scale;
        for (int r = 0; r < rows; r++) {
            int oo = (m0 + r) * n;
            for (int i = 0; i < nv; i++) {
                store(FloatVector.fromArray(S, acc, r * NW + i * L), v0 + i, scale, bias, out, oo, n);
            }
        }
    }

    /**
     * Four rows of x (offsets at the block's first input) times the decoded block: {@code acc[c_r + i*L ..] +=} over
     * the block's {@code kn} inputs in order. Rows may repeat (a short last group); they then store equal values.
     */
    private static void tile4x4(float[] x, int x0, int x1, int x2, int x3, int kn, float[] wbuf, float[] acc,
                                int c0, int c1, int c2, int c3) {
        FloatVector a00 = FloatVector.fromArray(S, acc, c0), a01 = FloatVector.fromArray(S, acc, c0 + L);
        FloatVector a02 = FloatVector.fromArray(S, acc, c0 + 2 * L), a03 = FloatVector.fromArray(S, acc, c0 + 3 * L);
        FloatVector a10 = FloatVector.fromArray(S, acc, c1), a11 = FloatVector.fromArray(S, acc, c1 + L);
        FloatVector a12 = FloatVector.fromArray(S, acc, c1 + 2 * L), a13 = FloatVector.fromArray(S, acc, c1 + 3 * L);
        FloatVector a20 = FloatVector.fromArray(S, acc, c2), a21 = FloatVector.fromArray(S, acc, c2 + L);
        FloatVector a22 = FloatVector.fromArray(S, acc, c2 + 2 * L), a23 = FloatVector.fromArray(S, acc, c2 + 3 * L);
        FloatVector a30 = FloatVector.fromArray(S, acc, c3), a31 = FloatVector.fromArray(S, acc, c3 + L);
        FloatVector a32 = FloatVector.fromArray(S, acc, c3 + 2 * L), a33 = FloatVector.fromArray(S, acc, c3 + 3 * L);
        for (int kk = 0, wo = 0; kk < kn; kk++, wo += NW) {
            FloatVector w0 = FloatVector.fromArray(S, wbuf, wo), w1 = FloatVector.fromArray(S, wbuf, wo + L);
            FloatVector w2 = FloatVector.fromArray(S, wbuf, wo + 2 * L), w3 = FloatVector.fromArray(S, wbuf, wo + 3 * L);
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
        // a repeated row stores last, so its (equal) values land where the distinct row's would
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
    }
}
