package ai.fluxbatch.model.sampling;

import ai.fluxbatch.kernel.random.TorchCpuGenerator;

/**
 * The reference's starting noise for a seed: {@code torch.randn((1, 16, 2*ceil(h/16), 2*ceil(w/16)),
 * generator=torch.Generator("cpu").manual_seed(seed), dtype=...)}, row-major. The reference's get_noise draws
 * bfloat16, so {@link #bf16} is the one that makes a seed reproduce its pictures.
 */
public final class LatentNoise {
    /** Latent channels of the FLUX autoencoder. */
    public static final int CHANNELS = 16;

    private LatentNoise() {}

    /** {@code [1, 16, 2*ceil(height/16), 2*ceil(width/16)]}: the VAE downsamples 8x and the latent is packed 2x2. */
    public static int[] shape(int height, int width) {
        if (height <= 0 || width <= 0) {
            throw new IllegalArgumentException(
                    "image size must be positive, got height " + height + ", width " + width);
        }
        return new int[] {1, CHANNELS, 2 * ceilDiv(height, 16), 2 * ceilDiv(width, 16)};
    }

    /**
     * bfloat16 noise widened to float (exactly). Any long seed; torch reads it as unsigned 64 bits and only its
     * low 32 bits matter, so seed and seed + 2^32 give the same noise, as in the reference.
     */
    public static float[] bf16(long seed, int height, int width) {
        short[] bits = new TorchCpuGenerator(seed).randnBFloat16(count(height, width));
        float[] out = new float[bits.length];
        for (int i = 0; i < bits.length; i++) {
            out[i] = Float.intBitsToFloat((bits[i] & 0xFFFF) << 16);
        }
        return out;
    }

    /** float32 noise for the same seed (torch's float32 kernel: not the bf16 values rounded differently). */
    public static float[] f32(long seed, int height, int width) {
        return new TorchCpuGenerator(seed).randnFloat(count(height, width));
    }

    private static int count(int height, int width) {
        int[] s = shape(height, width);
        return Math.multiplyExact(Math.multiplyExact(s[0] * s[1], s[2]), s[3]);
    }

    private static int ceilDiv(int a, int b) {
        return (a - 1) / b + 1; // a > 0; cannot overflow
    }
}
