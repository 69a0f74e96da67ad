package ai.fluxbatch.model.vae;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.Scratch;
import ai.fluxbatch.model.WeightReader;
import java.util.ArrayList;
import java.util.List;

/**
 * The reference Decoder: conv_in from the latent channels; the mid block; the levels from coarsest to finest, each
 * {@code resBlocks + 1} resnets then (except at level 0) nearest 2x upsampling and a 3 x 3 conv; norm_out, SiLU,
 * conv_out to the image channels.
 */
final class Decoder {
    private record Level(List<ResnetBlock> blocks, Conv upsample) {}

    private final Conv convIn;
    private final MidBlock mid;
    /** Index = the reference's level ({@code decoder.up.<i>}); applied from the last to 0. */
    private final List<Level> levels;

    private final Norm normOut;
    private final Conv convOut;

    private Decoder(Conv convIn, MidBlock mid, List<Level> levels, Norm normOut, Conv convOut) {
        this.convIn = convIn;
        this.mid = mid;
        this.levels = levels;
        this.normOut = normOut;
        this.convOut = convOut;
    }

    static Decoder load(WeightReader r, AutoencoderConfig c) {
        int[] ch = c.blockOutChannels();
        int g = c.groups();
        int blockIn = ch[c.levels() - 1];
        Conv convIn = Conv.same(r, "decoder.conv_in", blockIn, c.latentChannels(), 3);
        MidBlock mid = MidBlock.load(r, "decoder.mid", blockIn, g);
        Level[] levels = new Level[c.levels()];
        for (int i = c.levels() - 1; i >= 0; i--) {
            List<ResnetBlock> blocks = new ArrayList<>();
            for (int j = 0; j < c.resBlocks() + 1; j++) {
                blocks.add(ResnetBlock.load(r, "decoder.up." + i + ".block." + j, blockIn, ch[i], g));
                blockIn = ch[i];
            }
            levels[i] = new Level(
                    blocks, i == 0 ? null : Conv.same(r, "decoder.up." + i + ".upsample.conv", blockIn, blockIn, 3));
        }
        return new Decoder(
                convIn,
                mid,
                List.of(levels),
                Norm.load(r, "decoder.norm_out", blockIn, g),
                Conv.same(r, "decoder.conv_out", c.outChannels(), blockIn, 3));
    }

    /** {@code [B, latent, h, w]} (already unscaled) to {@code [B, out, h * 2^(levels-1), ...]}; z is left as it is. */
    Tensor apply(Backend backend, Tensor z) {
        Tensor h = convIn.apply(backend, z);
        h = Scratch.replace(h, mid.apply(backend, h));
        for (int i = levels.size() - 1; i >= 0; i--) {
            Level level = levels.get(i);
            for (ResnetBlock block : level.blocks()) {
                h = Scratch.replace(h, block.apply(backend, h));
            }
            if (level.upsample() != null) {
                h = Scratch.replace(h, backend.upsampleNearest2x(h));
                h = Scratch.replace(h, level.upsample().apply(backend, h));
            }
        }
        h = Scratch.replace(h, normOut.apply(backend, h));
        h = Scratch.replace(h, backend.silu(h));
        return Scratch.replace(h, convOut.apply(backend, h));
    }
}
