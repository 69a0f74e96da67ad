package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Tensor;

/** Receives intermediate tensors of a forward pass by name, for debugging and parity tests. */
@FunctionalInterface
public interface TapSink {
    TapSink NONE = (name, tensor) -> { };

    void tap(String name, Tensor tensor);
}
