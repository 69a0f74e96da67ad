package ai.fluxbatch.kernel.cuda;

import ai.fluxbatch.kernel.HfTernaryPacking;

/**
 * The layout of a ternary weight {@code [out, in]} that the CUDA kernels of {@code ternary_matmul.cu} read: bit
 * planes. Each output row has {@code KW = ceil(in / 32)} chunks of 32 inputs; row {@code o}, chunk {@code c} is two
 * ints at {@code 2 (o KW + c)} (plus) and {@code 2 (o KW + c) + 1} (minus). Bit {@code b} of plus is set when
 * {@code code[o, 32 c + b] = +1}, bit b of minus when it is -1; neither for 0, never both. Inputs past {@code in}
 * (the padding of the last chunk, when in is not a multiple of 32) hold code 0, so the kernel needs no special case
 * for them in the weights (it still reads no x past in). Rows are not padded. The weight of one input is
 * {@code plus bit - minus bit}; a chunk is one 8-byte load, and a row's chunks are consecutive in memory. Same size
 * as the interchange packing when in is a multiple of 32: 2 bits a weight. Ints are uploaded little-endian (the
 * host and device byte order), so int {@code i} is the kernel's {@code uint32_t w[i]}.
 */
public final class GpuTernaryLayout {
    /** Inputs per chunk: one bit of each 32-bit plane per input. */
    public static final int CHUNK = 32;

    private GpuTernaryLayout() {}

    /** {@code ceil(in / 32)}: chunks per output row. */
    public static int chunks(int in) {
        return (in + CHUNK - 1) / CHUNK;
    }

    /** Ints of the layout for a weight {@code [out, in]}: {@code 2 out ceil(in / 32)}. */
    public static long words(int out, int in) {
        return 2L * out * chunks(in);
    }

    /** Bytes of device memory the codes take. */
    public static long bytes(int out, int in) {
        return 4L * words(out, in);
    }

    /**
     * Repacks the Hugging Face BitNet interchange packing ({@code (ceil(out/4), in)} bytes, bits {@code 2i..2i+1} of
     * {@code packed[r][k]} hold {@code code + 1} of row {@code i ceil(out/4) + r}; see {@code Backend.uploadTernary})
     * into this layout.
     *
     * @throws IllegalArgumentException on a wrong length or shape, or the invalid code bits 0b11 in a real row (the
     *                                  message names the row and column); padding rows may hold anything
     */
    public static int[] fromHfPacked(byte[] packed, int out, int in) {
        HfTernaryPacking.check(packed, out, in);
        int rows = HfTernaryPacking.rows(out);
        long n = words(out, in);
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("ternary weight [" + out + ", " + in + "] is too large for one array");
        }
        int kw = chunks(in);
        int[] w = new int[(int) n];
        for (int o = 0; o < out; o++) {
            int base = (o % rows) * in, shift = 2 * (o / rows);
            for (int c = 0; c < kw; c++) {
                // branch-free (random codes defeat the branch predictor: 8 ns a weight with branches, most of a
                // full-size load): field 2 is plus, field 0 minus, field 3 invalid
                int plus = 0, minus = 0, invalid = 0;
                for (int b = 0, k = CHUNK * c; b < CHUNK && k < in; b++, k++) {
                    int field = (packed[base + k] >> shift) & 3;
                    int high = field >> 1, low = field & 1;
                    plus |= (high & (low ^ 1)) << b;
                    minus |= ((high | low) ^ 1) << b;
                    invalid |= high & low;
                }
                if (invalid != 0) {
                    throw invalidCode(packed, out, in, o, c);
                }
                w[2 * (o * kw + c)] = plus;
                w[2 * (o * kw + c) + 1] = minus;
            }
        }
        return w;
    }

    /** The error for the first invalid code bits 0b11 of row {@code o}, chunk {@code c}. */
    private static IllegalArgumentException invalidCode(byte[] packed, int out, int in, int o, int c) {
        int rows = HfTernaryPacking.rows(out), base = (o % rows) * in, shift = 2 * (o / rows);
        int k = CHUNK * c;
        while (((packed[base + k] >> shift) & 3) != 3) {
            k++;
        }
        return new IllegalArgumentException("ternary weight [" + out + ", " + in + "]: row " + o + ", column " + k
                + " has the invalid code bits 0b11 (packed byte [" + (o % rows) + "][" + k + "] = 0x"
                + String.format("%02x", packed[base + k] & 0xff) + "; expected code + 1 in 0..2)");
    }

    /** The code of {@code W[o, k]}, -1, 0 or +1 (0 for the padding inputs {@code in <= k < 32 KW}). */
    public static int code(int[] w, int in, int o, int k) {
        int i = 2 * (o * chunks(in) + k / CHUNK), b = k % CHUNK;
        return ((w[i] >>> b) & 1) - ((w[i + 1] >>> b) & 1);
    }

    /**
     * Back to the interchange packing, padding rows holding code 0 as the reference packer writes them.
     *
     * @throws IllegalArgumentException on a wrong length or a plus and minus bit both set
     */
    public static byte[] toHfPacked(int[] w, int out, int in) {
        if (w.length != words(out, in)) {
            throw new IllegalArgumentException(
                    "ternary weight [" + out + ", " + in + "]: " + w.length + " ints, expected " + words(out, in));
        }
        int kw = chunks(in);
        for (int i = 0; i < w.length; i += 2) {
            if ((w[i] & w[i + 1]) != 0) {
                int o = i / 2 / kw, k = (i / 2 % kw) * CHUNK + Integer.numberOfTrailingZeros(w[i] & w[i + 1]);
                throw new IllegalArgumentException(
                        "ternary weight [" + out + ", " + in + "]: row " + o + ", column " + k + " is both +1 and -1");
            }
        }
        int rows = (out + 3) / 4;
        byte[] packed = new byte[rows * in];
        for (int o = 0; o < 4 * rows; o++) {
            int r = o % rows, shift = 2 * (o / rows);
            for (int k = 0; k < in; k++) {
                int field = o < out ? code(w, in, o, k) + 1 : 1;
                packed[r * in + k] |= (byte) (field << shift);
            }
        }
        return packed;
    }
}
