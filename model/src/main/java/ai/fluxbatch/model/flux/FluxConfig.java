package ai.fluxbatch.model.flux;

import java.util.Arrays;

/**
 * The sizes of a FLUX.1 transformer, derived from its tensors' shapes and checked against config.json.
 *
 * @param hidden      width of the residual stream
 * @param heads       attention heads; {@code hidden = heads * headDim}
 * @param mlpHidden   width of the MLPs (double blocks) and of the MLP branch of single blocks
 * @param depth       number of double-stream blocks
 * @param depthSingle number of single-stream blocks
 * @param axesDim     RoPE dimensions per position axis; they add up to {@code headDim}
 */
public record FluxConfig(
        int inChannels,
        int outChannels,
        int hidden,
        int heads,
        int mlpHidden,
        int depth,
        int depthSingle,
        int contextDim,
        int vecDim,
        boolean guidanceEmbed,
        int[] axesDim,
        double theta) {

    public static final int TIME_EMBED_DIM = 256;

    public int headDim() {
        return hidden / heads;
    }

    public String variant() {
        return guidanceEmbed ? "dev" : "schnell";
    }

    /** Same architecture: every field equal, the rotary axes by value. */
    public boolean sameArchitecture(FluxConfig o) {
        return inChannels == o.inChannels
                && outChannels == o.outChannels
                && hidden == o.hidden
                && heads == o.heads
                && mlpHidden == o.mlpHidden
                && depth == o.depth
                && depthSingle == o.depthSingle
                && contextDim == o.contextDim
                && vecDim == o.vecDim
                && guidanceEmbed == o.guidanceEmbed
                && Arrays.equals(axesDim, o.axesDim)
                && Double.compare(theta, o.theta) == 0;
    }

    @Override
    public String toString() {
        return "FLUX.1-" + variant() + " (hidden " + hidden + ", " + heads + " heads of " + headDim() + ", mlp "
                + mlpHidden + ", " + depth + " double + " + depthSingle + " single blocks, context " + contextDim
                + ", vec " + vecDim + ", rope axes " + Arrays.toString(axesDim) + ")";
    }
}
