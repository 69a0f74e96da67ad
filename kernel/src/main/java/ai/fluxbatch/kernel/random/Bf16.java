package ai.fluxbatch.kernel.random;

/** float -> bfloat16 rounding as c10::BFloat16 does it; kernel cannot see model's HalfFloats, so a copy of the one line. */
final class Bf16 {
    private Bf16() {}

    /** Round to nearest, ties to even (the inputs here are never NaN). */
    static short bits(float f) {
        int b = Float.floatToRawIntBits(f);
        return (short) ((b + 0x7FFF + ((b >>> 16) & 1)) >>> 16);
    }

    /** The float value of {@code f} rounded to bfloat16. */
    static float round(float f) {
        return Float.intBitsToFloat((bits(f) & 0xFFFF) << 16);
    }
}
