package ai.fluxbatch.model.distill;

import ai.fluxbatch.kernel.Backend;
import ai.fluxbatch.kernel.Tensor;
import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.flux.FluxInputs;
import ai.fluxbatch.model.flux.FluxTransformer;
import ai.fluxbatch.model.flux.FluxTransformers;
import ai.fluxbatch.model.flux.Linear;
import ai.fluxbatch.model.flux.TernaryLinear;
import ai.fluxbatch.model.pipeline.GenerationParams;
import ai.fluxbatch.model.pipeline.TextEmbedding;
import ai.fluxbatch.model.pipeline.TextEncoders;
import ai.fluxbatch.model.safetensors.TensorSource;
import ai.fluxbatch.model.sampling.LatentNoise;
import ai.fluxbatch.model.sampling.LatentPacking;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@link StudentGradients} of a full-precision teacher snapshot and a 1.58-bit student snapshot of it, both
 * resident on one backend with the teacher's text encoders. A share of a step's batch runs in micro-batches of up to
 * {@value #MICRO_BATCH} samples, fewer when they would hold more than {@value #MICRO_BATCH_TOKENS} tokens (one sample
 * at a time at 1024 x 1024, where a sample's activations take gigabytes): the teacher's velocity at the noise (t = 1), one Euler step of it to the sample's
 * t, the teacher's velocity there as the target, then the student's checkpointed forward and backward at the same
 * point. Text embeddings are computed once per prompt and kept in a bounded cache.
 */
public final class TeacherStudent implements StudentGradients {
    /** Samples per transformer call: larger products, while a call's activations stay small. */
    static final int MICRO_BATCH = 4;
    /** Text plus image tokens per transformer call above which a micro-batch shrinks. */
    static final int MICRO_BATCH_TOKENS = 4096;
    /** Bytes of text embeddings kept per executor (T5 at 512 tokens is 8 MB a prompt at FLUX.1 size). */
    private static final long EMBEDDING_CACHE_BYTES = 256L << 20;

    private final Backend backend;
    private final FluxTransformer teacher;
    private final FluxTransformer baseStudent;
    private final TextEncoders text;
    private final DistillSettings settings;
    private final GenerationParams size;
    private final TrainableParameters initial;
    private final Map<String, TextEmbedding> embeddings = new LinkedHashMap<>(16, 0.75f, true);
    private long embeddingBytes;
    private FluxTransformer student;
    private TrainableParameters applied;
    private final List<Tensor> appliedTensors = new ArrayList<>();

    private TeacherStudent(
            Backend backend,
            FluxTransformer teacher,
            FluxTransformer student,
            TextEncoders text,
            DistillSettings settings,
            TrainableParameters initial) {
        this.backend = backend;
        this.teacher = teacher;
        this.baseStudent = student;
        this.student = student;
        this.text = text;
        this.settings = settings;
        this.size = new GenerationParams(settings.height(), settings.width(), 1, settings.guidance());
        this.initial = initial;
        this.applied = initial;
    }

    /** Loads both transformers and the text encoders onto {@code backend} (which the caller keeps and closes). */
    public static StudentGradients load(
            Backend backend, FluxSnapshot teacher, FluxSnapshot student, DistillSettings settings) {
        FluxTransformer t = FluxTransformers.load(teacher, backend);
        FluxTransformer s = FluxTransformers.load(student, backend);
        if (!t.config().sameArchitecture(s.config())) {
            throw new ModelException("the student " + student.root() + " (" + s.config()
                    + ") is not a quantized copy of" + " the teacher " + teacher.root() + " (" + t.config() + ")");
        }
        TrainableParameters initial = initialParameters(student, s);
        return new TeacherStudent(
                backend, t, s, TextEncoders.load(teacher, backend, settings.maxSequenceLength()), settings, initial);
    }

    /** Every ternary block layer's scale and bias as the student's checkpoint holds them (a missing bias is zero). */
    static TrainableParameters initialParameters(FluxSnapshot snapshot, FluxTransformer student) {
        Map<String, LayerParameters> layers = new LinkedHashMap<>();
        try (TensorSource src = snapshot.openTransformer()) {
            for (Map.Entry<String, Linear> e : student.blockLinears().entrySet()) {
                if (!(e.getValue() instanceof TernaryLinear t)) {
                    continue;
                }
                String name = e.getKey();
                int out = t.outFeatures();
                float[] scale = src.floats(name + ".weight_scale");
                float[] bias = src.names().contains(name + ".bias") ? src.floats(name + ".bias") : new float[out];
                if (scale.length != out || bias.length != out) {
                    throw new ModelException(name + ": weight_scale has " + scale.length + " and bias " + bias.length
                            + " values, expected " + out + " (one per output channel)");
                }
                layers.put(name, new LayerParameters(scale, bias));
            }
        }
        if (layers.isEmpty()) {
            throw new ModelException(snapshot.root() + " has no ternary block layers: expected a 1.58-bit snapshot"
                    + " made by fluxbatch quantize");
        }
        return new TrainableParameters(layers);
    }

    @Override
    public TrainableParameters initial() {
        return initial.copy();
    }

    @Override
    public GradientSums gradients(TrainableParameters current, List<DistillSample> samples) {
        apply(current);
        Map<String, double[]> scale = new LinkedHashMap<>(), bias = new LinkedHashMap<>();
        for (Map.Entry<String, LayerParameters> e : current.layers().entrySet()) {
            scale.put(e.getKey(), new double[e.getValue().channels()]);
            bias.put(e.getKey(), new double[e.getValue().channels()]);
        }
        double loss = 0;
        int tokens = text.t5MaxLength() + size.imageTokens();
        int micro = Math.max(1, Math.min(MICRO_BATCH, MICRO_BATCH_TOKENS / tokens));
        for (int from = 0; from < samples.size(); from += micro) {
            List<DistillSample> part = samples.subList(from, Math.min(samples.size(), from + micro));
            int b = part.size();
            DistillationLoss.Result r = microBatch(part);
            // the call's loss is the mean over its b samples' values: times b, the sum of per-sample losses
            loss += r.loss() * b;
            accumulate(scale, r.scale(), b);
            accumulate(bias, r.bias(), b);
        }
        return new GradientSums(scale, bias, loss, samples.size());
    }

    private static void accumulate(Map<String, double[]> sums, Map<String, float[]> grads, int times) {
        for (Map.Entry<String, double[]> e : sums.entrySet()) {
            float[] g = grads.get(e.getKey());
            if (g == null) {
                throw new IllegalStateException("no gradient for " + e.getKey());
            }
            double[] s = e.getValue();
            for (int i = 0; i < s.length; i++) {
                s[i] += (double) g[i] * times;
            }
        }
    }

    private DistillationLoss.Result microBatch(List<DistillSample> part) {
        int b = part.size(), lh = size.latentHeight(), lw = size.latentWidth(), tokens = size.imageTokens();
        int features = LatentNoise.CHANNELS * 4, txtLength = text.t5MaxLength();
        List<TextEmbedding> emb = new ArrayList<>();
        for (DistillSample s : part) {
            emb.add(embedding(s.prompt()));
        }
        int ctx = emb.get(0).txt().length / txtLength, vec = emb.get(0).y().length;
        float[] img = new float[b * tokens * features];
        float[] ids = new float[b * tokens * 3];
        float[] txt = new float[b * txtLength * ctx];
        float[] y = new float[b * vec];
        float[] imageIds = LatentPacking.imageIds(lh, lw);
        float[] ones = new float[b], times = new float[b], guidance = new float[b];
        for (int i = 0; i < b; i++) {
            DistillSample s = part.get(i);
            float[] noise = LatentNoise.bf16(s.seed(), settings.height(), settings.width());
            System.arraycopy(
                    LatentPacking.pack(noise, LatentNoise.CHANNELS, lh, lw),
                    0,
                    img,
                    i * tokens * features,
                    tokens * features);
            System.arraycopy(imageIds, 0, ids, i * imageIds.length, imageIds.length);
            System.arraycopy(emb.get(i).txt(), 0, txt, i * txtLength * ctx, txtLength * ctx);
            System.arraycopy(emb.get(i).y(), 0, y, i * vec, vec);
            ones[i] = 1f;
            times[i] = s.time();
            guidance[i] = settings.guidance();
        }
        float[] txtIds = new float[b * txtLength * 3];
        FluxInputs atNoise = new FluxInputs(b, tokens, txtLength, img, ids, txt, txtIds, ones, y, guidance);
        float[] v1 = DistillationLoss.target(backend, teacher, atNoise);
        float[] xt = new float[img.length];
        int per = tokens * features;
        for (int i = 0; i < b; i++) {
            float dt = times[i] - 1f;
            for (int j = i * per; j < (i + 1) * per; j++) {
                xt[j] = img[j] + dt * v1[j];
            }
        }
        FluxInputs atTime = new FluxInputs(b, tokens, txtLength, xt, ids, txt, txtIds, times, y, guidance);
        float[] target = allOnes(times) ? v1 : DistillationLoss.target(backend, teacher, atTime);
        return DistillationLoss.compute(backend, student, atTime, target);
    }

    private static boolean allOnes(float[] t) {
        for (float v : t) {
            if (v != 1f) {
                return false;
            }
        }
        return true;
    }

    private TextEmbedding embedding(String prompt) {
        TextEmbedding e = embeddings.get(prompt);
        if (e == null) {
            e = text.embed(prompt);
            embeddings.put(prompt, e);
            embeddingBytes += bytes(e);
            var it = embeddings.entrySet().iterator();
            while (embeddingBytes > EMBEDDING_CACHE_BYTES && embeddings.size() > 1 && it.hasNext()) {
                embeddingBytes -= bytes(it.next().getValue());
                it.remove();
            }
        }
        return e;
    }

    private static long bytes(TextEmbedding e) {
        return 4L * (e.txt().length + e.y().length);
    }

    /** Puts {@code current} into the student's ternary layers, unless it is what they already hold. */
    private void apply(TrainableParameters current) {
        if (sameValues(current, applied)) {
            return;
        }
        for (String name : current.layers().keySet()) {
            if (!initial.layers().containsKey(name)) {
                throw new IllegalArgumentException("the student has no trainable layer " + name);
            }
        }
        List<Tensor> made = new ArrayList<>();
        FluxTransformer next = baseStudent.withBlockLinears((name, linear) -> {
            LayerParameters p = current.layers().get(name);
            if (p == null || !(linear instanceof TernaryLinear t)) {
                return linear;
            }
            Tensor w = backend.retain(backend.withTernaryScale(t.weight(), p.scale()));
            Tensor bias = backend.retain(backend.upload(p.bias(), p.channels()));
            made.add(w);
            made.add(bias);
            return new TernaryLinear(w, bias);
        });
        appliedTensors.forEach(Tensor::close);
        appliedTensors.clear();
        appliedTensors.addAll(made);
        student = next;
        applied = current.copy();
    }

    private static boolean sameValues(TrainableParameters a, TrainableParameters b) {
        if (!a.layers().keySet().equals(b.layers().keySet())) {
            return false;
        }
        for (Map.Entry<String, LayerParameters> e : a.layers().entrySet()) {
            LayerParameters o = b.layers().get(e.getKey());
            if (!Arrays.equals(e.getValue().scale(), o.scale())
                    || !Arrays.equals(e.getValue().bias(), o.bias())) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void close() {
        appliedTensors.forEach(Tensor::close);
        appliedTensors.clear();
    }
}
