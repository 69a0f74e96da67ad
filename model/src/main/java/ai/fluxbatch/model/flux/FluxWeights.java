package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Tensor;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;

/** Every weight of a FLUX.1 transformer, resident on one backend, under the reference implementation's structure. */
public record FluxWeights(
        Linear imgIn,
        Linear txtIn,
        MlpEmbedder timeIn,
        MlpEmbedder guidanceIn,
        MlpEmbedder vectorIn,
        List<DoubleBlock> doubleBlocks,
        List<SingleBlock> singleBlocks,
        Linear finalModulation,
        Linear finalLinear) {

    /** Bytes all weights occupy on their backend: what loading the transformer costs in memory. */
    public long residentBytes() {
        long n = imgIn.residentBytes()
                + txtIn.residentBytes()
                + timeIn.residentBytes()
                + vectorIn.residentBytes()
                + (guidanceIn == null ? 0 : guidanceIn.residentBytes())
                + finalModulation.residentBytes()
                + finalLinear.residentBytes();
        for (DoubleBlock b : doubleBlocks) {
            n += b.img().residentBytes() + b.txt().residentBytes();
        }
        for (SingleBlock b : singleBlocks) {
            n += b.modulation().residentBytes()
                    + b.linear1().residentBytes()
                    + b.linear2().residentBytes()
                    + b.queryNorm().residentBytes()
                    + b.keyNorm().residentBytes();
        }
        return n;
    }

    /**
     * The linear layers of the double and single blocks (the ones a 1.58-bit model quantizes) by checkpoint name, e.g.
     * {@code double_blocks.0.img_attn.qkv}, in checkpoint order.
     */
    public Map<String, Linear> blockLinears() {
        Map<String, Linear> out = new LinkedHashMap<>();
        withBlockLinears((name, linear) -> {
            out.put(name, linear);
            return linear;
        });
        return out;
    }

    /** The same weights with every block linear layer replaced by {@code replace(name, layer)}. */
    public FluxWeights withBlockLinears(BiFunction<String, Linear, Linear> replace) {
        List<DoubleBlock> doubles = new ArrayList<>();
        for (int i = 0; i < doubleBlocks.size(); i++) {
            String p = "double_blocks." + i + ".";
            DoubleBlock b = doubleBlocks.get(i);
            doubles.add(
                    new DoubleBlock(b.img().map(p + "img_", replace), b.txt().map(p + "txt_", replace)));
        }
        List<SingleBlock> singles = new ArrayList<>();
        for (int i = 0; i < singleBlocks.size(); i++) {
            String p = "single_blocks." + i + ".";
            SingleBlock b = singleBlocks.get(i);
            singles.add(new SingleBlock(
                    replace.apply(p + "modulation.lin", b.modulation()),
                    replace.apply(p + "linear1", b.linear1()),
                    replace.apply(p + "linear2", b.linear2()),
                    b.queryNorm(),
                    b.keyNorm()));
        }
        return new FluxWeights(
                imgIn, txtIn, timeIn, guidanceIn, vectorIn, doubles, singles, finalModulation, finalLinear);
    }

    /** {@code in_layer -> SiLU -> out_layer}. */
    public record MlpEmbedder(Linear in, Linear out) {
        long residentBytes() {
            return in.residentBytes() + out.residentBytes();
        }
    }

    /** One stream (img or txt) of a double-stream block. */
    public record Stream(
            Linear modulation, Linear qkv, Tensor queryNorm, Tensor keyNorm, Linear proj, Linear mlpIn, Linear mlpOut) {
        Stream map(String p, BiFunction<String, Linear, Linear> replace) {
            return new Stream(
                    replace.apply(p + "mod.lin", modulation),
                    replace.apply(p + "attn.qkv", qkv),
                    queryNorm,
                    keyNorm,
                    replace.apply(p + "attn.proj", proj),
                    replace.apply(p + "mlp.0", mlpIn),
                    replace.apply(p + "mlp.2", mlpOut));
        }

        long residentBytes() {
            return modulation.residentBytes()
                    + qkv.residentBytes()
                    + queryNorm.residentBytes()
                    + keyNorm.residentBytes()
                    + proj.residentBytes()
                    + mlpIn.residentBytes()
                    + mlpOut.residentBytes();
        }
    }

    public record DoubleBlock(Stream img, Stream txt) {}

    public record SingleBlock(Linear modulation, Linear linear1, Linear linear2, Tensor queryNorm, Tensor keyNorm) {}
}
