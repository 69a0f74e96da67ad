package ai.fluxbatch.model.vae;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.WeightReader;

/** A Conv2d of the autoencoder: {@code weight [O, C, k, k]}, {@code bias [O]}, one stride, zero padding per side. */
record Conv(Tensor weight, Tensor bias, int stride, int padTop, int padBottom, int padLeft, int padRight) {

    /** {@code prefix.weight [out, in, k, k]} and {@code prefix.bias [out]}, 'same' padding {@code k / 2}, stride 1. */
    static Conv same(WeightReader r, String prefix, int out, int in, int k) {
        int pad = k / 2;
        return new Conv(
                r.tensor(prefix + ".weight", out, in, k, k), r.tensor(prefix + ".bias", out), 1, pad, pad, pad, pad);
    }

    /**
     * The reference Downsample: pad one zero row below and one zero column right, then 3 x 3 with stride 2, so a
     * side of {@code n} becomes {@code n / 2} (rounded down).
     */
    static Conv downsample(WeightReader r, String prefix, int channels) {
        return new Conv(
                r.tensor(prefix + ".weight", channels, channels, 3, 3),
                r.tensor(prefix + ".bias", channels),
                2,
                0,
                1,
                0,
                1);
    }

    Tensor apply(Backend backend, Tensor x) {
        return backend.conv2d(x, weight, bias, stride, padTop, padBottom, padLeft, padRight);
    }

    /** The weight of a 1 x 1 convolution seen as a Linear weight {@code [O, C]} (no copy). */
    Tensor asLinearWeight(Backend backend) {
        int[] s = weight.shape();
        return backend.reshape(weight, s[0], s[1]);
    }
}
