package ai.fluxbatch.kernel.cpu;

import static ai.fluxbatch.kernel.cpu.TernaryMatmul.NW;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code out[m, n] = x[m, :] . w[n, :] + bias[n]} for a bfloat16 weight {@link CpuBf16Tensor}: {@link VectorMatmul}'s
 * two paths with the weight widened as they read it ({@code bits << 16}, exact), never as a whole float copy. More than
 * one row of x: each block of {@link TernaryMatmul#KB} inputs of {@link TernaryMatmul#NW} output rows is widened into
 * the task's transposed float tile, which the Vector API register tile then runs over, as for a float32 weight. One
 * row: per chunk of inputs, eight rows are widened with vector shifts into a small float buffer that the eight scalar
 * chains read (the weight streams at half the bytes of float32 in this memory-bound case). Each output
 * is the same chain of fused multiply-adds as {@link VectorMatmul} computes on the float32 array of the widened
 * values, so the results are those bits.
 */
final class Bf16Matmul {
    /** Inputs of the eight rows the one-row path widens at a time: 8 KiB of floats, in L1. */
    private static final int CHUNK = 256;

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Short> H =
            VectorSpecies.of(short.class, VectorShape.forBitSize(16 * F.length()));
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);

    private Bf16Matmul() {}

    /** {@code buf[to + i] = w[from + i]} widened, for {@code i < n}: sign-extended to int, shifted left by 16. */
    static void widenRow(short[] w, int from, int n, float[] buf, int to) {
        int i = 0;
        for (int bound = H.loopBound(n); i < bound; i += H.length()) {
            ((IntVector) ShortVector.fromArray(H, w, from + i).convertShape(VectorOperators.S2I, I, 0))
                    .lanewise(VectorOperators.LSHL, 16)
                    .reinterpretAsFloats()
                    .intoArray(buf, to + i);
        }
        for (; i < n; i++) {
            buf[to + i] = CpuBf16Tensor.widen(w[from + i]);
        }
    }

    static void matmul(ParallelFor parallel, float[] x, short[] w, float[] bias, float[] out, int m, int n, int k) {
        VectorMatmul.matmul(parallel, x, new Widened(w), bias, out, m, n, k);
    }

    private record Widened(short[] w) implements VectorMatmul.Weight {
        @Override
        public void transposeBlock(int k, int n0, int cols, int k0, int kn, float[] wbuf) {
            int j = 0;
            for (; j + 4 <= cols; j += 4) { // four rows at a time, as VectorMatmul's float32 copy
                int s0 = (n0 + j) * k + k0, s1 = s0 + k, s2 = s1 + k, s3 = s2 + k;
                for (int kk = 0, o = j; kk < kn; kk++, o += NW) {
                    wbuf[o] = CpuBf16Tensor.widen(w[s0 + kk]);
                    wbuf[o + 1] = CpuBf16Tensor.widen(w[s1 + kk]);
                    wbuf[o + 2] = CpuBf16Tensor.widen(w[s2 + kk]);
                    wbuf[o + 3] = CpuBf16Tensor.widen(w[s3 + kk]);
                }
            }
            for (; j < cols; j++) {
                int src = (n0 + j) * k + k0;
                for (int kk = 0, o = j; kk < kn; kk++, o += NW) {
                    wbuf[o] = CpuBf16Tensor.widen(w[src + kk]);
                }
            }
            VectorMatmul.zeroPad(cols, kn, wbuf);
        }

        /**
         * Eight outputs at a time: per chunk of {@link #CHUNK} inputs their eight rows are widened into a float buffer
         * with vector shifts, then the eight scalar chains run over it as over a float32 weight.
         */
        @Override
        public void direct(float[] x, int k, int j0, int j1, float[] bias, float[] out) {
            float[] buf = new float[8 * CHUNK];
            int j = j0;
            for (; j + 8 <= j1; j += 8) {
                float a0 = 0f, a1 = 0f, a2 = 0f, a3 = 0f, a4 = 0f, a5 = 0f, a6 = 0f, a7 = 0f;
                for (int k0 = 0; k0 < k; k0 += CHUNK) {
                    int kn = Math.min(CHUNK, k - k0);
                    for (int r = 0; r < 8; r++) {
                        widenRow(w, (j + r) * k + k0, kn, buf, r * CHUNK);
                    }
                    for (int i = 0; i < kn; i++) {
                        float v = x[k0 + i];
                        a0 = Math.fma(v, buf[i], a0);
                        a1 = Math.fma(v, buf[CHUNK + i], a1);
                        a2 = Math.fma(v, buf[2 * CHUNK + i], a2);
                        a3 = Math.fma(v, buf[3 * CHUNK + i], a3);
                        a4 = Math.fma(v, buf[4 * CHUNK + i], a4);
                        a5 = Math.fma(v, buf[5 * CHUNK + i], a5);
                        a6 = Math.fma(v, buf[6 * CHUNK + i], a6);
                        a7 = Math.fma(v, buf[7 * CHUNK + i], a7);
                    }
                }
                VectorMatmul.store(out, bias, j, a0);
                VectorMatmul.store(out, bias, j + 1, a1);
                VectorMatmul.store(out, bias, j + 2, a2);
                VectorMatmul.store(out, bias, j + 3, a3);
                VectorMatmul.store(out, bias, j + 4, a4);
                VectorMatmul.store(out, bias, j + 5, a5);
                VectorMatmul.store(out, bias, j + 6, a6);
                VectorMatmul.store(out, bias, j + 7, a7);
            }
            for (; j < j1; j++) {
                float a = 0f;
                for (int i = 0, wo = j * k; i < k; i++) {
                    a = Math.fma(x[i], CpuBf16Tensor.widen(w[wo + i]), a);
                }
                VectorMatmul.store(out, bias, j, a);
            }
        }
    }
}
