package ai.fluxbatch.model.pipeline;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.model.FiniteValues;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.flux.FluxConfigReader;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.FluxTransformers;
import ai.fluxbatch.model.flux.LinearWrapper;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.sampling.EulerSampler;
import ai.fluxbatch.model.sampling.FlowSchedule;
import ai.fluxbatch.model.sampling.LatentNoise;
import ai.fluxbatch.model.sampling.LatentPacking;
import ai.fluxbatch.model.sampling.SchedulerConfig;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import ai.fluxbatch.model.text.TextEncoderFiles;
import ai.fluxbatch.model.vae.Autoencoder;
import ai.fluxbatch.model.vae.ImageQuantizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Text to image as the reference command line does it: T5 (512 tokens for dev, 256 for schnell) and CLIP pooled
 * conditioning rounded to bfloat16, bfloat16 noise from the seed, Euler flow matching over the (shifted) schedule,
 * unpack, autoencoder decode, clamp and quantize to 8 bits. Every component is loaded once, here.
 *
 * <p>The pipeline owns the tensors it loads (its weights, in device memory on a GPU backend) and frees them when
 * closed; it never closes its backend, which its creator owns and may share with other pipelines.
 */
public final class FluxPipeline implements AutoCloseable {
    private static final int LATENT_CHANNELS = 16;

    private final Path model;
    private final FluxTransformer transformer;
    private final TextEncoders text;
    private final Autoencoder autoencoder;
    private final SchedulerConfig scheduler;
    private final EulerSampler sampler;
    private final Backend backend;
    /** Frees the tensors made while loading; runs once. */
    private final Runnable weights;

    private FluxPipeline(
            Path model,
            Backend backend,
            FluxTransformer transformer,
            TextEncoders text,
            Autoencoder autoencoder,
            SchedulerConfig scheduler,
            Runnable weights) {
        this.model = model;
        this.weights = weights;
        this.backend = backend;
        this.transformer = transformer;
        this.text = text;
        this.autoencoder = autoencoder;
        this.scheduler = scheduler;
        this.sampler = new EulerSampler(backend, transformer);
    }

    public static FluxPipeline load(Path model, Backend backend) {
        return load(model, backend, LinearWrapper.NONE);
    }

    /** Loads with the transformer's linear layers passed through {@code wrapper} (calibration records through it). */
    public static FluxPipeline load(Path model, Backend backend, LinearWrapper wrapper) {
        FluxSnapshot snapshot = FluxSnapshot.open(model);
        TensorScope loading = backend.openScope(); // owns every tensor the components make: freed on close()
        FluxTransformer transformer;
        TextEncoders text;
        Autoencoder autoencoder;
        SchedulerConfig scheduler;
        try {
            transformer = FluxTransformers.load(snapshot, backend, wrapper);
            int t5Length = transformer.config().guidanceEmbed() ? 512 : 256;
            text = TextEncoders.load(snapshot, backend, t5Length);
            autoencoder = Autoencoder.load(model, backend);
            scheduler = SchedulerConfig.of(model);
        } catch (RuntimeException | Error e) {
            loading.close(); // what loaded before the failure
            throw e;
        }
        return new FluxPipeline(model, backend, transformer, text, autoencoder, scheduler, loading.detach());
    }

    /**
     * Frees the tensors this pipeline loaded (device memory on a GPU backend; the CPU's are left to the garbage
     * collector); the backend stays open. Using the pipeline afterwards fails; closing again does nothing.
     */
    @Override
    public void close() {
        weights.run();
    }

