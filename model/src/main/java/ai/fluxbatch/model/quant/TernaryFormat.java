package ai.fluxbatch.model.quant;

import java.util.regex.Pattern;

/**
 * The 1.58-bit checkpoint format (the interchange format; kernels repack at load). A safetensors file with the source
 * checkpoint's tensor names: every 2-D {@code *.weight} inside {@code double_blocks.*} / {@code single_blocks.*} becomes
 * U8 packed codes of shape (ceil(out/4), in) in the Hugging Face BitNet packing plus {@code <name minus .weight>.weight_scale}
 * (F32, out); every other tensor is copied unchanged. {@code __metadata__} names the format, its version, the method,
 * the source file and its SHA-256, and the calibration used.
 */
public final class TernaryFormat {
    public static final String FORMAT = "fluxbatch-ternary";
    public static final String VERSION = "1";
    public static final String PACKING = "hf-bitnet-dim0-quarter-blocks";

    public static final String KEY_FORMAT = "quantization_format";
    public static final String KEY_VERSION = "quantization_format_version";
    public static final String KEY_METHOD = "quantization_method";
    public static final String KEY_PACKING = "quantization_packing";
    public static final String KEY_SOURCE = "source_file";
    public static final String KEY_SOURCE_SHA256 = "source_sha256";
    public static final String KEY_CALIBRATION = "calibration";

    /**
     * Appended to the method of a checkpoint whose scales and biases {@code fluxbatch distill} has trained (same codes):
     * {@code absmean+distill}.
     */
    public static final String DISTILL_SUFFIX = "+distill";

    private static final Pattern BLOCK_WEIGHT = Pattern.compile("^(double_blocks|single_blocks)\\.\\d+\\..+\\.weight$");

    private TernaryFormat() {}

    /** Whether a tensor of the source checkpoint is quantized: a 2-D weight matrix inside a transformer block. */
    public static boolean isQuantized(String name, long[] shape) {
        return shape.length == 2 && BLOCK_WEIGHT.matcher(name).matches();
    }

    /** {@code double_blocks.0.img_attn.qkv.weight -> double_blocks.0.img_attn.qkv.weight_scale}. */
    public static String scaleName(String weightName) {
        return weightName + "_scale";
    }

    /**
     * The quantizer behind a recorded method: {@code gptq+distill -> gptq}, {@code absmean -> absmean} (what chose the
     * codes; later passes such as distillation only retune scales and biases).
     */
    public static String baseMethod(String method) {
        int plus = method.indexOf('+');
        return plus < 0 ? method : method.substring(0, plus);
    }

    public static int packedRows(int out) {
        return (out + 3) / 4;
    }
}
