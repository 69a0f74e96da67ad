package ai.fluxbatch.model.eval;

import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.TensorInfo;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Path;
import java.util.Map;

/**
 * What a snapshot's transformer checkpoint says about its quantization, read from the header alone: the method and
 * calibration recorded in {@code __metadata__}, and how many block-linear parameters are ternary (a block weight with
 * a {@code <name>_scale} companion) out of all of them.
 *
 * @param method             {@code quantization_method}, or "none" for a full-precision checkpoint
 * @param calibration        {@code calibration} ("none", or the statistics' sha256), or "none" if absent
 * @param calibrationPrompts {@code calibration_prompts} if recorded, else null
 */
public record QuantizationInfo(
        String method,
        String calibration,
        String calibrationPrompts,
        long ternaryParameters,
        long blockLinearParameters) {
    static final String NONE = "none";
    private static final int SHORT_HASH = 12;

    public static QuantizationInfo of(Path snapshotDir) {
        FluxSnapshot snapshot = FluxSnapshot.open(snapshotDir);
        try (TensorSource weights = snapshot.openTransformer()) {
            Map<String, String> meta = weights.metadata();
            long ternary = 0, all = 0;
            for (String name : weights.names()) {
                TensorInfo info = weights.info(name);
                if (!TernaryFormat.isQuantized(name, info.shape())) {
                    continue;
                }
                String scale = TernaryFormat.scaleName(name);
                if (weights.contains(scale)) {
                    long params = weights.info(scale).numel() * info.shape()[1]; // packed rows hold 4 outputs each
                    ternary += params;
                    all += params;
                } else {
                    all += info.numel();
                }
            }
            return new QuantizationInfo(
                    meta.getOrDefault(TernaryFormat.KEY_METHOD, NONE),
                    meta.getOrDefault(TernaryFormat.KEY_CALIBRATION, NONE),
                    meta.get(TernaryFormat.KEY_CALIBRATION + "_prompts"),
                    ternary,
                    all);
        }
    }

    public boolean quantized() {
        return !NONE.equals(method) || ternaryParameters > 0;
    }

    public double ternaryFraction() {
        return blockLinearParameters == 0 ? 0 : (double) ternaryParameters / blockLinearParameters;
    }

    /** "none", or the statistics' short hash with the prompt count where recorded: "sha256:0123456789ab (7232 prompts)". */
    public String calibrationSummary() {
        if (NONE.equals(calibration)) {
            return NONE;
        }
        int colon = calibration.indexOf(':');
        int end = Math.min(calibration.length(), colon + 1 + SHORT_HASH);
        String hash = calibration.substring(0, end);
        return calibrationPrompts == null ? hash : hash + " (" + calibrationPrompts + " prompts)";
    }
}
