package ai.fluxbatch.model.vae;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.Scratch;
import ai.fluxbatch.model.WeightReader;

/**
 * The reference ResnetBlock: {@code norm1, silu, conv1 (3 x 3), norm2, silu, conv2 (3 x 3)} added to the input,
 * which goes through a 1 x 1 {@code nin_shortcut} when the channel count changes.
 */
record ResnetBlock(Norm norm1, Conv conv1, Norm norm2, Conv conv2, Conv shortcut) {

    static ResnetBlock load(WeightReader r, String prefix, int in, int out, int groups) {
        return new ResnetBlock(
                Norm.load(r, prefix + ".norm1", in, groups),
                Conv.same(r, prefix + ".conv1", out, in, 3),
                Norm.load(r, prefix + ".norm2", out, groups),
                Conv.same(r, prefix + ".conv2", out, out, 3),
                in == out ? null : Conv.same(r, prefix + ".nin_shortcut", out, in, 1));
    }

    /** Returns a new tensor; {@code x} is left as it is. */
    Tensor apply(Backend backend, Tensor x) {
        Tensor h = norm1.apply(backend, x);
        h = Scratch.replace(h, backend.silu(h));
        h = Scratch.replace(h, conv1.apply(backend, h));
        h = Scratch.replace(h, norm2.apply(backend, h));
        h = Scratch.replace(h, backend.silu(h));
        h = Scratch.replace(h, conv2.apply(backend, h));
        if (shortcut == null) {
            return Scratch.replace(h, backend.add(x, h));
        }
        Tensor skip = shortcut.apply(backend, x);
        Tensor out = backend.add(skip, h);
        skip.close();
        h.close();
        return out;
    }
}
