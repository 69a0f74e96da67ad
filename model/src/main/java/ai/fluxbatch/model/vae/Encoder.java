package ai.fluxbatch.model.vae;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.Scratch;
import ai.fluxbatch.model.WeightReader;
import java.util.ArrayList;
import java.util.List;

/**
 * The reference Encoder: conv_in; per level, its resnets then (except at the last level) the downsample; the mid
 * block (resnet, attention, resnet); norm_out, SiLU, conv_out to {@code 2 * latent} channels (mean, log-variance).
 */
final class Encoder {
    private record Level(List<ResnetBlock> blocks, Conv downsample) {}

    private final Conv convIn;
    private final List<Level> levels;
    private final MidBlock mid;
    private final Norm normOut;
    private final Conv convOut;

    private Encoder(Conv convIn, List<Level> levels, MidBlock mid, Norm normOut, Conv convOut) {
        this.convIn = convIn;
        this.levels = levels;
        this.mid = mid;
        this.normOut = normOut;
        this.convOut = convOut;
    }

    static Encoder load(WeightReader r, AutoencoderConfig c) {
        int[] ch = c.blockOutChannels();
        int g = c.groups();
        Conv convIn = Conv.same(r, "encoder.conv_in", c.baseChannels(), c.inChannels(), 3);
        List<Level> levels = new ArrayList<>();
        int blockIn = c.baseChannels();
        for (int i = 0; i < c.levels(); i++) {
            List<ResnetBlock> blocks = new ArrayList<>();
            for (int j = 0; j < c.resBlocks(); j++) {
                blocks.add(ResnetBlock.load(r, "encoder.down." + i + ".block." + j, blockIn, ch[i], g));
                blockIn = ch[i];
            }
            boolean last = i == c.levels() - 1;
            levels.add(new Level(
                    blocks, last ? null : Conv.downsample(r, "encoder.down." + i + ".downsample.conv", blockIn)));
        }
        MidBlock mid = MidBlock.load(r, "encoder.mid", blockIn, g);
        return new Encoder(
                convIn,
                levels,
                mid,
                Norm.load(r, "encoder.norm_out", blockIn, g),
                Conv.same(r, "encoder.conv_out", 2 * c.latentChannels(), blockIn, 3));
    }

    /** {@code [B, in, H, W]} to the moments {@code [B, 2 * latent, H / 2^(levels-1), ...]}; x is left as it is. */
    Tensor apply(Backend backend, Tensor x) {
        Tensor h = convIn.apply(backend, x);
        for (Level level : levels) {
            for (ResnetBlock block : level.blocks()) {
                h = Scratch.replace(h, block.apply(backend, h));
            }
            if (level.downsample() != null) {
                h = Scratch.replace(h, level.downsample().apply(backend, h));
            }
        }
        h = Scratch.replace(h, mid.apply(backend, h));
        h = Scratch.replace(h, normOut.apply(backend, h));
        h = Scratch.replace(h, backend.silu(h));
        return Scratch.replace(h, convOut.apply(backend, h));
    }
}
