package ai.fluxbatch.model.vae;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.ShapeReader;
import ai.fluxbatch.model.safetensors.TensorSource;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * The sizes of a FLUX autoencoder, derived from the tensors of {@code ae.safetensors} (reference names) and
 * checked against the diffusers-schema {@code vae/config.json}, which alone gives the latent scaling.
 *
 * @param baseChannels     output channels of the encoder's conv_in ({@code ch} in the reference)
 * @param blockOutChannels channels of each resolution level, finest first ({@code ch * ch_mult})
 * @param resBlocks        resnets per encoder level ({@code num_res_blocks}, diffusers {@code layers_per_block});
 *                         decoder levels have one more
 * @param groups           GroupNorm groups ({@code norm_num_groups}, 32 in FLUX)
 * @param scalingFactor    latents are {@code scalingFactor * (mean - shiftFactor)}
 */
public record AutoencoderConfig(
        int inChannels,
        int outChannels,
        int latentChannels,
        int baseChannels,
        int[] blockOutChannels,
        int resBlocks,
        int groups,
        double scalingFactor,
        double shiftFactor) {

    /** GroupNorm epsilon of every norm in the reference autoencoder. */
    public static final float NORM_EPS = 1e-6f;

    public int levels() {
        return blockOutChannels.length;
    }

    /** How many image pixels one latent position spans along each axis: {@code 2^(levels - 1)}, 8 in FLUX. */
    public int downscale() {
        return 1 << (levels() - 1);
    }

    @Override
    public String toString() {
        return "FLUX autoencoder (channels " + Arrays.toString(blockOutChannels) + ", " + resBlocks
                + " resnets per level, " + latentChannels + " latent channels, " + inChannels + " -> " + outChannels
                + " image channels, " + groups + " groups, scaling " + scalingFactor + ", shift " + shiftFactor + ")";
    }

    /** Derives the sizes from {@code weights} and checks {@code config} (the contents of {@code configFile}). */
    public static AutoencoderConfig derive(TensorSource weights, JsonNode config, Path configFile) {
        ShapeReader s = new ShapeReader(weights, config, configFile);
        int base = s.dim("encoder.conv_in.weight", 4, 0);
        int in = s.dim("encoder.conv_in.weight", 4, 1);
        int levels = s.countLayers("encoder.down");
        if (levels == 0) {
            throw new ModelException("no encoder.down.* tensors in " + weights.file("encoder.conv_in.weight")
                    + ": expected the reference FLUX autoencoder (encoder.down.<level>.block.<i>.conv1.weight, ...)");
        }
        int upLevels = s.countLayers("decoder.up");
        if (upLevels != levels) {
            throw new ModelException(weights.file("encoder.conv_in.weight") + " has " + levels
                    + " encoder levels (encoder.down.*) but " + upLevels + " decoder levels (decoder.up.*)");
        }
        int resBlocks = s.countLayers("encoder.down.0.block");
        int upBlocks = s.countLayers("decoder.up.0.block");
        if (resBlocks == 0 || upBlocks != resBlocks + 1) {
            throw new ModelException(weights.file("encoder.conv_in.weight") + " has " + resBlocks
                    + " resnets in encoder.down.0.block.* and " + upBlocks + " in decoder.up.0.block.*: expected"
                    + " at least one, and one more in each decoder level than in each encoder level");
        }
        int[] channels = new int[levels];
        for (int i = 0; i < levels; i++) {
            channels[i] = s.dim("encoder.down." + i + ".block.0.conv1.weight", 4, 0);
        }
        int latent = s.dim("decoder.conv_in.weight", 4, 1);
        int out = s.dim("decoder.conv_out.weight", 4, 0);
        int encoderOut = s.dim("encoder.conv_out.weight", 4, 0);
        if (encoderOut != 2 * latent) {
            throw new ModelException("tensor 'encoder.conv_out.weight' in " + weights.file("encoder.conv_out.weight")
                    + " has " + encoderOut + " output channels, expected 2 x " + latent
                    + " (mean and log-variance of the latent channels of decoder.conv_in.weight)");
        }

        String what = "the tensors of " + weights.file("encoder.conv_in.weight").getFileName();
        s.check("in_channels", in, "encoder.conv_in.weight");
        s.check("out_channels", out, "decoder.conv_out.weight");
        s.check("latent_channels", latent, "decoder.conv_in.weight");
        s.check("layers_per_block", resBlocks, "encoder.down.0.block.* in " + what);
        checkChannels(config, configFile, channels);
        int groups = s.intOr("norm_num_groups", 32);
        for (int c : channels) {
            if (groups <= 0 || c % groups != 0 || base % groups != 0) {
                throw new ModelException(configFile + ": norm_num_groups is " + groups + ", which does not divide the"
                        + " channel counts " + Arrays.toString(channels) + " of " + what);
            }
        }
        for (String key : new String[] {"use_quant_conv", "use_post_quant_conv"}) {
            JsonNode v = config.get(key);
            if (v != null && v.asBoolean(false)) {
                throw new ModelException(configFile + ": " + key + " is true, but the FLUX autoencoder has no"
                        + " quant_conv / post_quant_conv (expected false)");
            }
        }
        JsonNode scaling = config.get("scaling_factor");
        if (scaling == null || scaling.isNull()) {
            throw new ModelException(configFile + ": scaling_factor is missing, expected the latent scaling factor"
                    + " (0.3611 for FLUX.1)");
        }
        double scale = s.doubleOr("scaling_factor", 1);
        if (!(scale > 0) || Double.isInfinite(scale)) {
            throw new ModelException(configFile + ": scaling_factor is " + scale + ", expected a positive number");
        }
        double shift = s.doubleOr("shift_factor", 0);
        if (!Double.isFinite(shift)) {
            throw new ModelException(configFile + ": shift_factor is " + shift + ", expected a finite number");
        }
        return new AutoencoderConfig(in, out, latent, base, channels, resBlocks, groups, scale, shift);
    }

    private static void checkChannels(JsonNode config, Path configFile, int[] channels) {
        JsonNode v = config.get("block_out_channels");
        if (v == null || v.isNull()) {
            return;
        }
        boolean same = v.isArray() && v.size() == channels.length;
        for (int i = 0; same && i < channels.length; i++) {
            same = v.get(i).canConvertToInt() && v.get(i).asInt() == channels[i];
        }
        if (!same) {
            throw new ModelException(configFile + ": block_out_channels is " + v + " but the checkpoint gives "
                    + Arrays.toString(channels) + " (from encoder.down.<level>.block.0.conv1.weight)");
        }
    }
}
