package ai.fluxbatch.model.quant;

/**
 * The Hugging Face transformers BitNet packing of ternary codes {@code [out, in]}: code + 1 in two bits, four codes
 * per byte along dim 0 in quarter blocks: bits 2i..2i+1 of packed row r hold row {@code i * ceil(out/4) + r}.
 */
public final class TernaryPacking {
    private TernaryPacking() {}

    public static byte[] pack(byte[] codes, int out, int in) {
        int rows = TernaryFormat.packedRows(out);
        byte[] packed = new byte[rows * in];
        for (int o = 0; o < out; o++) {
            int r = o % rows, shift = 2 * (o / rows);
            for (int k = 0; k < in; k++) {
                packed[r * in + k] |= (byte) ((codes[o * in + k] + 1) << shift);
            }
        }
        for (int o = out; o < 4 * rows; o++) { // padding rows hold code 0 like the reference packer
            int r = o % rows, shift = 2 * (o / rows);
            for (int k = 0; k < in; k++) {
                packed[r * in + k] |= (byte) (1 << shift);
            }
        }
        return packed;
    }

    public static byte[] unpack(byte[] packed, int out, int in) {
        int rows = TernaryFormat.packedRows(out);
        byte[] codes = new byte[out * in];
        for (int o = 0; o < out; o++) {
            int r = o % rows, shift = 2 * (o / rows);
            for (int k = 0; k < in; k++) {
                codes[o * in + k] = (byte) (((packed[r * in + k] >> shift) & 3) - 1);
            }
        }
        return codes;
    }
}
