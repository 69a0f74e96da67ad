package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;

/** A 1.58-bit linear layer: packed ternary codes with per-output-channel scales, multiplied without dequantizing. */
public record TernaryLinear(Tensor weight, Tensor bias) implements Linear {
    @Override
    public Tensor apply(Backend backend, Tensor x) {
        return backend.ternaryLinear(x, weight, bias);
    }

    @Override
    public long residentBytes() {
        return weight.residentBytes() + (bias == null ? 0 : bias.residentBytes());
    }

    @Override
    public int outFeatures() {
        return weight.dim(0);
    }
}