    /**
     * Checks a snapshot without loading any weights: the transformer's header against its config, and that every
     * other component the pipeline loads is there. Cheap enough for a driver to run before it starts any work.
     */
    public static void checkComponents(Path model) {
        FluxSnapshot snapshot = FluxSnapshot.open(model);
        try (TensorSource weights = snapshot.openTransformer()) {
            FluxConfigReader.derive(weights, snapshot.transformerConfig(), snapshot.transformerConfigFile());
        }
        TextEncoderFiles.in(snapshot.clipTextEncoder());
        TextEncoderFiles.in(snapshot.t5TextEncoder());
        for (Path p : new Path[] {
            snapshot.clipTokenizer().resolve("vocab.json"),
            snapshot.clipTokenizer().resolve("merges.txt"),
            snapshot.t5Tokenizer(),
            model.resolve("vae").resolve("config.json")
        }) {
            if (!Files.isRegularFile(p)) {
                throw new ModelException(
                        p + " is missing: the text-to-image pipeline needs it (Hugging Face snapshot" + " layout)");
            }
        }
        Autoencoder.openWeights(model).close(); // ae.safetensors or the diffusers vae/, its names checked
    }

    public Path model() {
        return model;
    }

    public String variant() {
        return transformer.config().variant();
    }

    /** The prompt's embedding with the model's own T5 length ({@link #maxSequenceLength()}). */
    public TextEmbedding embed(String prompt) {
        return text.embed(prompt);
    }

    /** The prompt's embedding with {@code maxSequenceLength} T5 tokens, 1 to 512 (diffusers' max_sequence_length). */
    public TextEmbedding embed(String prompt, int maxSequenceLength) {
        return text.embed(prompt, maxSequenceLength);
    }

    /** The model's own T5 length: 512 for dev, 256 for schnell, as the reference. */
    public int maxSequenceLength() {
        return text.t5MaxLength();
    }

    /** The timesteps a generation of this size and step count runs through (schnell is not shifted). */
    public double[] timesteps(GenerationParams p) {
        return FlowSchedule.timesteps(
                p.steps(), p.imageTokens(), transformer.config().guidanceEmbed(), scheduler);
    }

    /** One image per (embedding, seed) pair, all of one size, denoised together as a batch. */
    public Batch generate(List<TextEmbedding> prompts, long[] seeds, GenerationParams p, IntConsumer afterStep) {
        long t0 = System.nanoTime();
        float[] latents = denoise(prompts, seeds, p, (index, inputs, velocity) -> afterStep.accept(index));
        long t1 = System.nanoTime();
        int b = seeds.length;
        requireFinite("latent after denoising", latents, prompts, seeds);
        float[] pixels = decode(latents, b, p);
        requireFinite("decoded image", pixels, prompts, seeds);
        List<RgbImage> images = new ArrayList<>();
        byte[] rgb = ImageQuantizer.toRgbU8(pixels, b, p.height(), p.width());
        int size = p.height() * p.width() * 3;
        for (int i = 0; i < b; i++) {
            byte[] one = new byte[size];
            System.arraycopy(rgb, i * size, one, 0, size);
            images.add(new RgbImage(p.width(), p.height(), one));
        }
        long t2 = System.nanoTime();
        return new Batch(images, latents, pixels, new StageTimes(0, (t1 - t0) / 1e9, (t2 - t1) / 1e9));
    }

    /**
     * Fails, naming each image's prompt and seed, when the per-image slices of {@code values} hold a NaN or an infinity
     * (an overflow in the transformer or the autoencoder): such an image would be written flat and reported as made.
     * Images of a batch are computed independently, so a caller that retries a failed batch one image at a time
     * loses only the bad ones.
     */
    private static void requireFinite(String what, float[] values, List<TextEmbedding> prompts, long[] seeds) {
        int per = values.length / seeds.length;
        List<String> bad = new ArrayList<>();
        for (int i = 0; i < seeds.length; i++) {
            int at = FiniteValues.firstNonFinite(values, i * per, (i + 1) * per);
            if (at >= 0) {
                bad.add("prompt \"" + prompts.get(i).prompt() + "\" (seed " + seeds[i] + ") has " + values[at]
                        + " at index " + (at - i * per));
            }
        }
        if (!bad.isEmpty()) {
            throw new ModelException("the " + what + " is not finite: " + String.join("; ", bad)
                    + "; no image is written for " + (bad.size() == 1 ? "it" : "them") + " (expected finite values:"
                    + " the weights, the prompt's embedding or the guidance make the model overflow)");
        }
    }

