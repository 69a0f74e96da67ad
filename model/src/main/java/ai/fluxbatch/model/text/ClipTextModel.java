package ai.fluxbatch.model.text;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.Scratch;
import ai.fluxbatch.model.ShapeReader;
import ai.fluxbatch.model.WeightReader;
import ai.fluxbatch.model.flux.Linear;
import ai.fluxbatch.model.safetensors.TensorSource;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The CLIP text model (Hugging Face names, {@code text_encoder/}): token and position embeddings, pre-LayerNorm
 * causal self-attention, quick-GELU MLP, final LayerNorm. FLUX uses the pooled output: the final hidden state at
 * the first end-of-text token, which is the argmax of the ids.
 *
 * <p>The embeddings and the linear layers' matrices stay in bfloat16 on the backend when the checkpoint stores them
 * so (FLUX.1's CLIP-L does), computed in float32 (see {@link WeightReader}); each layer runs in a scope of its own.
 */
public final class ClipTextModel {
    /** Both outputs of one call: {@code lastHiddenState [B, L, hidden]} and {@code pooled [B, hidden]}. */
    public record Output(Tensor lastHiddenState, Tensor pooled) {}

    private record Layer(
            Tensor norm1Weight,
            Tensor norm1Bias,
            Linear q,
            Linear k,
            Linear v,
            Linear out,
            Tensor norm2Weight,
            Tensor norm2Bias,
            Linear fc1,
            Linear fc2) {}

    private static final String PREFIX = "text_model.";

    private final Backend backend;
    private final ClipTextConfig config;
    private final Tensor tokens;
    private final Tensor positions;
    private final List<Layer> layers;
    private final Tensor finalWeight;
    private final Tensor finalBias;

    private ClipTextModel(
            Backend backend,
            ClipTextConfig config,
            Tensor tokens,
            Tensor positions,
            List<Layer> layers,
            Tensor finalWeight,
            Tensor finalBias) {
        this.backend = backend;
        this.config = config;
        this.tokens = tokens;
        this.positions = positions;
        this.layers = layers;
        this.finalWeight = finalWeight;
        this.finalBias = finalBias;
    }

    public static ClipTextModel load(TextEncoderFiles files, Backend backend) {
        try (TensorSource weights = files.openWeights()) {
            return load(weights, files.config(), files.configFile(), backend);
        }
    }

    /** Loads from open weights (left open) and the parsed {@code config.json} ({@code configFile} for messages). */
    public static ClipTextModel load(TensorSource weights, JsonNode config, Path configFile, Backend backend) {
        ClipTextConfig c = deriveConfig(new ShapeReader(weights, config, configFile));
        WeightReader r = new WeightReader(weights, backend, c.toString()).keepingBf16();
        int h = c.hidden();
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < c.layers(); i++) {
            String p = PREFIX + "encoder.layers." + i + ".";
            layers.add(new Layer(
                    r.tensor(p + "layer_norm1.weight", h),
                    r.tensor(p + "layer_norm1.bias", h),
                    r.linear(p + "self_attn.q_proj", h, h),
                    r.linear(p + "self_attn.k_proj", h, h),
                    r.linear(p + "self_attn.v_proj", h, h),
                    r.linear(p + "self_attn.out_proj", h, h),
                    r.tensor(p + "layer_norm2.weight", h),
                    r.tensor(p + "layer_norm2.bias", h),
                    r.linear(p + "mlp.fc1", c.intermediate(), h),
                    r.linear(p + "mlp.fc2", h, c.intermediate())));
        }
        return new ClipTextModel(
                backend,
                c,
                r.matrix(PREFIX + "embeddings.token_embedding.weight", c.vocabSize(), h),
                r.matrix(PREFIX + "embeddings.position_embedding.weight", c.maxPositions(), h),
                layers,
                r.tensor(PREFIX + "final_layer_norm.weight", h),
                r.tensor(PREFIX + "final_layer_norm.bias", h));
    }

    static ClipTextConfig deriveConfig(ShapeReader s) {
        String tok = PREFIX + "embeddings.token_embedding.weight";
        int vocab = s.dim(tok, 2, 0);
        int hidden = s.dim(tok, 2, 1);
        int positions = s.dim(PREFIX + "embeddings.position_embedding.weight", 2, 0);
        int intermediate = s.dim(PREFIX + "encoder.layers.0.mlp.fc1.weight", 2, 0);
        int layers = s.countLayers(PREFIX + "encoder.layers");
        int heads = s.intOr("num_attention_heads", -1);
        if (heads <= 0 || hidden % heads != 0) {
            throw new ModelException(
                    s.configFile() + ": num_attention_heads is " + s.config().get("num_attention_heads")
                            + ", expected a positive divisor of the hidden size " + hidden + " (from " + tok + ")");
        }
        String act = s.textOr("hidden_act", "quick_gelu");
        if (!act.equals("quick_gelu")) {
            throw new ModelException(s.configFile() + ": hidden_act is '" + act + "', expected quick_gelu (CLIP-L)");
        }
        s.check("vocab_size", vocab, tok);
        s.check("hidden_size", hidden, tok);
        s.check("intermediate_size", intermediate, "mlp.fc1.weight");
        s.check("num_hidden_layers", layers, "encoder.layers.* in the checkpoint");
        s.check("max_position_embeddings", positions, "position_embedding.weight");
        return new ClipTextConfig(
                vocab, hidden, heads, intermediate, layers, positions, (float) s.doubleOr("layer_norm_eps", 1e-5));
    }

    public ClipTextConfig config() {
        return config;
    }

    /**
     * Bytes the weights occupy on the backend: embeddings and matrices at 2 bytes a value where kept in bfloat16,
     * else 4; biases and LayerNorm parameters in float32.
     */
    public long residentBytes() {
        long n = tokens.residentBytes()
                + positions.residentBytes()
                + finalWeight.residentBytes()
                + finalBias.residentBytes();
        for (Layer l : layers) {
            n += l.norm1Weight().residentBytes()
                    + l.norm1Bias().residentBytes()
                    + l.q().residentBytes()
                    + l.k().residentBytes()
                    + l.v().residentBytes()
                    + l.out().residentBytes()
                    + l.norm2Weight().residentBytes()
                    + l.norm2Bias().residentBytes()
                    + l.fc1().residentBytes()
                    + l.fc2().residentBytes();
        }
        return n;
    }

    /** {@code ids [batch * length]}, each sequence at most {@code maxPositions} long. */
    public Output encode(int[] ids, int batch) {
        if (batch < 1 || ids.length % batch != 0) {
            throw new IllegalArgumentException(ids.length + " token ids do not split into " + batch + " sequences");
        }
        int length = ids.length / batch;
        if (length > config.maxPositions()) {
            throw new IllegalArgumentException(
                    "sequence of " + length + " CLIP tokens, expected at most " + config.maxPositions());
        }
        int h = config.hidden();
        int[] positionIds = new int[ids.length];
        int[] poolRows = new int[batch];
        for (int b = 0; b < batch; b++) {
            int best = 0;
            for (int i = 0; i < length; i++) {
                positionIds[b * length + i] = i;
                if (ids[b * length + i] > ids[b * length + best]) {
                    best = i;
                }
            }
            poolRows[b] = b * length + best;
        }
        Tensor x = backend.reshape(
                backend.add(backend.embedding(tokens, ids), backend.embedding(positions, positionIds)),
                batch,
                length,
                h);
        float scale = (float) (1.0 / Math.sqrt(config.headDim()));
        for (Layer layer : layers) {
            try (TensorScope s = backend.openScope()) {
                Tensor n = backend.layerNorm(x, layer.norm1Weight(), layer.norm1Bias(), config.eps());
                Tensor attn = backend.attention(
                        layer.q().apply(backend, n),
                        layer.k().apply(backend, n),
                        layer.v().apply(backend, n),
                        config.heads(),
                        scale,
                        null,
                        true);
                Tensor x1 = backend.add(x, layer.out().apply(backend, attn));
                n = backend.layerNorm(x1, layer.norm2Weight(), layer.norm2Bias(), config.eps());
                Tensor next = backend.add(
                        x1,
                        layer.fc2().apply(backend, backend.quickGelu(layer.fc1().apply(backend, n))));
                x = Scratch.replace(x, s.keep(next));
            }
        }
        Tensor last = backend.layerNorm(x, finalWeight, finalBias, config.eps());
        Tensor pooled = backend.embedding(backend.reshape(last, batch * length, h), poolRows);
        return new Output(last, pooled);
    }
}
