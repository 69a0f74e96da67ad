package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Tensor;
import java.util.List;

/** Every weight of a FLUX.1 transformer, resident on one backend, under the reference implementation's structure. */
public record FluxWeights(Linear imgIn, Linear txtIn, MlpEmbedder timeIn, MlpEmbedder guidanceIn,
                          MlpEmbedder vectorIn, List<DoubleBlock> doubleBlocks, List<SingleBlock> singleBlocks,
                          Linear finalModulation, Linear finalLinear) {

    /** {@code in_layer -> SiLU -> out_layer}. */
    public record MlpEmbedder(Linear in, Linear out) {
    }

    /** One stream (img or txt) of a double-stream block. */
    public record Stream(Linear modulation, Linear qkv, Tensor queryNorm, Tensor keyNorm, Linear proj,
                         Linear mlpIn, Linear mlpOut) {
    }

    public record DoubleBlock(Stream img, Stream txt) {
    }

    public record SingleBlock(Linear modulation, Linear linear1, Linear linear2, Tensor queryNorm, Tensor keyNorm) {
    }
}
