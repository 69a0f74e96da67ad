package ai.fluxbatch.model.distill;

import java.io.Serializable;

/**
 * The trainable values of one block linear layer: its per-output-channel {@code weight_scale} and its {@code bias},
 * each {@code [out]} (a layer without a bias in the checkpoint trains a bias that starts at zero).
 */
public record LayerParameters(float[] scale, float[] bias) implements Serializable {
    public LayerParameters {
        if (scale.length != bias.length) {
            throw new IllegalArgumentException("scale has " + scale.length + " channels, bias " + bias.length);
        }
    }

    public int channels() {
        return scale.length;
    }

    public LayerParameters copy() {
        return new LayerParameters(scale.clone(), bias.clone());
    }
}
