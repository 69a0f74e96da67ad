package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.snapshot.FluxSnapshot;

/** Loads the transformer of a snapshot onto a backend. */
public final class FluxTransformers {
    private FluxTransformers() {}

    public static FluxTransformer load(FluxSnapshot snapshot, Backend backend) {
        return load(snapshot, backend, LinearWrapper.NONE);
    }

    /** Loads with every linear layer passed through {@code wrapper} (to record its inputs, say). */
    public static FluxTransformer load(FluxSnapshot snapshot, Backend backend, LinearWrapper wrapper) {
        try (TensorSource weights = snapshot.openTransformer()) {
            FluxConfig config =
                    FluxConfigReader.derive(weights, snapshot.transformerConfig(), snapshot.transformerConfigFile());
            return new FluxTransformer(backend, config, new FluxWeightLoader(weights, backend, config, wrapper).load());
        }
    }
}
