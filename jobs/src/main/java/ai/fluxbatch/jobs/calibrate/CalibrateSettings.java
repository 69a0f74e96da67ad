package ai.fluxbatch.jobs.calibrate;

import ai.fluxbatch.kernel.DeviceKind;
import ai.fluxbatch.kernel.cuda.GemmPrecision;
import ai.fluxbatch.model.pipeline.GenerationParams;
import java.io.Serializable;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * What every task of one calibrate run shares; shipped to executors, so plain serializable values only.
 * {@code maxSequenceLength} is the T5 length of the prompts' embeddings;
 * {@code layers} is a regular expression searched for in each quantizable layer's name (null: every layer);
 * {@code device} is what {@code --device} asked for, resolved by each task on its executor ({@code ExecutorDevice});
 * {@code gemmPrecision} is the CUDA backend's matmul arithmetic.
 */
public record CalibrateSettings(
        String model,
        boolean gram,
        String layers,
        int height,
        int width,
        int steps,
        float guidance,
        int maxSequenceLength,
        int batchSize,
        StepSelection recordedSteps,
        DeviceKind device,
        GemmPrecision gemmPrecision)
        implements Serializable {

    public CalibrateSettings {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(gemmPrecision, "gemmPrecision");
    }

    public GenerationParams params() {
        return new GenerationParams(height, width, steps, guidance);
    }

    /** Whether the layer named {@code layer} ({@code double_blocks.0.img_attn.qkv}) is recorded. */
    public boolean records(String layer) {
        return layers == null || Pattern.compile(layers).matcher(layer).find();
    }
}
