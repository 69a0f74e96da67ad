package ai.fluxbatch.jobs.cli;

import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEncoders;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import ai.fluxbatch.model.snapshot.SampleSize;
import picocli.CommandLine;

/**
 * What generate, calibrate, evaluate and distill take from the model when an option is not given, as diffusers does:
 * the image size ({@link FluxSnapshot#defaultSampleSize()}: 1024 x 1024 for FLUX.1, 64 x 64 for the shipped miniature)
 * and the T5 length ({@link FluxSnapshot#t5MaxLength()}: 512 for dev, 256 for schnell), with the checks of the values
 * that are given. The model's configs are read only for what is left out.
 */
final class ModelDefaults {
    static final String MAX_SEQUENCE_LENGTH = "--max-sequence-length";

    /** The default of --height and --width, for their help. */
    static final String SIZE_HELP = "the model's sample size, 1024 for FLUX.1, 64 for the shipped miniature";

    static final String LENGTH_HELP = "T5 tokens per prompt, which is cut or padded to them, 1 to "
            + TextEncoders.MAX_SEQUENCE_LENGTH + " (default: 512 for dev models, 256 for schnell, as the reference).";

    private ModelDefaults() {}

    /** Height and width in pixels, and whether each came from the model. */
    record Size(int height, int width, boolean heightFromModel, boolean widthFromModel) {}

    /**
     * {@code height} and {@code width} as given, the model's sample size for the one left out (null). A default that is
     * no valid size (not a multiple of 16 from 16 to {@value GenerationParams#MAX_SIDE}) is a usage error saying where
     * it comes from; the given values are checked with the rest of the parameters.
     */
    static Size size(CommandLine cli, Integer height, Integer width, FluxSnapshot snapshot) {
        if (height != null && width != null) {
            return new Size(height, width, false, false);
        }
        SampleSize s = snapshot.defaultSampleSize();
        int side = s.pixels();
        if (side < 16 || side > GenerationParams.MAX_SIDE || side % 16 != 0) {
            throw new CommandLine.ParameterException(
                    cli,
                    (height == null ? "--height" : "--width") + " is not given, and the model's sample size " + side
                            + " (" + s.describe() + ", from " + snapshot.transformerConfigFile()
                            + " and vae/config.json) is no image size: expected a multiple of 16 from 16 to "
                            + GenerationParams.MAX_SIDE + "; pass --height and --width");
        }
        return new Size(height != null ? height : side, width != null ? width : side, height == null, width == null);
    }

    /** {@code given} (checked: 1 to 512, a usage error naming the option otherwise), else the model's T5 length. */
    static int maxSequenceLength(CommandLine cli, Integer given, FluxSnapshot snapshot) {
        if (given == null) {
            return snapshot.t5MaxLength();
        }
        OptionChecks.range(
                cli,
                MAX_SEQUENCE_LENGTH,
                given,
                1,
                TextEncoders.MAX_SEQUENCE_LENGTH,
                "FLUX.1 was trained with " + TextEncoders.MAX_SEQUENCE_LENGTH
                        + " T5 tokens at most; diffusers refuses more too");
        return given;
    }

    /**
     * The parameters of a run in one line, each value the model chose marked so: {@code 1024 x 1024 (the model's sample
     * size), 50 steps (the model's), guidance 3.5, T5 length 512 (the model's)}.
     */
    static String describe(
            GenerationParams p,
            boolean heightFromModel,
            boolean widthFromModel,
            boolean stepsFromModel,
            int length,
            boolean lengthFromModel) {
        String size = p.height() + " x " + p.width();
        if (heightFromModel && widthFromModel) {
            size += " (the model's sample size)";
        } else if (heightFromModel || widthFromModel) {
            size += " (" + (heightFromModel ? "height" : "width") + ": the model's sample size)";
        }
        return size + ", " + p.steps() + (p.steps() == 1 ? " step" : " steps")
                + (stepsFromModel ? " (the model's)" : "") + ", guidance " + p.guidance() + ", T5 length " + length
                + (lengthFromModel ? " (the model's)" : "");
    }
}
