package ai.fluxbatch.model.quant;

/**
 * absmean ternary quantization per output channel: {@code scale[o] = mean_i |W[o, i]|} in double over the stored
 * values, stored as float32; {@code codes = clamp(round(W / scale[o]), -1, 1)} with round half to even as torch
 * rounds; a row of zeros gets scale 0 and codes 0.
 */
public final class AbsmeanQuantizer {
    public static final String METHOD = "absmean";

    /** Codes {@code [out, in]} and scales {@code [out]} of one weight matrix. */
    public record Result(byte[] codes, float[] scale) {}

    private AbsmeanQuantizer() {}

    public static Result quantize(float[] w, int out, int in) {
        byte[] codes = new byte[out * in];
        float[] scale = new float[out];
        for (int o = 0; o < out; o++) {
            double sum = 0;
            for (int i = 0; i < in; i++) {
                sum += Math.abs((double) w[o * in + i]);
            }
            double s = sum / in;
            scale[o] = (float) s;
            if (s == 0) {
                continue;
            }
            for (int i = 0; i < in; i++) {
                codes[o * in + i] = (byte) Math.max(-1, Math.min(1, Math.rint(w[o * in + i] / s)));
            }
        }
        return new Result(codes, scale);
    }
}
