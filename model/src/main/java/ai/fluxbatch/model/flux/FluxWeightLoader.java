package ai.fluxbatch.model.flux;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.WeightReader;
import ai.fluxbatch.model.safetensors.TensorSource;
import java.util.ArrayList;
import java.util.List;

/** Reads the reference-named tensors of a checkpoint onto a backend, checking each shape against the config. */
public final class FluxWeightLoader {
    private final WeightReader reader;
    private final FluxConfig config;
    private final LinearWrapper wrapper;

    public FluxWeightLoader(TensorSource source, Backend backend, FluxConfig config) {
        this(source, backend, config, LinearWrapper.NONE);
    }

    public FluxWeightLoader(TensorSource source, Backend backend, FluxConfig config, LinearWrapper wrapper) {
        this.reader = new WeightReader(source, backend, config.toString());
        this.config = config;
        this.wrapper = wrapper;
    }

    public FluxWeights load() {
        int h = config.hidden();
        int t = FluxConfig.TIME_EMBED_DIM;
        List<FluxWeights.DoubleBlock> doubles = new ArrayList<>();
        for (int i = 0; i < config.depth(); i++) {
            String p = "double_blocks." + i + ".";
            doubles.add(new FluxWeights.DoubleBlock(stream(p + "img_"), stream(p + "txt_")));
        }
        List<FluxWeights.SingleBlock> singles = new ArrayList<>();
        for (int i = 0; i < config.depthSingle(); i++) {
            String p = "single_blocks." + i + ".";
            singles.add(new FluxWeights.SingleBlock(
                    linear(p + "modulation.lin", 3 * h, h),
                    linear(p + "linear1", 3 * h + config.mlpHidden(), h),
                    linear(p + "linear2", h, h + config.mlpHidden()),
                    vector(p + "norm.query_norm.scale", config.headDim()),
                    vector(p + "norm.key_norm.scale", config.headDim())));
        }
        return new FluxWeights(
                linear("img_in", h, config.inChannels()),
                linear("txt_in", h, config.contextDim()),
                embedder("time_in", t),
                config.guidanceEmbed() ? embedder("guidance_in", t) : null,
                embedder("vector_in", config.vecDim()),
                doubles,
                singles,
                linear("final_layer.adaLN_modulation.1", 2 * h, h),
                linear("final_layer.linear", config.outChannels(), h));
    }

    private FluxWeights.Stream stream(String p) {
        int h = config.hidden();
        return new FluxWeights.Stream(
                linear(p + "mod.lin", 6 * h, h),
                linear(p + "attn.qkv", 3 * h, h),
                vector(p + "attn.norm.query_norm.scale", config.headDim()),
                vector(p + "attn.norm.key_norm.scale", config.headDim()),
                linear(p + "attn.proj", h, h),
                linear(p + "mlp.0", config.mlpHidden(), h),
                linear(p + "mlp.2", h, config.mlpHidden()));
    }

    private FluxWeights.MlpEmbedder embedder(String p, int in) {
        int h = config.hidden();
        return new FluxWeights.MlpEmbedder(linear(p + ".in_layer", h, in), linear(p + ".out_layer", h, h));
    }

    private Linear linear(String prefix, int out, int in) {
        return wrapper.wrap(prefix, in, reader.linear(prefix, out, in));
    }

    private Tensor vector(String name, int n) {
        return reader.tensor(name, n);
    }
}
