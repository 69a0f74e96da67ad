package ai.fluxbatch.model.distill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.fluxbatch.model.ModelException;
import ai.fluxbatch.model.sampling.SchedulerConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The training loop with a quadratic stand-in student: learning, checkpoints, resuming, and stopping on NaN. */
class DistillTrainingTest {
    @TempDir
    Path tmp;

    private static TrainableParameters initial() {
        Map<String, LayerParameters> m = new LinkedHashMap<>();
        m.put("double_blocks.0.img_mlp.0", new LayerParameters(new float[] {0.5f, 1f, 2f, 0.1f}, new float[4]));
        m.put("single_blocks.0.linear1", new LayerParameters(new float[] {0.03f, 0.7f}, new float[] {0.2f, -0.1f}));
        return new TrainableParameters(m);
    }

    private DistillTraining.Settings settings(int steps, int every, Path checkpoints) {
        DistillSchedule schedule = new DistillSchedule(
                List.of("one", "two", "three"), 3, 4, DistillSchedule.times(4, 16, false, SchedulerConfig.REFERENCE));
        return new DistillTraining.Settings(
                schedule, Trainable.ALL, 2e-2, steps, every, checkpoints, Map.of("seed", "3", "batch_size", "4"));
    }

    /** Records what the loop reports. */
    private static final class Recorder implements DistillTraining.Progress {
        final List<Integer> steps = new ArrayList<>();
        final List<Integer> checkpoints = new ArrayList<>();

        @Override
        public void stepDone(int done, int steps, double loss, long samples) {
            this.steps.add(done);
        }

        @Override
        public void checkpointWritten(int done, Path file) {
            checkpoints.add(done);
            assertTrue(file.getFileName().toString().equals(DistillCheckpoint.fileName(done)), file.toString());
        }
    }

    private static DistillTraining.Gradients student() {
        QuadraticStudent s = new QuadraticStudent(initial());
        return (step, current, batch) -> s.gradients(current, batch);
    }

