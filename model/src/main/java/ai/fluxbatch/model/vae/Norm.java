package ai.fluxbatch.model.vae;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.WeightReader;

/** GroupNorm with affine parameters {@code weight, bias [C]}, epsilon {@link AutoencoderConfig#NORM_EPS}. */
record Norm(Tensor weight, Tensor bias, int groups) {

    static Norm load(WeightReader r, String prefix, int channels, int groups) {
        return new Norm(r.tensor(prefix + ".weight", channels), r.tensor(prefix + ".bias", channels), groups);
    }

    Tensor apply(Backend backend, Tensor x) {
        return backend.groupNorm(x, groups, weight, bias, AutoencoderConfig.NORM_EPS);
    }
}
