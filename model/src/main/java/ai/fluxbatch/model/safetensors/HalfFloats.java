package ai.fluxbatch.model.safetensors;

/** Bit-level conversions between float32 and the 16-bit formats bfloat16 and IEEE binary16. */
public final class HalfFloats {
    private HalfFloats() {}

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** Rounds to nearest, ties to even; NaN stays NaN (made quiet so a payload in the low bits survives). */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        // Adding 0x7FFF plus the lowest kept bit rounds ties to even; a carry correctly bumps the exponent
        // and turns the largest values into infinity.
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    public static float f16ToFloat(short bits) {
        int h = bits & 0xFFFF;
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1F;
        int mant = h & 0x3FF;
        if (exp == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));
        }
        if (exp == 0) {
            float v = mant * 0x1p-24f; // zero or subnormal: exact in float
            return sign == 0 ? v : -v;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    /** Rounds to nearest, ties to even; overflows to infinity, underflows to subnormals or zero. */
    public static short floatToF16(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int abs = bits & 0x7FFFFFFF;
        if (abs >= 0x7F800000) { // inf or NaN
            int mant = abs & 0x7FFFFF;
            return (short) (sign | 0x7C00 | (mant == 0 ? 0 : 0x200 | (mant >>> 13)));
        }
        if (abs >= 0x477FF000) { // 65520, halfway between the largest half 65504 and 65536: rounds to inf
            return (short) (sign | 0x7C00);
        }
        if (abs >= 0x38800000) { // 2^-14, smallest normal half
            int h = ((abs >>> 23) - 112) << 10 | ((abs >>> 13) & 0x3FF);
            int rest = abs & 0x1FFF;
            if (rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1)) {
                h++;
            }
            return (short) (sign | h);
        }
        // Subnormal half: a multiple of 2^-24. rint rounds ties to even, and 1024 gives the smallest normal.
        int m = (int) Math.rint((double) Float.intBitsToFloat(abs) * 0x1p24);
        return (short) (sign | m);
    }
}
