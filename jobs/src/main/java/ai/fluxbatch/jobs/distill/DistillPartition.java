package ai.fluxbatch.jobs.distill;

import ai.fluxbatch.jobs.ExecutorBackends;
import ai.fluxbatch.model.distill.DistillSample;
import ai.fluxbatch.model.distill.GradientSums;
import ai.fluxbatch.model.distill.TrainableParameters;
import ai.fluxbatch.model.snapshot.FluxSnapshot;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;

/**
 * The work of one Spark partition in one step: its share of the batch through the executor's teacher and student
 * ({@link StudentEngines}, on the task's backend), with the step's parameters from the broadcast, into one {@link
 * GradientSums}. Only paths and settings travel; the models and their native handles stay on the executor.
 */
public final class DistillPartition implements FlatMapFunction<Iterator<DistillSample>, GradientSums> {
    private final DistillJobSettings settings;
    private final Broadcast<TrainableParameters> parameters;

    public DistillPartition(DistillJobSettings settings, Broadcast<TrainableParameters> parameters) {
        this.settings = settings;
        this.parameters = parameters;
    }

    @Override
    public Iterator<GradientSums> call(Iterator<DistillSample> samples) {
        List<DistillSample> all = new ArrayList<>();
        samples.forEachRemaining(all::add);
        if (all.isEmpty()) {
            return List.of(GradientSums.empty()).iterator();
        }
        ExecutorBackends.Opened backend = ExecutorBackends.forCurrentTask(settings.device(), settings.gemmPrecision());
        TrainableParameters current = parameters.value();
        GradientSums sums = StudentEngines.jvm()
                .with(
                        settings.engineKey() + '\0' + backend.key(),
                        () -> StudentFactory.byName(settings.factory())
                                .load(
                                        backend.backend(),
                                        FluxSnapshot.open(Path.of(settings.teacher())),
                                        FluxSnapshot.open(Path.of(settings.student())),
                                        settings.settings()),
                        student -> student.gradients(current, all));
        return List.of(sums).iterator();
    }
}
