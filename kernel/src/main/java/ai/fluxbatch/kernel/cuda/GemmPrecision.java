package ai.fluxbatch.kernel.cuda;

/**
 * The arithmetic of the dense matrix products (linear layers, attention): tensors are float32 either way.
 * {@link #FP32} multiplies in float32 ({@code CUBLAS_COMPUTE_32F}); {@link #BF16} rounds the inputs to bfloat16 and
 * accumulates in float32 on the tensor cores ({@code CUBLAS_COMPUTE_32F_FAST_16BF}), the precision FLUX.1 is run at.
 */
public enum GemmPrecision {
    FP32("fp32"),
    BF16("bf16");

    private final String optionName;

    GemmPrecision(String optionName) {
        this.optionName = optionName;
    }

    public String optionName() {
        return optionName;
    }

    public static GemmPrecision parse(String s) {
        for (GemmPrecision p : values()) {
            if (p.optionName.equalsIgnoreCase(s)) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown GEMM precision '" + s + "': expected fp32 or bf16");
    }
}
