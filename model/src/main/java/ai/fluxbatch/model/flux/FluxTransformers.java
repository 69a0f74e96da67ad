package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.safetensors.TensorSources;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Path;

/** Loads the transformer of a snapshot onto a backend. */
public final class FluxTransformers {
    private FluxTransformers() {
    }

    public static FluxTransformer load(FluxSnapshot snapshot, Backend backend) {
        try (TensorSource weights = TensorSources.open(snapshot.transformerFile())) {
            Path configFile = snapshot.root().resolve("transformer").resolve("config.json");
            FluxConfig config = FluxConfigReader.derive(weights, snapshot.transformerConfig(), configFile);
            return new FluxTransformer(backend, config, new FluxWeightLoader(weights, backend, config).load());
        }
    }
}
