package ai.fluxbatch.model.calib;

import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * Runs a batch of prompts along the sampling trajectory of a pipeline loaded through an {@link ActivationRecorder},
 * recording the layer inputs at the chosen steps only, and returns what was recorded.
 */
public final class CalibrationRun {
    private final FluxPipeline pipeline;
    private final ActivationRecorder recorder;

    public CalibrationRun(FluxPipeline pipeline, ActivationRecorder recorder) {
        this.pipeline = pipeline;
        this.recorder = recorder;
    }

    /** {@code recordStep} says which step indices (0-based) are recorded. */
    public CalibrationStats record(
            List<TextEmbedding> prompts, long[] seeds, GenerationParams p, IntPredicate recordStep) {
        recorder.take();
        recorder.recording(recordStep.test(0));
        try {
            pipeline.denoise(
                    prompts, seeds, p, (index, inputs, velocity) -> recorder.recording(recordStep.test(index + 1)));
        } finally {
            recorder.recording(false);
        }
        return recorder.take();
    }
}
