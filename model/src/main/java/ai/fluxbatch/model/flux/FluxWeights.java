package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Tensor;
import java.util.List;

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

    /** {@code in_layer -> SiLU -> out_layer}. */
    public record MlpEmbedder(Linear in, Linear out) {
        long residentBytes() {
            return in.residentBytes() + out.residentBytes();
        }
    }

    /** One stream (img or txt) of a double-stream block. */
    public record Stream(
            Linear modulation, Linear qkv, Tensor queryNorm, Tensor keyNorm, Linear proj, Linear mlpIn, Linear mlpOut) {
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
