package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;

/** A full-precision linear layer: {@code weight [out, in]} and an optional {@code bias [out]} on the backend. */
public record DenseLinear(Tensor weight, Tensor bias) implements Linear {
    @Override
    public Tensor apply(Backend backend, Tensor x) {
        return backend.linear(x, weight, bias);
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