    /**
     * The sampling loop alone: seeded noise denoised under the prompts, returned as unpacked latents
     * {@code [B, 16, H/8, W/8]}; {@code observer} sees every step's transformer inputs and output.
     */
    public float[] denoise(
            List<TextEmbedding> prompts, long[] seeds, GenerationParams p, EulerSampler.StepObserver observer) {
        if (prompts.size() != seeds.length || seeds.length == 0) {
            throw new IllegalArgumentException(prompts.size() + " prompts for " + seeds.length + " seeds");
        }
        int b = seeds.length, lh = p.latentHeight(), lw = p.latentWidth(), tokens = p.imageTokens();
        int txtLength = prompts.get(0).t5Ids().length, ctx = prompts.get(0).txt().length / txtLength;
        for (TextEmbedding e : prompts) {
            if (e.t5Ids().length != txtLength) {
                throw new IllegalArgumentException("the prompts of a batch must have one T5 length: \""
                        + prompts.get(0).prompt() + "\" has " + txtLength + " tokens, \"" + e.prompt() + "\" "
                        + e.t5Ids().length);
            }
        }
        int tokenFeatures = LATENT_CHANNELS * 4;
        float[] img = new float[b * tokens * tokenFeatures];
        float[] ids = new float[b * tokens * 3];
        float[] txt = new float[b * txtLength * ctx];
        float[] y = new float[b * prompts.get(0).y().length];
        float[] imageIds = LatentPacking.imageIds(lh, lw);
        for (int i = 0; i < b; i++) {
            float[] noise = LatentNoise.bf16(seeds[i], p.height(), p.width());
            System.arraycopy(
                    LatentPacking.pack(noise, LATENT_CHANNELS, lh, lw),
                    0,
                    img,
                    i * tokens * tokenFeatures,
                    tokens * tokenFeatures);
            System.arraycopy(imageIds, 0, ids, i * imageIds.length, imageIds.length);
            System.arraycopy(prompts.get(i).txt(), 0, txt, i * txtLength * ctx, txtLength * ctx);
            System.arraycopy(
                    prompts.get(i).y(),
                    0,
                    y,
                    i * prompts.get(i).y().length,
                    prompts.get(i).y().length);
        }
        sampler.denoise(img, ids, txt, y, b, tokens, txtLength, timesteps(p), p.guidance(), observer);
        float[] latents = new float[b * LATENT_CHANNELS * lh * lw];
        for (int i = 0; i < b; i++) {
            float[] one = new float[tokens * tokenFeatures];
            System.arraycopy(img, i * one.length, one, 0, one.length);
            System.arraycopy(
                    LatentPacking.unpack(one, LATENT_CHANNELS, lh, lw),
                    0,
                    latents,
                    i * LATENT_CHANNELS * lh * lw,
                    LATENT_CHANNELS * lh * lw);
        }
        return latents;
    }

    /** Decodes unpacked latents {@code [B, 16, H/8, W/8]} to float pixels {@code [B, 3, H, W]} in [-1, 1]-ish range. */
    public float[] decode(float[] latents, int batch, GenerationParams p) {
        try (TensorScope scope = backend.openScope()) {
            return backend.download(autoencoder.decode(
                    backend.upload(latents, batch, LATENT_CHANNELS, p.latentHeight(), p.latentWidth())));
        }
    }

    /** The transformer, for evaluations that run it on another model's inputs. */
    public FluxTransformer transformer() {
        return transformer;
    }

    /** What a batch produced: the pictures, and the final latents and decoded pixels for parity checks. */
    public record Batch(List<RgbImage> images, float[] latents, float[] decoded, StageTimes times) {}
}
