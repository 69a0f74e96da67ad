package ai.fluxbatch.model.distill;

import ai.fluxbatch.model.ModelException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * The training loop of a distillation, without Spark: for each step its samples ({@link DistillSchedule}), their
 * gradient sums (from {@link Gradients}: on a cluster, every executor's share summed), Adam on the mean gradient, and
 * every {@code checkpointEvery} steps (and after the last) a {@link DistillCheckpoint}, keeping the latest {@value
 * #KEPT_CHECKPOINTS}. A run resumed from a checkpoint continues exactly where it stopped. A NaN or infinite loss or
 * gradient stops the run naming the step; the checkpoints written so far stay.
 */
public final class DistillTraining {
    public static final int KEPT_CHECKPOINTS = 2;

    /** The gradient sums of one step's batch with the student at {@code current}. */
    @FunctionalInterface
    public interface Gradients {
        GradientSums of(int step, TrainableParameters current, List<DistillSample> batch);
    }

    /** What the loop reports as it goes. */
    public interface Progress {
        /** Step {@code done} of {@code steps} (1-based) finished with mean loss {@code loss}. */
        void stepDone(int done, int steps, double loss, long samples);

        void checkpointWritten(int done, Path file);
    }

    /**
     * @param run what identifies the run in its checkpoints (model, prompts and settings as text); a resumed run must
     *            have the same
     */
    public record Settings(
            DistillSchedule schedule,
            Trainable trainable,
            double learningRate,
            int steps,
            int checkpointEvery,
            Path checkpoints,
            Map<String, String> run) {
        public Settings {
            Objects.requireNonNull(schedule, "schedule");
            Objects.requireNonNull(trainable, "trainable");
            Objects.requireNonNull(checkpoints, "checkpoints");
            run = Map.copyOf(run);
            if (steps < 1) {
                throw new IllegalArgumentException("steps is " + steps + ", expected >= 1");
            }
            if (checkpointEvery < 1) {
                throw new IllegalArgumentException("checkpoint interval is " + checkpointEvery + ", expected >= 1");
            }
            if (!(learningRate > 0) || !Double.isFinite(learningRate)) {
                throw new IllegalArgumentException(
                        "learning rate is " + learningRate + ", expected a finite number > 0");
            }
        }
    }

    /** The trained parameters and the mean loss of every step, the resumed ones included. */
    public record Result(TrainableParameters parameters, double[] losses, int resumedAt) {
        public int steps() {
            return losses.length;
        }
    }

    private DistillTraining() {}

    /**
     * Trains from {@code initial} (the student's parameters as its snapshot holds them), or from {@code resume} when
     * present.
     *
     * @throws ModelException when {@code resume} belongs to another run, or is past {@code settings.steps()}
     */
    public static Result train(
            Settings settings,
            TrainableParameters initial,
            Optional<DistillCheckpoint> resume,
            Gradients gradients,
            Progress progress) {
        int start = 0;
        TrainableParameters params = initial;
        Adam adam = new Adam(settings.learningRate(), settings.trainable());
        double[] losses = new double[settings.steps()];
        if (resume.isPresent()) {
            DistillCheckpoint c = resume.get();
            checkSameRun(settings, initial, c);
            start = c.step();
            params = c.parameters();
            adam = new Adam(settings.learningRate(), settings.trainable(), c.adam());
            System.arraycopy(c.losses(), 0, losses, 0, start);
        }
        int lastCheckpoint = start;
        for (int step = start; step < settings.steps(); step++) {
            List<DistillSample> batch = settings.schedule().batch(step);
            GradientSums sums;
            try {
                sums = gradients.of(step, params, batch);
            } catch (Exception e) { // Spark's failures are checked exceptions thrown from Scala
                throw new ModelException(
                        "step " + (step + 1) + " of " + settings.steps() + " failed" + kept(settings, lastCheckpoint)
                                + ": " + e.getMessage(),
                        e);
            }
            if (sums.samples() != batch.size()) {
                throw new ModelException("step " + (step + 1) + ": the gradients cover " + sums.samples()
                        + " samples, the batch has " + batch.size() + kept(settings, lastCheckpoint));
            }
            double loss = sums.loss() / sums.samples();
            if (!Double.isFinite(loss)) {
                throw new ModelException("step " + (step + 1) + " of " + settings.steps() + ": the loss is " + loss
                        + "; stopped" + kept(settings, lastCheckpoint) + " (a lower --learning-rate may help)");
            }
            requireFiniteGradients(settings, sums, step, lastCheckpoint);
            params = adam.step(params, sums);
            losses[step] = loss;
            progress.stepDone(step + 1, settings.steps(), loss, sums.samples());
            if ((step + 1) % settings.checkpointEvery() == 0 || step + 1 == settings.steps()) {
                Path file = new DistillCheckpoint(
                                step + 1, params, adam.state(), Arrays.copyOf(losses, step + 1), settings.run())
                        .write(settings.checkpoints());
                DistillCheckpoint.prune(settings.checkpoints(), KEPT_CHECKPOINTS);
                lastCheckpoint = step + 1;
                progress.checkpointWritten(step + 1, file);
            }
        }
        return new Result(params, losses, start);
    }

    private static void requireFiniteGradients(Settings settings, GradientSums sums, int step, int lastCheckpoint) {
        for (Map<String, double[]> m :
                settings.trainable().scales() && settings.trainable().biases()
                        ? List.of(sums.scale(), sums.bias())
                        : settings.trainable().scales() ? List.of(sums.scale()) : List.of(sums.bias())) {
            for (Map.Entry<String, double[]> e : m.entrySet()) {
                for (double g : e.getValue()) {
                    if (!Double.isFinite(g)) {
                        throw new ModelException("step " + (step + 1) + " of " + settings.steps() + ": a gradient of "
                                + e.getKey() + (m == sums.scale() ? " (scale)" : " (bias)") + " is " + g + "; stopped"
                                + kept(settings, lastCheckpoint));
                    }
                }
            }
        }
    }

    private static String kept(Settings settings, int lastCheckpoint) {
        return lastCheckpoint == 0
                ? " (no checkpoint yet)"
                : " (the last checkpoint, after step " + lastCheckpoint + ", is "
                        + settings.checkpoints().resolve(DistillCheckpoint.fileName(lastCheckpoint)) + ")";
    }

    /** A checkpoint of this run: the same run identity, at most the steps asked for, and the student's layers. */
    private static void checkSameRun(Settings settings, TrainableParameters initial, DistillCheckpoint c) {
        Path file = settings.checkpoints().resolve(DistillCheckpoint.fileName(c.step()));
        for (Map.Entry<String, String> e : settings.run().entrySet()) {
            String was = c.run().get(e.getKey());
            if (!e.getValue().equals(was)) {
                throw new ModelException("cannot resume from " + file + ": it was made with " + e.getKey() + " = " + was
                        + ", this run has " + e.getValue() + " (resume with the interrupted run's options)");
            }
        }
        if (c.step() > settings.steps()) {
            throw new ModelException("cannot resume from " + file + ": it is after step " + c.step() + ", past the "
                    + settings.steps() + " steps asked for");
        }
        for (Map.Entry<String, LayerParameters> e : initial.layers().entrySet()) {
            LayerParameters p = c.parameters().layers().get(e.getKey());
            if (p == null || p.channels() != e.getValue().channels()) {
                throw new ModelException("cannot resume from " + file + ": its parameters do not fit layer "
                        + e.getKey() + " of the student (" + e.getValue().channels() + " channels)");
            }
        }
        if (c.parameters().layers().size() != initial.layers().size()) {
            throw new ModelException("cannot resume from " + file + ": it has "
                    + c.parameters().layers().size() + " layers, the student "
                    + initial.layers().size());
        }
    }
}
