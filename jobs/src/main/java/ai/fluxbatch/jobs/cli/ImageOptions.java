package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.pipeline.GenerationParams;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/** The size, steps and guidance options generate, calibrate and evaluate share. */
public final class ImageOptions {
    @Option(
            names = "--height",
            defaultValue = "64",
            description = "Image height, a multiple of 16 (default: ${DEFAULT-VALUE}).")
    int height;

    @Option(
            names = "--width",
            defaultValue = "64",
            description = "Image width, a multiple of 16 (default: ${DEFAULT-VALUE}).")
    int width;

    @Option(
            names = "--steps",
            description = "Denoising steps (default: 50 for dev models, 4 for schnell, as the reference).")
    Integer steps;

    @Option(
            names = "--guidance",
            defaultValue = "3.5",
            description = "Guidance for dev models (default: ${DEFAULT-VALUE}).")
    float guidance;

    /** The parameters, {@code defaultSteps} unless --steps; a bad value is a usage error naming its option. */
    GenerationParams params(CommandLine cli, int defaultSteps) {
        try {
            return new GenerationParams(height, width, steps(defaultSteps), guidance);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(
                    cli, e.getMessage().replaceFirst("^(height|width|steps|guidance)", "--$1"));
        }
    }

    int steps(int defaultSteps) {
        return steps != null ? steps : defaultSteps;
    }
}
