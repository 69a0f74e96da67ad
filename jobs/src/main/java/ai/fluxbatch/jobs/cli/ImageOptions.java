package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * The size, steps, guidance and T5 length options generate, calibrate and evaluate share; what is not given comes from
 * the model ({@link ModelDefaults}).
 */
public final class ImageOptions {
    @Option(
            names = "--height",
            paramLabel = "H",
            description = "Image height, a multiple of 16 (default: " + ModelDefaults.SIZE_HELP + ").")
    Integer height;

    @Option(
            names = "--width",
            paramLabel = "W",
            description = "Image width, a multiple of 16 (default: " + ModelDefaults.SIZE_HELP + ").")
    Integer width;

    @Option(
            names = "--steps",
            description = "Denoising steps (default: 50 for dev models, 4 for schnell, as the reference).")
    Integer steps;

    @Option(
            names = "--guidance",
            defaultValue = "3.5",
            description = "Guidance for dev models (default: ${DEFAULT-VALUE}).")
    float guidance;

    @Option(names = ModelDefaults.MAX_SEQUENCE_LENGTH, paramLabel = "N", description = ModelDefaults.LENGTH_HELP)
    Integer maxSequenceLength;

    /**
     * The parameters: what was given, else {@code snapshot}'s defaults (its sample size, its step count); a bad value
     * is a usage error naming its option.
     */
    GenerationParams params(CommandLine cli, FluxSnapshot snapshot) {
        ModelDefaults.Size size = ModelDefaults.size(cli, height, width, snapshot);
        int n = steps != null ? steps : snapshot.defaultSteps();
        try {
            return new GenerationParams(size.height(), size.width(), n, guidance);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(
                    cli, e.getMessage().replaceFirst("^(height|width|steps|guidance)", "--$1"));
        }
    }

    /** The T5 length: --max-sequence-length, else {@code snapshot}'s (512 for dev, 256 for schnell). */
    int maxSequenceLength(CommandLine cli, FluxSnapshot snapshot) {
        return ModelDefaults.maxSequenceLength(cli, maxSequenceLength, snapshot);
    }

    /** The parameters in one line, each that came from the model marked so: what a run prints before it starts. */
    String describe(GenerationParams p, int length) {
        return ModelDefaults.describe(
                p, height == null, width == null, steps == null, length, maxSequenceLength == null);
    }
}
