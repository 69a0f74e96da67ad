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
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The T5 v1.1 encoder as FLUX uses it (Hugging Face names, {@code text_encoder_2/}): shared embedding, relative
 * position bias from layer 0 shared by all layers, unscaled attention, gated-GELU feed-forward, RMSNorm, and no
 * attention mask: padding tokens are attended, exactly as FLUX calls it.
 *
 * <p>The embedding and the linear layers' matrices stay in bfloat16 on the backend when the checkpoint stores them so
 * (FLUX.1's T5-XXL does: 9.5 GB instead of 19 GB in float32), computed in float32 (see {@link WeightReader}); each
 * layer runs in a scope of its own, so a call holds one layer's intermediates, not 24.
 */
public final class T5Encoder {
    private record Layer(
            Tensor attnNorm,
            Linear q,
            Linear k,
            Linear v,
            Linear o,
            Tensor ffNorm,
            Linear wi0,
            Linear wi1,
            Linear wo) {}

    private final Backend backend;
    private final T5Config config;
    private final Tensor embedding;
    private final float[] positionTable;
    private final List<Layer> layers;
    private final Tensor finalNorm;
    /** The position bias depends only on the sequence length: computed once per length, kept on the backend. */
    private final Map<Integer, Tensor> biasByLength = new ConcurrentHashMap<>();

    private T5Encoder(
            Backend backend,
            T5Config config,
            Tensor embedding,
            float[] positionTable,
            List<Layer> layers,
            Tensor finalNorm) {
        this.backend = backend;
        this.config = config;
        this.embedding = embedding;
        this.positionTable = positionTable;
        this.layers = layers;
        this.finalNorm = finalNorm;
    }

    public static T5Encoder load(TextEncoderFiles files, Backend backend) {
        try (TensorSource weights = files.openWeights()) {
            return load(weights, files.config(), files.configFile(), backend);
        }
    }

    /** Loads from open weights (left open) and the parsed {@code config.json} ({@code configFile} for messages). */
    public static T5Encoder load(TensorSource weights, JsonNode config, Path configFile, Backend backend) {
        T5Config c = deriveConfig(new ShapeReader(weights, config, configFile));
        WeightReader r = new WeightReader(weights, backend, c.toString()).keepingBf16();
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < c.layers(); i++) {
            String a = "encoder.block." + i + ".layer.0.";
            String f = "encoder.block." + i + ".layer.1.";
            layers.add(new Layer(
                    r.tensor(a + "layer_norm.weight", c.dModel()),
                    r.linearNoBias(a + "SelfAttention.q", c.innerDim(), c.dModel()),
                    r.linearNoBias(a + "SelfAttention.k", c.innerDim(), c.dModel()),
                    r.linearNoBias(a + "SelfAttention.v", c.innerDim(), c.dModel()),
                    r.linearNoBias(a + "SelfAttention.o", c.dModel(), c.innerDim()),
                    r.tensor(f + "layer_norm.weight", c.dModel()),
                    r.linearNoBias(f + "DenseReluDense.wi_0", c.dFf(), c.dModel()),
                    r.linearNoBias(f + "DenseReluDense.wi_1", c.dFf(), c.dModel()),
                    r.linearNoBias(f + "DenseReluDense.wo", c.dModel(), c.dFf())));
        }
        Tensor table = r.tensor(
                "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", c.buckets(), c.heads());
        float[] positions = backend.download(table);
        table.close();
        return new T5Encoder(
                backend,
                c,
                r.matrix("shared.weight", c.vocabSize(), c.dModel()),
                positions,
                layers,
                r.tensor("encoder.final_layer_norm.weight", c.dModel()));
    }

    static T5Config deriveConfig(ShapeReader s) {
        int vocab = s.dim("shared.weight", 2, 0);
        int dModel = s.dim("shared.weight", 2, 1);
        String bias = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight";
        int buckets = s.dim(bias, 2, 0);
        int heads = s.dim(bias, 2, 1);
        int inner = s.dim("encoder.block.0.layer.0.SelfAttention.q.weight", 2, 0);
        if (inner % heads != 0) {
            throw new ModelException("SelfAttention.q.weight has " + inner + " outputs, not a multiple of the " + heads
                    + " heads of " + bias);
        }
        if (!s.contains("encoder.block.0.layer.1.DenseReluDense.wi_0.weight")) {
            throw new ModelException(s.configFile().getParent() + ": expected a T5 v1.1 encoder with a gated"
                    + " feed-forward (DenseReluDense.wi_0 / wi_1); this checkpoint has none");
        }
        String act = s.textOr("dense_act_fn", "gelu_new");
        if (!act.equals("gelu_new") && !act.equals("gelu_pytorch_tanh")) {
            throw new ModelException(s.configFile() + ": dense_act_fn is '" + act
                    + "', expected gelu_new (the T5 v1.1 gated-GELU that FLUX uses)");
        }
        T5Config c = new T5Config(
                vocab,
                dModel,
                heads,
                inner / heads,
                s.dim("encoder.block.0.layer.1.DenseReluDense.wi_0.weight", 2, 0),
                s.countLayers("encoder.block"),
                buckets,
                s.intOr("relative_attention_max_distance", 128),
                (float) s.doubleOr("layer_norm_epsilon", 1e-6));
        s.check("vocab_size", vocab, "shared.weight");
        s.check("d_model", dModel, "shared.weight");
        s.check("num_heads", heads, bias);
        s.check("d_kv", c.dKv(), "SelfAttention.q.weight / heads");
        s.check("d_ff", c.dFf(), "DenseReluDense.wi_0.weight");
        s.check("num_layers", c.layers(), "encoder.block.* in the checkpoint");
        s.check("relative_attention_num_buckets", buckets, bias);
        return c;
    }

    public T5Config config() {
        return config;
    }

    /**
     * Bytes the weights occupy on the backend: the embedding and the matrices at 2 bytes a value where kept in
     * bfloat16, else 4, and the RMSNorm scales in float32. The relative position table lives on the host.
     */
    public long residentBytes() {
        long n = embedding.residentBytes() + finalNorm.residentBytes();
        for (Layer l : layers) {
            n += l.attnNorm().residentBytes()
                    + l.q().residentBytes()
                    + l.k().residentBytes()
                    + l.v().residentBytes()
                    + l.o().residentBytes()
                    + l.ffNorm().residentBytes()
                    + l.wi0().residentBytes()
                    + l.wi1().residentBytes()
                    + l.wo().residentBytes();
        }
        return n;
    }

    /** {@code ids [batch * length]} to the last hidden state {@code [batch, length, d_model]}. */
    public Tensor encode(int[] ids, int batch) {
        if (batch < 1 || ids.length % batch != 0) {
            throw new IllegalArgumentException(ids.length + " token ids do not split into " + batch + " sequences");
        }
        int length = ids.length / batch;
        Tensor bias = biasByLength.computeIfAbsent(
                length,
                n -> backend.retain(backend.upload(
                        T5RelativePositions.bias(
                                positionTable, config.heads(), n, config.buckets(), config.maxDistance()),
                        config.heads(),
                        n,
                        n)));
        Tensor x = backend.reshape(backend.embedding(embedding, ids), batch, length, config.dModel());
        for (Layer layer : layers) {
            try (TensorScope scope = backend.openScope()) {
                x = Scratch.replace(x, scope.keep(layer(layer, x, bias)));
            }
        }
        return backend.rmsNorm(x, finalNorm, config.eps());
    }

    private Tensor layer(Layer layer, Tensor x, Tensor bias) {
        Tensor h = backend.rmsNorm(x, layer.attnNorm(), config.eps());
        Tensor attn = backend.attention(
                layer.q().apply(backend, h),
                layer.k().apply(backend, h),
                layer.v().apply(backend, h),
                config.heads(),
                1f,
                bias,
                false);
        Tensor x1 = backend.add(x, layer.o().apply(backend, attn));
        h = backend.rmsNorm(x1, layer.ffNorm(), config.eps());
        Tensor gated = backend.mul(
                backend.gelu(layer.wi0().apply(backend, h)), layer.wi1().apply(backend, h));
        return backend.add(x1, layer.wo().apply(backend, gated));
    }
}
