package ai.fluxbatch.model.bench;

import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.kernel.cuda.CudaBackend;
import ai.fluxbatch.kernel.cuda.Device;
import ai.fluxbatch.kernel.cuda.DeviceMemoryPool;
import ai.fluxbatch.kernel.cuda.DryRunDevice;
import ai.fluxbatch.kernel.cuda.GpuTernaryLayout;
import ai.fluxbatch.model.flux.FluxConfig;
import ai.fluxbatch.model.flux.FluxConfigReader;
import ai.fluxbatch.model.flux.FluxInputs;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.FluxWeightLoader;
import ai.fluxbatch.model.flux.TapSink;
import ai.fluxbatch.model.quant.TernaryFormat;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.text.ClipTextModel;
import ai.fluxbatch.model.text.T5Encoder;
import ai.fluxbatch.model.vae.Autoencoder;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * What FLUX.1-dev inference holds in GPU memory, 1.58-bit as fluxbatch runs it against everything in BF16, per
 * component: from the layouts (the transformer's from {@code flux1-dev-layout.json}, the others' from their
 * hyper-parameters, {@link ComponentLayouts}) and, for the activations, from the CUDA backend itself run on a
 * {@link DryRunDevice} at full width.
 *
 * <p>Weights, counted per tensor as the CUDA backend allocates them (each allocation rounded up to the pool's
 * {@link DeviceMemoryPool#GRANULE}), against {@code 2 x parameters} in BF16: the transformer's block linear weights as
 * {@link GpuTernaryLayout} bit planes plus a float32 scale per row, its other tensors float32 (as the loader reads
 * them); T5-XXL's and CLIP-L's matrices bfloat16 (kept as their BF16 checkpoints store them), their norm scales and
 * biases float32, T5's relative position table on the host; the autoencoder (encoder and decoder: both are loaded)
 * float32.
 *
 * <p>Activations: each stage of a generation (the text encoders on 512 + 77 tokens, one denoising step of the
 * transformer, the autoencoder's decode) runs on the backend over a dry-run device as the pipeline runs it, inside a
 * scope; the pool's peak of bytes in live tensors above the loaded weights is the stage's activation peak (float32
 * activations, the attention and im2col workspaces, the ternary product's decoded scratch, the bfloat16 weights'
 * widened scratch). Blocks and layers each run in a scope of their own, so a stage's peak does not depend on the depth:
 * the transformer runs with one double and one single block at full width, T5 with one layer
 * ({@code InferenceMemoryTest} checks the independence at the miniature's width). What a stage keeps (T5's position
 * bias, cached per length) adds to the later stages. The BF16 column's activations are those of the same stages with
 * a dense transformer, at 2 bytes a value.
 */
public final class InferenceMemory {
    static final double GIB = 1024.0 * 1024 * 1024;

    /** One component's weights: its parameters, the bytes fluxbatch's CUDA backend holds, and 2 bytes a parameter. */
    public record Weights(String component, String held, long params, long bytes) {
        long bf16Bytes() {
            return 2 * params;
        }
    }

    /** A stage's activations: the peak in live tensors above its weights, and what stays allocated after it. */
    public record Stage(String name, long peakBytes, long retainedBytes) {}

    /** The figures of one configuration. */
    public record Estimate(String image, List<Weights> weights, List<Stage> stages, List<Stage> denseStages) {
        long weightBytes() {
            return weights.stream().mapToLong(Weights::bytes).sum();
        }

        long weightBf16Bytes() {
            return weights.stream().mapToLong(Weights::bf16Bytes).sum();
        }

        long params() {
            return weights.stream().mapToLong(Weights::params).sum();
        }

        /** The peak over the stages in order, each on top of what the stages before it kept. */
        static long peak(List<Stage> stages) {
            long kept = 0, peak = 0;
            for (Stage s : stages) {
                peak = Math.max(peak, kept + s.peakBytes());
                kept += s.retainedBytes();
            }
            return peak;
        }

        long activationBytes() {
            return peak(stages);
        }

        /** The dense pipeline's activation peak at 2 bytes a value. */
        long activationBf16Bytes() {
            return peak(denseStages) / 2;
        }

        long totalBytes() {
            return weightBytes() + activationBytes();
        }

        long totalBf16Bytes() {
            return weightBf16Bytes() + activationBf16Bytes();
        }

        /** The transformer's weights and one denoising step's activations: the paper's comparison. */
        long transformerBytes() {
            return weights.get(0).bytes()
                    + weights.get(1).bytes()
                    + stages.get(1).peakBytes();
        }

        long transformerBf16Bytes() {
            return weights.get(0).bf16Bytes()
                    + weights.get(1).bf16Bytes()
                    + denseStages.get(1).peakBytes() / 2;
        }
    }

    private InferenceMemory() {}

    // ---- weights
    // -----------------------------------------------------------------------------------------------------

    private static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /** A device allocation of {@code bytes} as the pool makes it. */
    private static long block(long bytes) {
        return DeviceMemoryPool.rounded(bytes);
    }

    /** A bfloat16 weight: two values to a 32-bit word. */
    private static long bf16Block(long numel) {
        return block(4 * Math.max(1, (numel + 1) / 2));
    }

    /** The transformer's block linear weights of a 1.58-bit snapshot: codes and scales. */
    static Weights transformerTernary(Map<String, long[]> layout) {
        long params = 0, bytes = 0;
        for (Map.Entry<String, long[]> e : layout.entrySet()) {
            if (TernaryFormat.isQuantized(e.getKey(), e.getValue())) {
                int out = Math.toIntExact(e.getValue()[0]), in = Math.toIntExact(e.getValue()[1]);
                params += (long) out * in;
                bytes += block(GpuTernaryLayout.bytes(out, in)) + block(4L * out);
            }
        }
        return new Weights(
                "transformer: block linear weights", "ternary codes (2 bits) + float32 scale per row", params, bytes);
    }

    /** Every other tensor of the transformer (embedders, modulation and block biases, norms, final layer). */
    static Weights transformerRest(Map<String, long[]> layout) {
        long params = 0, bytes = 0;
        for (Map.Entry<String, long[]> e : layout.entrySet()) {
            if (!TernaryFormat.isQuantized(e.getKey(), e.getValue())) {
                long n = numel(e.getValue());
                params += n;
                bytes += block(4 * n);
            }
        }
        return new Weights("transformer: other tensors", "float32", params, bytes);
    }

    /** A text encoder: matrices bfloat16, vectors float32; T5's relative position table on the host. */
    static Weights textEncoder(String component, Map<String, long[]> layout) {
        long params = 0, bytes = 0;
        for (Map.Entry<String, long[]> e : layout.entrySet()) {
            long n = numel(e.getValue());
            params += n;
            if (e.getKey().endsWith("relative_attention_bias.weight")) {
                continue;
            }
            bytes += e.getValue().length == 2 ? bf16Block(n) : block(4 * n);
        }
        return new Weights(component, "matrices bfloat16, norms and biases float32", params, bytes);
    }

    static Weights autoencoder(Map<String, long[]> layout) {
        long params = 0, bytes = 0;
        for (long[] s : layout.values()) {
            long n = numel(s);
            params += n;
            bytes += block(4 * n);
        }
        return new Weights("autoencoder (encoder + decoder)", "float32", params, bytes);
    }

    // ---- activations, on the dry-run device
    // --------------------------------------------------------------------------

    /** Loads with {@code load}, then runs {@code stage} inside a scope: the pool's peak and what stays, above the load. */
    static <T> Stage measure(String name, Supplier<Device> device, Function<CudaBackend, T> load, Consumer<T> stage) {
        try (CudaBackend backend = new CudaBackend(device.get())) {
            T model = load.apply(backend);
            long base = backend.memory().inUseBytes();
            try (TensorScope scope = backend.openScope()) {
                stage.accept(model);
            }
            DeviceMemoryPool.Stats s = backend.memory();
            return new Stage(name, s.peakInUseBytes() - base, s.inUseBytes() - base);
        }
    }

    static JsonNode t5Config(ComponentLayouts.T5 c) {
        ObjectNode j = new ObjectMapper().createObjectNode();
        j.put("vocab_size", c.vocab())
                .put("d_model", c.dModel())
                .put("num_heads", c.heads())
                .put("d_kv", c.dKv())
                .put("d_ff", c.dFf())
                .put("num_layers", c.layers())
                .put("relative_attention_num_buckets", c.buckets())
                .put("relative_attention_max_distance", 128)
                .put("dense_act_fn", "gelu_new")
                .put("layer_norm_epsilon", 1e-6);
        return j;
    }

    static JsonNode clipConfig(ComponentLayouts.Clip c) {
        ObjectNode j = new ObjectMapper().createObjectNode();
        j.put("vocab_size", c.vocab())
                .put("hidden_size", c.hidden())
                .put("intermediate_size", c.intermediate())
                .put("num_hidden_layers", c.layers())
                .put("num_attention_heads", c.heads())
                .put("max_position_embeddings", c.positions())
                .put("hidden_act", "quick_gelu")
                .put("layer_norm_eps", 1e-5);
        return j;
    }

    static JsonNode vaeConfig(ComponentLayouts.Vae c) {
        ObjectNode j = new ObjectMapper().createObjectNode();
        j.put("in_channels", c.inChannels())
                .put("out_channels", c.outChannels())
                .put("latent_channels", c.latent())
                .put("layers_per_block", c.layersPerBlock())
                .put("norm_num_groups", 32)
                .put("scaling_factor", 0.3611)
                .put("shift_factor", 0.1159);
        j.putArray("block_out_channels")
                .addAll(Arrays.stream(c.channels())
                        .mapToObj(v -> (JsonNode) j.numberNode(v))
                        .toList());
        return j;
    }

    private static final Path DRY_RUN = Path.of("(dry run)");

    private record TextModels(T5Encoder t5, ClipTextModel clip, CudaBackend backend) {}

    private record StepModel(FluxTransformer transformer, FluxInputs inputs, CudaBackend backend) {}

    private record DecodeModel(Autoencoder autoencoder, CudaBackend backend) {}

    /** T5 on {@code t5Tokens} ids and CLIP on its 77, batch 1, as {@code TextEncoders.embed} runs them (downloads). */
    static Stage textStage(
            Supplier<Device> device, ComponentLayouts.T5 t5, ComponentLayouts.Clip clip, int t5Tokens, long seed) {
        return measure(
                "text encoders: T5 on " + t5Tokens + " tokens, CLIP on " + clip.positions(),
                device,
                backend -> {
                    try (TensorSource a = SyntheticTensorSource.dense(ComponentLayouts.t5(t5), seed, "T5");
                            TensorSource b =
                                    SyntheticTensorSource.dense(ComponentLayouts.clip(clip), seed + 1, "CLIP")) {
                        return new TextModels(
                                T5Encoder.load(a, t5Config(t5), DRY_RUN, backend),
                                ClipTextModel.load(b, clipConfig(clip), DRY_RUN, backend),
                                backend);
                    }
                },
                m -> {
                    Tensor txt = m.t5().encode(ids(t5Tokens, t5.vocab()), 1);
                    ClipTextModel.Output c = m.clip().encode(ids(clip.positions(), clip.vocab()), 1);
                    m.backend().download(txt);
                    m.backend().download(c.pooled());
                });
    }

    private static int[] ids(int n, int vocab) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = (int) ((i * 7919L + 3) % vocab);
        }
        return ids;
    }

    /** One denoising step: the transformer's forward pass on {@code tokens} image + {@code txt} text tokens. */
    static Stage stepStage(
            Supplier<Device> device, Map<String, long[]> layout, boolean ternary, int tokens, int txt, long seed) {
        return measure(
                "one denoising step: " + tokens + " image + " + txt + " text tokens"
                        + (ternary ? ", 1.58-bit" : ", dense"),
                device,
                backend -> {
                    try (TensorSource w = ternary
                            ? SyntheticTensorSource.quantized(layout, seed, "transformer", true)
                            : SyntheticTensorSource.dense(layout, seed, "transformer")) {
                        ObjectNode json = new ObjectMapper().createObjectNode();
                        int headDim = Math.toIntExact(layout.get("single_blocks.0.norm.query_norm.scale")[0]);
                        json.putArray("axes_dims_rope")
                                .addAll(Arrays.stream(CudaBenchmark.ropeAxes(headDim))
                                        .mapToObj(a -> (JsonNode) json.numberNode(a))
                                        .toList());
                        FluxConfig config = FluxConfigReader.derive(w, json, DRY_RUN);
                        FluxTransformer t =
                                new FluxTransformer(backend, config, new FluxWeightLoader(w, backend, config).load());
                        return new StepModel(t, CudaBenchmark.inputs(config, tokens, txt, seed), backend);
                    }
                },
                m -> m.backend().download(m.transformer().forward(m.inputs(), TapSink.NONE)));
    }

    /** The autoencoder's decode of one {@code height x width} image. */
    static Stage decodeStage(Supplier<Device> device, ComponentLayouts.Vae vae, int height, int width, long seed) {
        int down = 1 << (vae.channels().length - 1);
        return measure(
                "autoencoder decode: " + height + " x " + width,
                device,
                backend -> {
                    try (TensorSource w = SyntheticTensorSource.dense(ComponentLayouts.autoencoder(vae), seed, "VAE")) {
                        return new DecodeModel(Autoencoder.load(w, vaeConfig(vae), DRY_RUN, backend), backend);
                    }
                },
                m -> {
                    int h = height / down, wd = width / down;
                    Tensor z = m.backend().upload(new float[vae.latent() * h * wd], 1, vae.latent(), h, wd);
                    m.backend().download(m.autoencoder().decode(z));
                });
    }

    // ---- the whole -------------------------------------------------------------------------------------------------

    /** Every layout tensor of FLUX.1 at this {@code width x height} with the given depths for the measured stages. */
    static Estimate estimate(
            Map<String, long[]> transformer,
            Map<String, long[]> stepLayout,
            ComponentLayouts.T5 t5,
            ComponentLayouts.T5 t5Measured,
            ComponentLayouts.Clip clip,
            ComponentLayouts.Vae vae,
            int height,
            int width,
            int t5Tokens) {
        List<Weights> weights = List.of(
                transformerTernary(transformer),
                transformerRest(transformer),
                textEncoder("T5 encoder", ComponentLayouts.t5(t5)),
                textEncoder("CLIP text model", ComponentLayouts.clip(clip)),
                autoencoder(ComponentLayouts.autoencoder(vae)));
        int tokens = (height / 16) * (width / 16);
        Supplier<Device> dryRun = DryRunDevice::new;
        Stage text = textStage(dryRun, t5Measured, clip, t5Tokens, 1);
        Stage decode = decodeStage(dryRun, vae, height, width, 3);
        List<Stage> stages = List.of(text, stepStage(dryRun, stepLayout, true, tokens, t5Tokens, 2), decode);
        List<Stage> dense = List.of(text, stepStage(dryRun, stepLayout, false, tokens, t5Tokens, 2), decode);
        return new Estimate(height + " x " + width + ", batch 1", weights, stages, dense);
    }

    public static void main(String[] args) {
        Path layoutFile = Path.of(args.length > 0 ? args[0] : "../shared/golden/flux1-dev-layout.json");
        int size = args.length > 1 ? Integer.parseInt(args[1]) : 1024;
        Map<String, long[]> layout = SyntheticTensorSource.readLayout(layoutFile);
        long t0 = System.nanoTime();
        Estimate e = estimate(
                layout,
                SyntheticTensorSource.fluxLayout(3072, 128, 12288, 1, 1, 64, 4096, 768, true),
                ComponentLayouts.T5.XXL,
                ComponentLayouts.T5.XXL.withLayers(1),
                ComponentLayouts.Clip.L,
                ComponentLayouts.Vae.FLUX,
                size,
                size,
                512);
        print(e, layoutFile, System.out);
        System.out.printf(Locale.ROOT, "(measured in %.1f s)%n", (System.nanoTime() - t0) / 1e9);
    }

    static void print(Estimate e, Path layoutFile, PrintStream out) {
        out.printf(
                Locale.ROOT,
                "FLUX.1-dev inference memory on the GPU, %s (transformer layout: %s)%n",
                e.image(),
                layoutFile);
        out.println();
        out.println("| component | parameters | fluxbatch 1.58-bit | GiB | all BF16, GiB |");
        out.println("| --- | ---: | --- | ---: | ---: |");
        for (Weights w : e.weights()) {
            out.printf(
                    Locale.ROOT,
                    "| %s | %,d | %s | %.2f | %.2f |%n",
                    w.component(),
                    w.params(),
                    w.held(),
                    w.bytes() / GIB,
                    w.bf16Bytes() / GIB);
        }
        out.printf(
                Locale.ROOT,
                "| weights | %,d | | %.2f | %.2f |%n",
                e.params(),
                e.weightBytes() / GIB,
                e.weightBf16Bytes() / GIB);
        out.printf(
                Locale.ROOT,
                "| activations, peak | | float32 (BF16: bfloat16) | %.2f | %.2f |%n",
                e.activationBytes() / GIB,
                e.activationBf16Bytes() / GIB);
        out.printf(
                Locale.ROOT,
                "| **total** | | | **%.2f** | **%.2f** (%.2fx) |%n",
                e.totalBytes() / GIB,
                e.totalBf16Bytes() / GIB,
                (double) e.totalBf16Bytes() / e.totalBytes());
        out.printf(
                Locale.ROOT,
                "| transformer alone (weights + one step) | | | %.2f | %.2f (%.2fx) |%n",
                e.transformerBytes() / GIB,
                e.transformerBf16Bytes() / GIB,
                (double) e.transformerBf16Bytes() / e.transformerBytes());
        out.println();
        out.println("activations by stage (peak in live tensors above the weights; kept after the stage), float32:");
        for (int i = 0; i < e.stages().size(); i++) {
            Stage s = e.stages().get(i);
            out.printf(
                    Locale.ROOT,
                    "  %-60s peak %,15d B (%.2f GiB), kept %,d B%n",
                    s.name(),
                    s.peakBytes(),
                    s.peakBytes() / GIB,
                    s.retainedBytes());
        }
        Stage d = e.denseStages().get(1);
        out.printf(
                Locale.ROOT,
                "  %-60s peak %,15d B (%.2f GiB), kept %,d B%n",
                d.name(),
                d.peakBytes(),
                d.peakBytes() / GIB,
                d.retainedBytes());
        out.printf(
                Locale.ROOT,
                "weights: %,d B 1.58-bit as held, %,d B in BF16: %.2fx%n",
                e.weightBytes(),
                e.weightBf16Bytes(),
                (double) e.weightBf16Bytes() / e.weightBytes());
        long step16 = e.weights().get(0).bytes()
                + e.weights().get(1).bytes()
                + e.stages().get(1).peakBytes() / 2;
        out.printf(
                Locale.ROOT,
                "transformer alone with bfloat16 activations on both sides: %.2f GiB against %.2f GiB:" + " %.2fx%n",
                step16 / GIB,
                e.transformerBf16Bytes() / GIB,
                (double) e.transformerBf16Bytes() / step16);
        long sum = e.stages().stream().mapToLong(Stage::peakBytes).sum();
        out.printf(
                Locale.ROOT,
                "the pool keeps freed blocks for reuse and frees them when the device is full, so a GPU"
                        + " with room to spare may show up to the weights plus every stage's peak allocated: %.2f GiB%n",
                (e.weightBytes() + sum) / GIB);
    }
}
