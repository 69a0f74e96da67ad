package ai.fluxbatch.jobs.generate;

import ai.fluxbatch.model.pipeline.GenerationParams;
import java.io.Serializable;

/** What every task of one generate run shares; shipped to executors, so plain serializable values only. */
public record GenerateSettings(String model, String modelChecksum, String quantization, String output,
                               OutputLayout layout, int height, int width, int steps, float guidance, int batchSize,
                               boolean overwrite) implements Serializable {

    public GenerationParams params() {
        return new GenerationParams(height, width, steps, guidance);
    }
}
