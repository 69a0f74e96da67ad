package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;

/** A linear layer as the model sees it; how its weight is stored (dense now, packed ternary later) is its own business. */
public interface Linear {
    Tensor apply(Backend backend, Tensor x);

    int outFeatures();

    /** Bytes the layer's weight and bias occupy where the backend keeps them. */
    long residentBytes();
}
