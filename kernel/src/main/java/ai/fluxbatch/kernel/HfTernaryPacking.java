package ai.fluxbatch.kernel;

/**
 * The interchange packing of ternary weights that {@link Backend#uploadTernary} takes (Hugging Face BitNet):
 * {@code (ceil(out/4), in)} bytes, bits {@code 2i..2i+1} of {@code packed[r][k]} hold {@code code + 1} of row
 * {@code i * ceil(out/4) + r}. Each backend repacks it into the layout its kernel wants.
 */
public final class HfTernaryPacking {
    private HfTernaryPacking() {}

    /** Checks the shape and the byte count of packed codes for an {@code [out, in]} weight. */
    public static void check(byte[] packed, int out, int in) {
        if (out < 1 || in < 1) {
            throw new IllegalArgumentException(
                    "ternary weight: shape [" + out + ", " + in + "] must have positive dimensions");
        }
        long expected = (long) rows(out) * in;
        if (packed.length != expected) {
            throw new IllegalArgumentException("ternary weight [" + out + ", " + in + "]: packed codes have "
                    + packed.length + " bytes, expected ceil(" + out + "/4) * " + in + " = " + expected);
        }
    }

    /** Checks the per-output-channel scale of a ternary weight {@code [out, in]}: out finite values. */
    public static void checkScale(float[] scale, int out, int in) {
        if (scale.length != out) {
            throw new IllegalArgumentException(
                    "ternary weight [" + out + ", " + in + "]: scale has " + scale.length + " values, expected " + out);
        }
        for (int o = 0; o < out; o++) {
            if (!Float.isFinite(scale[o])) {
                throw new IllegalArgumentException("ternary weight [" + out + ", " + in + "]: scale[" + o + "] is "
                        + scale[o] + ", expected a finite number");
            }
        }
    }

    /** Packed rows: {@code ceil(out / 4)}. */
    public static int rows(int out) {
        return (out + 3) / 4;
    }
}
