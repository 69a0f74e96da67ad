package ai.fluxbatch.model.flux;

/**
 * The two host-side embeddings of the reference model, computed in double and rounded once to float:
 * the sinusoidal timestep embedding and the N-axis rotary position embedding. StrictMath, not Math, whose
 * intrinsics may differ by an ulp between JIT tiers and JVMs: the same seed must give the same image bits.
 */
public final class Embeddings {
    private static final double TIME_FACTOR = 1000.0;
    private static final double MAX_PERIOD = 10_000.0;

    private Embeddings() {}

    /**
     * {@code [cos(t*1000*f_i), sin(t*1000*f_i)]} with {@code f_i = exp(-ln(10000) i / (dim/2))}: {@code [B, dim]}. The
     * reference computes this in float32 whatever the model's precision (its frequencies are a float32 arange and it
     * casts {@code t * 1000} to float32), so each of its float32 roundings is reproduced here, the transcendental
     * functions evaluated in double and rounded once.
     */
    public static float[] timestep(float[] t, int dim) {
        int half = dim / 2;
        float logMaxPeriod = (float) -StrictMath.log(MAX_PERIOD);
        float[] freq = new float[half];
        for (int i = 0; i < half; i++) {
            freq[i] = (float) StrictMath.exp((logMaxPeriod * i) / half);
        }
        float[] out = new float[t.length * dim];
        for (int b = 0; b < t.length; b++) {
            float scaled = (float) (TIME_FACTOR * t[b]);
            for (int i = 0; i < half; i++) {
                float arg = scaled * freq[i];
                out[b * dim + i] = (float) StrictMath.cos(arg);
                out[b * dim + half + i] = (float) StrictMath.sin(arg);
            }
        }
        return out;
    }

    /**
     * Rotation matrices {@code [[cos, -sin], [sin, cos]]} for positions {@code ids [B, L, axes]}: axis {@code a}
     * contributes {@code axesDim[a] / 2} frequencies {@code theta^(-2j / axesDim[a])}. Returns {@code [B, L, D/2, 2, 2]}.
     */
    public static float[] rope(float[] ids, int batch, int length, int[] axesDim, double theta) {
        int axes = axesDim.length;
        int halfDim = 0;
        for (int d : axesDim) {
            halfDim += d / 2;
        }
        float[] out = new float[batch * length * halfDim * 4];
        for (int row = 0; row < batch * length; row++) {
            int o = row * halfDim * 4;
            for (int a = 0; a < axes; a++) {
                double pos = ids[row * axes + a];
                for (int j = 0; j < axesDim[a] / 2; j++) {
                    double omega = 1.0 / StrictMath.pow(theta, (2.0 * j) / axesDim[a]);
                    double angle = pos * omega;
                    double cos = StrictMath.cos(angle), sin = StrictMath.sin(angle);
                    out[o] = (float) cos;
                    out[o + 1] = (float) -sin;
                    out[o + 2] = (float) sin;
                    out[o + 3] = (float) cos;
                    o += 4;
                }
            }
        }
        return out;
    }
}
