package ai.fluxbatch.model.vae;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.Scratch;
import ai.fluxbatch.model.WeightReader;

/**
 * The reference AttnBlock of the mid blocks: GroupNorm, 1 x 1 convolutions q, k, v, single-head softmax attention
 * over the {@code h * w} positions with scale {@code 1/sqrt(C)}, 1 x 1 {@code proj_out}, added to the input. A 1 x 1
 * convolution is a Linear over the channel axis, so the block moves to {@code [B, h*w, C]} once after the norm,
 * applies q, k, v and proj_out there as Linear layers with the convolutions' weights, and moves back once.
 */
record AttnBlock(Norm norm, Conv q, Conv k, Conv v, Conv projOut) {

    static AttnBlock load(WeightReader r, String prefix, int channels, int groups) {
        return new AttnBlock(
                Norm.load(r, prefix + ".norm", channels, groups),
                Conv.same(r, prefix + ".q", channels, channels, 1),
                Conv.same(r, prefix + ".k", channels, channels, 1),
                Conv.same(r, prefix + ".v", channels, channels, 1),
                Conv.same(r, prefix + ".proj_out", channels, channels, 1));
    }

    /** Returns a new tensor; {@code x [B, C, h, w]} is left as it is. */
    Tensor apply(Backend backend, Tensor x) {
        int[] s = x.shape();
        int b = s[0], c = s[1], positions = s[2] * s[3];
        Tensor normed = norm.apply(backend, x);
        Tensor rows = backend.transposeLast2(backend.reshape(normed, b, c, positions));
        normed.close();
        Tensor qs = linear(backend, q, rows), ks = linear(backend, k, rows), vs = linear(backend, v, rows);
        rows.close();
        Tensor attended = backend.attention(qs, ks, vs, 1);
        qs.close();
        ks.close();
        vs.close();
        Tensor projected = Scratch.replace(attended, linear(backend, projOut, attended));
        Tensor image = backend.transposeLast2(projected);
        projected.close();
        Tensor out = backend.add(x, backend.reshape(image, b, c, s[2], s[3]));
        image.close();
        return out;
    }

    private static Tensor linear(Backend backend, Conv conv, Tensor rows) {
        return backend.linear(rows, conv.asLinearWeight(backend), conv.bias());
    }
}