    @Test
    void lossFallsAndCheckpointsComeEveryNStepsAndAtTheEnd() {
        Recorder r = new Recorder();
        Path ck = tmp.resolve("ck");
        DistillTraining.Result result =
                DistillTraining.train(settings(10, 4, ck), initial(), Optional.empty(), student(), r);
        assertEquals(List.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), r.steps);
        assertEquals(List.of(4, 8, 10), r.checkpoints);
        double[] l = result.losses();
        assertEquals(10, l.length);
        assertTrue(l[9] < 0.5 * l[0], "loss " + l[0] + " -> " + l[9]);
        List<Path> kept = DistillCheckpoint.list(ck);
        assertEquals(List.of(ck.resolve("step-000008.safetensors"), ck.resolve("step-000010.safetensors")), kept);
        DistillCheckpoint last = DistillCheckpoint.read(kept.get(1));
        assertEquals(10, last.step());
        assertArrayEquals(l, last.losses());
        assertEquals(10, last.adam().steps());
        assertEquals(Map.of("seed", "3", "batch_size", "4"), last.run());
        for (String layer : initial().layers().keySet()) {
            assertArrayEquals(
                    result.parameters().layer(layer).scale(),
                    last.parameters().layer(layer).scale());
            assertArrayEquals(
                    result.parameters().layer(layer).bias(),
                    last.parameters().layer(layer).bias());
        }
    }

    @Test
    void aRunKilledMidwayAndResumedEndsWithTheSameParameters() {
        DistillTraining.Result straight = DistillTraining.train(
                settings(11, 3, tmp.resolve("a")), initial(), Optional.empty(), student(), new Recorder());

        Path ck = tmp.resolve("b");
        DistillTraining.Gradients real = student();
        DistillTraining.Gradients dying = (step, current, batch) -> {
            if (step == 7) {
                throw new IllegalStateException("executor lost");
            }
            return real.of(step, current, batch);
        };
        ModelException e = assertThrows(
                ModelException.class,
                () -> DistillTraining.train(settings(11, 3, ck), initial(), Optional.empty(), dying, new Recorder()));
        assertTrue(e.getMessage().startsWith("step 8 of 11 failed"), e.getMessage());
        assertTrue(e.getMessage().contains("after step 6"), e.getMessage());
        assertTrue(e.getMessage().endsWith("executor lost"), e.getMessage());

        Optional<DistillCheckpoint> last = DistillCheckpoint.latest(ck);
        assertEquals(6, last.orElseThrow().step());
        Recorder r = new Recorder();
        DistillTraining.Result resumed = DistillTraining.train(settings(11, 3, ck), initial(), last, student(), r);
        assertEquals(List.of(7, 8, 9, 10, 11), r.steps);
        assertEquals(6, resumed.resumedAt());
        assertArrayEquals(straight.losses(), resumed.losses());
        for (String layer : initial().layers().keySet()) {
            assertArrayEquals(
                    straight.parameters().layer(layer).scale(),
                    resumed.parameters().layer(layer).scale());
            assertArrayEquals(
                    straight.parameters().layer(layer).bias(),
                    resumed.parameters().layer(layer).bias());
        }
    }

    @Test
    void aNonFiniteLossStopsTheRunNamingTheStepAndKeepsTheLastCheckpoint() {
        Path ck = tmp.resolve("ck");
        DistillTraining.Gradients real = student();
        DistillTraining.Gradients exploding = (step, current, batch) -> {
            GradientSums g = real.of(step, current, batch);
            return step == 4 ? new GradientSums(g.scale(), g.bias(), Double.NaN, g.samples()) : g;
        };
        ModelException e = assertThrows(
                ModelException.class,
                () -> DistillTraining.train(
                        settings(9, 2, ck), initial(), Optional.empty(), exploding, new Recorder()));
        assertTrue(e.getMessage().startsWith("step 5 of 9: the loss is NaN"), e.getMessage());
        assertTrue(e.getMessage().contains("step-000004.safetensors"), e.getMessage());
        assertEquals(4, DistillCheckpoint.latest(ck).orElseThrow().step());

        DistillTraining.Gradients infiniteGradient = (step, current, batch) -> {
            GradientSums g = real.of(step, current, batch);
            Map<String, double[]> bias = new LinkedHashMap<>(g.bias());
            bias.get("single_blocks.0.linear1")[1] = Double.POSITIVE_INFINITY;
            return new GradientSums(g.scale(), bias, g.loss(), g.samples());
        };
        e = assertThrows(
                ModelException.class,
                () -> DistillTraining.train(
                        settings(9, 2, tmp.resolve("x")),
                        initial(),
                        Optional.empty(),
                        infiniteGradient,
                        new Recorder()));
        assertTrue(
                e.getMessage().startsWith("step 1 of 9: a gradient of single_blocks.0.linear1 (bias) is Infinity"),
                e.getMessage());
        assertTrue(e.getMessage().contains("no checkpoint yet"), e.getMessage());
    }

    @Test
    void refusesToResumeAnotherRunOrPastTheEnd() {
        Path ck = tmp.resolve("ck");
        DistillTraining.train(settings(4, 2, ck), initial(), Optional.empty(), student(), new Recorder());
        DistillCheckpoint c = DistillCheckpoint.latest(ck).orElseThrow();
        DistillTraining.Settings s = settings(6, 2, ck);
        DistillTraining.Settings other = new DistillTraining.Settings(
                s.schedule(), s.trainable(), s.learningRate(), 6, 2, ck, Map.of("seed", "4", "batch_size", "4"));
        ModelException e = assertThrows(
                ModelException.class,
                () -> DistillTraining.train(other, initial(), Optional.of(c), student(), new Recorder()));
        assertTrue(e.getMessage().contains("seed = 3, this run has 4"), e.getMessage());
        e = assertThrows(
                ModelException.class,
                () -> DistillTraining.train(settings(3, 2, ck), initial(), Optional.of(c), student(), new Recorder()));
        assertTrue(e.getMessage().contains("past the 3 steps"), e.getMessage());
        // a longer run continues where the shorter one stopped
        Recorder r = new Recorder();
        DistillTraining.train(s, initial(), Optional.of(c), student(), r);
        assertEquals(List.of(5, 6), r.steps);
    }
}
