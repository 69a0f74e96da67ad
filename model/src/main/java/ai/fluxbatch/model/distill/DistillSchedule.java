package ai.fluxbatch.model.distill;

import ai.fluxbatch.model.sampling.FlowSchedule;
import ai.fluxbatch.model.sampling.SchedulerConfig;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Which samples each training step uses, a pure function of (seed, step, index in the batch): the prompt is drawn
 * uniformly from the prompt list, the time uniformly from the generation schedule's times (without its final 0, so
 * the student is trained where sampling uses it), and the noise seed is {@code seed + step * batchSize + index} (as
 * {@code generate} numbers its images: distinct for every sample of a run). The same samples whatever the number of
 * executors, and whether a run was resumed.
 */
public final class DistillSchedule implements Serializable {
    /** Sampling steps of the schedule the times come from: 20 for guidance-distilled (dev) models. */
    public static final int DEV_SAMPLE_STEPS = 20;
    /** ... and 4 for timestep-distilled (schnell) ones. */
    public static final int SCHNELL_SAMPLE_STEPS = 4;

    private static final long PROMPT_STREAM = 0x70726f6d7074L; // "prompt"
    private static final long TIME_STREAM = 0x74696d65L; // "time"

    private final List<String> prompts;
    private final long seed;
    private final int batchSize;
    private final float[] times;

    /**
     * @param times the times a sample may get, each in (0, 1]: {@link #times}
     */
    public DistillSchedule(List<String> prompts, long seed, int batchSize, float[] times) {
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException("no prompts to distill with");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batch size is " + batchSize + ", expected >= 1");
        }
        if (seed < 0) {
            throw new IllegalArgumentException("seed is " + seed + ", expected >= 0");
        }
        if (times.length == 0) {
            throw new IllegalArgumentException("no times to sample");
        }
        for (float t : times) {
            if (!(t > 0f && t <= 1f)) {
                throw new IllegalArgumentException("time " + t + " is outside (0, 1]");
            }
        }
        this.prompts = List.copyOf(prompts);
        this.seed = seed;
        this.batchSize = batchSize;
        this.times = times.clone();
    }

    /**
     * The times of a {@code sampleSteps}-step generation of {@code imageTokens} latent tokens (shifted as for a dev
     * model when {@code shift}), from 1 down, without the final 0: the times at which the sampler asks the transformer
     * for a velocity.
     */
    public static float[] times(int sampleSteps, int imageTokens, boolean shift, SchedulerConfig config) {
        double[] all = FlowSchedule.timesteps(sampleSteps, imageTokens, shift, config);
        float[] t = new float[all.length - 1];
        for (int i = 0; i < t.length; i++) {
            t[i] = (float) all[i];
        }
        return t;
    }

    /** The sampling steps whose schedule a model's samples come from: {@value #DEV_SAMPLE_STEPS} or 4. */
    public static int sampleSteps(boolean guidanceDistilled) {
        return guidanceDistilled ? DEV_SAMPLE_STEPS : SCHNELL_SAMPLE_STEPS;
    }

    public int batchSize() {
        return batchSize;
    }

    public long seed() {
        return seed;
    }

    public List<String> prompts() {
        return prompts;
    }

    public float[] times() {
        return times.clone();
    }

    /** The largest noise seed a run of {@code steps} steps uses; refused when it would pass Long.MAX_VALUE. */
    public long lastNoiseSeed(int steps) {
        long samples = (long) steps * batchSize;
        if (seed > Long.MAX_VALUE - (samples - 1)) {
            throw new IllegalArgumentException("seed " + seed + " with " + samples + " samples needs noise seeds past "
                    + Long.MAX_VALUE + ": expected a seed <= " + (Long.MAX_VALUE - (samples - 1)));
        }
        return seed + samples - 1;
    }

    /** Sample {@code index} of step {@code step} (both from 0). */
    public DistillSample sample(int step, int index) {
        if (step < 0 || index < 0 || index >= batchSize) {
            throw new IllegalArgumentException(
                    "no sample " + index + " of step " + step + " (batch " + batchSize + ")");
        }
        int prompt = (int) Long.remainderUnsigned(mix(seed, step, index, PROMPT_STREAM), prompts.size());
        int time = (int) Long.remainderUnsigned(mix(seed, step, index, TIME_STREAM), times.length);
        return new DistillSample(prompts.get(prompt), seed + (long) step * batchSize + index, times[time]);
    }

    /** The {@link #batchSize} samples of step {@code step}, in index order. */
    public List<DistillSample> batch(int step) {
        List<DistillSample> out = new ArrayList<>(batchSize);
        for (int i = 0; i < batchSize; i++) {
            out.add(sample(step, i));
        }
        return out;
    }

    /** SplitMix64's finalizer over the parts in turn: 64 well-mixed bits of (seed, step, index, stream). */
    static long mix(long seed, long step, long index, long stream) {
        long h = stream;
        for (long part : new long[] {seed, step, index}) {
            h = splitMix(h ^ part);
        }
        return h;
    }

    private static long splitMix(long x) {
        long z = x + 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    @Override
    public String toString() {
        return "DistillSchedule[" + prompts.size() + " prompts, seed " + seed + ", batch " + batchSize + ", times "
                + Arrays.toString(times) + "]";
    }
}
