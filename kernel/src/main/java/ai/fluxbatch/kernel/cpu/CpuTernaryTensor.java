package ai.fluxbatch.kernel.cpu;

import ai.fluxbatch.kernel.HfTernaryPacking;
import ai.fluxbatch.kernel.Tensor;
import java.util.Arrays;

/**
 * A ternary weight {@code [out, in]} on the Java heap in the layout {@link TernaryMatmul} reads. A block is 16 ints
 * for a panel of 16 output rows and a chunk of 16 inputs: int {@code l} holds the codes of the panel's row {@code l},
 * input {@code 16 kc + c} in bits {@code 31-2c .. 30-2c} as a two's complement 2-bit number (00 = 0, 01 = +1,
 * 11 = -1). So one 16-lane int vector shifted left by {@code 2c} and arithmetically right by 30 is the column of 16
 * weights for input {@code 16 kc + c}. Rows go in groups of 64 (four panels); a group stores, chunk after chunk, the
 * four panels' blocks side by side, so a kernel working on 64 rows reads one sequential stream. Rows past
 * {@code out} (up to a multiple of 64) and inputs past {@code in} (up to a multiple of 16) hold code 0. Same size as
 * the interchange packing for FLUX's shapes: 2 bits a weight.
 */
final class CpuTernaryTensor implements Tensor {
    static final int PANEL = 16;
    /** Rows per group: four panels. */
    static final int GROUP = 64;

    final int out;
    final int in;
    /** {@code ceil(in / 16)}: blocks per panel. */
    final int chunks;
    /** Panels including the padding of the last group: {@code 4 ceil(out / 64)}. */
    final int panels;

    final int[] codes;
    /** Per output row, padded with zeros to {@code panels * 16}. */
    final float[] scale;

    private CpuTernaryTensor(int out, int in, int[] codes, float[] scale) {
        this.out = out;
        this.in = in;
        this.chunks = (in + PANEL - 1) / PANEL;
        this.panels = (out + GROUP - 1) / GROUP * (GROUP / PANEL);
        this.codes = codes;
        this.scale = scale;
    }

    /** Offset in {@link #codes} of the int holding row {@code o}, inputs {@code 16 kc .. 16 kc + 15}. */
    int index(int o, int kc) {
        return (((o / GROUP) * chunks + kc) * (GROUP / PANEL) + (o % GROUP) / PANEL) * PANEL + o % PANEL;
    }

    /** Validates the Hugging Face BitNet packing (see {@code Backend.uploadTernary}) and repacks it. */
    static CpuTernaryTensor fromHfPacked(ParallelFor parallel, byte[] packed, int out, int in, float[] scale) {
        HfTernaryPacking.check(packed, out, in);
        int rows = HfTernaryPacking.rows(out);
        HfTernaryPacking.checkScale(scale, out, in);
        long padded = ((long) out + GROUP - 1) / GROUP * GROUP * ((in + PANEL - 1) / PANEL);
        if (padded > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("ternary weight [" + out + ", " + in + "] is too large for one array");
        }
        checkCodes(packed, out, in, rows);
        CpuTernaryTensor t =
                new CpuTernaryTensor(out, in, new int[(int) padded], new float[(out + GROUP - 1) / GROUP * GROUP]);
        System.arraycopy(scale, 0, t.scale, 0, out);
        int[] codes = t.codes;
        parallel.run(out, Math.max(1, (1 << 16) / in), (from, to) -> {
            for (int o = from; o < to; o++) {
                int base = (o % rows) * in, shift = 2 * (o / rows);
                for (int kc = 0; kc < t.chunks; kc++) {
                    int word = 0;
                    for (int c = 0, k = PANEL * kc; c < PANEL && k < in; c++, k++) {
                        int code = ((packed[base + k] >> shift) & 3) - 1;
                        word |= (code & 3) << (30 - 2 * c);
                    }
                    codes[t.index(o, kc)] = word;
                }
            }
        });
        return t;
    }

    /**
     * The same codes (shared, not copied) with another per-row scale, checked like the interchange scale: {@code out}
     * finite values. This tensor is unchanged.
     */
    CpuTernaryTensor withScale(float[] newScale) {
        HfTernaryPacking.checkScale(newScale, out, in);
        float[] padded = new float[scale.length];
        System.arraycopy(newScale, 0, padded, 0, out);
        return new CpuTernaryTensor(out, in, codes, padded);
    }

    /** The same codes with scale 1 on every row: its {@link TernaryMatmul} product is {@code x . codes^T}. */
    CpuTernaryTensor unitScale() {
        float[] ones = new float[scale.length];
        Arrays.fill(ones, 0, out, 1f);
        return new CpuTernaryTensor(out, in, codes, ones);
    }

    /** Rejects the bit pattern 3 in any field that belongs to a real row (padding rows may hold anything). */
    private static void checkCodes(byte[] packed, int out, int in, int rows) {
        for (int r = 0; r < rows; r++) {
            int valid = 0;
            for (int i = 0; i < 4; i++) {
                if (i * rows + r < out) {
                    valid |= 1 << (2 * i);
                }
            }
            int base = r * in;
            for (int k = 0; k < in; k++) {
                int b = packed[base + k];
                int bad = b & (b >> 1) & valid;
                if (bad != 0) {
                    int i = Integer.numberOfTrailingZeros(bad) / 2;
                    throw new IllegalArgumentException("ternary weight [" + out + ", " + in + "]: row " + (i * rows + r)
                            + ", column " + k + " has the invalid code bits 0b11 (packed byte [" + r + "][" + k
                            + "] = 0x" + String.format("%02x", b & 0xff) + "; expected code + 1 in 0..2)");
                }
            }
        }
    }

    /** The code of {@code W[o, k]}, -1, 0 or +1. */
    int code(int o, int k) {
        int word = codes[index(o, k / PANEL)];
        return (word << (2 * (k % PANEL))) >> 30;
    }

    @Override
    public int[] shape() {
        return new int[] {out, in};
    }

    @Override
    public long residentBytes() {
        return 4L * codes.length + 4L * scale.length;
    }

    @Override
    public String toString() {
        return "CpuTernaryTensor[" + out + ", " + in + "]";
    }
}
