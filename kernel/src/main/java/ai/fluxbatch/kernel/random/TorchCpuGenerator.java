package ai.fluxbatch.kernel.random;

/**
 * torch's CPU generator ({@code torch.Generator("cpu")}): mt19937 plus the cached second Box-Muller sample, and
 * {@code torch.randn} on it for float32 and bfloat16, so a seed gives the reference implementation's noise.
 * Not thread-safe: one generator per stream, as in torch (which locks it).
 *
 * <p>StrictMath throughout: its results are the same on every JVM and platform, where Math may use intrinsics.
 */
public final class TorchCpuGenerator {
    /** Below this many elements (or for a non-contiguous tensor) torch draws serially in double. */
    private static final int FILL_MIN = 16;

    private static final float MEAN = 0f;
    private static final float STD = 1f;
    private static final float TWO_PI_F = (float) (2.0 * Math.PI);

    private final Mt19937 engine = new Mt19937();
    private long initialSeed;
    private boolean hasNextNormal;
    private double nextNormal;

    /** As {@code torch.Generator("cpu").manual_seed(seed)}. */
    public TorchCpuGenerator(long seed) {
        manualSeed(seed);
    }

    /**
     * As torch's manual_seed: the seed is read as unsigned 64 bits (a negative long is what torch makes of a
     * negative Python seed or one at or above 2^63), only its low 32 bits seed mt19937, and the normal cache is cleared.
     */
    public void manualSeed(long seed) {
        initialSeed = seed;
        engine.seed(seed);
        hasNextNormal = false;
    }

    /** The seed last given, as unsigned 64 bits (torch's initial_seed()). */
    public long initialSeed() {
        return initialSeed;
    }

    /** The next 32 random bits (torch's uint32_t random(); Integer.toUnsignedLong gives its value). */
    public int random() {
        return engine.nextInt();
    }

    /** 64 random bits from two draws, the first in the high half (torch's random64()). */
    public long random64() {
        long hi = engine.nextInt() & 0xFFFFFFFFL;
        long lo = engine.nextInt() & 0xFFFFFFFFL;
        return hi << 32 | lo;
    }

    /** {@code torch.randn(n, generator=this, dtype=torch.float32)}. */
    public float[] randnFloat(int n) {
        checkCount(n);
        float[] data = new float[n];
        if (n < FILL_MIN) {
            for (int i = 0; i < n; i++) {
                data[i] = (float) normalDouble();
            }
            return data;
        }
        for (int i = 0; i < n; i++) {
            data[i] = uniformFloat();
        }
        for (int i = 0; i + FILL_MIN <= n; i += FILL_MIN) {
            boxMullerFloat(data, i);
        }
        if (n % FILL_MIN != 0) { // torch redraws the last 16 and transforms them again
            int base = n - FILL_MIN;
            for (int i = 0; i < FILL_MIN; i++) {
                data[base + i] = uniformFloat();
            }
            boxMullerFloat(data, base);
        }
        return data;
    }

    /** {@code torch.randn(n, generator=this, dtype=torch.bfloat16)}, as bf16 bit patterns. */
    public short[] randnBFloat16(int n) {
        checkCount(n);
        short[] bits = new short[n];
        if (n < FILL_MIN) {
            for (int i = 0; i < n; i++) {
                bits[i] =
                        Bf16.bits((float) normalDouble()); // double -> float -> bf16, as static_cast<BFloat16>(double)
            }
            return bits;
        }
        float[] data = new float[n]; // every value held here is exactly a bf16
        for (int i = 0; i < n; i++) {
            data[i] = uniformBf16();
        }
        for (int i = 0; i + FILL_MIN <= n; i += FILL_MIN) {
            boxMullerBf16(data, i);
        }
        if (n % FILL_MIN != 0) {
            int base = n - FILL_MIN;
            for (int i = 0; i < FILL_MIN; i++) {
                data[base + i] = uniformBf16();
            }
            boxMullerBf16(data, base);
        }
        for (int i = 0; i < n; i++) {
            bits[i] = (short) (Float.floatToRawIntBits(data[i]) >>> 16);
        }
        return bits;
    }

    private static void checkCount(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("element count must be >= 0, got " + n);
        }
    }

    /** at::uniform_real_distribution<float>(0, 1): 24 random bits over 2^24. */
    private float uniformFloat() {
        return (engine.nextInt() & 0xFFFFFF) * 0x1p-24f;
    }

    /** at::uniform_real_distribution<BFloat16>(0, 1): the mask is bf16's 8 digits, so k / 256. */
    private float uniformBf16() {
        return (engine.nextInt() & 0xFF) * 0x1p-8f;
    }

    /** at::uniform_real_distribution<double>(0, 1): 53 bits of random64() over 2^53. */
    private double uniformDouble() {
        return (random64() & ((1L << 53) - 1)) * 0x1p-53;
    }

    /** at::normal_distribution<double>(0, 1) with torch 1.13's Box-Muller and the generator's cached sample. */
    private double normalDouble() {
        if (hasNextNormal) {
            hasNextNormal = false;
            return nextNormal * 1.0 + 0.0;
        }
        double u1 = uniformDouble();
        double u2 = uniformDouble();
        double r = StrictMath.sqrt(-2.0 * StrictMath.log(1.0 - u2));
        double theta = 2.0 * Math.PI * u1;
        nextNormal = r * StrictMath.sin(theta);
        hasNextNormal = true;
        return r * StrictMath.cos(theta) * 1.0 + 0.0;
    }

    /**
     * normal_fill_16_AVX2, what x86 builds of torch run for float: pairs (j, j + 8) of uniforms become (r cos, r sin),
     * theta = float(2 pi) * u2 in float. Its log/sin/cos are avx_mathfun polynomials; ours are correctly rounded, so
     * about 1 value in 6 differs from torch's by an ulp or so (relative L2 about 3e-8).
     */
    private static void boxMullerFloat(float[] d, int at) {
        for (int j = at; j < at + 8; j++) {
            float u1 = 1f - d[j]; // [0, 1) -> (0, 1] for the log
            float u2 = d[j + 8];
            float radius = (float) StrictMath.sqrt(-2f * (float) StrictMath.log(u1));
            float theta = TWO_PI_F * u2;
            d[j] = radius * (float) StrictMath.cos(theta) * STD + MEAN;
            d[j + 8] = radius * (float) StrictMath.sin(theta) * STD + MEAN;
        }
    }

    /**
     * normal_fill_16 in bfloat16: each BFloat16 operator and std:: overload computes in float and rounds its
     * result to bf16; theta is a double product narrowed to float, then to bf16.
     */
    private static void boxMullerBf16(float[] d, int at) {
        for (int j = at; j < at + 8; j++) {
            float u1 = Bf16.round(1f - d[j]);
            float u2 = d[j + 8];
            float log = Bf16.round((float) StrictMath.log(u1));
            float radius = Bf16.round((float) StrictMath.sqrt(Bf16.round(-2f * log)));
            float theta = Bf16.round((float) (2.0 * Math.PI * u2));
            float cos = Bf16.round((float) StrictMath.cos(theta));
            float sin = Bf16.round((float) StrictMath.sin(theta));
            d[j] = Bf16.round(Bf16.round(Bf16.round(radius * cos) * STD) + MEAN);
            d[j + 8] = Bf16.round(Bf16.round(Bf16.round(radius * sin) * STD) + MEAN);
        }
    }
}
