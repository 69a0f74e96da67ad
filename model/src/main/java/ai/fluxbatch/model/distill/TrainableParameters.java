package ai.fluxbatch.model.distill;

import java.io.Serializable;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The student's trainable state, keyed by layer name in checkpoint order ({@code double_blocks.0.img_attn.qkv}, ...):
 * a few floats per output channel, small enough to broadcast every step and to keep on the driver.
 */
public record TrainableParameters(Map<String, LayerParameters> layers) implements Serializable {
    public TrainableParameters {
        layers = Collections.unmodifiableMap(new LinkedHashMap<>(layers));
    }

    public LayerParameters layer(String name) {
        LayerParameters p = layers.get(name);
        if (p == null) {
            throw new IllegalArgumentException("no trainable layer " + name);
        }
        return p;
    }

    /** Total number of trainable values (scales and biases). */
    public long count() {
        long n = 0;
        for (LayerParameters p : layers.values()) {
            n += 2L * p.channels();
        }
        return n;
    }

    public TrainableParameters copy() {
        Map<String, LayerParameters> m = new LinkedHashMap<>();
        layers.forEach((k, v) -> m.put(k, v.copy()));
        return new TrainableParameters(m);
    }
}
