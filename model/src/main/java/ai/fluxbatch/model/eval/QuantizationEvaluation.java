package ai.fluxbatch.model.eval;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.TensorScope;
import ai.fluxbatch.model.flux.FluxInputs;
import ai.fluxbatch.model.flux.TapSink;
import ai.fluxbatch.model.pipeline.FluxPipeline;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import ai.fluxbatch.model.vae.ImageQuantizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Measures quantized copies of a model against the model itself on the same prompts and seeds, batch by batch: each
 * candidate's transformer on the reference's inputs at every step of the reference's trajectory, then each candidate's
 * own trajectory, its final latents and its decoded 8-bit images. Text embeddings come from the reference (the text
 * encoders are not quantized).
 */
public final class QuantizationEvaluation {
    /** Hears each finished batch. */
    @FunctionalInterface
    public interface Progress {
        Progress NONE = (done, total) -> {};

        void batchDone(int promptsDone, int promptsTotal);
    }

    private final FluxPipeline reference;
    private final List<FluxPipeline> candidates;
    private final Backend backend;

    public QuantizationEvaluation(FluxPipeline reference, List<FluxPipeline> candidates, Backend backend) {
        if (candidates.isEmpty()) {
            throw new IllegalArgumentException("no candidates to evaluate: expected at least one quantized model");
        }
        for (FluxPipeline c : candidates) {
            Architectures.requireSame(
                    reference.model(),
                    reference.transformer().config(),
                    c.model(),
                    c.transformer().config());
        }
        this.reference = reference;
        this.candidates = List.copyOf(candidates);
        this.backend = backend;
    }

    /** Prompt {@code i} is denoised from {@code seeds[i]}; at most {@code batchSize} images are in flight at once. */
    public List<CandidateResult> run(
            List<TextEmbedding> prompts, long[] seeds, GenerationParams p, int batchSize, Progress progress) {
        if (prompts.size() != seeds.length || prompts.isEmpty()) {
            throw new IllegalArgumentException(prompts.size() + " prompts for " + seeds.length
                    + " seeds: expected one seed per prompt, and at least one prompt");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size is " + batchSize + ", expected at least 1");
        }
        int steps = reference.timesteps(p).length - 1;
        List<Tally> tallies = new ArrayList<>();
        for (int c = 0; c < candidates.size(); c++) {
            tallies.add(new Tally(steps));
        }
        for (int from = 0; from < prompts.size(); from += batchSize) {
            int to = Math.min(prompts.size(), from + batchSize);
            batch(prompts.subList(from, to), Arrays.copyOfRange(seeds, from, to), p, tallies);
            progress.batchDone(to, prompts.size());
        }
        List<CandidateResult> results = new ArrayList<>();
        for (int c = 0; c < candidates.size(); c++) {
            results.add(tallies.get(c).result(candidates.get(c)));
        }
        return results;
    }

    private void batch(List<TextEmbedding> prompts, long[] seeds, GenerationParams p, List<Tally> tallies) {
        int b = seeds.length;
        float[] refLatents = reference.denoise(prompts, seeds, p, (index, inputs, velocity) -> {
            for (int c = 0; c < candidates.size(); c++) {
                tallies.get(c).steps[index].add(velocity(candidates.get(c), inputs), velocity);
            }
        });
        byte[] refPixels = rgb(reference, refLatents, b, p);
        for (int c = 0; c < candidates.size(); c++) {
            FluxPipeline candidate = candidates.get(c);
            float[] latents = candidate.denoise(prompts, seeds, p, (index, inputs, velocity) -> {});
            tallies.get(c).latents.add(latents, refLatents);
            tallies.get(c).pixels.add(rgb(candidate, latents, b, p), refPixels, b);
        }
    }

    private float[] velocity(FluxPipeline candidate, FluxInputs inputs) {
        try (TensorScope scope = backend.openScope()) {
            return backend.download(candidate.transformer().forward(inputs, TapSink.NONE));
        }
    }

    private static byte[] rgb(FluxPipeline pipeline, float[] latents, int b, GenerationParams p) {
        return ImageQuantizer.toRgbU8(pipeline.decode(latents, b, p), b, p.height(), p.width());
    }

    /** One candidate's running sums. */
    private static final class Tally {
        final RelativeError[] steps;
        final RelativeError latents = new RelativeError();
        final PixelError pixels = new PixelError();

        Tally(int steps) {
            this.steps = new RelativeError[steps];
            for (int i = 0; i < steps; i++) {
                this.steps[i] = new RelativeError();
            }
        }

        CandidateResult result(FluxPipeline candidate) {
            double[] stepErrors =
                    Arrays.stream(steps).mapToDouble(RelativeError::value).toArray();
            return new CandidateResult(
                    candidate.model(),
                    QuantizationInfo.of(candidate.model()),
                    stepErrors,
                    latents.value(),
                    pixels.psnr(),
                    pixels.meanImagePsnr(),
                    pixels.imagePsnrs());
        }
    }
}
