package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Tensor;

/**
 * Receives intermediate tensors of a forward pass by name, for debugging and parity tests. A tapped tensor is valid
 * during the call only: a backend with device memory frees a block's tensors when the block ends, so a sink that
 * keeps values downloads them.
 */
@FunctionalInterface
public interface TapSink {
    TapSink NONE = (name, tensor) -> {};

    void tap(String name, Tensor tensor);
}
