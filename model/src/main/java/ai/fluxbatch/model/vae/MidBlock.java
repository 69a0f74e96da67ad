package ai.fluxbatch.model.vae;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.Scratch;
import ai.fluxbatch.model.WeightReader;

/** The mid block of encoder and decoder: {@code block_1}, {@code attn_1}, {@code block_2} at the coarsest level. */
record MidBlock(ResnetBlock block1, AttnBlock attn, ResnetBlock block2) {

    static MidBlock load(WeightReader r, String prefix, int channels, int groups) {
        return new MidBlock(
                ResnetBlock.load(r, prefix + ".block_1", channels, channels, groups),
                AttnBlock.load(r, prefix + ".attn_1", channels, groups),
                ResnetBlock.load(r, prefix + ".block_2", channels, channels, groups));
    }

    /** Returns a new tensor; {@code x} is left as it is. */
    Tensor apply(Backend backend, Tensor x) {
        Tensor h = block1.apply(backend, x);
        h = Scratch.replace(h, attn.apply(backend, h));
        return Scratch.replace(h, block2.apply(backend, h));
    }
}
